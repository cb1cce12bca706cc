//! Reading a perf.data file (netprof's or perf's) into the profile that every
//! report works from: sample counts per distinct (task, CPU, event, stack),
//! with the process address spaces and kernel symbols needed to name frames.
//!
//! Stacks are interned as raw addresses while reading, so a file of hundreds
//! of thousands of samples turns into a few thousand distinct stacks, and
//! symbolization later runs once per distinct address, not per sample.

use ahash::AHashMap as HashMap;
use std::fs::File;
use std::path::Path;

use anyhow::{bail, Result};
use linux_perf_data::linux_perf_event_reader::{
    CpuMode, EventRecord, RawData, RawEventRecord, RecordParseInfo, RecordType, SampleRecord,
    SamplingPolicy,
};
use linux_perf_data::{Feature, PerfFileReader, PerfFileRecord};

use crate::kallsyms::KernelSymbols;
use crate::perfdata::{
    FEATURE_NETPROF_KALLSYMS, PERF_CONTEXT_KERNEL, PERF_CONTEXT_MAX, PERF_CONTEXT_USER,
};

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

/// A call stack as addresses, leaf first: `kernel_len` kernel frames, then
/// user frames, all in the address space `space`.
#[derive(Clone, Debug)]
pub struct RawStack {
    pub space: u32,
    pub kernel_len: usize,
    pub frames: Vec<u64>,
}

/// An executable file mapping in a process's address space.
#[derive(Clone, Debug)]
pub struct FileMap {
    pub start: u64,
    pub end: u64,
    pub pgoff: u64,
    pub path: String,
}

impl FileMap {
    fn new(start: u64, length: u64, pgoff: u64, path: String) -> Self {
        FileMap {
            start,
            end: start.saturating_add(length),
            pgoff,
            path,
        }
    }
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

pub struct Profile {
    pub events: Vec<String>,
    pub groups: Vec<SampleGroup>,
    pub stacks: Vec<RawStack>,
    pub comms: Vec<String>,
    /// Address spaces: a process gets a new one at exec and a copy at fork.
    pub spaces: Vec<Vec<FileMap>>,
    pub kernel: KernelSymbols,
    pub kernel_names: KernelNames,
    /// Build ids of the files the recording mapped, by path, where known.
    pub build_ids: HashMap<String, Vec<u8>>,
    /// For each event, the format of its tracepoint fields, if it has any.
    pub formats: Vec<Option<crate::tpformat::Format>>,
    /// Every sample, when the filter asked to keep them.
    pub samples: Vec<Sample>,
    /// Samples that passed the filters.
    pub total_samples: u64,
    /// Samples in the file, before filters.
    pub file_samples: u64,
    pub lost_samples: u64,
}

impl Profile {
    pub fn read(path: &Path, filter: &Filter) -> Result<Profile> {
        let file = File::open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!(
                    "{}: no such file; record one with `netprof record` or pass -i FILE",
                    path.display()
                )
            } else {
                anyhow::anyhow!("cannot open {}: {e}", path.display())
            }
        })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            bail!(
                "{} is empty; the recording that wrote it did not finish, record again",
                path.display()
            );
        }
        // A dependency's bug on a malformed file must not become a crash with
        // a stack trace; treat it like any other unreadable file.
        // SAFETY: the mapping is only read; a file truncated by another
        // process while we read is the one hazard, as for every mmap reader.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        read_guarded(&map, filter, live_kallsyms)
            .map_err(|e| anyhow::anyhow!("{}{e}", path.display()))
    }

    /// Reads a file held in memory; kernel frames are named only from the
    /// file's own snapshot. Unlike [`Profile::read`], a panic in the parser
    /// is not caught: the fuzz target and its corpus test must see them.
    pub fn from_bytes(bytes: &[u8], filter: &Filter) -> Result<Profile> {
        read_profile(bytes, filter, || None)
    }
}

/// This machine's kallsyms, for files that carry no snapshot (perf's).
fn live_kallsyms() -> Option<String> {
    std::fs::read_to_string("/proc/kallsyms")
        .ok()
        .filter(|t| !t.is_empty())
}

/// Reads a profile; errors start with " is ..." to follow the file's name.
fn read_guarded(
    bytes: &[u8],
    filter: &Filter,
    kallsyms: fn() -> Option<String>,
) -> Result<Profile> {
    // A dependency's bug on a malformed file must not become a crash with a
    // stack trace; treat it like any other unreadable file.
    let quiet_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_profile(bytes, filter, kallsyms)
    }));
    std::panic::set_hook(quiet_hook);
    match result {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(e)) if e.to_string().starts_with(" is") => Err(e),
        Ok(Err(e)) => match e.downcast_ref::<linux_perf_data::Error>() {
            Some(linux_perf_data::Error::IoError(io))
                if io.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                bail!(" is truncated (it ends inside its data); the recording was cut short, record again")
            }
            Some(_) => bail!(" is not a readable perf.data file ({e}); record it again"),
            None => bail!(": {e:#}"),
        },
        Err(_) => bail!(" is corrupt (its records do not parse); record it again"),
    }
}

