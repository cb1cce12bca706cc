//! Reading a perf.data file (netprof's or perf's) into the profile that every
//! report works from: sample counts per distinct (task, CPU, event, stack),
//! with the process address spaces and kernel symbols needed to name frames.
//!
//! Stacks are interned as raw addresses while reading, so a file of hundreds
//! of thousands of samples turns into a few thousand distinct stacks, and
//! symbolization later runs once per distinct address, not per sample.

use ahash::AHashMap as HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{bail, Result};
use linux_perf_data::linux_perf_event_reader::{CpuMode, EventRecord};
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
        read_guarded(
            BufReader::with_capacity(1 << 20, file),
            filter,
            live_kallsyms,
        )
        .map_err(|e| anyhow::anyhow!("{}{e}", path.display()))
    }

    /// Reads a file held in memory; kernel frames are named only from the
    /// file's own snapshot. (The fuzz target and its corpus test use this.)
    pub fn from_bytes(bytes: &[u8], filter: &Filter) -> Result<Profile> {
        read_guarded(std::io::Cursor::new(bytes), filter, || None)
    }
}

/// This machine's kallsyms, for files that carry no snapshot (perf's).
fn live_kallsyms() -> Option<String> {
    std::fs::read_to_string("/proc/kallsyms")
        .ok()
        .filter(|t| !t.is_empty())
}

