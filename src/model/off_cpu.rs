//! Off-CPU time as a recording holds it (`record --off-cpu`): each blocked
//! interval is a sample of an `offcpu-time:STATE` event whose period is the
//! time away in nanoseconds, so every reader of perf.data (report, diff,
//! `perf script`) sees it as any other event. With `--wakeups`, the same time
//! is also a sample of `offcpu-waker`, whose call chain is the waker's kernel
//! stack, then [`WAKER_SEPARATOR`], then the blocked thread's kernel stack.

use crate::error::{Error, Result};

/// The family of off-CPU events: `offcpu-time:S`, `offcpu-time:D`, ...
pub const OFF_CPU_EVENT: &str = "offcpu-time";
/// Blocked time by who ended the wait.
pub const WAKER_EVENT: &str = "offcpu-waker";
/// The on-CPU event that shares a unit (nanoseconds) with off-CPU time.
pub const CPU_CLOCK_EVENT: &str = "cpu-clock";

/// A kernel-half address no code has (just below the perf context markers),
/// standing between the waker's and the wakee's frames; named `--`, as
/// offwaketime separates them.
pub const WAKER_SEPARATOR: u64 = 0xffff_ffff_ffff_e000;

/// Whether a kernel address (or the byte before it, as frames are looked
/// up) is the separator.
pub fn is_separator(addr: u64) -> bool {
    addr == WAKER_SEPARATOR || addr == WAKER_SEPARATOR - 1
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

    pub fn meaning(self) -> &'static str {
        match self {
            OffCpuState::Runnable => "runnable, waiting for a CPU",
            OffCpuState::Sleeping => "sleeping",
            OffCpuState::Disk => "uninterruptible",
            OffCpuState::Idle => "idle kernel thread",
            OffCpuState::Stopped => "stopped",
            OffCpuState::Traced => "traced",
            OffCpuState::Parked => "parked",
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