#[derive(Default)]
struct AddressSpaces {
    spaces: Vec<Vec<FileMap>>,
    current: HashMap<i32, u32>,
}

impl AddressSpaces {
    fn of(&mut self, pid: i32) -> u32 {
        let spaces = &mut self.spaces;
        *self.current.entry(pid).or_insert_with(|| {
            spaces.push(Vec::new());
            (spaces.len() - 1) as u32
        })
    }
    fn exec(&mut self, pid: i32) {
        self.spaces.push(Vec::new());
        self.current.insert(pid, (self.spaces.len() - 1) as u32);
    }
    fn fork(&mut self, parent: i32, child: i32) {
        let maps = self
            .current
            .get(&parent)
            .map(|&s| self.spaces[s as usize].clone())
            .unwrap_or_default();
        self.spaces.push(maps);
        self.current.insert(child, (self.spaces.len() - 1) as u32);
    }
    fn map(&mut self, pid: i32, m: FileMap) {
        let s = self.of(pid);
        self.spaces[s as usize].push(m);
    }
}

fn read_profile(
    bytes: &[u8],
    filter: &Filter,
    kallsyms: fn() -> Option<String>,
) -> Result<Profile> {
    crate::perfdata::check::check_layout(bytes).map_err(|e| anyhow::anyhow!(" {e}"))?;
    let reader = std::io::Cursor::new(bytes);
    let PerfFileReader {
        mut perf_file,
        mut record_iter,
    } = PerfFileReader::parse_file(reader)?;
    let events: Vec<String> = perf_file
        .event_attributes()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            a.name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("event{i}"))
        })
        .collect();

    // A sample of a fixed-period event stands for `period` occurrences: 1
    // for a probe hit, the count of a stack for `record --bpf`. Samples of
    // frequency-driven events count one each.
    let period_weighted: Vec<bool> = perf_file
        .event_attributes()
        .iter()
        .map(|a| matches!(a.attr.sampling_policy, SamplingPolicy::Period(_)))
        .collect();
    let formats = tracepoint_formats(
        &events,
        perf_file.feature_section_data(Feature(crate::perfdata::FEATURE_NETPROF_TP_FORMATS)),
    );
    let build_ids: HashMap<String, Vec<u8>> = perf_file
        .build_ids()
        .unwrap_or_default()
        .into_values()
        .map(|info| {
            (
                String::from_utf8_lossy(&info.path).into_owned(),
                info.build_id,
            )
        })
        .collect();

    // Kernel symbols load on another core while the records are read.
    let snapshot = perf_file
        .feature_section_data(Feature(FEATURE_NETPROF_KALLSYMS))
        .map(|text| String::from_utf8_lossy(text).into_owned());
    let kernel_thread = std::thread::spawn(move || match snapshot {
        Some(text) => (KernelSymbols::parse(text), KernelNames::Snapshot),
        None => match kallsyms() {
            Some(text) => (KernelSymbols::parse(text), KernelNames::LiveKallsyms),
            None => (KernelSymbols::parse(""), KernelNames::Unavailable),
        },
    });

    // One thread walks the records (the perf.data parser), this one parses
    // and counts them: the two halves of the work run on two cores.
    let (batches_tx, batches_rx) = std::sync::mpsc::sync_channel::<Batch>(8);
    let mut counts = Aggregator::new(filter, period_weighted);
    std::thread::scope(|scope| -> Result<()> {
        let reader =
            scope.spawn(move || read_records(&mut perf_file, &mut record_iter, batches_tx));
        for batch in batches_rx {
            counts.add(&batch);
        }
        reader
            .join()
            .map_err(|_| anyhow::anyhow!("the records do not parse"))?
    })?;
    let Aggregator {
        groups,
        stacks,
        comms,
        spaces,
        samples,
        total_samples,
        file_samples,
        lost_samples,
        ..
    } = counts;

    let (kernel, kernel_names) = kernel_thread
        .join()
        .map_err(|_| anyhow::anyhow!("the kernel symbols do not parse"))?;
    let kernel_names = if kernel.is_empty() {
        KernelNames::Unavailable
    } else {
        kernel_names
    };
    let mut groups: Vec<SampleGroup> = groups
        .into_iter()
        .map(|((event, pid, tid, cpu, comm, stack), count)| SampleGroup {
            event,
            pid,
            tid,
            cpu,
            comm,
            stack,
            count,
        })
        .collect();
    // Deterministic output regardless of hash order.
    groups.sort_by_key(|g| (g.event, g.pid, g.tid, g.cpu, g.stack));
    Ok(Profile {
        events,
        groups,
        stacks,
        comms,
        spaces: spaces.spaces,
        kernel,
        kernel_names,
        build_ids,
        formats,
        samples,
        total_samples,
        file_samples,
        lost_samples,
    })
}

