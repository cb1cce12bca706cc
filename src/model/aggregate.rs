//! From the record stream of a perf.data file to counted samples: one
//! thread walks the records (in place, see [`super::in_place`], digesting
//! samples while the other is behind; or through the perf.data parser),
//! another parses and counts them, following process names and, through
//! [`super::stack_table`], address spaces and stacks.

use ahash::AHashMap as HashMap;
use linux_perf_data::linux_perf_event_reader::{
    CpuMode, EventRecord, RawData, RawEventRecord, RecordParseInfo, RecordType, SampleFormat,
    SampleRecord,
};
use linux_perf_data::PerfFileRecord;

use super::profile::{Filter, RawStack, Sample, SampleGroup};
use super::stack_table::{frames_hash, mmap2_build_id_too_long, StackTable};
use crate::perfdata::{PERF_CONTEXT_KERNEL, PERF_CONTEXT_MAX, PERF_CONTEXT_USER};

/// A chain's frames without perf's context markers, and how many of them
/// (from the start) are kernel frames; guest and hypervisor frames end it.
fn without_markers<'f>(
    chain: &[u64],
    kernel_first: bool,
    frames: &'f mut Vec<u64>,
) -> (&'f [u64], usize) {
    frames.clear();
    let (mut in_kernel, mut kernel_len) = (kernel_first, 0);
    for &addr in chain {
        if addr >= PERF_CONTEXT_MAX {
            if addr != PERF_CONTEXT_KERNEL && addr != PERF_CONTEXT_USER {
                // Guest and hypervisor frames: not ours to name.
                break;
            }
            in_kernel = addr == PERF_CONTEXT_KERNEL;
            continue;
        }
        frames.push(addr);
        if in_kernel {
            kernel_len += 1;
        }
    }
    (frames, kernel_len)
}

pub(super) const BATCH_RECORDS: usize = 4096;

/// Records handed to the counting thread: their bodies copied out of the
/// parser's buffers, or where they lie in the file.
#[derive(Default)]
pub(super) struct Batch<'f> {
    /// Attr index, record type, misc, and the body's start and end in
    /// `file` when read in place, else in `bytes`.
    records: Vec<(u16, RecordType, u16, usize, usize)>,
    /// How to parse the records of each attribute (by attr index): kept
    /// once here, not with each record, where it would double the room a
    /// batch takes.
    parse_infos: Vec<RecordParseInfo>,
    /// For records read in place: each sample's digest, made by the
    /// walking thread (`None` for other records).
    digests: Vec<Option<Digest>>,
    bytes: Vec<u8>,
    file: Option<&'f [u8]>,
}

impl<'f> Batch<'f> {
    /// An empty batch of records read in place from `file`, whose
    /// attributes parse as `parse_infos` say.
    pub(super) fn in_place(file: &'f [u8], parse_infos: &[RecordParseInfo]) -> Batch<'f> {
        Batch {
            records: Vec::with_capacity(BATCH_RECORDS),
            parse_infos: parse_infos.to_vec(),
            digests: Vec::with_capacity(BATCH_RECORDS),
            bytes: Vec::new(),
            file: Some(file),
        }
    }

    /// Adds a record read in place (attr index, type, misc, body's start
    /// and end) with its digest if it is a sample.
    pub(super) fn push_in_place(
        &mut self,
        record: (u16, RecordType, u16, usize, usize),
        digest: Option<Digest>,
    ) {
        self.records.push(record);
        self.digests.push(digest);
    }

    pub(super) fn len(&self) -> usize {
        self.records.len()
    }

    /// Empties the batch for another round, keeping its room: a batch is
    /// large enough that a new one would be fresh pages of memory each time.
    pub(super) fn clear(&mut self) {
        self.records.clear();
        self.digests.clear();
        self.bytes.clear();
    }
}

/// An emptied batch sent back by the counting thread, or a new one.
pub(super) fn reuse<'f>(
    recycled: &std::sync::mpsc::Receiver<Batch<'f>>,
    new: impl FnOnce() -> Batch<'f>,
) -> Batch<'f> {
    recycled.try_recv().unwrap_or_else(|_| new())
}

