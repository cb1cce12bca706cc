//! What the running system offers, read from /proc, /sys and tracefs:
//! kernel symbols, tracefs, the kernel's configuration, CPUs, processes,
//! perf's limits, the process's own resource limits, and the capability
//! summary `netprof check` prints.
//!
//! Everything above this layer asks here instead of reading kernel files
//! itself, so each file's quirks (hidden addresses, unmounted tracefs,
//! compressed config) are handled once.

pub mod capabilities;
pub mod cpus;
pub mod kallsyms;
pub mod kallsyms_cache;
pub mod kconfig;
pub mod limits;
pub mod perf;
pub mod processes;
pub mod tracefs;
