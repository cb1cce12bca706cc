//! Stack counts kept in the kernel (`record --bpf`): bpf/stack_count.bpf.c
//! adds one to the count of each sample's (task, CPU, kernel stack, user
//! stack) instead of copying every stack to a ring buffer; netprof drains
//! the counts every second and at the end.
//!
//! The program is attached to perf events netprof opened (cpu-clock ticks,
//! tracepoints, kprobes) through perf-event-open's `attach_bpf`
//! (PERF_EVENT_IOC_SET_BPF), so it lives exactly as long as those file
//! descriptors: nothing stays loaded after netprof ends, however it ends.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::time::Duration;

use libbpf_rs::{MapCore, MapFlags};
use perf_event_open::count::Counter;

use super::skeleton::{self, Role};
use crate::error::{Error, Result};

mod generated {
    include!(concat!(env!("OUT_DIR"), "/stack_count.skel.rs"));
}

use generated::{StackCountSkel, StackCountSkelBuilder};

const ROLE: Role = Role {
    command: "record --bpf",
    fallback: "; netprof record without --bpf still works",
};

/// Frames per stack, as perf's default `kernel.perf_event_max_stack`.
pub const MAX_FRAMES: u32 = 127;

/// How long a program that read the old generation may still be writing to
/// it: programs run for microseconds with preemption off; this is generous.
const GENERATION_GRACE: Duration = Duration::from_millis(5);

/// Which kind of perf event a program is attached to (each kind needs its
/// own BPF program type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachKind {
    /// cpu-clock and other software or hardware sampling events.
    PerfEvent,
    Tracepoint,
    Kprobe,
}

/// What the kernel side counts and how much room it has.
#[derive(Clone, Debug)]
pub struct CountOptions {
    /// Frames per stack (1: only where the sample hit, as without -g).
    pub max_frames: u32,
    /// Count only samples on these CPUs (tracepoints and kprobes fire on
    /// every CPU, whatever event they came from).
    pub cpus: Option<Vec<u32>>,
    /// Distinct (task, CPU, stacks) per drain interval.
    pub counts_entries: u32,
    /// Distinct stacks in use at once.
    pub stacks_entries: u32,
}

/// One drained count: how many samples had this task, CPU and stacks.
/// Stacks are by hash; [`StackCounter::stack`] gives their frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackCount {
    pub pid: u32,
    pub tid: u32,
    pub cpu: u32,
    pub kernel_stack: u64,
    pub user_stack: u64,
    pub count: u64,
}

/// Samples the kernel side could not count, since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// No room left in the stacks map.
    pub stacks_full: u64,
    /// No room left in the counts map.
    pub counts_full: u64,
}

impl Dropped {
    pub fn total(&self) -> u64 {
        self.stacks_full + self.counts_full
    }
}

/// The loaded counting program and its maps.
pub struct StackCounter {
    skeleton: StackCountSkel<'static>,
    kind: AttachKind,
    /// Stacks read so far, by hash: a stack seen again in a later interval
    /// is not read again.
    stacks: HashMap<u64, Vec<u64>>,
    stacks_capacity: usize,
    /// Stacks read from the map since it was last emptied of them.
    read_since_cleanup: usize,
}

impl StackCounter {
    /// Loads the program for one kind of event (only that entry point: the
    /// verifier's time is most of the start-up cost).
    pub fn load(opts: &CountOptions, kind: AttachKind) -> Result<StackCounter> {
        let mut open = skeleton::open(StackCountSkelBuilder::default(), &ROLE)?;
        let progs = &mut open.progs;
        progs
            .count_perf_event
            .set_autoload(kind == AttachKind::PerfEvent);
        progs
            .count_tracepoint
            .set_autoload(kind == AttachKind::Tracepoint);
        progs.count_kprobe.set_autoload(kind == AttachKind::Kprobe);
        let rodata = open.maps.rodata_data.as_deref_mut().ok_or_else(|| {
            Error::failed("internal error: the BPF program has no read-only data")
        })?;
        rodata.max_frames = opts.max_frames.clamp(1, MAX_FRAMES);
        if let Some(cpus) = &opts.cpus {
            rodata.filter_cpus = 1;
            for &cpu in cpus {
                let cpu = cpu as usize;
                if cpu >= rodata.cpu_mask.len() * 64 {
                    return Err(Error::bad_argument(format!(
                        "CPU {cpu} is beyond the {} CPUs record --bpf can filter; drop -C or --bpf",
                        rodata.cpu_mask.len() * 64
                    )));
                }
                rodata.cpu_mask[cpu / 64] |= 1 << (cpu % 64);
            }
        }
        let sizing = |e: libbpf_rs::Error| Error::failed(format!("cannot size the BPF maps ({e})"));
        for map in [&mut open.maps.counts0, &mut open.maps.counts1] {
            map.set_max_entries(opts.counts_entries).map_err(sizing)?;
        }
        open.maps
            .stacks
            .set_max_entries(opts.stacks_entries)
            .map_err(sizing)?;
        let skeleton = skeleton::load(open, &ROLE)?;
        Ok(StackCounter {
            skeleton,
            kind,
            stacks: HashMap::new(),
            stacks_capacity: opts.stacks_entries as usize,
            read_since_cleanup: 0,
        })
    }

    pub fn kind(&self) -> AttachKind {
        self.kind
    }

    /// The frames of a drained stack, leaf first; empty for no stack.
    pub fn stack(&self, hash: u64) -> &[u64] {
        self.stacks.get(&hash).map_or(&[], Vec::as_slice)
    }

