//! What every output of a recording works from: the profile after its
//! filters, with every stack as named frames ([`View`]).

use ahash::AHashMap as HashMap;

use super::off_cpu;
use super::profile::{KernelNames, Profile, SampleGroup};
use super::symbolize::{FrameKind, SymbolizedProfile};
use crate::error::{Error, Result};

/// Sorts (key, count) pairs by key and merges equal keys, adding counts.
pub fn sort_and_merge<K: Ord>(pairs: &mut Vec<(K, u64)>) {
    pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    pairs.dedup_by(|next, kept| {
        let same = next.0 == kept.0;
        if same {
            kept.1 += next.1;
        }
        same
    });
}

pub struct View<'a> {
    pub profile: &'a Profile,
    /// Every frame of the profile named (once, for all of its views).
    pub symbols: &'a SymbolizedProfile,
    /// The event shown, or all of them.
    pub event: Option<u16>,
    /// The profile's sample groups of that event that pass the module
    /// filter; their `stack` indexes `symbols.stacks` (the same order as the
    /// raw stacks).
    pub rows: Vec<SampleGroup>,
    pub total: u64,
}

/// Which samples a view keeps (the task, CPU and command filters apply
/// when the recording is read: see [`super::profile::Filter`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct ViewFilter<'f> {
    /// Only stacks passing through this kernel module (or `bpf`).
    pub module: Option<&'f str>,
    /// Only this event's samples (all events when `None`).
    pub event: Option<u16>,
    /// Leave out samples taken in the idle loop.
    pub no_idle: bool,
}

/// The functions a CPU with nothing to do sits in (x86-64 and arm64): a
/// sample whose leaf is one of them was taken in the idle loop. (Interrupts and softirqs taken
/// while idle have other leaves and are kept.)
const IDLE_LEAVES: &[&str] = &[
    "acpi_idle_do_entry",
    "acpi_idle_enter",
    "acpi_safe_halt",
    "amd_e400_idle",
    "arch_cpu_idle",
    "cpu_do_idle",
    "cpu_idle_poll",
    "cpuidle_enter_state",
    "default_idle",
    "default_idle_call",
    "do_idle",
    "intel_idle",
    "intel_idle_ibrs",
    "intel_idle_irq",
    "intel_idle_xstate",
    "io_idle",
    "mwait_idle",
    "native_safe_halt",
    "poll_idle",
    "pv_native_safe_halt",
];

