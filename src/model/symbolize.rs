//! Naming every frame: kernel and module frames from the kallsyms snapshot,
//! BPF programs as `bpf_prog_<tag>_<name> [bpf]`, user frames from the ELF
//! symbols of the mapped file or of its debug file (see [`super::debug_file`]),
//! through blazesym.
//!
//! A frame that cannot be named keeps its address (kernel frames) or its
//! file and offset (user frames), so it is never dropped nor merged into a
//! neighbour's name; a user chain that went astray ends in `[unknown]`.
//! Frames are identified by name and module, not address, so the same
//! function compares equal across kernels, builds and processes.

use ahash::AHashMap as HashMap;

use blazesym::symbolize::source::{Elf, Source};
use blazesym::symbolize::{Input, Symbolized as Lookup, Symbolizer};
use serde::Serialize;

use super::debug_file::DebugFile;
use super::off_cpu;
use super::profile::{Profile, RawFrame, RawStack};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameKind {
    /// vmlinux.
    Kernel,
    /// A loadable module.
    Module,
    /// A BPF program.
    Bpf,
    /// User space.
    User,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Frame {
    pub name: String,
    /// The kernel module (`bpf` for BPF programs), or for user frames the
    /// mapped file.
    pub module: Option<String>,
    pub kind: FrameKind,
    /// False when the name is an address the symbol tables did not cover.
    pub resolved: bool,
}

impl Frame {
    /// The name reports show: `func`, `func [module]` or `bpf_prog_..._x [bpf]`.
    pub fn label(&self) -> String {
        match (&self.kind, &self.module) {
            (FrameKind::Module | FrameKind::Bpf, Some(m)) => format!("{} [{m}]", self.name),
            _ => self.name.clone(),
        }
    }
}

/// Every distinct frame of a profile and each stack as frame ids, root first.
pub struct SymbolizedProfile {
    pub frames: Vec<Frame>,
    pub stacks: Vec<Vec<u32>>,
}

/// A mapped file's distinct offsets that frames ran at, sorted.
struct FileOffsets<'p> {
    file: u32,
    path: &'p str,
    offsets: Vec<u64>,
}

#[derive(Default)]
struct FrameTable {
    frames: Vec<Frame>,
    ids: HashMap<Frame, u32>,
}

impl FrameTable {
    fn intern(&mut self, frame: Frame) -> u32 {
        if let Some(&id) = self.ids.get(&frame) {
            return id;
        }
        let id = self.frames.len() as u32;
        self.frames.push(frame.clone());
        self.ids.insert(frame, id);
        id
    }
}

/// Kernel return addresses point after the call; the byte before them is
/// looked up so that a call at the very end of a function is named after
/// that function. `index` is the frame's position within the kernel part.
/// (User frames come with that byte's offset already, see [`RawFrame`].)
fn lookup_addr(addr: u64, index: usize) -> u64 {
    if index > 0 {
        addr.saturating_sub(1)
    } else {
        addr
    }
}