/// Walks the file's records in time order (linux-perf-data sorts each round)
/// and hands them over in batches.
pub(super) fn read_records<'b, R: std::io::Read>(
    perf_file: &mut linux_perf_data::PerfFile,
    record_iter: &mut linux_perf_data::PerfRecordIter<R>,
    out: std::sync::mpsc::SyncSender<Batch<'b>>,
    recycled: std::sync::mpsc::Receiver<Batch<'b>>,
) -> Result<(), linux_perf_data::Error> {
    let mut batch = Batch::default();
    while let Some(record) = record_iter.next_record(perf_file)? {
        let PerfFileRecord::EventRecord { attr_index, record } = record else {
            continue;
        };
        let start = batch.bytes.len();
        match record.data {
            RawData::Single(body) => batch.bytes.extend_from_slice(body),
            RawData::Split(a, b) => {
                batch.bytes.extend_from_slice(a);
                batch.bytes.extend_from_slice(b);
            }
        }
        let parse_infos = &mut batch.parse_infos;
        if parse_infos.len() <= attr_index {
            parse_infos.resize(attr_index + 1, record.parse_info);
        }
        parse_infos[attr_index] = record.parse_info;
        batch.records.push((
            attr_index as u16,
            record.record_type,
            record.misc,
            start,
            batch.bytes.len(),
        ));
        if batch.records.len() >= BATCH_RECORDS {
            let next = reuse(&recycled, Batch::default);
            if out.send(std::mem::replace(&mut batch, next)).is_err() {
                return Ok(());
            }
        }
    }
    let _ = out.send(batch);
    Ok(())
}

/// What the aggregator needs to know of each attribute of the file.
pub(super) struct Attribute {
    /// The event it belongs to (attributes with one name are one event).
    pub event: u16,
    /// Whether a sample weighs its period (see read_profile).
    pub period_weighted: bool,
    /// Whether its samples carry DWARF stack snapshots.
    pub dwarf: bool,
    /// Where the fields of its samples lie, when fixed (see [`FixedLayout`]).
    pub layout: Option<FixedLayout>,
}

impl Attribute {
    /// Where the call chain starts in its samples' bodies, when known.
    fn callchain_at(&self) -> Option<usize> {
        self.layout.map(|l| l.callchain_at())
    }
}

/// The fields a sample body may hold before its call chain, in the order
/// they come (all eight bytes long), READ aside (see [`callchain_offset`]).
const BEFORE_CALLCHAIN: [SampleFormat; 9] = [
    SampleFormat::IDENTIFIER,
    SampleFormat::IP,
    SampleFormat::TID,
    SampleFormat::TIME,
    SampleFormat::ADDR,
    SampleFormat::ID,
    SampleFormat::STREAM_ID,
    SampleFormat::CPU,
    SampleFormat::PERIOD,
];

/// Where a sample's call chain (its length, then its frames) starts in the
/// record's body: the fields before it have fixed sizes, unless the format
/// has READ (whose size depends on the read format).
fn callchain_offset(format: SampleFormat) -> Option<usize> {
    if !format.contains(SampleFormat::CALLCHAIN) || format.contains(SampleFormat::READ) {
        return None;
    }
    Some(
        8 * BEFORE_CALLCHAIN
            .iter()
            .filter(|&&f| format.contains(f))
            .count(),
    )
}

/// Where the fields a [`Digest`] needs lie in the body of a sample whose
/// call chain has a fixed place (see [`callchain_offset`]): such samples,
/// nearly all of a `-g` recording, are digested from those bytes alone.
/// The parser reads every field into a record of a few hundred bytes, and
/// that was most of the walking thread's time per sample.
#[derive(Clone, Copy, Debug)]
pub(super) struct FixedLayout {
    ip: Option<usize>,
    /// The `{u32 pid, tid}` pair.
    tid: Option<usize>,
    /// The `{u32 cpu, res}` pair.
    cpu: Option<usize>,
    period: Option<usize>,
    callchain: usize,
}

impl FixedLayout {
    /// Where the call chain starts.
    pub(super) fn callchain_at(&self) -> usize {
        self.callchain
    }

    pub(super) fn of(format: SampleFormat) -> Option<FixedLayout> {
        let mut layout = FixedLayout {
            ip: None,
            tid: None,
            cpu: None,
            period: None,
            callchain: callchain_offset(format)?,
        };
        let present = BEFORE_CALLCHAIN.iter().filter(|&&f| format.contains(f));
        for (i, &field) in present.enumerate() {
            let at = Some(8 * i);
            if field == SampleFormat::IP {
                layout.ip = at;
            } else if field == SampleFormat::TID {
                layout.tid = at;
            } else if field == SampleFormat::CPU {
                layout.cpu = at;
            } else if field == SampleFormat::PERIOD {
                layout.period = at;
            }
        }
        Some(layout)
    }
}

/// A sample's frames as one slice of the record's bytes, when they are
/// where the format says and in this machine's byte order (the parser's
/// first frame and count agree); reading them so is a copy, where the
/// parser reads frame by frame.
fn callchain_bytes<'r>(body: &'r [u8], at: usize, s: &SampleRecord) -> Option<&'r [u8]> {
    let chain = s.callchain.as_ref()?;
    let len = chain.len();
    let count = u64::from_ne_bytes(body.get(at..at + 8)?.try_into().ok()?);
    let frames = body.get(at + 8..at + 8 + 8 * len)?;
    let first = frames
        .get(..8)
        .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")));
    (count == len as u64 && first == chain.get(0)).then_some(frames)
}

