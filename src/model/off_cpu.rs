//! Off-CPU time as a recording holds it (`record --off-cpu`): each blocked
//! interval is a sample of an `offcpu-time:STATE` event whose period is the
//! time away in nanoseconds, so every reader of perf.data (report, diff,
//! `perf script`) sees it as any other event. With `--wakeups`, the same time
//! is also a sample of `offcpu-waker`, whose call chain is the waker's kernel
//! stack, then [`WAKER_SEPARATOR`], then the blocked thread's kernel stack.

use ahash::AHashMap as HashMap;

use super::profile::Profile;
use crate::error::{Error, Result};

/// The family of off-CPU events: `offcpu-time:S`, `offcpu-time:D`, ...
pub const OFF_CPU_EVENT: &str = "offcpu-time";
/// Blocked time by who ended the wait.
pub const WAKER_EVENT: &str = "offcpu-waker";
/// The on-CPU event that shares a unit (nanoseconds) with off-CPU time.
pub const CPU_CLOCK_EVENT: &str = "cpu-clock";

/// `--event all`: on-CPU and off-CPU time in one unit, nanoseconds.
pub const WALL_CHOICE: &str = "all";
/// The event `--event all` makes.
pub const WALL_EVENT: &str = "wall-time";

/// A kernel-half address no code has (just below the perf context markers),
/// standing between the waker's and the wakee's frames; named `--`, as
/// offwaketime separates them.
pub const WAKER_SEPARATOR: u64 = 0xffff_ffff_ffff_e000;

/// Whether a kernel address (or the byte before it, as frames are looked
/// up) is the separator.
pub fn is_separator(addr: u64) -> bool {
    addr == WAKER_SEPARATOR || addr == WAKER_SEPARATOR - 1
}

/// Whether an event's samples weigh nanoseconds (off-CPU time, wakers,
/// the wall-clock view) rather than count occurrences.
pub fn counts_nanoseconds(event: &str) -> bool {
    event.starts_with(OFF_CPU_EVENT) || event == WAKER_EVENT || event == WALL_EVENT
}

/// Why a thread was off the CPU: the letters of ps(1) and sched_switch.
/// The discriminants are bpf/stack_count.bpf.c's `enum off_cpu_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OffCpuState {
    /// Preempted or yielded: runnable, waiting for a CPU.
    Runnable = 0,
    /// Interruptible sleep: a socket, a pipe, a timer, a futex.
    Sleeping = 1,
    /// Uninterruptible sleep: disk, some locks.
    Disk = 2,
    /// An idle kernel thread (uninterruptible without load).
    Idle = 3,
    Stopped = 4,
    Traced = 5,
    /// A parked kernel thread.
    Parked = 6,
}

impl OffCpuState {
    pub const ALL: [OffCpuState; 7] = [
        OffCpuState::Runnable,
        OffCpuState::Sleeping,
        OffCpuState::Disk,
        OffCpuState::Idle,
        OffCpuState::Stopped,
        OffCpuState::Traced,
        OffCpuState::Parked,
    ];

    pub fn from_index(index: u32) -> Option<OffCpuState> {
        Self::ALL.get(index as usize).copied()
    }

    pub fn letter(self) -> &'static str {
        match self {
            OffCpuState::Runnable => "R",
            OffCpuState::Sleeping => "S",
            OffCpuState::Disk => "D",
            OffCpuState::Idle => "I",
            OffCpuState::Stopped => "T",
            OffCpuState::Traced => "t",
            OffCpuState::Parked => "P",
        }
    }

    /// The event its blocked time is recorded as.
    pub fn event_name(self) -> String {
        format!("{OFF_CPU_EVENT}:{}", self.letter())
    }

    /// The state an event name stands for, when it is an off-CPU one.
    pub fn of_event(name: &str) -> Option<OffCpuState> {
        let letter = name.strip_prefix(OFF_CPU_EVENT)?.strip_prefix(':')?;
        Self::ALL.into_iter().find(|s| s.letter() == letter)
    }
}

/// `--state`: the states kept (all of them by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateSelection(pub Vec<OffCpuState>);

impl StateSelection {
    pub fn all() -> StateSelection {
        StateSelection(OffCpuState::ALL.to_vec())
    }