impl<'a> View<'a> {
    /// The samples the filter keeps, with their frames named.
    pub fn build(
        profile: &'a Profile,
        symbols: &'a SymbolizedProfile,
        filter: ViewFilter<'_>,
    ) -> Result<View<'a>> {
        let (module, event) = (filter.module, filter.event);
        let idle: Vec<bool> = if filter.no_idle {
            symbols
                .frames
                .iter()
                .map(|f| f.kind == FrameKind::Kernel && IDLE_LEAVES.contains(&f.name.as_str()))
                .collect()
        } else {
            Vec::new()
        };
        let in_module: Option<Vec<bool>> = match module {
            None => None,
            Some(m) => {
                let flags: Vec<bool> = symbols
                    .frames
                    .iter()
                    .map(|f| {
                        matches!(f.kind, FrameKind::Module | FrameKind::Bpf)
                            && f.module.as_deref() == Some(m)
                    })
                    .collect();
                if !flags.contains(&true) {
                    let mut seen: Vec<&str> = symbols
                        .frames
                        .iter()
                        .filter(|f| f.kind == FrameKind::Module)
                        .filter_map(|f| f.module.as_deref())
                        .collect();
                    seen.sort_unstable();
                    seen.dedup();
                    let seen = if seen.is_empty() {
                        "none".to_string()
                    } else {
                        seen.join(", ")
                    };
                    return Err(Error::not_found(format!(
                        "no sampled stack passes through module '{m}' (modules in this recording: {seen}); check the name with `lsmod`"
                    )));
                }
                Some(flags)
            }
        };
        let rows: Vec<SampleGroup> = profile
            .groups
            .iter()
            .filter(|g| event.is_none_or(|e| g.event == e))
            .filter(|g| {
                !filter.no_idle
                    || symbols.stacks[g.stack as usize]
                        .last()
                        .is_none_or(|&leaf| !idle[leaf as usize])
            })
            .filter(|g| match &in_module {
                None => true,
                Some(flags) => symbols.stacks[g.stack as usize]
                    .iter()
                    .any(|&f| flags[f as usize]),
            })
            .cloned()
            .collect();
        let total = rows.iter().map(|r| r.count).sum();
        Ok(View {
            profile,
            symbols,
            event,
            rows,
            total,
        })
    }

    /// The rows (one per task, CPU and raw stack) merged into distinct
    /// (command, named stack) paths with their counts: outputs work once per
    /// path, not once per row that has it. Without `by_command` every path
    /// has command 0, and paths differing only in their command merge.
    pub fn named_paths(&self, by_command: bool) -> HashMap<(u32, &[u32]), u64> {
        // By command and stack id first, a pair of integers: rows of many
        // tasks and CPUs share a stack, and hashing its frames once per
        // distinct pair is a fraction of once per row.
        let mut by_stack: HashMap<(u32, u32), u64> = HashMap::new();
        for row in &self.rows {
            let comm = if by_command { row.comm } else { 0 };
            *by_stack.entry((comm, row.stack)).or_insert(0) += row.count;
        }
        let mut merged: HashMap<(u32, &[u32]), u64> = HashMap::with_capacity(by_stack.len());
        for ((comm, stack), count) in by_stack {
            let frames = self.symbols.stacks[stack as usize].as_slice();
            *merged.entry((comm, frames)).or_insert(0) += count;
        }
        merged
    }

    /// Every command's and frame's name as folded lines write them (`;`,
    /// their separator, becomes `:`), by command and frame id.
    pub fn folded_names(&self) -> (Vec<String>, Vec<String>) {
        let comms = self
            .profile
            .comms
            .iter()
            .map(|c| c.replace(';', ":"))
            .collect();
        let frames = self
            .symbols
            .frames
            .iter()
            .map(|f| f.label().replace(';', ":"))
            .collect();
        (comms, frames)
    }

    /// Folded stacks (`comm;root;...;leaf count`), identical lines merged,
    /// sorted, as inferno and flamegraph.pl read them.
    pub fn folded(&self) -> Vec<(String, u64)> {
        // Rows (one per task, CPU and raw stack) merge by command and named
        // frames first: hashing a few integers instead of a line of text
        // each, and a line is written once however many rows it has.
        let (comms, labels) = self.folded_names();
        let mut lines: Vec<(String, u64)> = self
            .named_paths(true)
            .into_iter()
            .map(|((comm, frames), count)| {
                let mut line = comms[comm as usize].clone();
                for &f in frames {
                    line.push(';');
                    line.push_str(&labels[f as usize]);
                }
                (line, count)
            })
            .collect();
        // Distinct frames or commands can read the same once written.
        sort_and_merge(&mut lines);
        lines
    }

    /// The samples of the view's event (all events when none is chosen)
    /// whose user call chain was cut, weighted as the event counts.
    pub fn truncated_user(&self) -> u64 {
        let p = self.profile;
        match self.event {
            Some(e) => p.truncated_user.get(e as usize).copied().unwrap_or(0),
            None => p
                .sampled_events()
                .iter()
                .filter_map(|&e| p.truncated_user.get(e as usize))
                .sum(),
        }
    }

    /// A one-line description of the recording for report headers.
    pub fn summary_line(&self) -> String {
        let names = match self.profile.kernel_names {
            KernelNames::Snapshot => "kernel names from the recording's kallsyms snapshot",
            KernelNames::LiveKallsyms => "kernel names from this machine's /proc/kallsyms",
            KernelNames::Unavailable => "kernel frames unnamed (no kallsyms)",
        };
        let p = self.profile;
        let (samples, events) = match self.event {
            Some(e) => (p.file_samples[e as usize], p.events[e as usize].clone()),
            None => (
                p.file_samples.iter().sum(),
                p.sampled_events()
                    .iter()
                    .map(|&e| p.events[e as usize].as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        };
        let mut line = match off_cpu::counts_nanoseconds(&events) {
            true => format!(
                "{:.6} s of {events} ({:.6} s in this view), {} lost; {names}",
                samples as f64 / 1e9,
                self.total as f64 / 1e9,
                p.lost_samples
            ),
            false => format!(
                "{samples} samples of {events} ({} in this view), {} lost; {names}",
                self.total, p.lost_samples
            ),
        };
        let cut = self.truncated_user();
        if cut > 0 {
            let what = match off_cpu::counts_nanoseconds(&events) {
                true => format!("{:.6} s of it", cut as f64 / 1e9),
                false => format!("{cut} samples"),
            };
            line.push_str(&format!(
                "; {what} had their user call chain cut at [unknown] (code built without frame pointers)"
            ));
        }
        if p.dwarf_samples > 0 {
            line.push_str(&format!(
                "; {} samples carry DWARF stack snapshots (--call-graph dwarf), which netprof does not \
                 unwind: their user frames are missing (record with -g for frame-pointer stacks)",
                p.dwarf_samples
            ));
        }
        line
    }

    /// The event's name, or the names of all events with samples.
    pub fn event_name(&self) -> String {
        match self.event {
            Some(e) => self.profile.events[e as usize].clone(),
            None => self.profile.events.join(", "),
        }
    }
}