/// Who a group of samples is: event, pid, tid, CPU, stack and command, in
/// the order groups are listed.
type GroupKey = (u16, i32, i32, u32, u32, u32);

/// Sample counts per group: a sorted list, the samples since it was last
/// brought up to date, and the groups met lately. On a busy machine most
/// samples start a group of their own (a new process, a new stack), and
/// appending them to a list costs far less than inserting each at its
/// place in a large hash table. The recent samples are merged in once they
/// are as many as the list's groups, so that each is merged a logarithmic
/// number of times at most. Where groups recur (a few threads in a loop,
/// the common case), a small table of the latest group per slot counts
/// them in place and the list sees each group a few times, not per sample.
struct GroupCounts {
    merged: Vec<(GroupKey, u64)>,
    recent: Vec<(GroupKey, u64)>,
    /// By a hash of the key: a group and its samples not yet in `recent`.
    latest: Vec<Option<(GroupKey, u64)>>,
}

/// Slots of [`GroupCounts::latest`]: 160 KiB, which stays in cache.
const LATEST_GROUPS: usize = 4096;

impl Default for GroupCounts {
    fn default() -> Self {
        GroupCounts {
            merged: Vec::new(),
            recent: Vec::new(),
            latest: vec![None; LATEST_GROUPS],
        }
    }
}

impl GroupCounts {
    fn add(&mut self, key: GroupKey, weight: u64) {
        let (event, pid, tid, cpu, stack, comm) = key;
        // Multiplicative hashing of the fields that tell groups apart most.
        let mixed = (u64::from(stack) << 32 | u64::from(tid as u32))
            .wrapping_add(u64::from(cpu) << 48 ^ u64::from(event) << 40)
            .wrapping_add(u64::from(pid as u32) ^ u64::from(comm) << 20)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let slot = &mut self.latest[(mixed >> 52) as usize % LATEST_GROUPS];
        if let Some((latest, count)) = slot {
            if *latest == key {
                *count += weight;
                return;
            }
        }
        if let Some(evicted) = slot.replace((key, weight)) {
            self.recent.push(evicted);
            if self.recent.len() >= self.merged.len().max(1 << 16) {
                self.merge();
            }
        }
    }

    fn merge(&mut self) {
        self.recent.sort_unstable_by_key(|&(key, _)| key);
        let mut out: Vec<(GroupKey, u64)> =
            Vec::with_capacity(self.merged.len() + self.recent.len());
        let mut old = self.merged.drain(..).peekable();
        let mut new = self.recent.drain(..).peekable();
        loop {
            let next = match (old.peek(), new.peek()) {
                (Some(a), Some(b)) if a.0 <= b.0 => old.next(),
                (Some(_), Some(_)) | (None, Some(_)) => new.next(),
                (Some(_), None) => old.next(),
                (None, None) => break,
            };
            let Some((key, count)) = next else { break };
            match out.last_mut() {
                Some(last) if last.0 == key => last.1 += count,
                _ => out.push((key, count)),
            }
        }
        drop((old, new));
        self.merged = out;
    }

    /// Every group and its count, sorted by key.
    fn finish(mut self) -> Vec<(GroupKey, u64)> {
        self.recent.extend(self.latest.drain(..).flatten());
        self.merge();
        self.merged
    }
}

/// Counts samples per (event, task, CPU, command, stack) while following
/// process names and address spaces through the record stream.
pub(super) struct Aggregator<'f> {
    filter: &'f Filter,
    /// By attribute index.
    attributes: Vec<Attribute>,
    /// Who each sample's stack is.
    table: StackTable,
    comm_ids: HashMap<String, u32>,
    comms: Vec<String>,
    comm_of_tid: HashMap<i32, u32>,
    groups: GroupCounts,
    samples: Vec<Sample>,
    total_samples: u64,
    /// Per event, before filters.
    file_samples: Vec<u64>,
    /// Per event, the sum of its samples' periods, before filters.
    file_periods: Vec<u64>,
    lost_samples: u64,
    dwarf_samples: u64,
    truncated_user: Vec<u64>,
    /// Reused for each sample: its frames (the ip alone without a chain).
    chain: Vec<u64>,
    /// Reused for each sample: its frames without context markers.
    frames: Vec<u64>,
}

/// What the aggregator counted, once the records are all read.
pub(super) struct Counted {
    pub groups: Vec<SampleGroup>,
    pub stacks: Vec<RawStack>,
    pub comms: Vec<String>,
    pub files: Vec<String>,
    pub samples: Vec<Sample>,
    pub total_samples: u64,
    pub file_samples: Vec<u64>,
    pub file_periods: Vec<u64>,
    pub lost_samples: u64,
    pub dwarf_samples: u64,
    pub truncated_user: Vec<u64>,
}