/// Names every distinct frame of `profile` once, and gives each stack as
/// frame ids, root first.
pub fn symbolize(profile: &Profile) -> SymbolizedProfile {
    let mut table = FrameTable::default();
    // Frames are numbered in the order these maps list them: fixed seeds,
    // so that the same file gives the same numbers (the JSON's frame table)
    // on every run.
    let seeds = || ahash::RandomState::with_seeds(1, 2, 3, 4);
    let mut kernel_ids: HashMap<u64, u32> = HashMap::with_hasher(seeds());
    let mut user_ids: HashMap<(u32, u64), u32> = HashMap::with_hasher(seeds());
    let mut unmapped_ids: HashMap<u64, u32> = HashMap::with_hasher(seeds());
    for stack in &profile.stacks {
        for (i, frame) in stack.frames.iter().enumerate() {
            match *frame {
                RawFrame::Kernel(addr) => {
                    kernel_ids.insert(lookup_addr(addr, i), 0);
                }
                RawFrame::File { file, offset } => {
                    user_ids.insert((file, offset), 0);
                }
                RawFrame::Unmapped(addr) => {
                    unmapped_ids.insert(addr, 0);
                }
                RawFrame::Unknown => {}
            }
        }
    }
    let files = offsets_by_file(profile, &user_ids);
    // Reading ELF and DWARF is the slow part: it runs on every core while
    // this thread names the kernel frames.
    let names_per_file = std::thread::scope(|scope| {
        let workers = scope.spawn(|| name_user_files(profile, &files));
        for (addr, id) in kernel_ids.iter_mut() {
            *id = table.intern(kernel_frame(profile, *addr));
        }
        workers
            .join()
            .unwrap_or_else(|_| files.iter().map(|f| vec![None; f.offsets.len()]).collect())
    });
    for (file, names) in files.iter().zip(names_per_file) {
        let short = file.path.rsplit('/').next().unwrap_or(file.path);
        for (&offset, name) in file.offsets.iter().zip(names) {
            let id = table.intern(Frame {
                resolved: name.is_some(),
                // By file offset, which stays the same from run to run (the
                // address moves with ASLR), so that diff matches it.
                name: name.unwrap_or_else(|| format!("{short}+{offset:#x}")),
                module: Some(file.path.to_string()),
                kind: FrameKind::User,
            });
            user_ids.insert((file.file, offset), id);
        }
    }
    for (addr, id) in unmapped_ids.iter_mut() {
        *id = table.intern(Frame {
            name: format!("{addr:#x}"),
            module: None,
            kind: FrameKind::User,
            resolved: false,
        });
    }
    // Where a user chain went astray: one frame for all, as perf's [unknown].
    let unknown = table.intern(Frame {
        name: "[unknown]".into(),
        module: None,
        kind: FrameKind::User,
        resolved: false,
    });
    let frame_ids = |stack: &RawStack| -> Vec<u32> {
        // Root first: user frames (outermost last in the chain), then kernel.
        let mut ids = Vec::with_capacity(stack.frames.len());
        for (i, frame) in stack.frames.iter().enumerate().rev() {
            ids.push(match *frame {
                RawFrame::Kernel(addr) => kernel_ids[&lookup_addr(addr, i)],
                RawFrame::File { file, offset } => user_ids[&(file, offset)],
                RawFrame::Unmapped(addr) => unmapped_ids[&addr],
                RawFrame::Unknown => unknown,
            });
        }
        ids
    };
    // A look-up per frame of every distinct stack: millions on a busy
    // machine's recording, shared out over the cores.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = profile.stacks.len().div_ceil(cores).max(1);
    let stacks: Vec<Vec<u32>> = std::thread::scope(|scope| {
        let parts: Vec<_> = profile
            .stacks
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(frame_ids).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("naming stacks does not panic"))
            .collect()
    });
    SymbolizedProfile {
        frames: table.frames,
        stacks,
    }
}

/// The distinct offsets of each mapped file that frames ran at, files in
/// the order the recording mapped them first.
fn offsets_by_file<'p>(
    profile: &'p Profile,
    user_ids: &HashMap<(u32, u64), u32>,
) -> Vec<FileOffsets<'p>> {
    let mut per_file: Vec<Vec<u64>> = vec![Vec::new(); profile.files.len()];
    for &(file, offset) in user_ids.keys() {
        per_file[file as usize].push(offset);
    }
    per_file
        .into_iter()
        .enumerate()
        .filter(|(_, offsets)| !offsets.is_empty())
        .map(|(file, mut offsets)| {
            offsets.sort_unstable();
            FileOffsets {
                file: file as u32,
                path: &profile.files[file],
                offsets,
            }
        })
        .collect()
}

/// Names for the distinct offsets of each file, from one worker per core. A
/// file that makes the ELF reader panic leaves its frames unnamed (hex, with
/// file and offset) rather than ending the report.
fn name_user_files(profile: &Profile, files: &[FileOffsets]) -> Vec<Vec<Option<String>>> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut names: Vec<Vec<Option<String>>> =
        files.iter().map(|f| vec![None; f.offsets.len()]).collect();
    std::thread::scope(|scope| {
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(files.len());
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let next = &next;
                scope.spawn(move || {
                    // Reports name functions only: without source lines and
                    // inlined calls, blazesym reads no DWARF line tables
                    // (the names are the same).
                    let symbolizer = Symbolizer::builder()
                        .enable_code_info(false)
                        .enable_inlined_fns(false)
                        .build();
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(file) = files.get(i) else {
                            break done;
                        };
                        let recorded_id = profile.build_ids.get(file.path).map(Vec::as_slice);
                        done.push((
                            i,
                            symbolize_file(&symbolizer, file.path, recorded_id, &file.offsets),
                        ));
                    }
                })
            })
            .collect();
        for done in handles.into_iter().filter_map(|h| h.join().ok()) {
            for (i, n) in done {
                names[i] = n;
            }
        }
    });
    names
}

