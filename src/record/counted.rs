//! Counts kept in the kernel ([`crate::bpf::stack_count`]), written as
//! samples whose period is the count, in the same file format as sampled
//! recordings:
//!
//! - `record --bpf`: one counter per event; the events that trigger the
//!   counting write nothing to ring buffers, and a dummy event per CPU (or
//!   task) carries the process names and maps that name user frames.
//! - `record --off-cpu`: one counter on the scheduler; its counts become
//!   samples of `offcpu-time:STATE` and `offcpu-waker` events (see
//!   [`crate::model::off_cpu`]), declared in the file as they are met.

use ahash::AHashMap as HashMap;
use perf_event_open::count::Counter;

use super::event::{EventSpec, Source};
use crate::bpf::stack_count::{
    AttachKind, CountOf, CountOptions, Dropped, StackCount, StackCounter, TracingFrames,
};
use crate::error::Result;
use crate::model::off_cpu::{WAKER_EVENT, WAKER_SEPARATOR};
use crate::perfdata::attr::EventAttr;
use crate::perfdata::writer::{EventDesc, PerfDataWriter, RecordBuilder, SampleFields};
use crate::perfdata::{PERF_CONTEXT_KERNEL, PERF_CONTEXT_USER};
use crate::sys::kallsyms;

/// Ids of the events netprof declares itself (off-CPU time), far above
/// those the kernel hands out, which count up from 0.
const SYNTHETIC_ID_BASE: u64 = 1 << 48;

/// Where a counter's counts go in the file.
enum Target {
    /// Samples of the event with this id.
    Event(u64),
    /// Off-CPU events, one per state (and the wakers'), made as met.
    OffCpu,
}

/// The kernel counters of one recording, one per event so that each count
/// knows its event, and the off-CPU one.
pub struct KernelCounts {
    counters: Vec<(StackCounter, Target)>,
    callchain: bool,
    /// The file's samples carry raw data (an empty one for counts).
    raw: bool,
    /// Counts collected and not yet written, merged by counter, task, CPU
    /// and stacks (the count itself zeroed in the key).
    pending: HashMap<(usize, StackCount), u64>,
    /// The off-CPU events met so far, by what they count.
    off_cpu_events: Vec<(CountOf, EventDesc)>,
    /// What the file says of each off-CPU event.
    off_cpu_attr: Option<EventAttr>,
    /// Off-CPU time collected, in nanoseconds (counted once, not by waker).
    pub off_cpu_ns: u64,
    /// Samples collected so far.
    samples_collected: u64,
}

/// The BPF program type an event takes (a tracefs event may turn out to be
/// a kprobe: see `KernelCounts::add`).
pub fn attach_kind(spec: &EventSpec) -> AttachKind {
    match spec.source {
        Source::Kprobe(_) | Source::Uprobe(_) => AttachKind::Kprobe,
        Source::Tracepoint { .. } => AttachKind::Tracepoint,
        _ => AttachKind::PerfEvent,
    }
}

impl KernelCounts {
    pub fn new(callchain: bool, raw: bool) -> Self {
        KernelCounts {
            counters: Vec::new(),
            callchain,
            raw,
            pending: HashMap::new(),
            off_cpu_events: Vec::new(),
            off_cpu_attr: None,
            off_cpu_ns: 0,
            samples_collected: 0,
        }
    }

    /// Off-CPU stacks read from now on lose the tracepoint's own frames,
    /// netprof's program among them: found in /proc/kallsyms as it is now,
    /// with the program loaded (the recording's snapshot is taken before
    /// the session loads its programs, see record).
    pub fn cut_tracing_frames(&mut self) {
        if !self
            .counters
            .iter()
            .any(|(_, target)| matches!(target, Target::OffCpu))
        {
            return;
        }
        let text = kallsyms::code_symbols_text().unwrap_or_default();
        for (counter, target) in &mut self.counters {
            if matches!(target, Target::OffCpu) {
                counter.set_tracing_frames(TracingFrames::from_kallsyms(&text));
            }
        }
    }

    /// Adds the off-CPU counter (already counting); `attr` is what the file
    /// will say of each off-CPU event.
    pub fn add_off_cpu(&mut self, counter: StackCounter, attr: EventAttr) {
        self.counters.push((counter, Target::OffCpu));
        self.off_cpu_attr = Some(attr);
    }

    /// Adds a counter for one event (loaded for `attach_kind(spec)`) and
    /// attaches it to the event's perf events (all of them with the same
    /// `event_id` in the file).
    pub fn add(
        &mut self,
        mut counter: StackCounter,
        options: &CountOptions,
        perf_events: &[Counter],
        event_id: u64,
    ) -> Result<()> {
        for event in perf_events {
            if let Err(e) = counter.attach(event) {
                // A tracefs event made by a kprobe (netprof's persistent
                // probes, perf probe's) takes the kprobe program type.
                if counter.kind() != AttachKind::Tracepoint {
                    return Err(e);
                }
                counter = StackCounter::load(options, AttachKind::Kprobe)?;
                counter.attach(event)?;
            }
        }
        self.counters.push((counter, Target::Event(event_id)));
        Ok(())
    }