impl<'f> Aggregator<'f> {
    pub(super) fn new(filter: &'f Filter, attributes: Vec<Attribute>, events: usize) -> Self {
        Aggregator {
            filter,
            attributes,
            table: StackTable::default(),
            comm_ids: HashMap::new(),
            comms: Vec::new(),
            comm_of_tid: HashMap::new(),
            groups: GroupCounts::default(),
            samples: Vec::new(),
            total_samples: 0,
            file_samples: vec![0; events],
            file_periods: vec![0; events],
            lost_samples: 0,
            dwarf_samples: 0,
            truncated_user: vec![0; events],
            chain: Vec::with_capacity(130),
            frames: Vec::with_capacity(130),
        }
    }

    fn intern_comm(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.comm_ids.get(name) {
            return id;
        }
        self.comms.push(name.to_string());
        let id = (self.comms.len() - 1) as u32;
        self.comm_ids.insert(name.to_string(), id);
        id
    }

    /// The counts, with groups in a deterministic order.
    /// The counts, with groups in a deterministic order.
    pub(super) fn finish(self) -> Counted {
        let stacks = self.table.finish();
        let groups: Vec<SampleGroup> = self
            .groups
            .finish()
            .into_iter()
            .map(|((event, pid, tid, cpu, stack, comm), count)| SampleGroup {
                event,
                pid,
                tid,
                cpu,
                comm,
                stack,
                count,
            })
            .collect();
        Counted {
            groups,
            stacks: stacks.stacks,
            comms: self.comms,
            files: stacks.files,
            samples: self.samples,
            total_samples: self.total_samples,
            file_samples: self.file_samples,
            file_periods: self.file_periods,
            lost_samples: self.lost_samples,
            dwarf_samples: self.dwarf_samples,
            truncated_user: self.truncated_user,
        }
    }

    pub(super) fn add(&mut self, batch: &Batch) {
        let source = batch.file.unwrap_or(&batch.bytes);
        for (i, &(event, record_type, misc, start, end)) in batch.records.iter().enumerate() {
            let Some(&parse_info) = batch.parse_infos.get(event as usize) else {
                continue;
            };
            let bytes = &source[start..end];
            // A sample digested by the walking thread is counted without
            // being parsed again, unless the sample itself is kept.
            if let (Some(Some(digest)), false) = (batch.digests.get(i), self.filter.keep_samples) {
                let record =
                    RawEventRecord::new(record_type, misc, RawData::Single(bytes), parse_info);
                self.count(event, digest, None, FramesAt::Record(record));
                continue;
            }
            // A sample in place the walking thread left undigested (this
            // thread had less to do): digested here from its bytes, which
            // are in this machine's byte order when read in place.
            if record_type == RecordType::SAMPLE
                && batch.file.is_some()
                && !self.filter.keep_samples
            {
                let layout = self.attributes.get(event as usize).and_then(|a| a.layout);
                let (chain, frames) = (&mut self.chain, &mut self.frames);
                if let Some(digest) =
                    layout.and_then(|l| Digest::of_fixed(bytes, misc, &l, chain, frames))
                {
                    self.count(event, &digest, None, FramesAt::Scratch);
                    continue;
                }
            }
            if mmap2_build_id_too_long(record_type, misc, bytes) {
                continue;
            }
            let body = RawData::Single(bytes);
            let Ok(parsed) = RawEventRecord::new(record_type, misc, body, parse_info).parse()
            else {
                continue;
            };
            self.table.follow(&parsed);
            let path = |p: &RawData| String::from_utf8_lossy(&p.as_slice()).into_owned();
            match parsed {
                EventRecord::Comm(c) => {
                    let id = self.intern_comm(&path(&c.name));
                    self.comm_of_tid.insert(c.tid, id);
                }
                EventRecord::Fork(f) => {
                    if let Some(&parent_comm) = self.comm_of_tid.get(&f.ptid) {
                        self.comm_of_tid.entry(f.tid).or_insert(parent_comm);
                    }
                }
                EventRecord::Lost(l) => self.lost_samples += l.count,
                EventRecord::Sample(s) => self.sample(event, &s, bytes),
                _ => {}
            }
        }
    }

    fn sample(&mut self, attribute: u16, s: &SampleRecord, body: &[u8]) {
        let callchain_at = self
            .attributes
            .get(attribute as usize)
            .and_then(Attribute::callchain_at);
        let digest = Digest::of(s, body, callchain_at, &mut self.chain, &mut self.frames);
        self.count(attribute, &digest, Some(s), FramesAt::Scratch);
    }

