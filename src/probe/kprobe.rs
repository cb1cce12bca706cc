//! Probes through the kernel's kprobe PMU: a perf event whose probe the
//! kernel removes when its file descriptor closes, so a recording never
//! leaves one behind, whatever ends it, and two recordings never share one.
//!
//! Probes are placed by address, not by name: the kernel reads a name
//! through a pointer into the opener's memory, also when a followed task
//! forks and the event is inherited, where that pointer means nothing (the
//! fork then fails).

use std::path::Path;

use perf_event_open::event::dp::{DynamicPmu, Kprobe, Kretprobe};

use crate::error::{Error, ErrorKind, Result};

const PMU_DIR: &str = "/sys/bus/event_source/devices/kprobe";

/// A probe at a function's entry, or at its return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KprobeEvent {
    pub address: u64,
    pub is_return: bool,
}

impl KprobeEvent {
    /// The perf event that places this probe (perf-event-open reads the
    /// kprobe PMU's type and return-probe bit from sysfs); its type and
    /// config also go into the recording's header.
    pub fn pmu_event(&self) -> Result<DynamicPmu> {
        let event = if self.is_return {
            Kretprobe::Addr(self.address).try_into_dp()
        } else {
            Kprobe::Addr(self.address).try_into_dp()
        };
        event.map_err(|e| match ErrorKind::of_io(&e) {
            ErrorKind::NotFound => no_kprobes(),
            _ => Error::io("cannot read the kprobe PMU's description in sysfs", &e),
        })
    }
}

/// Whether the running kernel has the kprobe PMU.
pub fn available() -> bool {
    Path::new(PMU_DIR).join("type").exists()
}

/// Fails with [`no_kprobes`] on a kernel without kprobes.
pub fn require() -> Result<()> {
    if available() {
        Ok(())
    } else {
        Err(no_kprobes())
    }
}

/// The error for kernels without kprobes, saying what still works.
pub fn no_kprobes() -> Error {
    Error::unsupported(
        "this kernel has no kprobes (CONFIG_KPROBES is off: no kprobe PMU, no kprobe_events), so functions \
         cannot be probed here; sampling (-e cpu-clock), tracepoints (-e net:net_dev_xmit) and reports still \
         work, and `netprof check` lists what this kernel can do",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_without_kprobes_is_explained() {
        assert!(
            !available(),
            "this test needs a kernel without kprobes (the build machine's); the guest suite covers kernels with them"
        );
        let probe = KprobeEvent {
            address: 0xffffffff81000000,
            is_return: true,
        };
        let err = probe.pmu_event().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(
            err.message().contains("CONFIG_KPROBES is off")
                && err.message().contains("tracepoints"),
            "{err}"
        );
        assert_eq!(require().unwrap_err(), err);
    }
}