    /// `all`, or letters separated by commas (`D`, `S,D`, `R`).
    pub fn parse(text: &str) -> Result<StateSelection> {
        if text == "all" {
            return Ok(Self::all());
        }
        let mut states = Vec::new();
        for letter in text.split(',') {
            match OffCpuState::ALL.into_iter().find(|s| s.letter() == letter) {
                Some(s) if !states.contains(&s) => states.push(s),
                Some(_) => {}
                None => {
                    return Err(Error::bad_argument(format!(
                        "unknown thread state '{letter}'; give all, or letters among {} (R runnable, \
                         S sleeping, D uninterruptible, I idle kernel thread, T stopped, t traced, P parked)",
                        OffCpuState::ALL.map(OffCpuState::letter).join(",")
                    )))
                }
            }
        }
        Ok(StateSelection(states))
    }

    /// Bit n set for state n, as the BPF program takes it.
    pub fn mask(&self) -> u32 {
        self.0.iter().fold(0, |m, &s| m | 1 << s as u32)
    }

    pub fn contains(&self, state: OffCpuState) -> bool {
        self.0.contains(&state)
    }
}

impl Profile {
    /// The event a report or diff shows, by the name given with --event:
    /// one of the file's events; `offcpu-time`, the off-CPU time of every
    /// state (or of those `states` keeps) as one event; or `all`, that and
    /// cpu-clock's samples weighted by their period, in nanoseconds both.
    /// Without a name, the off-CPU states are still one event (`--state`
    /// alone picks off-CPU time), and None leaves the choice to the caller.
    pub fn choose_event(
        &mut self,
        name: Option<&str>,
        states: Option<&StateSelection>,
    ) -> Result<Option<u16>> {
        let off_cpu: Vec<(u16, u64)> = self
            .sampled_events()
            .into_iter()
            .filter(|&e| {
                OffCpuState::of_event(&self.events[e as usize])
                    .is_some_and(|s| states.is_none_or(|k| k.contains(s)))
            })
            .map(|e| (e, 1))
            .collect();
        let off_cpu_name = match states {
            Some(k) if k.0.len() < OffCpuState::ALL.len() => format!(
                "{OFF_CPU_EVENT}:{}",
                k.0.iter().map(|s| s.letter()).collect::<Vec<_>>().join(",")
            ),
            _ => OFF_CPU_EVENT.to_string(),
        };
        let no_off_cpu = || {
            Error::not_found(format!(
                "this recording has no off-CPU samples{}; record with --off-cpu",
                match states {
                    Some(_) => " in the states --state keeps",
                    None => "",
                }
            ))
        };
        // `--event offcpu-time`, or `--state` alone: the states kept, as one.
        let off_cpu_only = name == Some(OFF_CPU_EVENT) || (name.is_none() && states.is_some());
        if off_cpu_only {
            return match off_cpu.is_empty() {
                true => Err(no_off_cpu()),
                false => Ok(Some(self.merge_events(&off_cpu, &off_cpu_name))),
            };
        }
        match name {
            Some(WALL_CHOICE) => {
                let cpu = self
                    .sampled_events()
                    .into_iter()
                    .find(|&e| self.events[e as usize] == CPU_CLOCK_EVENT)
                    .ok_or_else(|| {
                        Error::not_found(
                            "--event all puts cpu-clock samples beside off-CPU time, and this recording has no \
                             cpu-clock samples; record with --off-cpu and the default event",
                        )
                    })?;
                if off_cpu.is_empty() {
                    return Err(no_off_cpu());
                }
                let mut members = vec![(cpu, self.mean_period(cpu).max(1))];
                members.extend(off_cpu);
                Ok(Some(self.merge_events(&members, WALL_EVENT)))
            }
            Some(name) => {
                if states.is_some() && OffCpuState::of_event(name).is_none() {
                    return Err(Error::bad_argument(format!(
                        "--state picks off-CPU samples, and {name} is not an off-CPU event; \
                         drop --state or give --event offcpu-time"
                    )));
                }
                self.event(name).map(Some)
            }
            None => {
                // One state is merged too: the event's name must not hang on
                // which states a run happened to see (a busy task is now and
                // then preempted, R, beside its sleeps, S).
                if !off_cpu.is_empty() {
                    self.merge_events(&off_cpu, OFF_CPU_EVENT);
                }
                Ok(None)
            }
        }
    }

    /// Makes one event of `members` (each with what one of its units is
    /// worth in the new one), which then have no samples of their own.
    fn merge_events(&mut self, members: &[(u16, u64)], name: &str) -> u16 {
        let merged = self.events.len() as u16;
        let scale_of = |event: u16| members.iter().find(|(e, _)| *e == event).map(|m| m.1);
        let (mut samples, mut periods, mut cut) = (0, 0, 0);
        for &(e, scale) in members {
            samples += self.file_samples[e as usize] * scale;
            periods += self.file_periods[e as usize];
            self.file_samples[e as usize] = 0;
            if let Some(truncated) = self.truncated_user.get_mut(e as usize) {
                cut += std::mem::take(truncated) * scale;
            }
        }
        self.events.push(name.to_string());
        self.file_samples.push(samples);
        self.file_periods.push(periods);
        self.truncated_user.resize(self.events.len() - 1, 0);
        self.truncated_user.push(cut);
        self.formats.push(None);
        for group in &mut self.groups {
            if let Some(scale) = scale_of(group.event) {
                group.event = merged;
                group.count *= scale;
            }
        }
        for sample in &mut self.samples {
            if scale_of(sample.event).is_some() {
                sample.event = merged;
            }
        }
        merged
    }
}

