//! Many kernel functions probed at once: one BPF program attached to all of
//! them through a multi-kprobe (fprobe) BPF link (bpf/kprobe_multi.bpf.c).
//!
//! Registering one kprobe per function costs a kernel round trip each; the
//! link attaches a whole module's functions in one call. Each hit writes a
//! sample into the ring of a bpf-output perf event that the recorder opened
//! on that CPU, so hits arrive, with their call chains, like any sample. The
//! link and the program belong to this process's file descriptors: the
//! kernel detaches them when the recording ends, however it ends.

use std::os::fd::{AsRawFd, BorrowedFd};

use libbpf_rs::{Link, MapCore, MapFlags};

use super::skeleton::{self, Role};
use crate::error::{Error, Result};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/kprobe_multi.skel.rs"));
}

use generated::{KprobeMultiSkel, KprobeMultiSkelBuilder};

const ROLE: Role = Role {
    command: "record -e 'kprobe:GLOB'",
    fallback: "",
};

/// An attached multi-kprobe; dropping it detaches the probes.
pub struct MultiProbe {
    _link: Link,
    skeleton: KprobeMultiSkel<'static>,
}

impl MultiProbe {
    /// Writes the hits of `cpu` to `output` from now on (a CPU that came
    /// back online has a new event).
    pub fn set_output(&self, cpu: u32, output: BorrowedFd<'_>) -> Result<()> {
        connect(&self.skeleton, cpu, output)
    }
}

fn connect(skeleton: &KprobeMultiSkel, cpu: u32, output: BorrowedFd<'_>) -> Result<()> {
    skeleton
        .maps
        .samples
        .update(
            &cpu.to_ne_bytes(),
            &output.as_raw_fd().to_ne_bytes(),
            MapFlags::ANY,
        )
        .map_err(|e| {
            Error::failed(format!(
                "cannot connect the BPF program to the sample buffers ({e})"
            ))
        })
}

/// Attaches to `functions` (at entry, or at return), writing hits to the
/// bpf-output perf events `outputs`, one per CPU: (CPU, event).
pub fn attach(
    functions: &[String],
    is_return: bool,
    outputs: &[(u32, BorrowedFd<'_>)],
) -> Result<MultiProbe> {
    let open = skeleton::open(KprobeMultiSkelBuilder::default(), &ROLE)?;
    let skeleton = skeleton::load(open, &ROLE)?;
    for (cpu, fd) in outputs {
        connect(&skeleton, *cpu, *fd)?;
    }
    let link = skeleton
        .progs
        .netprof_hit
        .attach_kprobe_multi(is_return, functions.to_vec())
        .map_err(|e| {
            Error::kernel_refused(format!(
                "the kernel refuses a multi-kprobe on these {} functions ({e})",
                functions.len()
            ))
        })?;
    Ok(MultiProbe {
        _link: link,
        skeleton,
    })
}