    /// Attaches the counter of event `index` (in the order they were added)
    /// to one more perf event: a CPU that came back online.
    pub fn attach_more(&mut self, index: usize, event: &Counter) -> Result<()> {
        match self.counters.get(index) {
            Some((counter, _)) => counter.attach(event),
            None => Ok(()),
        }
    }

    /// Takes in the new stacks the programs sent, before their ring buffer
    /// fills.
    pub fn read_new_stacks(&mut self) -> Result<()> {
        for (counter, _) in &mut self.counters {
            counter.read_new_stacks()?;
        }
        Ok(())
    }

    /// Whether a count map is filling up and should be drained now.
    pub fn filling(&self) -> bool {
        self.counters.iter().any(|(counter, _)| counter.filling())
    }

    /// Samples counted in the kernel and not yet collected, for the status
    /// line between drains.
    pub fn samples_not_collected(&self) -> Result<u64> {
        let mut seen = 0;
        for (counter, _) in &self.counters {
            seen += counter.samples_seen()?;
        }
        Ok(seen.saturating_sub(self.samples_collected))
    }

    /// Empties the kernel's count maps into the pending counts; returns
    /// how many samples they stand for (off-CPU time goes to `off_cpu_ns`).
    pub fn collect(&mut self) -> Result<u64> {
        let mut drained = Vec::new();
        for (index, (counter, _)) in self.counters.iter_mut().enumerate() {
            drained.extend(counter.drain()?.into_iter().map(|c| (index, c)));
        }
        let samples = self.add_pending(drained);
        self.samples_collected += samples;
        Ok(samples)
    }

    /// The end of an off-CPU recording: detaches from the scheduler, takes
    /// what the maps still hold, and counts the threads still away until
    /// now.
    pub fn collect_last(&mut self) -> Result<u64> {
        for (counter, _) in &mut self.counters {
            counter.detach();
        }
        // Twice: the first drain flips to the generation the second empties.
        let samples = self.collect()? + self.collect()?;
        let now = monotonic_ns();
        let mut away = Vec::new();
        for (index, (counter, target)) in self.counters.iter_mut().enumerate() {
            if matches!(target, Target::OffCpu) {
                away.extend(counter.still_blocked(now)?.into_iter().map(|c| (index, c)));
            }
        }
        Ok(samples + self.add_pending(away))
    }

    fn add_pending(&mut self, counts: Vec<(usize, StackCount)>) -> u64 {
        let mut samples = 0;
        for (index, c) in counts {
            match c.of {
                CountOf::Samples => samples += c.count,
                CountOf::OffCpu(_) => self.off_cpu_ns += c.count,
                CountOf::Waker(_) => {}
            }
            let key = StackCount { count: 0, ..c };
            *self.pending.entry((index, key)).or_default() += c.count;
        }
        samples
    }

    /// Writes the pending counts to the file as samples stamped `time`.
    pub fn write(&mut self, writer: &mut PerfDataWriter, time: u64) -> Result<()> {
        // Drained rather than replaced: the next interval's counts, about as
        // many, then need no growing table.
        let mut pending = std::mem::take(&mut self.pending);
        let mut record = Vec::new();
        for ((index, c), count) in pending.drain() {
            let id = match self.counters[index].1 {
                Target::Event(id) => id,
                Target::OffCpu => self.off_cpu_event_id(c.of),
            };
            let counter = &self.counters[index].0;
            let waker_frames;
            let (stacks, chain) = match c.of {
                // The waker's stack rides in the user stack's place.
                CountOf::Waker(_) => {
                    let wakee = counter.stack(c.kernel_stack);
                    waker_frames = waker_chain(counter.stack(c.user_stack), wakee);
                    let stacks = Stacks {
                        kernel: wakee,
                        user: &[],
                    };
                    (stacks, Callchain::single(&waker_frames))
                }
                _ => {
                    let stacks = Stacks {
                        kernel: counter.stack(c.kernel_stack),
                        user: counter.stack(c.user_stack),
                    };
                    let chain = Callchain::of(&stacks);
                    (stacks, chain)
                }
            };
            let mut fields = sample_fields(&c, &stacks, count, id, time);
            fields.empty_raw = self.raw;
            let chain = self.callchain.then(|| chain.parts());
            RecordBuilder::sample_into(&mut record, &fields, chain);
            writer.write_record(&record)?;
        }
        self.pending = pending;
        writer.finish_round()
    }

    /// The id of the file event that counts of `of` are samples of.
    fn off_cpu_event_id(&mut self, of: CountOf) -> u64 {
        if let Some((_, desc)) = self.off_cpu_events.iter().find(|(o, _)| *o == of) {
            return desc.ids[0];
        }
        let name = match of {
            CountOf::OffCpu(state) => state.event_name(),
            _ => WAKER_EVENT.to_string(),
        };
        let id = SYNTHETIC_ID_BASE + self.off_cpu_events.len() as u64;
        let attr = self
            .off_cpu_attr
            .clone()
            .expect("off-CPU counts come with their attr");
        self.off_cpu_events.push((
            of,
            EventDesc {
                attr,
                name,
                ids: vec![id],
            },
        ));
        id
    }

