//! Stack counts kept in the kernel: bpf/stack_count.bpf.c adds one to the
//! count of each sample's (task, CPU, kernel stack, user stack) instead of
//! copying every stack to a ring buffer (`record --bpf`), or the time a
//! thread spent off the CPU to the count of its (task, state, stacks)
//! (`record --off-cpu`); netprof drains the counts when a map is half
//! full, every ten seconds, and at the end. Each stack's frames come once,
//! the first time it is seen, through a ring buffer read as it fills.
//!
//! The sample counter is attached to perf events netprof opened (cpu-clock
//! ticks, tracepoints, kprobes) through perf-event-open's `attach_bpf`
//! (PERF_EVENT_IOC_SET_BPF), the off-CPU one to the scheduler's raw
//! tracepoints through BPF links: either lives exactly as long as its file
//! descriptors, so nothing stays loaded after netprof ends, however it ends.

use ahash::AHashMap as HashMap;
use std::cell::RefCell;
use std::os::fd::AsFd;
use std::rc::Rc;
use std::time::Duration;

use libbpf_rs::{Link, MapCore, MapFlags, RingBuffer, RingBufferBuilder};
use perf_event_open::count::Counter;

use super::follow_pids;
use super::skeleton::{self, Role};
use crate::error::{Error, Result};
use crate::model::off_cpu::{OffCpuState, StateSelection};
use crate::sys::kallsyms;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/stack_count.skel.rs"));
}

use generated::{StackCountSkel, StackCountSkelBuilder};

const ROLE: Role = Role {
    command: "record --bpf",
    fallback: "; netprof record without --bpf still works",
};

const OFF_CPU_ROLE: Role = Role {
    command: "record --off-cpu",
    fallback: "; netprof record without --off-cpu still samples on-CPU time",
};

/// Frames per stack, as perf's default `kernel.perf_event_max_stack`.
pub const MAX_FRAMES: u32 = 127;

/// How long a program that read the old generation may still be writing to
/// it: programs run for microseconds with preemption off; this is generous.
const GENERATION_GRACE: Duration = Duration::from_millis(5);

/// Which kind of perf event a program is attached to (each kind needs its
/// own BPF program type), or the scheduler's tracepoints for off-CPU time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachKind {
    /// cpu-clock and other software or hardware sampling events.
    PerfEvent,
    Tracepoint,
    Kprobe,
    /// sched_switch (and sched_waking), through raw tracepoint links.
    OffCpu,
}

/// `record --off-cpu`: which waits count, as the command line asks.
#[derive(Clone, Debug)]
pub struct OffCpuRequest {
    /// Only waits in these thread states.
    pub states: StateSelection,
    /// Shorter waits are left out (and counted as such).
    pub min_block: Duration,
    /// Note the kernel stack of whoever ends each wait.
    pub wakers: bool,
}

/// What the off-CPU program counts, besides [`CountOptions`].
#[derive(Clone, Debug)]
pub struct OffCpuOptions {
    pub request: OffCpuRequest,
    /// Only threads of these processes and of the processes they start
    /// from now on; every thread when empty.
    pub pids: Vec<u32>,
    /// Slots for threads off the CPU, by a hash of the thread modulo their number
    /// (rounded up to a power of two).
    pub blocked_entries: u32,
}

/// What a count is of (the `what` of bpf/stack_count.bpf.c's count key).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CountOf {
    /// Samples: the count is how many.
    Samples,
    /// Nanoseconds off the CPU in this state.
    OffCpu(OffCpuState),
    /// The same nanoseconds by waker: the count's user stack is the
    /// waker's kernel stack.
    Waker(OffCpuState),
}

impl CountOf {
    fn parse(what: u32) -> Option<CountOf> {
        let state = || OffCpuState::from_index(what & 0xff);
        match what >> 8 {
            0 => Some(CountOf::Samples),
            1 => state().map(CountOf::OffCpu),
            2 => state().map(CountOf::Waker),
            _ => None,
        }
    }
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
    /// Distinct stacks the kernel side remembers having sent (one sent
    /// again after being forgotten costs a copy, not a sample); the ring
    /// buffer that sends them is sized from it too ([`ring_bytes`]).
    pub stacks_entries: u32,
}

/// Bytes of the ring buffer that sends new stacks for `stacks_entries`: a
/// power of two, 256 bytes per entry (a stack of 30 frames), from 1 to 64 MiB.
pub fn ring_bytes(stacks_entries: u32) -> u64 {
    (u64::from(stacks_entries) * 256)
        .next_power_of_two()
        .clamp(1 << 20, 1 << 26)
}

