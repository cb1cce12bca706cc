//! The `perf_event_attr` that netprof opens events with, and its on-disk form.
//!
//! The perf-event-open crate builds the attr it passes to the kernel from
//! `Opts`, but does not expose it; the file header must carry the same attr so
//! that perf can parse the samples. So one description, [`EventAttr`], produces
//! both the crate's `Opts` and the bytes of the header, and the recorder checks
//! the crate's parser agrees on the sample layout.

use perf_event_open::config::{
    CallChain, Inherit, OnExecve, Opts, RecordIdFormat, SampleOn, UseBuildId,
};

// sample_type bits (include/uapi/linux/perf_event.h).
pub const SAMPLE_IP: u64 = 1 << 0;
pub const SAMPLE_TID: u64 = 1 << 1;
pub const SAMPLE_TIME: u64 = 1 << 2;
pub const SAMPLE_ID: u64 = 1 << 6;
pub const SAMPLE_CPU: u64 = 1 << 7;
pub const SAMPLE_PERIOD: u64 = 1 << 8;
pub const SAMPLE_CALLCHAIN: u64 = 1 << 5;
pub const SAMPLE_RAW: u64 = 1 << 10;

// attr flag bits, in declaration order of the bitfield.
const FLAG_DISABLED: u64 = 1 << 0;
const FLAG_INHERIT: u64 = 1 << 1;
const FLAG_EXCLUDE_USER: u64 = 1 << 4;
const FLAG_EXCLUDE_KERNEL: u64 = 1 << 5;
const FLAG_MMAP: u64 = 1 << 8;
const FLAG_COMM: u64 = 1 << 9;
const FLAG_FREQ: u64 = 1 << 10;
const FLAG_ENABLE_ON_EXEC: u64 = 1 << 12;
const FLAG_TASK: u64 = 1 << 13;
const FLAG_SAMPLE_ID_ALL: u64 = 1 << 18;
const FLAG_MMAP2: u64 = 1 << 23;

/// Size of the attr netprof writes: PERF_ATTR_SIZE_VER7, which perf 5.13 and
/// later read in full and older perf reads by its size field.
pub const ATTR_SIZE: usize = 128;

/// How often an event samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// Samples per second (the kernel adapts the period).
    Frequency(u64),
    /// One sample every N events (every hit, for tracepoints: N = 1).
    Period(u64),
}

/// Everything about one event that both the kernel and the file header need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventAttr {
    pub type_: u32,
    pub config: u64,
    pub rate: Rate,
    pub callchain: bool,
    /// Carry the tracepoint's fields (probe arguments) in each sample.
    pub raw: bool,
    /// Follow children created after the event was opened (per-task events).
    pub inherit: bool,
    /// Start counting when the target execs (a command netprof started).
    pub enable_on_exec: bool,
    pub exclude_user: bool,
    pub exclude_kernel: bool,
}

impl EventAttr {
    /// The sample layout every netprof event shares. One layout for all events
    /// lets perf find the sample id at a fixed position in every record.
    pub fn sample_type(&self) -> u64 {
        let mut t = SAMPLE_IP | SAMPLE_TID | SAMPLE_TIME | SAMPLE_ID | SAMPLE_CPU | SAMPLE_PERIOD;
        if self.callchain {
            t |= SAMPLE_CALLCHAIN;
        }
        if self.raw {
            t |= SAMPLE_RAW;
        }
        t
    }

    fn flags(&self) -> u64 {
        let mut f =
            FLAG_DISABLED | FLAG_MMAP | FLAG_COMM | FLAG_TASK | FLAG_SAMPLE_ID_ALL | FLAG_MMAP2;
        if matches!(self.rate, Rate::Frequency(_)) {
            f |= FLAG_FREQ;
        }
        if self.inherit {
            f |= FLAG_INHERIT;
        }
        if self.enable_on_exec {
            f |= FLAG_ENABLE_ON_EXEC;
        }
        if self.exclude_user {
            f |= FLAG_EXCLUDE_USER;
        }
        if self.exclude_kernel {
            f |= FLAG_EXCLUDE_KERNEL;
        }
        f
    }

    /// The options for the perf-event-open crate that open this same attr.
    pub fn opts(&self) -> Opts {
        // Events start disabled; the recorder enables them once the file is ready.
        let mut opts = Opts {
            enable: false,
            ..Default::default()
        };
        opts.exclude.user = self.exclude_user;
        opts.exclude.kernel = self.exclude_kernel;
        opts.inherit = self.inherit.then_some(Inherit::NewChild);
        opts.on_execve = self.enable_on_exec.then_some(OnExecve::Enable);
        opts.sample_on = match self.rate {
            Rate::Frequency(hz) => SampleOn::Freq(hz),
            Rate::Period(n) => SampleOn::Count(n),
        };
        opts.sample_format.code_addr = true;
        opts.sample_format.raw = self.raw;
        opts.sample_format.period = true;
        if self.callchain {
            opts.sample_format.call_chain = Some(CallChain {
                exclude_user: false,
                exclude_kernel: false,
                defer_user: false,
                max_stack_frames: 127,
            });
        }
        opts.record_id_all = true;
        opts.record_id_format = RecordIdFormat {
            id: true,
            stream_id: false,
            cpu: true,
            task: true,
            time: true,
        };
        opts.extra_record.task = true;
        opts.extra_record.comm = true;
        opts.extra_record.mmap.code = true;
        opts.extra_record.mmap.ext = Some(UseBuildId(false));
        opts
    }

    /// The attr as perf.data stores it (little endian, [`ATTR_SIZE`] bytes).
    pub fn to_bytes(&self) -> [u8; ATTR_SIZE] {
        let mut b = [0u8; ATTR_SIZE];
        let mut put = |off: usize, v: &[u8]| b[off..off + v.len()].copy_from_slice(v);
        put(0, &self.type_.to_le_bytes());
        put(4, &(ATTR_SIZE as u32).to_le_bytes());
        put(8, &self.config.to_le_bytes());
        let rate = match self.rate {
            Rate::Frequency(v) | Rate::Period(v) => v,
        };
        put(16, &rate.to_le_bytes());
        put(24, &self.sample_type().to_le_bytes());
        // read_format (32) stays 0.
        put(40, &self.flags().to_le_bytes());
        if self.callchain {
            // sample_max_stack sits after aux_watermark at offset 108.
            put(108, &127u16.to_le_bytes());
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_attr_matches_what_the_crate_would_open() {
        // The crate's parser is built from the attr it opened; compare its idea
        // of the sample layout with ours for every shape of event we use.
        for callchain in [false, true] {
            let attr = EventAttr {
                type_: 1,
                config: 0,
                rate: Rate::Frequency(999),
                callchain,
                raw: false,
                inherit: false,
                enable_on_exec: false,
                exclude_user: false,
                exclude_kernel: false,
            };
            let bytes = attr.to_bytes();
            let sample_type = u64::from_le_bytes(bytes[24..32].try_into().unwrap());
            let flags = u64::from_le_bytes(bytes[40..48].try_into().unwrap());
            assert_eq!(sample_type & SAMPLE_CALLCHAIN != 0, callchain);
            assert!(flags & FLAG_SAMPLE_ID_ALL != 0);
            assert!(flags & FLAG_FREQ != 0);
            assert_eq!(u64::from_le_bytes(bytes[16..24].try_into().unwrap()), 999);
        }
    }
}
