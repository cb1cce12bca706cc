//! Who each sample's stack is: the processes' address spaces as the
//! records change them, and the table of distinct stacks. A raw stack (an
//! address space and the addresses of its frames) is met once per process
//! that runs it; it is kept as kernel addresses and user (file, offset)
//! frames, so that processes running the same code at other addresses
//! (ASLR) share one stack.

use ahash::AHashMap as HashMap;
use linux_perf_data::linux_perf_event_reader::{CpuMode, EventRecord, RecordType};
use std::collections::hash_map::Entry;

use super::profile::{RawFrame, RawStack};

/// User addresses at or above this are no user code on any x86-64 or
/// arm64 kernel (57-bit virtual addresses at the most).
const USER_SPACE_END: u64 = 1 << 56;

/// One executable mapping of an address space.
#[derive(Clone, Copy)]
struct MappedRange {
    start: u64,
    end: u64,
    /// Offset in the file of the mapping's first byte.
    pgoff: u64,
    /// Index of its path in [`AddressSpaces::files`].
    file: u32,
    /// When it was mapped (among all mappings): where mappings overlap,
    /// the newest one is what the process runs.
    seq: u32,
    /// The highest end of this range and all before it, so that a look-up
    /// stops at the first range below the address that cannot reach it.
    reach: u64,
}

/// Each process's executable mappings as they change: a process gets a
/// new address space at exec, a copy at fork, and a new one with each
/// mapping it makes.
#[derive(Default)]
struct AddressSpaces {
    /// Each space's mappings, sorted by start.
    spaces: Vec<Vec<MappedRange>>,
    current: HashMap<i32, u32>,
    /// The mapped files' paths, each once.
    files: Vec<String>,
    file_ids: HashMap<String, u32>,
    /// How many mappings were made so far: the next one's `seq`.
    mapped: u32,
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
        let maps = match self.current.get(&parent) {
            Some(&s) => self.spaces[s as usize].clone(),
            None => Vec::new(),
        };
        self.spaces.push(maps);
        self.current.insert(child, (self.spaces.len() - 1) as u32);
    }
    fn map(&mut self, pid: i32, start: u64, length: u64, pgoff: u64, path: &[u8]) {
        let file = match std::str::from_utf8(path)
            .ok()
            .and_then(|p| self.file_ids.get(p))
        {
            Some(&id) => id,
            None => {
                let path = String::from_utf8_lossy(path).into_owned();
                self.files.push(path.clone());
                let id = (self.files.len() - 1) as u32;
                self.file_ids.insert(path, id);
                id
            }
        };
        let seq = self.mapped;
        self.mapped += 1;
        // A new mapping makes a new address space: stacks are told apart by
        // their space and addresses (see StackKey), and the same addresses
        // may now run other code. The old space is no one's any more.
        let old = self.of(pid) as usize;
        let mut ranges = std::mem::take(&mut self.spaces[old]);
        let at = ranges.partition_point(|r| r.start <= start);
        let end = start.saturating_add(length);
        ranges.insert(
            at,
            MappedRange {
                start,
                end,
                pgoff,
                file,
                seq,
                reach: end,
            },
        );
        let mut reach = at.checked_sub(1).map_or(0, |i| ranges[i].reach);
        for r in &mut ranges[at..] {
            reach = reach.max(r.end);
            r.reach = reach;
        }
        self.spaces.push(ranges);
        self.current.insert(pid, (self.spaces.len() - 1) as u32);
    }

    /// The mapping that holds `addr` in address space `space` now (the
    /// newest where several do), if any.
    fn mapping(&self, space: u32, addr: u64) -> Option<&MappedRange> {
        let ranges = &self.spaces[space as usize];
        let at = ranges.partition_point(|r| r.start <= addr);
        ranges[..at]
            .iter()
            .rev()
            .take_while(|r| r.reach > addr)
            .filter(|r| addr < r.end)
            .max_by_key(|r| r.seq)
    }
}

/// A stack as kept, in `kept`: kernel frames as addresses, user frames as
/// (file, offset). The user part ends at the first frame that cannot be
/// user code of the process (an address outside its mappings, where the
/// unwinding of a binary without frame pointers went astray), which becomes
/// one [`RawFrame::Unknown`], as perf shows `[unknown]`; the result says
/// whether it did.
fn keep_frames(
    spaces: &AddressSpaces,
    space: u32,
    kernel_len: usize,
    frames: &[u64],
    kept: &mut Vec<RawFrame>,
) -> bool {
    let (kernel, user) = frames.split_at(kernel_len);
    kept.clear();
    kept.extend(kernel.iter().map(|&a| RawFrame::Kernel(a)));
    for (i, &addr) in user.iter().enumerate() {
        if addr >= USER_SPACE_END || spaces.mapping(space, addr).is_none() {
            kept.push(RawFrame::Unknown);
            return true;
        }
        // A return address points after its call: the byte before it is
        // the call, and names the function that made it (the leaf's own
        // address is exact).
        let at = if i > 0 { addr.saturating_sub(1) } else { addr };
        kept.push(match spaces.mapping(space, at) {
            Some(m) => RawFrame::File {
                file: m.file,
                offset: at - m.start + m.pgoff,
            },
            None => RawFrame::Unmapped(at),
        });
    }
    false
}