/// One drained count: how many samples had this task, CPU and stacks (or
/// how long the task was off the CPU with them). Stacks are by hash;
/// [`StackCounter::stack`] gives their frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StackCount {
    pub pid: u32,
    pub tid: u32,
    pub cpu: u32,
    pub of: CountOf,
    pub kernel_stack: u64,
    pub user_stack: u64,
    pub count: u64,
}

/// Samples (or blocks) the kernel side could not count, since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// No room in the ring buffer for a new stack.
    pub stacks_full: u64,
    /// No room left in the counts map.
    pub counts_full: u64,
    /// Off-CPU: waits lost to another thread away in the same slot.
    pub blocked_full: u64,
    /// Off-CPU: blocks shorter than `--min-block`, left out on purpose.
    pub short_blocks: u64,
    /// Their time, in nanoseconds.
    pub short_blocks_ns: u64,
}

impl Dropped {
    /// What was lost for want of room (short blocks are left out by choice).
    pub fn total(&self) -> u64 {
        self.stacks_full + self.counts_full + self.blocked_full
    }

    pub fn add(&mut self, other: &Dropped) {
        self.stacks_full += other.stacks_full;
        self.counts_full += other.counts_full;
        self.blocked_full += other.blocked_full;
        self.short_blocks += other.short_blocks;
        self.short_blocks_ns += other.short_blocks_ns;
    }
}

/// The loaded counting program and its maps.
pub struct StackCounter {
    /// Delivers new stacks into `arriving` (declared before the skeleton,
    /// whose map it reads, to be dropped first).
    new_stacks: RingBuffer<'static>,
    arriving: Rc<RefCell<SentStacks>>,
    skeleton: StackCountSkel<'static>,
    kind: AttachKind,
    /// Stacks received so far.
    stacks: StackArena,
    /// The last drain's keys and values, their room kept for the next.
    drained_keys: Vec<u8>,
    drained_values: Vec<u8>,
    /// Entries in each generation's count map.
    counts_entries: u32,
    /// Off-CPU: the scheduler tracepoints' links (and fork following).
    links: Vec<Link>,
    /// Off-CPU: where the tracing machinery's code is, to cut it off the
    /// leaf end of each stack.
    tracing_frames: Option<TracingFrames>,
}

impl StackCounter {
    /// Loads the program for one kind of event (only that entry point: the
    /// verifier's time is most of the start-up cost).
    pub fn load(opts: &CountOptions, kind: AttachKind) -> Result<StackCounter> {
        Self::load_with(opts, kind, None)
    }

    /// Loads the off-CPU programs and attaches them to the scheduler's
    /// tracepoints: counting starts at once.
    pub fn load_off_cpu(opts: &CountOptions, off_cpu: &OffCpuOptions) -> Result<StackCounter> {
        let mut counter = Self::load_with(opts, AttachKind::OffCpu, Some(off_cpu))?;
        let maps = &counter.skeleton.maps;
        follow_pids::fill(&maps.pids, &off_cpu.pids)?;
        let progs = &counter.skeleton.progs;
        let refused = |e: libbpf_rs::Error| {
            Error::kernel_refused(format!(
                "the kernel refuses netprof's sched_switch program ({e}); record without --off-cpu"
            ))
        };
        if !off_cpu.pids.is_empty() {
            counter
                .links
                .push(follow_pids::follow_forks(&progs.follow_fork)?);
        }
        if off_cpu.request.wakers {
            counter.links.push(
                progs
                    .off_cpu_waking
                    .attach_raw_tracepoint("sched_waking")
                    .map_err(refused)?,
            );
        }
        counter.links.push(
            progs
                .off_cpu_switch
                .attach_raw_tracepoint("sched_switch")
                .map_err(refused)?,
        );
        Ok(counter)
    }

