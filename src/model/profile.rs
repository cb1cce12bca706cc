//! The profile every report works from: sample counts per distinct (task,
//! CPU, event, stack), with the mapped files and kernel symbols needed to
//! name frames. [`super::read`] fills it from a perf.data file.
//!
//! Stacks are interned as kernel addresses and (file, offset) user frames,
//! so a file of hundreds of thousands of samples turns into a few thousand
//! distinct stacks, and symbolization later runs once per distinct frame,
//! not per sample.

use ahash::AHashMap as HashMap;

use super::kernel_symbols::KernelSymbols;
use super::tracepoint_format::Format;

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

impl Filter {
    /// Whether a sample of process `pid` on `cpu` passes the process and
    /// CPU filters (the command filter needs the process's name).
    pub fn passes_task_and_cpu(&self, pid: i32, cpu: u32) -> bool {
        (self.pids.is_empty() || self.pids.contains(&pid))
            && (self.cpus.is_empty() || self.cpus.contains(&cpu))
    }
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

/// One frame of a stack as the recording saw it. User frames are told by
/// the file they ran in and their offset there, not by address: the same
/// code in two processes (each loaded elsewhere by ASLR) is one frame, and
/// stacks that differ only by where their libraries were loaded are one
/// stack, which spares naming and folding each copy again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RawFrame {
    /// A kernel address, as sampled (see [`crate::model::symbolize`] for the
    /// byte that names a return address).
    Kernel(u64),
    /// User code in a mapped file ([`Profile::files`]); `offset` is that of
    /// the byte that names the frame (a return address's call, the byte
    /// before it), worked out with the mapping of the sample's time.
    File { file: u32, offset: u64 },
    /// A user address (the byte that names it) in no mapping: a return
    /// address at the very start of a mapping, whose call lies outside it.
    Unmapped(u64),
    /// Where the user chain stopped making sense (its unwinding went
    /// astray): shown as `[unknown]`, as perf does.
    Unknown,
}

/// A call stack, leaf first: kernel frames, then user frames.
#[derive(Clone, Debug)]
pub struct RawStack {
    pub frames: Vec<RawFrame>,
    /// Whether the user part was cut at an impossible frame (its last frame
    /// is then [`RawFrame::Unknown`]).
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
    /// The files whose code user frames ran in, by [`RawFrame::File`]'s
    /// index: paths as the recording's mappings give them.
    pub files: Vec<String>,
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
    /// Per event, the samples (after filters) whose user call chain was
    /// cut where it left the process's code (binaries without frame
    /// pointers), weighted as the event counts: samples, or nanoseconds
    /// for off-CPU time.
    pub truncated_user: Vec<u64>,
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