/// An MMAP2 record whose build id claims more than 20 bytes: the parser
/// asserts on it (a panic), so such corrupt records are skipped here.
pub(super) fn mmap2_build_id_too_long(record_type: RecordType, misc: u16, body: &[u8]) -> bool {
    const PERF_RECORD_MISC_MMAP_BUILD_ID: u16 = 1 << 14;
    // pid, tid, addr, len, pgoff come first: the build id length is byte 32.
    record_type.0 == crate::perfdata::PERF_RECORD_MMAP2
        && misc & PERF_RECORD_MISC_MMAP_BUILD_ID != 0
        && body.get(32).is_some_and(|&len| len > 20)
}

/// Who a distinct raw stack is, without keeping its frames: the address
/// space, how many frames are the kernel's, and a 128-bit hash of the
/// frames. Comparing stored frames instead costs a copy of every distinct
/// stack and a comparison per sample; two stacks of a recording sharing a
/// 128-bit hash is not a risk worth that (a chance near 2^-90 for millions
/// of stacks).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct StackKey {
    space: u32,
    kernel_len: u32,
    hash: (u64, u64),
}

/// Two independent hashes of the frames (fixed seeds: the same file gives
/// the same stack ids on every run).
pub(super) fn frames_hash<T: std::hash::Hash + ?Sized>(frames: &T) -> (u64, u64) {
    let a = ahash::RandomState::with_seeds(1, 2, 3, 4);
    let b = ahash::RandomState::with_seeds(5, 6, 7, 8);
    (a.hash_one(frames), b.hash_one(frames))
}

/// The address spaces and the distinct stacks of a recording.
#[derive(Default)]
pub(super) struct StackTable {
    spaces: AddressSpaces,
    /// Each distinct raw stack's id, and whether its user part was cut.
    stack_ids: HashMap<StackKey, (u32, bool)>,
    /// The id of each distinct stack of (file, offset) frames, by their
    /// 128-bit hash: the raw stacks of processes that ran the same code
    /// from libraries loaded at other addresses share one.
    kept_ids: HashMap<(u64, u64), u32>,
    stacks: Vec<RawStack>,
    /// Reused for each new stack: its frames as kept.
    kept: Vec<RawFrame>,
}

/// The stacks, and the mapped files their user frames name.
pub(super) struct Stacks {
    pub stacks: Vec<RawStack>,
    pub files: Vec<String>,
}

impl StackTable {
    /// Follows a record if it changes an address space: an exec, a fork,
    /// an executable user mapping.
    pub(super) fn follow(&mut self, record: &EventRecord) {
        match record {
            EventRecord::Comm(c) if c.is_execve => self.spaces.exec(c.pid),
            EventRecord::Fork(f) if f.pid != f.ppid => self.spaces.fork(f.ppid, f.pid),
            EventRecord::Mmap(m) if m.is_executable && m.cpu_mode == CpuMode::User => {
                let path = m.path.as_slice();
                self.spaces
                    .map(m.pid, m.address, m.length, m.page_offset, &path);
            }
            EventRecord::Mmap2(m)
                if m.protection & libc::PROT_EXEC as u32 != 0 && m.cpu_mode == CpuMode::User =>
            {
                let path = m.path.as_slice();
                self.spaces
                    .map(m.pid, m.address, m.length, m.page_offset, &path);
            }
            _ => {}
        }
    }

    /// The id of the stack of a sample of process `pid` whose frames
    /// (`kernel_len` of them the kernel's) hash to `hash` (see
    /// [`frames_hash`]), and whether its user part was cut. `frames` gives
    /// the frames without context markers; it is called only for a raw
    /// stack not met before.
    pub(super) fn identify<'f>(
        &mut self,
        pid: i32,
        kernel_len: u32,
        hash: (u64, u64),
        frames: impl FnOnce() -> &'f [u64],
    ) -> (u32, bool) {
        let space = self.spaces.of(pid);
        let key = StackKey {
            space,
            kernel_len,
            hash,
        };
        // One probe of the table whether the stack is known or not: the
        // fields the new-stack branch needs are borrowed one by one.
        match self.stack_ids.entry(key) {
            Entry::Occupied(known) => *known.get(),
            Entry::Vacant(slot) => {
                let kept = &mut self.kept;
                let user_truncated =
                    keep_frames(&self.spaces, space, kernel_len as usize, frames(), kept);
                let next_id = self.stacks.len() as u32;
                let id = *self
                    .kept_ids
                    .entry(frames_hash(kept.as_slice()))
                    .or_insert(next_id);
                if id == next_id {
                    self.stacks.push(RawStack {
                        frames: kept.clone(),
                        user_truncated,
                    });
                }
                // The value as made, not read back from the table's fresh
                // slot (a cache miss on a large table).
                slot.insert((id, user_truncated));
                (id, user_truncated)
            }
        }
    }

    pub(super) fn finish(self) -> Stacks {
        Stacks {
            stacks: self.stacks,
            files: self.spaces.files,
        }
    }
}