/// Reads a profile; errors start with " is ..." to follow the file's name.
fn read_guarded<R: std::io::Read + std::io::Seek>(
    mut reader: R,
    filter: &Filter,
    kallsyms: impl FnOnce() -> Option<String>,
) -> Result<Profile> {
    let mut magic = [0u8; 8];
    let n = reader.read(&mut magic)?;
    if n < 8 || (&magic != b"PERFILE2" && &magic != b"2ELIFREP") {
        bail!(" is not a readable perf.data file (no PERFILE2 magic); pass a file from `netprof record` or `perf record`");
    }
    reader.seek(std::io::SeekFrom::Start(0))?;
    // A dependency's bug on a malformed file must not become a crash with a
    // stack trace; treat it like any other unreadable file.
    let quiet_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_profile(reader, filter, kallsyms)
    }));
    std::panic::set_hook(quiet_hook);
    match result {
        Ok(Ok(p)) => Ok(p),
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

fn read_profile<R: std::io::Read + std::io::Seek>(
    reader: R,
    filter: &Filter,
    kallsyms: impl FnOnce() -> Option<String>,
) -> Result<Profile> {
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

    let (kernel, kernel_names) =
        match perf_file.feature_section_data(Feature(FEATURE_NETPROF_KALLSYMS)) {
            Some(text) => (
                KernelSymbols::parse(&String::from_utf8_lossy(text)),
                KernelNames::Snapshot,
            ),
            None => match kallsyms() {
                Some(text) => (KernelSymbols::parse(&text), KernelNames::LiveKallsyms),
                None => (KernelSymbols::parse(""), KernelNames::Unavailable),
            },
        };
    let kernel_names = if kernel.is_empty() {
        KernelNames::Unavailable
    } else {
        kernel_names
    };

    let mut spaces = AddressSpaces::default();
    let mut comm_ids: HashMap<String, u32> = HashMap::new();
    let mut comms: Vec<String> = Vec::new();
    let mut comm_of_tid: HashMap<i32, u32> = HashMap::new();
    let mut stack_ids: HashMap<Vec<u64>, u32> = HashMap::new();
    let mut stacks: Vec<RawStack> = Vec::new();
    let mut groups: HashMap<(u16, i32, i32, u32, u32, u32), u64> = HashMap::new();
    let mut total_samples = 0u64;
    let mut file_samples = 0u64;
    let mut lost_samples = 0u64;
    let mut key = Vec::with_capacity(130);
    let comm_filter: Vec<&str> = filter.comms.iter().map(String::as_str).collect();

    let mut intern_comm = |name: &str, comms: &mut Vec<String>| -> u32 {
        if let Some(&id) = comm_ids.get(name) {
            return id;
        }
        comms.push(name.to_string());
        comm_ids.insert(name.to_string(), (comms.len() - 1) as u32);
        (comms.len() - 1) as u32
    };

    while let Some(record) = record_iter.next_record(&mut perf_file)? {
        let PerfFileRecord::EventRecord { attr_index, record } = record else {
            continue;
        };
        let Ok(parsed) = record.parse() else { continue };
        match parsed {
            EventRecord::Comm(c) => {
                if c.is_execve {
                    spaces.exec(c.pid);
                }
                let name = String::from_utf8_lossy(&c.name.as_slice()).into_owned();
                let id = intern_comm(&name, &mut comms);
                comm_of_tid.insert(c.tid, id);
            }
            EventRecord::Fork(f) => {
                if f.pid != f.ppid {
                    spaces.fork(f.ppid, f.pid);
                }
                if let Some(&parent_comm) = comm_of_tid.get(&f.ptid) {
                    comm_of_tid.entry(f.tid).or_insert(parent_comm);
                }
            }
            EventRecord::Mmap(m) if m.is_executable && m.cpu_mode == CpuMode::User => {
                spaces.map(
                    m.pid,
                    FileMap {
                        start: m.address,
                        end: m.address + m.length,
                        pgoff: m.page_offset,
                        path: String::from_utf8_lossy(&m.path.as_slice()).into_owned(),
                    },
                );
            }
            EventRecord::Mmap2(m)
                if m.protection & libc::PROT_EXEC as u32 != 0 && m.cpu_mode == CpuMode::User =>
            {
                spaces.map(
                    m.pid,
                    FileMap {
                        start: m.address,
                        end: m.address + m.length,
                        pgoff: m.page_offset,
                        path: String::from_utf8_lossy(&m.path.as_slice()).into_owned(),
                    },
                );
            }
            EventRecord::Lost(l) => lost_samples += l.count,
            EventRecord::Sample(s) => {
                file_samples += 1;
                let pid = s.pid.unwrap_or(-1);
                let tid = s.tid.unwrap_or(pid);
                let cpu = s.cpu.unwrap_or(0);
                let comm = match comm_of_tid.get(&tid).or_else(|| comm_of_tid.get(&pid)) {
                    Some(&c) => c,
                    // The idle task never reports a name; perf calls it swapper.
                    None if pid == 0 => intern_comm("swapper", &mut comms),
                    None => intern_comm(&format!(":{pid}"), &mut comms),
                };
                if (!filter.pids.is_empty() && !filter.pids.contains(&pid))
                    || (!filter.cpus.is_empty() && !filter.cpus.contains(&cpu))
                    || (!comm_filter.is_empty()
                        && !comm_filter.contains(&comms[comm as usize].as_str()))
                {
                    continue;
                }
                total_samples += 1;
                let space = spaces.of(pid);
                // The key is [space, kernel_len, frames...]; see RawStack.
                key.clear();
                key.push(space as u64);
                key.push(0);
                match &s.callchain {
                    Some(chain) if !chain.is_empty() => {
                        let mut in_kernel = s.cpu_mode == CpuMode::Kernel;
                        for i in 0..chain.len() {
                            let addr = chain.get(i).unwrap_or(0);
                            if addr >= PERF_CONTEXT_MAX {
                                in_kernel = addr == PERF_CONTEXT_KERNEL;
                                if addr != PERF_CONTEXT_KERNEL && addr != PERF_CONTEXT_USER {
                                    // Guest and hypervisor frames: not ours to name.
                                    break;
                                }
                                continue;
                            }
                            key.push(addr);
                            if in_kernel {
                                key[1] += 1;
                            }
                        }
                    }
                    _ => {
                        if let Some(ip) = s.ip {
                            key.push(ip);
                            if s.cpu_mode == CpuMode::Kernel {
                                key[1] = 1;
                            }
                        }
                    }
                }
                let stack = match stack_ids.get(&key) {
                    Some(&id) => id,
                    None => {
                        let id = stacks.len() as u32;
                        stacks.push(RawStack {
                            space,
                            kernel_len: key[1] as usize,
                            frames: key[2..].to_vec(),
                        });
                        stack_ids.insert(key.clone(), id);
                        id
                    }
                };
                *groups
                    .entry((attr_index as u16, pid, tid, cpu, comm, stack))
                    .or_insert(0) += 1;
            }
            _ => {}
        }
    }

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
        total_samples,
        file_samples,
        lost_samples,
    })
}