    fn load_with(
        opts: &CountOptions,
        kind: AttachKind,
        off_cpu: Option<&OffCpuOptions>,
    ) -> Result<StackCounter> {
        let role = match kind {
            AttachKind::OffCpu => &OFF_CPU_ROLE,
            _ => &ROLE,
        };
        let mut open = skeleton::open(StackCountSkelBuilder::default(), role)?;
        let progs = &mut open.progs;
        progs
            .count_perf_event
            .set_autoload(kind == AttachKind::PerfEvent);
        progs
            .count_tracepoint
            .set_autoload(kind == AttachKind::Tracepoint);
        progs.count_kprobe.set_autoload(kind == AttachKind::Kprobe);
        progs.off_cpu_switch.set_autoload(off_cpu.is_some());
        progs
            .off_cpu_waking
            .set_autoload(off_cpu.is_some_and(|o| o.request.wakers));
        let follow_children = off_cpu.is_some_and(|o| !o.pids.is_empty());
        progs.follow_fork.set_autoload(follow_children);
        let child_pid_offset = match follow_children {
            true => follow_pids::fork_child_offset()?,
            false => 0,
        };
        let rodata = open.maps.rodata_data.as_deref_mut().ok_or_else(|| {
            Error::failed("internal error: the BPF program has no read-only data")
        })?;
        if let Some(o) = off_cpu {
            rodata.state_mask = o.request.states.mask();
            rodata.min_block_ns = o.request.min_block.as_nanos().min(u64::MAX as u128) as u64;
            rodata.note_wakers = o.request.wakers as u8;
            rodata.self_pid = std::process::id();
            rodata.filter_pids = !o.pids.is_empty() as u8;
            rodata.child_pid_offset = child_pid_offset;
            rodata.blocked_mask = blocked_slots(o) - 1;
        }
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
            .sent
            .set_max_entries(opts.stacks_entries)
            .map_err(sizing)?;
        open.maps
            .new_stacks
            .set_max_entries(ring_bytes(opts.stacks_entries) as u32)
            .map_err(sizing)?;
        open.maps
            .blocked
            .set_max_entries(off_cpu.map_or(1, blocked_slots))
            .map_err(sizing)?;
        let skeleton = skeleton::load(open, role)?;
        let arriving = Rc::new(RefCell::new(SentStacks::default()));
        let delivered = Rc::clone(&arriving);
        let mut builder = RingBufferBuilder::new();
        builder
            .add(&skeleton.maps.new_stacks, move |record: &[u8]| {
                delivered.borrow_mut().add(record);
                0
            })
            .map_err(|e| ring_error(&e))?;
        let new_stacks = builder.build().map_err(|e| ring_error(&e))?;
        Ok(StackCounter {
            new_stacks,
            arriving,
            skeleton,
            kind,
            stacks: StackArena::default(),
            drained_keys: Vec::new(),
            drained_values: Vec::new(),
            counts_entries: opts.counts_entries,
            links: Vec::new(),
            tracing_frames: None,
        })
    }

    /// Off-CPU: where the tracing machinery's code is (from the recording's
    /// kallsyms snapshot), so that stacks read from now on start where the
    /// thread left the CPU.
    pub fn set_tracing_frames(&mut self, frames: TracingFrames) {
        self.tracing_frames = Some(frames);
    }

    /// Off-CPU: detaches from the scheduler, so that what the maps hold
    /// stops changing (the last drains and [`Self::still_blocked`] follow).
    pub fn detach(&mut self) {
        self.links.clear();
    }

    pub fn kind(&self) -> AttachKind {
        self.kind
    }

    /// The frames of a drained stack, leaf first; empty for no stack.
    pub fn stack(&self, hash: u64) -> &[u64] {
        self.stacks.get(hash)
    }