    /// Attaches the counting program to an open perf event, which then needs
    /// no ring buffer. A sampling event's program keeps the kernel from
    /// writing the sample; a tracepoint's or kprobe's lets every other perf
    /// user of that tracepoint still get the hit (see bpf/stack_count.bpf.c).
    pub fn attach(&self, event: &Counter) -> Result<()> {
        let progs = &self.skeleton.progs;
        let prog = match self.kind {
            AttachKind::PerfEvent => &progs.count_perf_event,
            AttachKind::Tracepoint => &progs.count_tracepoint,
            AttachKind::Kprobe => &progs.count_kprobe,
        };
        let program = prog
            .as_fd()
            .try_clone_to_owned()
            .map(std::fs::File::from)
            .map_err(|e| Error::io("cannot duplicate the BPF program's descriptor", &e))?;
        event.attach_bpf(&program).map_err(|e| {
            Error::kernel_refused(format!(
                "the kernel refuses to attach netprof's counting BPF program to the event ({e})"
            ))
        })
    }

    /// Switches the programs to the other generation of maps and reads and
    /// empties the one they were writing to.
    pub fn drain(&mut self) -> Result<Vec<StackCount>> {
        let bss =
            self.skeleton.maps.bss_data.as_deref_mut().ok_or_else(|| {
                Error::failed("internal error: the BPF program has no writable data")
            })?;
        let old = bss.generation & 1;
        // SAFETY: a plain store to the mmapped BPF global; the programs read
        // it once per sample, either value is consistent.
        unsafe { std::ptr::write_volatile(&mut bss.generation, old ^ 1) };
        std::thread::sleep(GENERATION_GRACE);

        let maps = &self.skeleton.maps;
        let counts = if old == 0 {
            &maps.counts0
        } else {
            &maps.counts1
        };
        let entries: Vec<(Vec<u8>, Vec<u8>)> = counts
            .lookup_and_delete_batch(4096, MapFlags::ANY, MapFlags::ANY)
            .map_err(|e| map_error("counts", &e))?
            .collect();
        let hash =
            |key: &[u8], at: usize| u64::from_ne_bytes(key[at..at + 8].try_into().expect("u64"));
        // Only stacks not seen before are read: a busy datapath repeats its
        // stacks, and reading each of them every second would cost as much
        // as copying the samples.
        for (key, _) in &entries {
            for h in [hash(key, 16), hash(key, 24)] {
                if h < 2 || self.stacks.contains_key(&h) {
                    continue;
                }
                if let Some(value) = maps
                    .stacks
                    .lookup(&h.to_ne_bytes(), MapFlags::ANY)
                    .map_err(|e| map_error("stacks", &e))?
                {
                    self.stacks.insert(h, parse_stack(&value));
                    self.read_since_cleanup += 1;
                }
            }
        }
        // Room for new stacks: forget those already read once half the map
        // may be taken by them (a stack that recurs is stored again).
        if self.read_since_cleanup * 2 >= self.stacks_capacity {
            let read: Vec<Vec<u8>> = maps
                .stacks
                .keys()
                .filter(|k| self.stacks.contains_key(&hash(k, 0)))
                .collect();
            for key in read {
                let _ = maps.stacks.delete(&key);
            }
            self.read_since_cleanup = 0;
        }
        let drained = entries
            .into_iter()
            .map(|(key, value)| {
                let word = |at: usize| u32::from_ne_bytes(key[at..at + 4].try_into().expect("u32"));
                StackCount {
                    pid: word(0),
                    tid: word(4),
                    cpu: word(8),
                    kernel_stack: hash(&key, 16),
                    user_stack: hash(&key, 24),
                    count: u64::from_ne_bytes(value[..8].try_into().expect("u64 count")),
                }
            })
            .collect();
        Ok(drained)
    }

    /// Samples dropped for want of room, since the start.
    pub fn dropped(&self) -> Result<Dropped> {
        let mut totals = [0u64; 2];
        for (reason, total) in totals.iter_mut().enumerate() {
            let per_cpu = self
                .skeleton
                .maps
                .dropped
                .lookup_percpu(&(reason as u32).to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| map_error("drop counters", &e))?
                .unwrap_or_default();
            *total = per_cpu
                .iter()
                .map(|v| u64::from_ne_bytes(v[..8].try_into().expect("u64")))
                .sum();
        }
        Ok(Dropped {
            stacks_full: totals[0],
            counts_full: totals[1],
        })
    }
}

/// A stacks map value: depth, then frames.
fn parse_stack(value: &[u8]) -> Vec<u64> {
    let words: Vec<u64> = value
        .chunks_exact(8)
        .map(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")))
        .collect();
    let depth = (words.first().copied().unwrap_or(0) as usize).min(words.len() - 1);
    // Context markers are not frames (see record: counted events are opened
    // without kernel call chains so that none should appear).
    words[1..=depth]
        .iter()
        .copied()
        .filter(|&w| w < crate::perfdata::PERF_CONTEXT_MAX)
        .collect()
}

fn map_error(map: &str, e: &libbpf_rs::Error) -> Error {
    Error::failed(format!("cannot read the BPF {map} map ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_values_are_cut_at_their_depth() {
        let mut value = vec![2u64, 0x10, 0x20, 0x30];
        value.resize(1 + MAX_FRAMES as usize, 0);
        let bytes: Vec<u8> = value.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(parse_stack(&bytes), vec![0x10, 0x20]);
        // A corrupt depth cannot read past the frames.
        let bytes: Vec<u8> = [500u64, 1].iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(parse_stack(&bytes), vec![1]);
    }
}
