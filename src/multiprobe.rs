//! Many kernel functions probed at once: one BPF program attached to all of
//! them through a multi-kprobe (fprobe) BPF link (bpf/kprobe_multi.bpf.c).
//!
//! Registering one kprobe per function costs a kernel round trip each; the
//! link attaches a whole module's functions in one call. Each hit writes a
//! sample into the ring of a bpf-output perf event that the recorder opened
//! on that CPU, so hits arrive, with their call chains, like any sample. The
//! link and the program belong to this process's file descriptors: the
//! kernel detaches them when the recording ends, however it ends.

use std::mem::MaybeUninit;

use anyhow::{Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags};

mod skeleton {
    include!(concat!(env!("OUT_DIR"), "/kprobe_multi.skel.rs"));
}

use skeleton::{KprobeMultiSkel, KprobeMultiSkelBuilder};

/// Whether the running kernel has multi-kprobe links (CONFIG_FPROBE).
pub fn available() -> bool {
    crate::kprobe::kernel_config("CONFIG_FPROBE").unwrap_or(false)
}

/// An attached multi-kprobe; dropping it detaches the probes.
pub struct MultiProbe {
    _link: Link,
    _skeleton: KprobeMultiSkel<'static>,
}

/// Attaches to `functions` (at entry, or at return), writing hits to the
/// bpf-output events `outputs`, given as (CPU, file descriptor).
pub fn attach(functions: &[String], is_return: bool, outputs: &[(u32, i32)]) -> Result<MultiProbe> {
    // The skeleton borrows its object storage for as long as it lives, which
    // is the rest of the recording: the storage is leaked on purpose, once
    // per recording.
    crate::libbpf_log::capture();
    let storage: &'static mut MaybeUninit<libbpf_rs::OpenObject> =
        Box::leak(Box::new(MaybeUninit::uninit()));
    let skeleton = KprobeMultiSkelBuilder::default()
        .open(storage)
        .and_then(|open| open.load())
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot load netprof's BPF program ({e}); it needs root (CAP_BPF and CAP_PERFMON)"
            )
        })?;
    for &(cpu, fd) in outputs {
        skeleton
            .maps
            .samples
            .update(&cpu.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .context("cannot connect the BPF program to the sample buffers")?;
    }
    let link = skeleton
        .progs
        .netprof_hit
        .attach_kprobe_multi(is_return, functions.to_vec())
        .map_err(|e| {
            anyhow::anyhow!(
                "the kernel refuses a multi-kprobe on these {} functions ({e})",
                functions.len()
            )
        })?;
    Ok(MultiProbe {
        _link: link,
        _skeleton: skeleton,
    })
}