    /// Counts a sample from its digest; `s` (the parsed record) is needed
    /// only to keep the sample itself (--samples, the page's timeline), and
    /// the frames only for a stack not met before.
    fn count(&mut self, attribute: u16, d: &Digest, s: Option<&SampleRecord>, frames: FramesAt) {
        let (pid, tid, cpu) = (d.pid, d.tid, d.cpu);
        let Some(attr) = self.attributes.get(attribute as usize) else {
            return;
        };
        let (event, callchain_at) = (attr.event, attr.callchain_at());
        let weight = match attr.period_weighted {
            // bpf-output events (multi-kprobe hits) carry period 0: one hit each.
            true => d.period.filter(|&p| p > 0).unwrap_or(1),
            false => 1,
        };
        if attr.dwarf {
            self.dwarf_samples += weight;
        }
        self.file_samples[event as usize] += weight;
        self.file_periods[event as usize] += d.period.unwrap_or(0);
        let comm = match self
            .comm_of_tid
            .get(&tid)
            .or_else(|| self.comm_of_tid.get(&pid))
        {
            Some(&c) => c,
            // The idle task never reports a name; perf calls it swapper.
            None if pid == 0 => self.intern_comm("swapper"),
            None => self.intern_comm(&format!(":{pid}")),
        };
        let f = self.filter;
        if !f.passes_task_and_cpu(pid, cpu)
            || (!f.comms.is_empty() && !f.comms.iter().any(|c| *c == self.comms[comm as usize]))
        {
            return;
        }
        self.total_samples += weight;
        let (chain, scratch) = (&mut self.chain, &mut self.frames);
        let (stack, user_truncated) = self.table.identify(pid, d.kernel_len, d.hash, move || {
            if let FramesAt::Record(record) = frames {
                // Digested elsewhere: its frames again, from the record,
                // parsed only if the chain is not where the format says.
                let body = record.data.as_slice();
                let found = d.chain_in_place
                    && callchain_at.is_some_and(|at| {
                        chain_frames_in_place(&body, at, d.in_kernel, chain, scratch)
                    });
                if !found {
                    if let Ok(EventRecord::Sample(s)) = record.parse() {
                        chain_frames(&s, &body, callchain_at, chain, scratch);
                    }
                }
            }
            scratch
        });
        if user_truncated {
            if let Some(cut) = self.truncated_user.get_mut(event as usize) {
                *cut += weight;
            }
        }
        self.groups.add((event, pid, tid, cpu, stack, comm), weight);
        if let (true, Some(s)) = (self.filter.keep_samples, s) {
            self.samples.push(Sample {
                time: s.timestamp.unwrap_or(0),
                event,
                pid,
                tid,
                cpu,
                comm,
                stack,
                count: weight,
                raw: s.raw.map(|r| r.as_slice().into_owned()).unwrap_or_default(),
            });
        }
    }
}

/// Where a sample's frames are when its stack turns out to be new: in the
/// aggregator's scratch (just digested), or to be read again from the record.
enum FramesAt<'r> {
    Scratch,
    Record(RawEventRecord<'r>),
}

/// A sample's frames without context markers, left in `frames` (`chain`
/// is scratch room): how many of them (from the leaf) are the kernel's, and
/// whether the chain was read where the format puts it (so that
/// [`chain_frames_in_place`] finds it again without parsing the record).
fn chain_frames(
    s: &SampleRecord,
    body: &[u8],
    callchain_at: Option<usize>,
    chain: &mut Vec<u64>,
    frames: &mut Vec<u64>,
) -> (usize, bool) {
    chain.clear();
    let bytes = callchain_at.and_then(|at| callchain_bytes(body, at, s));
    match (bytes, &s.callchain) {
        (Some(bytes), _) => chain.extend(
            bytes
                .chunks_exact(8)
                .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes"))),
        ),
        (None, Some(c)) => chain.extend((0..c.len()).filter_map(|i| c.get(i))),
        (None, None) => {}
    }
    let in_place = bytes.is_some() && !chain.is_empty();
    // A sample without a call chain is its ip alone.
    if chain.is_empty() {
        chain.extend(s.ip);
    }
    let in_kernel = s.cpu_mode == CpuMode::Kernel;
    (without_markers(chain, in_kernel, frames).1, in_place)
}

/// The frames of a sample whose digest found its chain where the format
/// puts it (`at` in the record's body), read from there again without
/// parsing the record; false if they are not there.
fn chain_frames_in_place(
    body: &[u8],
    at: usize,
    in_kernel: bool,
    chain: &mut Vec<u64>,
    frames: &mut Vec<u64>,
) -> bool {
    let word = |i: usize| {
        body.get(i..i + 8)
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
    };
    let Some(len) = word(at).and_then(|n| usize::try_from(n).ok()) else {
        return false;
    };
    let Some(bytes) = len
        .checked_mul(8)
        .and_then(|n| body.get(at + 8..(at + 8).checked_add(n)?))
    else {
        return false;
    };
    chain.clear();
    chain.extend(
        bytes
            .chunks_exact(8)
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes"))),
    );
    without_markers(chain, in_kernel, frames);
    true
}