/// The tracepoint formats netprof stored, aligned with the file's events.
fn tracepoint_formats(
    events: &[String],
    section: Option<&[u8]>,
) -> Vec<Option<crate::tpformat::Format>> {
    let mut by_name: HashMap<String, crate::tpformat::Format> = HashMap::new();
    let mut rest = section.unwrap_or_default();
    let mut next = || -> Option<String> {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let s = String::from_utf8_lossy(rest.get(4..4 + len)?).into_owned();
        rest = &rest[4 + len..];
        Some(s)
    };
    while let (Some(name), Some(text)) = (next(), next()) {
        by_name.insert(name, crate::tpformat::Format::parse(&text));
    }
    events.iter().map(|e| by_name.get(e).cloned()).collect()
}

/// An MMAP2 record whose build id claims more than 20 bytes: the parser
/// asserts on it (a panic), so such corrupt records are skipped here.
fn mmap2_build_id_too_long(record_type: RecordType, misc: u16, body: &[u8]) -> bool {
    const PERF_RECORD_MISC_MMAP_BUILD_ID: u16 = 1 << 14;
    // pid, tid, addr, len, pgoff come first: the build id length is byte 32.
    record_type.0 == crate::perfdata::PERF_RECORD_MMAP2
        && misc & PERF_RECORD_MISC_MMAP_BUILD_ID != 0
        && body.get(32).is_some_and(|&len| len > 20)
}

const BATCH_RECORDS: usize = 4096;

/// Records as the file holds them, copied out of the parser's buffers so that
/// another thread can parse and count them.
#[derive(Default)]
struct Batch {
    /// Attr index, record type, misc, parse info, end of the body in `bytes`.
    records: Vec<(u16, RecordType, u16, RecordParseInfo, usize)>,
    bytes: Vec<u8>,
}

/// Walks the file's records in time order (linux-perf-data sorts each round)
/// and hands them over in batches.
fn read_records<R: std::io::Read>(
    perf_file: &mut linux_perf_data::PerfFile,
    record_iter: &mut linux_perf_data::PerfRecordIter<R>,
    out: std::sync::mpsc::SyncSender<Batch>,
) -> Result<()> {
    let mut batch = Batch::default();
    while let Some(record) = record_iter.next_record(perf_file)? {
        let PerfFileRecord::EventRecord { attr_index, record } = record else {
            continue;
        };
        match record.data {
            RawData::Single(body) => batch.bytes.extend_from_slice(body),
            RawData::Split(a, b) => {
                batch.bytes.extend_from_slice(a);
                batch.bytes.extend_from_slice(b);
            }
        }
        batch.records.push((
            attr_index as u16,
            record.record_type,
            record.misc,
            record.parse_info,
            batch.bytes.len(),
        ));
        if batch.records.len() >= BATCH_RECORDS && out.send(std::mem::take(&mut batch)).is_err() {
            return Ok(());
        }
    }
    let _ = out.send(batch);
    Ok(())
}

/// Counts samples per (event, task, CPU, command, stack) while following
/// process names and address spaces through the record stream.
struct Aggregator<'f> {
    filter: &'f Filter,
    /// By event: whether a sample weighs its period (see read_profile).
    period_weighted: Vec<bool>,
    spaces: AddressSpaces,
    comm_ids: HashMap<String, u32>,
    comms: Vec<String>,
    comm_of_tid: HashMap<i32, u32>,
    stack_ids: HashMap<Vec<u64>, u32>,
    stacks: Vec<RawStack>,
    groups: HashMap<(u16, i32, i32, u32, u32, u32), u64>,
    samples: Vec<Sample>,
    total_samples: u64,
    file_samples: u64,
    lost_samples: u64,
    /// Reused for each sample: [space, kernel_len, frames...].
    key: Vec<u64>,
}

