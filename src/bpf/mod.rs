//! netprof's BPF programs (sources in bpf/ at the top of the repository,
//! compiled by build.rs into libbpf-rs skeletons) and the kernel's BPF
//! program inventory:
//!
//! - [`kprobe_multi`]: many functions probed at once through one
//!   multi-kprobe link, each hit a sample with its call chain;
//! - [`kprobe_links`]: one link per function, where there are no
//!   multi-kprobe links;
//! - [`stack_count`]: stacks counted in the kernel (`record --bpf`);
//! - [`entry_return`]: an entry and a return program on many functions,
//!   which `latency` and `funcgraph` time calls with;
//! - [`latency`]: per-call latency histograms (`netprof latency`);
//! - [`funcgraph`]: call paths of traced functions and their wall time
//!   (`netprof funcgraph`);
//! - [`programs`]: the programs loaded in the kernel, their attach points
//!   and run statistics (`netprof bpf`).
//!
//! Every program and link belongs to netprof's file descriptors, so the
//! kernel unloads them when netprof ends, however it ends.

pub mod entry_return;
mod follow_pids;
pub mod funcgraph;
pub mod kprobe_links;
pub mod kprobe_multi;
pub mod latency;
pub mod log;
mod perf_events;
pub mod programs;
mod skeleton;
pub mod stack_count;
mod tc;