/// What counting a sample needs of it, worked out from the record alone,
/// so that the thread walking the records can do it while another counts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Digest {
    pid: i32,
    tid: i32,
    cpu: u32,
    period: Option<u64>,
    /// How many of its frames (from the leaf) are the kernel's.
    kernel_len: u32,
    /// Its frames' 128-bit hash (see [`super::stack_table`]).
    hash: (u64, u64),
    /// Whether its call chain lies where the format puts it (see
    /// [`chain_frames_in_place`]), and whether its first frames are the
    /// kernel's (a chain without context markers).
    chain_in_place: bool,
    in_kernel: bool,
}

impl Digest {
    /// The digest of a parsed sample; its frames without context markers
    /// are left in `frames` (`chain` is scratch room).
    pub(super) fn of(
        s: &SampleRecord,
        body: &[u8],
        callchain_at: Option<usize>,
        chain: &mut Vec<u64>,
        frames: &mut Vec<u64>,
    ) -> Digest {
        let (kernel_len, chain_in_place) = chain_frames(s, body, callchain_at, chain, frames);
        let pid = s.pid.unwrap_or(-1);
        Digest {
            pid,
            tid: s.tid.unwrap_or(pid),
            cpu: s.cpu.unwrap_or(0),
            period: s.period,
            kernel_len: kernel_len as u32,
            hash: frames_hash(frames.as_slice()),
            chain_in_place,
            in_kernel: s.cpu_mode == CpuMode::Kernel,
        }
    }

    /// The digest of a sample's body laid out as `layout` says (`misc` from
    /// its header), read without the parser; `None` if its call chain does
    /// not fit in the body (the parser's way then tells what it is).
    pub(super) fn of_fixed(
        body: &[u8],
        misc: u16,
        layout: &FixedLayout,
        chain: &mut Vec<u64>,
        frames: &mut Vec<u64>,
    ) -> Option<Digest> {
        let word = |at: usize| {
            body.get(at..at.checked_add(8)?)
                .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
        };
        let half = |at: usize, second: bool| {
            let at = if second { at + 4 } else { at };
            body.get(at..at + 4)
                .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
        };
        let count = usize::try_from(word(layout.callchain)?).ok()?;
        let start = layout.callchain + 8;
        let bytes = body.get(start..start.checked_add(count.checked_mul(8)?)?)?;
        chain.clear();
        chain.extend(
            bytes
                .chunks_exact(8)
                .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes"))),
        );
        let chain_in_place = !chain.is_empty();
        // A sample without a call chain is its ip alone.
        if chain.is_empty() {
            chain.extend(layout.ip.and_then(word));
        }
        let in_kernel = CpuMode::from_misc(misc) == CpuMode::Kernel;
        let kernel_len = without_markers(chain, in_kernel, frames).1;
        let pid = layout
            .tid
            .and_then(|at| half(at, false))
            .map_or(-1, |p| p as i32);
        Some(Digest {
            pid,
            tid: layout
                .tid
                .and_then(|at| half(at, true))
                .map_or(pid, |t| t as i32),
            cpu: layout.cpu.and_then(|at| half(at, false)).unwrap_or(0),
            period: layout.period.and_then(word),
            kernel_len: kernel_len as u32,
            hash: frames_hash(frames.as_slice()),
            chain_in_place,
            in_kernel,
        })
    }