impl<'f> Aggregator<'f> {
    fn new(filter: &'f Filter, period_weighted: Vec<bool>) -> Self {
        Aggregator {
            filter,
            period_weighted,
            spaces: AddressSpaces::default(),
            comm_ids: HashMap::new(),
            comms: Vec::new(),
            comm_of_tid: HashMap::new(),
            stack_ids: HashMap::new(),
            stacks: Vec::new(),
            groups: HashMap::new(),
            samples: Vec::new(),
            total_samples: 0,
            file_samples: 0,
            lost_samples: 0,
            key: Vec::with_capacity(130),
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

    fn add(&mut self, batch: &Batch) {
        let mut start = 0;
        for &(event, record_type, misc, parse_info, end) in &batch.records {
            let bytes = &batch.bytes[start..end];
            start = end;
            if mmap2_build_id_too_long(record_type, misc, bytes) {
                continue;
            }
            let body = RawData::Single(bytes);
            let Ok(parsed) = RawEventRecord::new(record_type, misc, body, parse_info).parse()
            else {
                continue;
            };
            let path = |p: &RawData| String::from_utf8_lossy(&p.as_slice()).into_owned();
            match parsed {
                EventRecord::Comm(c) => {
                    if c.is_execve {
                        self.spaces.exec(c.pid);
                    }
                    let id = self.intern_comm(&path(&c.name));
                    self.comm_of_tid.insert(c.tid, id);
                }
                EventRecord::Fork(f) => {
                    if f.pid != f.ppid {
                        self.spaces.fork(f.ppid, f.pid);
                    }
                    if let Some(&parent_comm) = self.comm_of_tid.get(&f.ptid) {
                        self.comm_of_tid.entry(f.tid).or_insert(parent_comm);
                    }
                }
                EventRecord::Mmap(m) if m.is_executable && m.cpu_mode == CpuMode::User => {
                    self.spaces.map(
                        m.pid,
                        FileMap::new(m.address, m.length, m.page_offset, path(&m.path)),
                    );
                }
                EventRecord::Mmap2(m)
                    if m.protection & libc::PROT_EXEC as u32 != 0
                        && m.cpu_mode == CpuMode::User =>
                {
                    self.spaces.map(
                        m.pid,
                        FileMap::new(m.address, m.length, m.page_offset, path(&m.path)),
                    );
                }
                EventRecord::Lost(l) => self.lost_samples += l.count,
                EventRecord::Sample(s) => self.sample(event, &s),
                _ => {}
            }
        }
    }

    fn sample(&mut self, event: u16, s: &SampleRecord) {
        let pid = s.pid.unwrap_or(-1);
        let tid = s.tid.unwrap_or(pid);
        let cpu = s.cpu.unwrap_or(0);
        let weight = match self.period_weighted.get(event as usize) {
            // bpf-output events (multi-kprobe hits) carry period 0: one hit each.
            Some(true) => s.period.filter(|&p| p > 0).unwrap_or(1),
            _ => 1,
        };
        self.file_samples += weight;
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
        if (!f.pids.is_empty() && !f.pids.contains(&pid))
            || (!f.cpus.is_empty() && !f.cpus.contains(&cpu))
            || (!f.comms.is_empty() && !f.comms.iter().any(|c| *c == self.comms[comm as usize]))
        {
            return;
        }
        self.total_samples += weight;
        let space = self.spaces.of(pid);
        let key = &mut self.key;
        key.clear();
        key.push(space as u64);
        key.push(0);
        let mut in_kernel = s.cpu_mode == CpuMode::Kernel;
        let chain_len = s.callchain.as_ref().map_or(0, |c| c.len());
        let frames = (0..chain_len).filter_map(|i| s.callchain.as_ref()?.get(i));
        // A sample without a call chain is its ip alone.
        let ip_only = if chain_len == 0 { s.ip } else { None };
        for addr in frames.chain(ip_only) {
            if addr >= PERF_CONTEXT_MAX {
                if addr != PERF_CONTEXT_KERNEL && addr != PERF_CONTEXT_USER {
                    // Guest and hypervisor frames: not ours to name.
                    break;
                }
                in_kernel = addr == PERF_CONTEXT_KERNEL;
                continue;
            }
            key.push(addr);
            if in_kernel {
                key[1] += 1;
            }
        }
        let stack = match self.stack_ids.get(key.as_slice()) {
            Some(&id) => id,
            None => {
                let id = self.stacks.len() as u32;
                self.stacks.push(RawStack {
                    space,
                    kernel_len: key[1] as usize,
                    frames: key[2..].to_vec(),
                });
                self.stack_ids.insert(key.clone(), id);
                id
            }
        };
        *self
            .groups
            .entry((event, pid, tid, cpu, comm, stack))
            .or_insert(0) += weight;
        if self.filter.keep_samples {
            self.samples.push(Sample {
                time: s.timestamp.unwrap_or(0),
                event,
                pid,
                tid,
                cpu,
                comm,
                stack,
                raw: s.raw.map(|r| r.as_slice().into_owned()).unwrap_or_default(),
            });
        }
    }
}
