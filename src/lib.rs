//! netprof: a profiler for Linux kernel networking code.
//!
//! The library holds everything; `main.rs` only parses the command line.
//! Data flows record -> perf.data file -> profile -> symbolize -> report.

pub mod bpfcount;
pub mod bpfprog;
pub mod check;
pub mod cli;
pub mod diff;
pub mod event;
pub mod kallsyms;
pub mod kprobe;
pub mod latency;
pub mod libbpf_log;
pub mod multiprobe;
pub mod outfile;
pub mod perfdata;
pub mod probe;
pub mod profile;
pub mod record;
pub mod report;
pub mod suggest;
pub mod symbolize;
pub mod tpformat;
