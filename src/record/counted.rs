//! `record --bpf`: the kernel counts stacks ([`crate::bpf::stack_count`]) and the
//! recorder turns each drained count into one sample record whose period is
//! the count, in the same file format as sampled recordings. The events that
//! trigger the counting write nothing to ring buffers; a dummy event per CPU
//! (or task) carries the process names and maps that name user frames.

use ahash::AHashMap as HashMap;
use perf_event_open::count::Counter;

use super::event::{EventSpec, Source};
use crate::bpf::stack_count::{AttachKind, CountOptions, Dropped, StackCount, StackCounter};
use crate::error::Result;
use crate::perfdata::writer::{PerfDataWriter, RecordBuilder, SampleFields};
use crate::perfdata::{PERF_CONTEXT_KERNEL, PERF_CONTEXT_USER};

/// The kernel counters of one recording, one per event so that each count
/// knows its event.
pub struct KernelCounts {
    counters: Vec<(StackCounter, u64)>,
    callchain: bool,
    /// Counts collected and not yet written, merged by counter, task, CPU
    /// and stacks (the count itself zeroed in the key).
    pending: HashMap<(usize, StackCount), u64>,
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
    pub fn new(callchain: bool) -> Self {
        KernelCounts {
            counters: Vec::new(),
            callchain,
            pending: HashMap::new(),
        }
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
        self.counters.push((counter, event_id));
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

    /// Empties the kernel's count maps into the pending counts; returns
    /// how many samples they stand for.
    pub fn collect(&mut self) -> Result<u64> {
        let mut samples = 0;
        for (index, (counter, _)) in self.counters.iter_mut().enumerate() {
            for c in counter.drain()? {
                samples += c.count;
                let key = StackCount { count: 0, ..c };
                *self.pending.entry((index, key)).or_default() += c.count;
            }
        }
        Ok(samples)
    }

    /// Writes the pending counts to the file as samples stamped `time`.
    pub fn write(&mut self, writer: &mut PerfDataWriter, time: u64) -> Result<()> {
        for ((index, c), count) in self.pending.drain() {
            let (counter, id) = &self.counters[index];
            let stacks = Stacks {
                kernel: counter.stack(c.kernel_stack),
                user: counter.stack(c.user_stack),
            };
            let fields = sample_fields(&c, &stacks, count, *id, time);
            let chain = self.callchain.then(|| callchain(&stacks));
            writer.write_record(&RecordBuilder::sample(&fields, chain.as_deref()))?;
        }
        writer.finish_round()
    }

    /// Samples the kernel could not count for want of map room.
    pub fn dropped(&self) -> Result<Dropped> {
        let mut total = Dropped::default();
        for (counter, _) in &self.counters {
            let d = counter.dropped()?;
            total.stacks_full += d.stacks_full;
            total.counts_full += d.counts_full;
        }
        Ok(total)
    }
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
    }
}

/// The frames as the kernel writes a callchain: each part after its context marker.
fn callchain(stacks: &Stacks) -> Vec<u64> {
    let mut chain = Vec::with_capacity(stacks.kernel.len() + stacks.user.len() + 2);
    if !stacks.kernel.is_empty() {
        chain.push(PERF_CONTEXT_KERNEL);
        chain.extend_from_slice(stacks.kernel);
    }
    if !stacks.user.is_empty() {
        chain.push(PERF_CONTEXT_USER);
        chain.extend_from_slice(stacks.user);
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callchain_marks_kernel_and_user_parts() {
        let count = StackCount {
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
            callchain(&both),
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
        assert_eq!(callchain(&user_only), vec![PERF_CONTEXT_USER, 0x401000]);
        let fields = sample_fields(&count, &user_only, 7, 9, 100);
        assert_eq!((fields.ip, fields.kernel), (0x401000, false));
    }
}
