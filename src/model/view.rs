//! What every output of a recording works from: the profile after its
//! filters, with every stack as named frames ([`View`]).

use ahash::AHashMap as HashMap;

use super::profile::{KernelNames, Profile, SampleGroup};
use super::symbolize::{FrameKind, SymbolizedProfile};
use crate::error::{Error, Result};

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

impl<'a> View<'a> {
    /// The samples of `event` (all events when `None`) whose stacks pass
    /// through `module`, if given.
    pub fn build(
        profile: &'a Profile,
        symbols: &'a SymbolizedProfile,
        module: Option<&str>,
        event: Option<u16>,
    ) -> Result<View<'a>> {
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

    /// Folded stacks (`comm;root;...;leaf count`), identical lines merged,
    /// sorted, as inferno and flamegraph.pl read them.
    pub fn folded(&self) -> Vec<(String, u64)> {
        let labels: Vec<String> = self
            .symbols
            .frames
            .iter()
            .map(|f| f.label().replace(';', ":"))
            .collect();
        let mut merged: HashMap<String, u64> = HashMap::new();
        let mut line = String::new();
        for row in &self.rows {
            line.clear();
            line.push_str(&self.profile.comms[row.comm as usize].replace(';', ":"));
            for &f in &self.symbols.stacks[row.stack as usize] {
                line.push(';');
                line.push_str(&labels[f as usize]);
            }
            *merged.entry(line.clone()).or_insert(0) += row.count;
        }
        let mut lines: Vec<(String, u64)> = merged.into_iter().collect();
        lines.sort_unstable();
        lines
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
        let mut line = format!(
            "{samples} samples of {events} ({} in this view), {} lost; {names}",
            self.total, p.lost_samples
        );
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
