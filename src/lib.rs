//! netprof: a profiler for Linux kernel networking code.
//!
//! The library holds the work; the binary (src/main.rs and src/cli/) owns
//! the command line, signals and printing. Data flows one way:
//!
//! - [`sys`]: what the running system offers (kallsyms, tracefs, kernel
//!   config, CPUs, processes, capabilities);
//! - [`probe`] and [`bpf`]: putting probes and BPF programs into the kernel;
//! - [`record`]: sampling into a perf.data file ([`perfdata`]), of the
//!   whole system, of processes, or of a [`command`] netprof runs;
//! - [`model`]: a recording read back, its frames named;
//! - [`analysis`]: comparisons and their statistics;
//! - [`render`]: every text, JSON and SVG output.
//!
//! Errors carry a kind ([`error::ErrorKind`]) that decides the exit status.

pub mod analysis;
pub mod bpf;
pub mod command;
pub mod error;
pub mod infile;
pub mod model;
pub mod outfile;
pub mod perfdata;
pub mod probe;
pub mod record;
pub mod render;
pub mod suggest;
pub mod sys;

pub use error::{Error, ErrorKind, Result};
