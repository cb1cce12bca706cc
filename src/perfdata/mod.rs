//! The perf.data file format: what netprof writes and how it reads it back.
//!
//! netprof writes files that `perf report` and `perf script` read, and reads
//! files that `perf record` wrote. Reading goes through the linux-perf-data
//! crate; writing is ours, because no maintained crate writes the format.
//! What netprof needs beyond perf (the kallsyms snapshot that names kernel,
//! module and BPF frames later, on another machine) travels in a feature
//! section with a bit that perf skips as unknown.

pub mod attr;
pub mod check;
pub mod writer;

/// An executable file mapped into a process: what MMAP2 records carry,
/// what netprof synthesizes for processes that run before a recording
/// starts, and what names user frames later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// Offset in the file of the mapping's first byte.
    pub pgoff: u64,
    pub path: String,
}

impl Mapping {
    pub fn new(start: u64, length: u64, pgoff: u64, path: String) -> Mapping {
        Mapping {
            start,
            end: start.saturating_add(length),
            pgoff,
            path,
        }
    }

    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

// perf_event_attr.type values (include/uapi/linux/perf_event.h).
pub const TYPE_HARDWARE: u32 = 0;
pub const TYPE_SOFTWARE: u32 = 1;
pub const TYPE_TRACEPOINT: u32 = 2;

/// Feature bit of the kallsyms snapshot. perf's own features stop near 32 and
/// it skips set bits it does not know, so a bit high in the 256-bit map is
/// safe from both perf and future perf features.
pub const FEATURE_NETPROF_KALLSYMS: u32 = 200;

/// Feature bit of the tracepoint formats (how to decode each hit's fields),
/// as pairs of length-prefixed strings: event name, tracefs format text.
pub const FEATURE_NETPROF_TP_FORMATS: u32 = 201;

// Record types of the data section (include/uapi/linux/perf_event.h and
// tools/perf/util/event.h).
pub const PERF_RECORD_MMAP: u32 = 1;
pub const PERF_RECORD_LOST: u32 = 2;
pub const PERF_RECORD_COMM: u32 = 3;
pub const PERF_RECORD_EXIT: u32 = 4;
pub const PERF_RECORD_FORK: u32 = 7;
pub const PERF_RECORD_SAMPLE: u32 = 9;
pub const PERF_RECORD_MMAP2: u32 = 10;
pub const PERF_RECORD_LOST_SAMPLES: u32 = 13;
pub const PERF_RECORD_FINISHED_ROUND: u32 = 68;

pub const PERF_RECORD_MISC_KERNEL: u16 = 1;
pub const PERF_RECORD_MISC_USER: u16 = 2;

// Feature section ids perf defines (tools/perf/util/header.h).
pub const HEADER_TRACING_DATA: u32 = 1;
pub const HEADER_BUILD_ID: u32 = 2;
pub const HEADER_HOSTNAME: u32 = 3;
pub const HEADER_OSRELEASE: u32 = 4;
pub const HEADER_VERSION: u32 = 5;
pub const HEADER_ARCH: u32 = 6;
pub const HEADER_NRCPUS: u32 = 7;
pub const HEADER_CMDLINE: u32 = 11;
pub const HEADER_EVENT_DESC: u32 = 12;

/// Callchain context markers the kernel puts between kernel and user frames.
pub const PERF_CONTEXT_MAX: u64 = (-4095i64) as u64;
pub const PERF_CONTEXT_KERNEL: u64 = (-128i64) as u64;
pub const PERF_CONTEXT_USER: u64 = (-512i64) as u64;