    /// The digest of a sample record's body (parsed here), or `None` for a
    /// record that is not a readable sample.
    pub(super) fn of_record(
        record: &RawEventRecord,
        callchain_at: Option<usize>,
        chain: &mut Vec<u64>,
        frames: &mut Vec<u64>,
    ) -> Option<Digest> {
        let Ok(EventRecord::Sample(s)) = record.parse() else {
            return None;
        };
        let body = record.data.as_slice();
        Some(Digest::of(&s, &body, callchain_at, chain, frames))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample format of `perf record -g`.
    fn perf_record_g() -> SampleFormat {
        SampleFormat::IP
            | SampleFormat::TID
            | SampleFormat::TIME
            | SampleFormat::CPU
            | SampleFormat::PERIOD
            | SampleFormat::CALLCHAIN
    }

    #[test]
    fn call_chains_are_found_after_the_fixed_size_fields() {
        // perf record -g: ip, tid, time, cpu and period come first.
        let perf = perf_record_g();
        assert_eq!(callchain_offset(perf), Some(40));
        assert_eq!(
            callchain_offset(perf | SampleFormat::IDENTIFIER | SampleFormat::RAW),
            Some(48)
        );
        // READ's size depends on the read format: the parser's way then.
        assert_eq!(callchain_offset(perf | SampleFormat::READ), None);
        assert_eq!(callchain_offset(SampleFormat::IP | SampleFormat::TID), None);
    }

    /// A sample's parse information for `format` (an attribute of the
    /// first version's 64 bytes: type, size, config, period, format, ...).
    fn parse_info(format: SampleFormat) -> RecordParseInfo {
        use linux_perf_data::linux_perf_event_reader::{Endianness, PerfEventAttr};
        let mut attr = Vec::new();
        attr.extend_from_slice(&1u32.to_ne_bytes());
        attr.extend_from_slice(&64u32.to_ne_bytes());
        attr.extend_from_slice(&0u64.to_ne_bytes());
        attr.extend_from_slice(&4000u64.to_ne_bytes());
        attr.extend_from_slice(&format.bits().to_ne_bytes());
        attr.resize(64, 0);
        let (attr, _) = PerfEventAttr::parse::<_, byteorder::NativeEndian>(&attr[..]).unwrap();
        let endian = if cfg!(target_endian = "big") {
            Endianness::BigEndian
        } else {
            Endianness::LittleEndian
        };
        RecordParseInfo::new(&attr, endian)
    }

    #[test]
    fn samples_digest_alike_from_their_bytes_and_through_the_parser() {
        let words = |w: &[u64]| -> Vec<u8> { w.iter().flat_map(|x| x.to_ne_bytes()).collect() };
        // pid 0x50 then tid 0x51, as two u32s in a word.
        let mut pair = [0u8; 8];
        pair[..4].copy_from_slice(&0x50u32.to_ne_bytes());
        pair[4..].copy_from_slice(&0x51u32.to_ne_bytes());
        let pid_tid = u64::from_ne_bytes(pair);
        let chain = [
            PERF_CONTEXT_KERNEL,
            0xffff_ffff_8100_0010,
            PERF_CONTEXT_USER,
            0x40_1000,
            0x40_2000,
        ];
        let perf = perf_record_g();
        let raw = perf | SampleFormat::IDENTIFIER | SampleFormat::RAW;
        let mut cases: Vec<(SampleFormat, u16, Vec<u8>)> = Vec::new();
        // perf record -g: ip, pid/tid, time, cpu, period, chain.
        let mut body = words(&[0xffff_ffff_8100_0010, pid_tid, 99, 1, 4000, 5]);
        body.extend(words(&chain));
        cases.push((perf, 1, body));
        // A user sample whose chain is empty: its ip alone.
        cases.push((perf, 2, words(&[0x40_1000, pid_tid, 99, 1, 1, 0])));
        // An identifier first and raw data after the chain (a tracepoint).
        let mut body = words(&[
            7,
            0x40_1000,
            pid_tid,
            99,
            3,
            1,
            2,
            PERF_CONTEXT_USER,
            0x40_1000,
        ]);
        body.extend_from_slice(&4u32.to_ne_bytes());
        body.extend_from_slice(&[1, 2, 3, 4]);
        cases.push((raw, 2, body));
        for (format, misc, body) in cases {
            let layout = FixedLayout::of(format).unwrap();
            let (mut chain, mut frames) = (Vec::new(), Vec::new());
            let fixed = Digest::of_fixed(&body, misc, &layout, &mut chain, &mut frames);
            let record = RawEventRecord::new(
                RecordType::SAMPLE,
                misc,
                RawData::Single(&body),
                parse_info(format),
            );
            let parsed =
                Digest::of_record(&record, callchain_offset(format), &mut chain, &mut frames);
            assert!(
                fixed.is_some() && fixed == parsed,
                "{fixed:?} vs {parsed:?}"
            );
        }
        // A chain said to run past the record is left to the parser.
        let body = words(&[0x40_1000, pid_tid, 99, 1, 1, 9, PERF_CONTEXT_USER]);
        let layout = FixedLayout::of(perf).unwrap();
        let (mut chain, mut frames) = (Vec::new(), Vec::new());
        assert_eq!(
            Digest::of_fixed(&body, 2, &layout, &mut chain, &mut frames),
            None
        );
        // READ's size varies: no fixed layout.
        assert!(FixedLayout::of(perf | SampleFormat::READ).is_none());
    }

    #[test]
    fn samples_count_alike_digested_by_the_walker_or_by_the_counter() {
        // The walking thread leaves samples undigested when the counting
        // thread keeps up; both ways must give the same groups and stacks.
        let format = SampleFormat::IP
            | SampleFormat::TID
            | SampleFormat::CPU
            | SampleFormat::PERIOD
            | SampleFormat::CALLCHAIN;
        let info = parse_info(format);
        let layout = FixedLayout::of(format);
        let mut file: Vec<u8> = Vec::new();
        let mut records = Vec::new();
        for i in 0..40u64 {
            let start = file.len();
            let mut pair = [0u8; 8];
            pair[..4].copy_from_slice(&7u32.to_ne_bytes());
            pair[4..].copy_from_slice(&(7 + (i % 2) as u32).to_ne_bytes());
            let leaf = 0xffff_ffff_8100_0000 + (i % 3) * 0x10;
            let words = [
                leaf,
                u64::from_ne_bytes(pair),
                i % 2, // CPU
                1,     // period
                2,     // frames in the chain
                PERF_CONTEXT_KERNEL,
                leaf,
            ];
            file.extend(words.iter().flat_map(|w| w.to_ne_bytes()));
            records.push((0u16, RecordType::SAMPLE, 1u16, start, file.len()));
        }
        let counted = |walker_digests: bool| {
            let mut batch = Batch::in_place(&file, &[info]);
            let (mut chain, mut frames) = (Vec::new(), Vec::new());
            for &(attr, record_type, misc, start, end) in &records {
                let digest = walker_digests
                    .then(|| {
                        Digest::of_fixed(
                            &file[start..end],
                            misc,
                            &layout.unwrap(),
                            &mut chain,
                            &mut frames,
                        )
                    })
                    .flatten();
                batch.push_in_place((attr, record_type, misc, start, end), digest);
            }
            let filter = Filter::default();
            let attributes = vec![Attribute {
                event: 0,
                period_weighted: false,
                dwarf: false,
                layout,
            }];
            let mut counts = Aggregator::new(&filter, attributes, 1);
            counts.add(&batch);
            let c = counts.finish();
            let groups: Vec<(i32, i32, u32, u32, u64)> = c
                .groups
                .iter()
                .map(|g| (g.pid, g.tid, g.cpu, g.stack, g.count))
                .collect();
            let stacks: Vec<Vec<super::super::profile::RawFrame>> =
                c.stacks.into_iter().map(|s| s.frames).collect();
            (groups, stacks, c.total_samples)
        };
        let by_walker = counted(true);
        assert_eq!(by_walker.2, 40);
        assert_eq!(by_walker.1.len(), 3, "three distinct stacks");
        assert_eq!(by_walker, counted(false));
    }

    #[test]
    fn group_counts_add_up_across_merges_and_come_out_sorted() {
        // Enough samples for several merges, each group met in many of them.
        let mut groups = GroupCounts::default();
        let mut expected: std::collections::BTreeMap<GroupKey, u64> = Default::default();
        let mut x: u64 = 1;
        for _ in 0..300_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let n = (x >> 33) as u32 % 5000;
            let key: GroupKey = ((n % 3) as u16, n as i32, n as i32 + 1, n % 2, n / 7, 0);
            let weight = u64::from(n % 4 + 1);
            groups.add(key, weight);
            *expected.entry(key).or_insert(0) += weight;
        }
        let counted = groups.finish();
        assert_eq!(counted, expected.into_iter().collect::<Vec<_>>());
    }

