//! Many kernel functions probed at once: one BPF program attached to all of
//! them through a multi-kprobe (fprobe) BPF link (bpf/kprobe_multi.bpf.c),
//! or, where the kernel has none, through one link per function
//! ([`super::kprobe_links`]).
//!
//! Registering one kprobe per function costs a kernel round trip each; the
//! multi-kprobe link attaches a whole module's functions in one call. Each hit writes a
//! sample into the ring of a bpf-output perf event that the recorder opened
//! on that CPU, so hits arrive, with their call chains, like any sample. The
//! link and the program belong to this process's file descriptors: the
//! kernel detaches them when the recording ends, however it ends.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::AtomicBool;

use libbpf_rs::{Link, MapCore, MapFlags};

use super::kprobe_links::{self, Attach, Target};
use super::skeleton::{self, Role};
use crate::error::{Error, Result};
use crate::probe::Function;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/kprobe_multi.skel.rs"));
}

use generated::{KprobeMultiSkel, KprobeMultiSkelBuilder};

const ROLE: Role = Role {
    command: "record -e 'kprobe:GLOB'",
    fallback: "",
};

/// Attached probes; dropping them detaches them.
pub struct MultiProbe {
    multi_link: Option<Link>,
    per_function: kprobe_links::Links,
    /// Functions of the glob the kernel would not probe (one link each).
    pub refused: Vec<String>,
    /// Functions the multi-kprobe link covers, when there is one.
    multi_functions: usize,
    skeleton: KprobeMultiSkel<'static>,
}

impl MultiProbe {
    /// How many probes this placed one per function (none through a
    /// multi-kprobe link).
    pub fn probes_one_by_one(&self) -> usize {
        self.per_function.len()
    }

    /// How many functions are probed (fewer than asked when some were
    /// refused, or when placing them one by one was interrupted).
    pub fn functions_probed(&self) -> usize {
        match self.multi_link {
            Some(_) => self.multi_functions,
            None => self.per_function.len(),
        }
    }

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

/// Attaches to `functions` (at entry, or at return) the way `how` says,
/// writing hits to the bpf-output perf events `outputs`, one per CPU:
/// (CPU, event). Attaching one by one calls `progress(done, total)` now and
/// then.
pub fn attach(
    functions: &[Function],
    is_return: bool,
    how: Attach,
    outputs: &[(u32, BorrowedFd<'_>)],
    stop: &AtomicBool,
    progress: impl FnMut(usize, usize),
) -> Result<MultiProbe> {
    let mut open = skeleton::open(KprobeMultiSkelBuilder::default(), &ROLE)?;
    // Only the program attached is loaded: a kernel without fprobe may
    // refuse the multi-kprobe kind.
    open.progs.netprof_hit.set_autoload(how == Attach::Multi);
    open.progs
        .netprof_hit_each
        .set_autoload(how == Attach::PerFunction);
    let skeleton = skeleton::load(open, &ROLE)?;
    for (cpu, fd) in outputs {
        connect(&skeleton, *cpu, *fd)?;
    }
    let (multi_link, per_function, refused) = match how {
        Attach::Multi => {
            let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
            let link = skeleton
                .progs
                .netprof_hit
                .attach_kprobe_multi(is_return, names)
                .map_err(|e| {
                    Error::kernel_refused(format!(
                        "the kernel refuses a multi-kprobe on these {} functions ({e})",
                        functions.len()
                    ))
                })?;
            (Some(link), kprobe_links::Links::default(), Vec::new())
        }
        Attach::PerFunction => {
            let targets: Vec<Target> = functions
                .iter()
                .map(|f| Target {
                    name: &f.name,
                    address: f.address,
                    cookie: f.address,
                })
                .collect();
            let attached = kprobe_links::attach(
                &skeleton.progs.netprof_hit_each,
                &targets,
                is_return,
                stop,
                progress,
            )?;
            (None, attached.links, attached.refused)
        }
    };
    Ok(MultiProbe {
        multi_link,
        per_function,
        refused,
        multi_functions: functions.len(),
        skeleton,
    })
}