/// One thread's time over a recording (`report --threads`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ThreadTime {
    pub pid: i32,
    pub tid: i32,
    /// Its name as the recording last saw it.
    pub comm: u32,
    /// cpu-clock samples times their mean period.
    pub on_cpu_ns: u64,
    /// By state, in [`OffCpuState::ALL`]'s order.
    pub off_cpu_ns: [u64; 7],
    /// Its longest waits: (state, stack, nanoseconds), longest first.
    pub top_waits: Vec<(OffCpuState, u32, u64)>,
}

impl ThreadTime {
    pub fn off_cpu_total(&self) -> u64 {
        self.off_cpu_ns.iter().sum()
    }
}

/// Each thread's on-CPU time, off-CPU time by state, and its `top` longest
/// waits by stack; threads with the most time in all first.
pub fn thread_times(profile: &Profile, top: usize) -> Result<Vec<ThreadTime>> {
    let cpu_clock = profile
        .events
        .iter()
        .position(|e| e == CPU_CLOCK_EVENT)
        .map(|e| e as u16);
    let state_of: Vec<Option<OffCpuState>> = profile
        .events
        .iter()
        .map(|e| OffCpuState::of_event(e))
        .collect();
    if state_of.iter().all(Option::is_none) {
        return Err(Error::not_found(
            "this recording has no off-CPU samples; record with --off-cpu to see where threads wait",
        ));
    }
    let ns_per_sample = cpu_clock.map_or(0, |e| profile.mean_period(e));
    let mut threads: HashMap<(i32, i32), ThreadTime> = HashMap::new();
    let mut waits: HashMap<(i32, i32, OffCpuState, u32), u64> = HashMap::new();
    for g in &profile.groups {
        let state = state_of[g.event as usize];
        if state.is_none() && Some(g.event) != cpu_clock {
            continue;
        }
        let thread = threads.entry((g.pid, g.tid)).or_insert_with(|| ThreadTime {
            pid: g.pid,
            tid: g.tid,
            ..ThreadTime::default()
        });
        thread.comm = g.comm;
        match state {
            Some(s) => {
                thread.off_cpu_ns[s as usize] += g.count;
                *waits.entry((g.pid, g.tid, s, g.stack)).or_default() += g.count;
            }
            None => thread.on_cpu_ns += g.count * ns_per_sample,
        }
    }
    let mut waits: Vec<_> = waits.into_iter().collect();
    waits.sort_unstable_by_key(|&((pid, tid, s, stack), ns)| {
        (std::cmp::Reverse(ns), pid, tid, s, stack)
    });
    for ((pid, tid, state, stack), ns) in waits {
        if let Some(t) = threads.get_mut(&(pid, tid)) {
            if t.top_waits.len() < top {
                t.top_waits.push((state, stack, ns));
            }
        }
    }
    let mut threads: Vec<ThreadTime> = threads.into_values().collect();
    threads.sort_unstable_by_key(|t| {
        (
            std::cmp::Reverse(t.on_cpu_ns + t.off_cpu_total()),
            t.pid,
            t.tid,
        )
    });
    Ok(threads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_event_names() {
        for state in OffCpuState::ALL {
            assert_eq!(OffCpuState::of_event(&state.event_name()), Some(state));
            assert_eq!(OffCpuState::from_index(state as u32), Some(state));
        }
        assert_eq!(OffCpuState::of_event("offcpu-time"), None);
        assert_eq!(OffCpuState::of_event("cpu-clock"), None);
        assert_eq!(OffCpuState::from_index(7), None);
    }

    #[test]
    fn state_lists_parse_into_masks() {
        assert_eq!(StateSelection::parse("all").unwrap().mask(), 0x7f);
        assert_eq!(StateSelection::parse("D").unwrap().mask(), 1 << 2);
        assert_eq!(StateSelection::parse("S,D,S").unwrap().mask(), 0b110);
        let err = StateSelection::parse("X").unwrap_err();
        assert!(err.message().contains("unknown thread state 'X'"), "{err}");
    }
}