    #[test]
    fn chains_are_read_again_in_place_only_where_they_fit() {
        // 8 bytes of other fields, then a chain of 3: kernel marker, 2 frames.
        let mut body: Vec<u8> = vec![0; 8];
        for word in [
            3,
            PERF_CONTEXT_KERNEL,
            0xffff_ffff_8100_0010,
            0xffff_ffff_8100_0020,
        ] {
            body.extend_from_slice(&word.to_ne_bytes());
        }
        let (mut chain, mut frames) = (Vec::new(), Vec::new());
        assert!(chain_frames_in_place(
            &body,
            8,
            false,
            &mut chain,
            &mut frames
        ));
        assert_eq!(frames, [0xffff_ffff_8100_0010, 0xffff_ffff_8100_0020]);
        // A count that runs past the record, or a chain start outside it.
        assert!(!chain_frames_in_place(
            &body[..body.len() - 8],
            8,
            false,
            &mut chain,
            &mut frames
        ));
        assert!(!chain_frames_in_place(
            &body,
            body.len(),
            false,
            &mut chain,
            &mut frames
        ));
        body[8..16].copy_from_slice(&u64::MAX.to_ne_bytes());
        assert!(!chain_frames_in_place(
            &body,
            8,
            false,
            &mut chain,
            &mut frames
        ));
    }

    #[test]
    fn frames_lose_their_context_markers_and_count_the_kernel_ones() {
        let mut frames = Vec::new();
        let chain = [PERF_CONTEXT_KERNEL, 1, 2, PERF_CONTEXT_USER, 3];
        assert_eq!(
            without_markers(&chain, false, &mut frames),
            (&[1u64, 2, 3][..], 2)
        );
        // No marker: the sample's mode says which side the frames are on.
        assert_eq!(
            without_markers(&[7, 8], true, &mut frames),
            (&[7u64, 8][..], 2)
        );
        // A guest's frames end the chain.
        let guest = PERF_CONTEXT_MAX + 1;
        assert_eq!(
            without_markers(&[PERF_CONTEXT_USER, 5, guest, 6], true, &mut frames),
            (&[5u64][..], 0)
        );
    }
}