    /// The off-CPU events samples were written for, for the file's header.
    pub fn take_off_cpu_events(&mut self) -> Vec<EventDesc> {
        std::mem::take(&mut self.off_cpu_events)
            .into_iter()
            .map(|(_, desc)| desc)
            .collect()
    }

    /// Samples (and blocks) the kernel could not count for want of map
    /// room, and blocks left out for being short.
    pub fn dropped(&self) -> Result<Dropped> {
        let mut total = Dropped::default();
        for (counter, _) in &self.counters {
            total.add(&counter.dropped()?);
        }
        Ok(total)
    }
}

/// CLOCK_MONOTONIC in nanoseconds: bpf_ktime_get_ns()'s clock.
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// A count's frames, leaf first; a part is empty when the sample had none.
struct Stacks<'a> {
    kernel: &'a [u64],
    user: &'a [u64],
}

fn sample_fields(c: &StackCount, stacks: &Stacks, count: u64, id: u64, time: u64) -> SampleFields {
    let ip = stacks
        .kernel
        .first()
        .or(stacks.user.first())
        .copied()
        .unwrap_or(0);
    SampleFields {
        ip,
        pid: c.pid,
        tid: c.tid,
        time,
        id,
        cpu: c.cpu,
        period: count,
        kernel: !stacks.kernel.is_empty(),
        empty_raw: false,
    }
}

/// A waker's call chain, leaf first, drawn as offwaketime draws it: from the
/// root up, the blocked thread's kernel stack to where it blocked, the
/// separator, then the waker's from where it woke the thread to its root.
fn waker_chain(waker: &[u64], wakee: &[u64]) -> Vec<u64> {
    let mut chain = Vec::with_capacity(waker.len() + wakee.len() + 2);
    chain.push(PERF_CONTEXT_KERNEL);
    chain.extend(waker.iter().rev());
    chain.push(WAKER_SEPARATOR);
    chain.extend_from_slice(wakee);
    chain
}

/// A call chain as the kernel writes it, each part after its context
/// marker, in parts that point into the stacks rather than a copy of them.
struct Callchain<'a> {
    parts: [&'a [u64]; 4],
    used: usize,
}

impl<'a> Callchain<'a> {
    fn single(frames: &'a [u64]) -> Self {
        Callchain {
            parts: [frames, &[], &[], &[]],
            used: 1,
        }
    }

    fn of(stacks: &Stacks<'a>) -> Self {
        let mut chain = Callchain {
            parts: [&[]; 4],
            used: 0,
        };
        for (marker, frames) in [
            (&[PERF_CONTEXT_KERNEL], stacks.kernel),
            (&[PERF_CONTEXT_USER], stacks.user),
        ] {
            if !frames.is_empty() {
                chain.parts[chain.used] = marker;
                chain.parts[chain.used + 1] = frames;
                chain.used += 2;
            }
        }
        chain
    }

    fn parts(&self) -> &[&'a [u64]] {
        &self.parts[..self.used]
    }

    #[cfg(test)]
    fn to_vec(&self) -> Vec<u64> {
        self.parts().concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callchain_marks_kernel_and_user_parts() {
        let count = StackCount {
            of: CountOf::Samples,
            pid: 1,
            tid: 2,
            cpu: 0,
            kernel_stack: 10,
            user_stack: 20,
            count: 0,
        };
        let (kernel, user) = ([0xffff_0001, 0xffff_0002], [0x401000]);
        let both = Stacks {
            kernel: &kernel,
            user: &user,
        };
        assert_eq!(
            Callchain::of(&both).to_vec(),
            vec![
                PERF_CONTEXT_KERNEL,
                0xffff_0001,
                0xffff_0002,
                PERF_CONTEXT_USER,
                0x401000
            ]
        );
        let fields = sample_fields(&count, &both, 7, 9, 100);
        assert_eq!(
            (fields.ip, fields.period, fields.kernel),
            (0xffff_0001, 7, true)
        );
        let user_only = Stacks {
            kernel: &[],
            user: &user,
        };
        assert_eq!(
            Callchain::of(&user_only).to_vec(),
            vec![PERF_CONTEXT_USER, 0x401000]
        );
        // A waker over the thread it woke: both root-most at the ends.
        assert_eq!(
            waker_chain(&[0xffff_0010, 0xffff_0011], &kernel),
            vec![
                PERF_CONTEXT_KERNEL,
                0xffff_0011,
                0xffff_0010,
                WAKER_SEPARATOR,
                0xffff_0001,
                0xffff_0002
            ]
        );
        let fields = sample_fields(&count, &user_only, 7, 9, 100);
        assert_eq!((fields.ip, fields.kernel), (0x401000, false));
    }
}