    /// Attaches the counting program to an open perf event, which then needs
    /// no ring buffer. A sampling event's program keeps the kernel from
    /// writing the sample; a tracepoint's or kprobe's lets every other perf
    /// user of that tracepoint still get the hit (see bpf/stack_count.bpf.c).
    pub fn attach(&self, event: &Counter) -> Result<()> {
        let progs = &self.skeleton.progs;
        let prog =
            match self.kind {
                AttachKind::PerfEvent => &progs.count_perf_event,
                AttachKind::Tracepoint => &progs.count_tracepoint,
                AttachKind::Kprobe => &progs.count_kprobe,
                AttachKind::OffCpu => return Err(Error::failed(
                    "internal error: the off-CPU counter attaches to the scheduler, not to events",
                )),
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

    /// Whether the generation the programs write to is half full: time to
    /// drain, before it runs out of room. Draining walks every bucket of
    /// the map and copies every entry, one that recurs once per drain, so a
    /// map is drained as seldom as its room allows.
    pub fn filling(&self) -> bool {
        let Some(bss) = self.skeleton.maps.bss_data.as_deref() else {
            return true;
        };
        // SAFETY: plain loads from the mmapped BPF globals, which the
        // programs change concurrently; any value read is a valid u32/u64.
        let (generation, new_counts) = unsafe {
            (
                std::ptr::read_volatile(&bss.generation),
                std::ptr::read_volatile(&bss.new_counts),
            )
        };
        new_counts[(generation & 1) as usize] * 2 >= u64::from(self.counts_entries)
    }

    /// Takes in the stacks the programs sent since the last call. Called
    /// often (the ring buffer drops new stacks once full) and before counts
    /// are read: the programs send a stack before any count names it.
    pub fn read_new_stacks(&mut self) -> Result<()> {
        self.new_stacks.consume().map_err(|e| ring_error(&e))?;
        let mut arriving = self.arriving.borrow_mut();
        for (hash, mut frames) in arriving.iter() {
            if let Some(tracing) = &self.tracing_frames {
                let cut = frames.iter().take_while(|&&a| tracing.contains(a)).count();
                frames = &frames[cut..];
            }
            self.stacks.add(hash, frames);
        }
        arriving.clear();
        Ok(())
    }

    /// Samples counted in the kernel since the start, drained or not.
    pub fn samples_seen(&self) -> Result<u64> {
        let per_cpu = self
            .skeleton
            .maps
            .samples_seen
            .lookup_percpu(&0u32.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| map_error("sample counters", &e))?
            .unwrap_or_default();
        Ok(per_cpu.iter().map(|v| dword(v, 0)).sum())
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
        let (keys, values) = (&mut self.drained_keys, &mut self.drained_values);
        take_all(counts, keys, values).map_err(|e| map_error("counts", &e))?;
        let key_size = counts.key_size() as usize;
        let value_size = counts.value_size() as usize;
        if let Some(bss) = self.skeleton.maps.bss_data.as_deref_mut() {
            // SAFETY: as above; the programs no longer write to `old`.
            unsafe { std::ptr::write_volatile(&mut bss.new_counts[old as usize], 0) };
        }
        let drained: Vec<StackCount> = keys
            .chunks_exact(key_size)
            .zip(values.chunks_exact(value_size))
            .filter_map(|(key, value)| {
                Some(StackCount {
                    pid: word(key, 0),
                    tid: word(key, 4),
                    cpu: word(key, 8),
                    of: CountOf::parse(word(key, 12))?,
                    kernel_stack: dword(key, 16),
                    user_stack: dword(key, 24),
                    count: dword(value, 0),
                })
            })
            .collect();
        self.read_new_stacks()?;
        Ok(drained)
    }

    /// Off-CPU, once detached: the threads still away, each counted for
    /// the time until now (`now` in CLOCK_MONOTONIC nanoseconds, the BPF
    /// clock); a thread blocked for the whole recording is the answer to
    /// "why does it wait", not noise.
    pub fn still_blocked(&mut self, now: u64) -> Result<Vec<StackCount>> {
        let map = &self.skeleton.maps.blocked;
        let mut away = Vec::new();
        let slots = map
            .lookup_batch(4096, MapFlags::ANY, MapFlags::ANY)
            .map_err(|e| map_error("blocked threads", &e))?;
        for (_, value) in slots {
            // A free slot has no start; its state is then meaningless.
            let start = dword(&value, 0);
            let state = OffCpuState::from_index(word(&value, 40));
            let (true, Some(state)) = (start != 0, state) else {
                continue;
            };
            away.push(StackCount {
                pid: word(&value, 36),
                tid: word(&value, 32),
                cpu: 0,
                of: CountOf::OffCpu(state),
                kernel_stack: dword(&value, 8),
                user_stack: dword(&value, 16),
                count: now.saturating_sub(start),
            });
        }
        self.read_new_stacks()?;
        Ok(away)
    }

    /// Samples dropped for want of room, since the start.
    pub fn dropped(&self) -> Result<Dropped> {
        let mut totals = [0u64; 5];
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
            blocked_full: totals[2],
            short_blocks: totals[3],
            short_blocks_ns: totals[4],
        })
    }
}

/// Stacks by hash, their frames (leaf first) all in one buffer: one
/// allocation per stack spread them over the heap, and writing the counts,
/// which reads a stack per count, waited on memory more than it computed.
#[derive(Default)]
struct StackArena {
    frames: Vec<u64>,
    /// Where each stack's frames are in `frames`: start and length.
    by_hash: HashMap<u64, (u32, u32)>,
}

impl StackArena {
    /// The frames of the stack with this hash; empty if it never came.
    fn get(&self, hash: u64) -> &[u64] {
        self.by_hash.get(&hash).map_or(&[], |&(start, len)| {
            &self.frames[start as usize..][..len as usize]
        })
    }

