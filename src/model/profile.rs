//! The profile every report works from: sample counts per distinct (task,
//! CPU, event, stack), with the process address spaces and kernel symbols
//! needed to name frames. [`super::read`] fills it from a perf.data file.
//!
//! Stacks are interned as raw addresses, so a file of hundreds of thousands
//! of samples turns into a few thousand distinct stacks, and symbolization
//! later runs once per distinct address, not per sample.

use ahash::AHashMap as HashMap;

use super::kernel_symbols::KernelSymbols;
use super::tracepoint_format::Format;
use crate::perfdata::Mapping;

/// Which tasks, CPUs and commands a report keeps.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub comms: Vec<String>,
    pub pids: Vec<i32>,
    pub cpus: Vec<u32>,
    /// Also keep every sample, in time order, with its tracepoint fields
    /// (`report --samples`); otherwise only counts are kept.
    pub keep_samples: bool,
}

/// One sample as recorded (kept only on request, see [`Filter`]).
#[derive(Clone, Debug)]
pub struct Sample {
    pub time: u64,
    pub event: u16,
    pub pid: i32,
    pub tid: i32,
    pub cpu: u32,
    pub comm: u32,
    pub stack: u32,
    /// What the sample counts for: 1, a probe's hits counted in the kernel,
    /// or an off-CPU wait's nanoseconds (the period of weighted events).
    pub count: u64,
    /// The tracepoint's fields, undecoded; empty for other events.
    pub raw: Vec<u8>,
}

/// Samples with the same task, CPU, event and stack, counted.
#[derive(Clone, Debug)]
pub struct SampleGroup {
    pub event: u16,
    pub pid: i32,
    pub tid: i32,
    pub cpu: u32,
    pub comm: u32,
    pub stack: u32,
    pub count: u64,
}

/// Where a user call chain stopped making sense: the outermost user frame
/// of a stack whose unwinding went astray (shown as `[unknown]`). No user
/// or kernel code lives at this address.
pub const UNKNOWN_USER_FRAME: u64 = 0x8000_0000_0000_0000;

/// A call stack as addresses, leaf first: `kernel_len` kernel frames, then
/// user frames, all in the address space `space`.
#[derive(Clone, Debug)]
pub struct RawStack {
    pub space: u32,
    pub kernel_len: usize,
    pub frames: Vec<u64>,
    /// Whether the user part was cut at an impossible frame (its last frame
    /// is then [`UNKNOWN_USER_FRAME`]).
    pub user_truncated: bool,
}

/// Where kernel frame names come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelNames {
    /// The snapshot netprof stored in the file at record time.
    Snapshot,
    /// This machine's /proc/kallsyms (files written by perf).
    LiveKallsyms,
    /// None: kernel frames are shown as addresses.
    Unavailable,
}

/// What the recording's header says about where and how it was made.
#[derive(Clone, Debug, Default)]
pub struct RecordingFacts {
    /// The command that recorded it (`netprof record -a -g`, `perf record ...`).
    pub command_line: Option<String>,
    /// The kernel release it was recorded on.
    pub os_release: Option<String>,
    pub hostname: Option<String>,
}

pub struct Profile {
    pub facts: RecordingFacts,
    pub events: Vec<String>,
    pub groups: Vec<SampleGroup>,
    pub stacks: Vec<RawStack>,
    pub comms: Vec<String>,
    /// Address spaces (executable mappings): a process gets a new one at
    /// exec and a copy at fork.
    pub spaces: Vec<Vec<Mapping>>,
    pub kernel: KernelSymbols,
    pub kernel_names: KernelNames,
    /// Build ids of the files the recording mapped, by path, where known.
    pub build_ids: HashMap<String, Vec<u8>>,
    /// For each event, the format of its tracepoint fields, if it has any.
    pub formats: Vec<Option<Format>>,
    /// Every sample, when the filter asked to keep them.
    pub samples: Vec<Sample>,
    /// Samples that passed the filters.
    pub total_samples: u64,
    /// Samples in the file, before filters, per event.
    pub file_samples: Vec<u64>,
    /// Per event, the sum of the periods of its samples, before filters:
    /// for cpu-clock, the nanoseconds they stand for.
    pub file_periods: Vec<u64>,
    pub lost_samples: u64,
    /// Samples whose user stack is a DWARF snapshot (`--call-graph dwarf`),
    /// which netprof does not unwind.
    pub dwarf_samples: u64,
    /// Samples (after filters) whose user call chain was cut where it
    /// left the process's code (binaries without frame pointers).
    pub truncated_user_samples: u64,
}

impl Profile {
    /// The events that have samples, in the file's order.
    pub fn sampled_events(&self) -> Vec<u16> {
        (0..self.events.len() as u16)
            .filter(|&e| self.file_samples[e as usize] > 0)
            .collect()
    }

    /// The mean period of an event's samples, before filters: for
    /// cpu-clock, the nanoseconds one sample stands for.
    pub fn mean_period(&self, event: u16) -> u64 {
        self.file_periods[event as usize] / self.file_samples[event as usize].max(1)
    }

    /// The event named `name`, or an error listing the recording's events.
    pub fn event(&self, name: &str) -> crate::error::Result<u16> {
        match self.events.iter().position(|e| e == name) {
            Some(e) => Ok(e as u16),
            None => Err(crate::error::Error::not_found(format!(
                "no event '{name}' in this recording (events: {})",
                self.sampled_events()
                    .iter()
                    .map(|&e| self.events[e as usize].as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}