/// Names for file offsets (sorted, distinct) in one mapped file; `None`
/// where nothing covers one, or where the file on disk is no longer the one
/// that was recorded (its build id changed): a wrong name is worse than none.
fn symbolize_file(
    symbolizer: &Symbolizer,
    path: &str,
    recorded_id: Option<&[u8]>,
    distinct: &[u64],
) -> Vec<Option<String>> {
    // [vdso] and friends have no file to read; and a path the recording
    // names is read only if it is a regular file now (a FIFO or device
    // there would hang or flood the report).
    if !path.starts_with('/') || !crate::infile::is_regular(std::path::Path::new(path)) {
        return vec![None; distinct.len()];
    }
    let current_id = blazesym::helper::read_elf_build_id(path).ok().flatten();
    if recorded_id.is_some_and(|recorded| current_id.as_deref() != Some(recorded)) {
        return vec![None; distinct.len()];
    }
    let debug_file = current_id
        .as_deref()
        .and_then(|id| DebugFile::find(path, id));
    let names = match debug_file {
        Some(debug) => {
            // Its symbol table, by address; not its DWARF.
            let mut source = Elf::new(&debug.path);
            source.debug_syms = false;
            let addresses: Vec<Option<u64>> = distinct.iter().map(|&o| debug.address(o)).collect();
            let known: Vec<u64> = addresses.iter().flatten().copied().collect();
            match lookup(symbolizer, source, Input::VirtOffset(&known)) {
                found if found.len() == known.len() => {
                    let mut found = found.into_iter();
                    addresses
                        .iter()
                        .map(|a| a.and_then(|_| found.next().flatten()))
                        .collect()
                }
                // An unreadable debug file: the file itself, as without one.
                _ => lookup(symbolizer, Elf::new(path), Input::FileOffset(distinct)),
            }
        }
        None => lookup(symbolizer, Elf::new(path), Input::FileOffset(distinct)),
    };
    if names.len() != distinct.len() {
        return vec![None; distinct.len()];
    }
    names
}

/// The names blazesym finds in `source` for `input`, one per address (an
/// empty list if it cannot read the file).
fn lookup(symbolizer: &Symbolizer, source: Elf, input: Input<&[u64]>) -> Vec<Option<String>> {
    match symbolizer.symbolize(&Source::Elf(source), input) {
        Ok(results) => results
            .into_iter()
            .map(|r| match r {
                Lookup::Sym(sym) => Some(without_version(&sym.name).to_string()),
                Lookup::Unknown(_) => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `fopen@@GLIBC_2.2.5` is `fopen`: a symbol table gives a versioned
/// function its version in the name, the dynamic symbol table (all a
/// library without a debug file has) keeps it apart. One name for both, so
/// that reports from machines with and without debug files compare.
fn without_version(name: &str) -> &str {
    let Some(at) = name.find('@').filter(|&at| at > 0) else {
        return name;
    };
    let version = name[at..].trim_start_matches('@');
    let is_version = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    match is_version {
        true => &name[..at],
        false => name,
    }
}

fn kernel_frame(profile: &Profile, addr: u64) -> Frame {
    if off_cpu::is_separator(addr) {
        // Between a waker's frames and the thread it woke.
        return Frame {
            name: "--".into(),
            module: None,
            kind: FrameKind::Kernel,
            resolved: true,
        };
    }
    match profile.kernel.lookup(addr) {
        Some(sym) => {
            let kind = match sym.module {
                None => FrameKind::Kernel,
                Some("bpf") => FrameKind::Bpf,
                Some(_) => FrameKind::Module,
            };
            Frame {
                name: sym.name.to_string(),
                module: sym.module.map(str::to_string),
                kind,
                resolved: true,
            }
        }
        None => Frame {
            name: format!("{addr:#x}"),
            module: None,
            kind: FrameKind::Kernel,
            resolved: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_versions_leave_the_name() {
        assert_eq!(
            without_version("_IO_file_fopen@@GLIBC_2.2.5"),
            "_IO_file_fopen"
        );
        assert_eq!(without_version("memcpy@GLIBC_2.2.5"), "memcpy");
        assert_eq!(without_version("read"), "read");
        // Not a version after the @: kept whole.
        assert_eq!(
            without_version("odd@name with space"),
            "odd@name with space"
        );
        assert_eq!(without_version("@@GLIBC_2.2.5"), "@@GLIBC_2.2.5");
        assert_eq!(without_version("trailing@"), "trailing@");
    }
}