    /// Adds a stack, unless its hash is known (a hash the programs forgot
    /// and sent again: equal hashes are the same stack).
    fn add(&mut self, hash: u64, frames: &[u64]) {
        let start = self.frames.len() as u32;
        if let std::collections::hash_map::Entry::Vacant(slot) = self.by_hash.entry(hash) {
            self.frames.extend_from_slice(frames);
            slot.insert((start, frames.len() as u32));
        }
    }
}

/// Stacks as the ring buffer delivers them, until the next
/// [`StackCounter::read_new_stacks`] takes them: their frames in one buffer.
#[derive(Default)]
struct SentStacks {
    frames: Vec<u64>,
    /// Hash, start and length of each.
    stacks: Vec<(u64, u32, u32)>,
}

impl SentStacks {
    /// Takes a ring buffer record: the hash, the depth, then that many
    /// frames (`struct stack`, cut at its depth); a record too short to be
    /// one is left out.
    fn add(&mut self, record: &[u8]) {
        if record.len() < 16 {
            return;
        }
        let start = self.frames.len();
        // Context markers are not frames (see record: counted events are
        // opened without kernel call chains so that none should appear).
        self.frames.extend(
            record[16..]
                .chunks_exact(8)
                .map(|w| u64::from_ne_bytes(w.try_into().expect("8 bytes")))
                .take(dword(record, 8) as usize)
                .filter(|&w| w < crate::perfdata::PERF_CONTEXT_MAX),
        );
        let len = self.frames.len() - start;
        self.stacks
            .push((dword(record, 0), start as u32, len as u32));
    }

    fn iter(&self) -> impl Iterator<Item = (u64, &[u64])> {
        self.stacks
            .iter()
            .map(|&(hash, start, len)| (hash, &self.frames[start as usize..][..len as usize]))
    }

    /// Forgets the stacks taken, keeping the room.
    fn clear(&mut self) {
        self.frames.clear();
        self.stacks.clear();
    }
}

/// Slots of the off-CPU program's `blocked` array: a power of two.
fn blocked_slots(o: &OffCpuOptions) -> u32 {
    o.blocked_entries.max(2).next_power_of_two()
}

/// Off-CPU stacks are taken inside the scheduler's tracepoint: their first
/// frames are netprof's program and the tracepoint's machinery
/// (`bpf_prog_*`, `bpf_trace_run*`, `__traceiter_*`, `__bpf_trace_*`),
/// which say nothing of why the thread waits. They are cut, whatever the
/// kernel calls them in between, so that stacks end in `__schedule` (or
/// `try_to_wake_up` for a waker). Only these functions' address ranges are
/// kept: the whole symbol table is not needed for them.
pub struct TracingFrames {
    /// [start, end) of each such function, sorted.
    ranges: Vec<(u64, u64)>,
}

impl TracingFrames {
    const PREFIXES: &[&str] = &["bpf_prog_", "bpf_trace_run", "__traceiter_", "__bpf_trace_"];

    /// From kallsyms text: each function ends where the next symbol starts.
    pub fn from_kallsyms(text: &str) -> TracingFrames {
        let mut starts = Vec::new();
        let mut tracing = Vec::new();
        for symbol in text.lines().filter_map(kallsyms::code_symbol) {
            starts.push(symbol.address);
            if Self::PREFIXES.iter().any(|p| symbol.name.starts_with(p)) {
                tracing.push(symbol.address);
            }
        }
        starts.sort_unstable();
        tracing.sort_unstable();
        let ranges = tracing
            .into_iter()
            .map(|start| {
                let next = starts.partition_point(|&a| a <= start);
                (start, starts.get(next).copied().unwrap_or(u64::MAX))
            })
            .collect();
        TracingFrames { ranges }
    }

    fn contains(&self, addr: u64) -> bool {
        let at = self.ranges.partition_point(|r| r.0 <= addr);
        at > 0 && addr < self.ranges[at - 1].1
    }
}

/// The native-endian u32 and u64 at `at` of a map key or value.
fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("u32"))
}

fn dword(bytes: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("u64"))
}

/// Entries taken out of a hash map per system call.
const BATCH: usize = 4096;

/// Reads and deletes every entry of a hash map, in batches: its keys and
/// its values, each in one buffer. libbpf-rs's batch iterator gives each
/// entry two vectors of its own, and at tens of thousands of entries per
/// drain their allocation and copies were a large part of the recorder's
/// CPU at high rates.
fn take_all(
    map: &dyn MapCore,
    keys: &mut Vec<u8>,
    values: &mut Vec<u8>,
) -> std::result::Result<(), std::io::Error> {
    use std::os::fd::AsRawFd;
    let (key_size, value_size) = (map.key_size() as usize, map.value_size() as usize);
    keys.clear();
    values.clear();
    // Where the next batch starts, as the kernel says (a bucket index for a
    // hash map; at most a key's size).
    let mut start = vec![0u8; key_size.max(8)];
    let mut next = start.clone();
    let mut first = true;
    let opts = libbpf_rs::libbpf_sys::bpf_map_batch_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_batch_opts>() as _,
        ..Default::default()
    };
    loop {
        keys.reserve(BATCH * key_size);
        values.reserve(BATCH * value_size);
        let mut count = BATCH as u32;
        let in_batch = match first {
            true => std::ptr::null_mut(),
            false => start.as_mut_ptr().cast(),
        };
        // SAFETY: the key and value buffers have room for `count` entries
        // past their length, the batch tokens for a key, and the kernel
        // writes no more than that; `count` says how many it wrote.
        let ret = unsafe {
            libbpf_rs::libbpf_sys::bpf_map_lookup_and_delete_batch(
                map.as_fd().as_raw_fd(),
                in_batch,
                next.as_mut_ptr().cast(),
                keys.as_mut_ptr().add(keys.len()).cast(),
                values.as_mut_ptr().add(values.len()).cast(),
                &mut count,
                &opts,
            )
        };
        let done = ret == -libc::ENOENT;
        if ret < 0 && !done {
            if ret == -libc::EINTR {
                continue;
            }
            return Err(std::io::Error::from_raw_os_error(-ret));
        }
        let count = (count as usize).min(BATCH);
        // SAFETY: the kernel filled `count` entries past the old lengths.
        unsafe {
            keys.set_len(keys.len() + count * key_size);
            values.set_len(values.len() + count * value_size);
        }
        if done {
            return Ok(());
        }
        std::mem::swap(&mut start, &mut next);
        first = false;
    }
}

fn map_error(map: &str, e: &dyn std::fmt::Display) -> Error {
    Error::failed(format!("cannot read the BPF {map} map ({e})"))
}

fn ring_error(e: &libbpf_rs::Error) -> Error {
    Error::failed(format!("cannot read the BPF stacks ring buffer ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracing_frames_end_where_the_next_symbol_starts() {
        let text = "ffffffff81000000 T __schedule\n\
                    ffffffff81000400 T __traceiter_sched_switch\n\
                    ffffffff81000480 t bpf_trace_run4\n\
                    ffffffff81000600 T schedule\n\
                    ffffffffc0000000 t bpf_prog_1234_off_cpu_switch\t[bpf]\n";
        let tracing = TracingFrames::from_kallsyms(text);
        assert!(!tracing.contains(0xffffffff81000010));
        assert!(tracing.contains(0xffffffff81000410));
        assert!(tracing.contains(0xffffffff810005ff));
        assert!(!tracing.contains(0xffffffff81000600));
        assert!(tracing.contains(0xffffffffc0000040));
    }

    #[test]
    fn sent_stacks_are_cut_at_their_depth() {
        let record =
            |words: &[u64]| -> Vec<u8> { words.iter().flat_map(|w| w.to_ne_bytes()).collect() };
        let mut sent = SentStacks::default();
        sent.add(&record(&[0xabc, 2, 0x10, 0x20, 0x30]));
        // A corrupt depth cannot read past the record.
        sent.add(&record(&[7, 500, 1]));
        sent.add(&record(&[8]));
        sent.add(&record(&[0xabc, 1, 0x99]));
        let got: Vec<(u64, Vec<u64>)> = sent.iter().map(|(h, f)| (h, f.to_vec())).collect();
        assert_eq!(
            got,
            vec![(0xabc, vec![0x10, 0x20]), (7, vec![1]), (0xabc, vec![0x99])]
        );
        // Kept by hash: the same hash again is the same stack.
        let mut kept = StackArena::default();
        for (hash, frames) in sent.iter() {
            kept.add(hash, frames);
        }
        assert_eq!(kept.get(0xabc), &[0x10, 0x20]);
        assert_eq!(kept.get(7), &[1]);
        assert_eq!(kept.get(8), &[] as &[u64]);
        sent.clear();
        assert_eq!(sent.iter().count(), 0);
    }
}
