//! /proc/kallsyms's code symbols, kept between runs. The kernel takes tens
//! of milliseconds to write its symbol table out (a formatted line for each
//! of some hundred thousand symbols), which is most of a report on a
//! perf-written file of a short workload, and a large part of a recording's
//! fixed cost. The table changes only with a reboot, a module loaded or
//! unloaded, or a BPF program loaded or unloaded: those are checked at
//! each use (the boot id, /proc/modules, the loaded programs' ids), and the
//! copy is used only if all are as they were when it was made. perf keeps
//! such a copy too (~/.debug/[kernel.kallsyms]).
//!
//! The copy is `$XDG_CACHE_HOME/netprof/kallsyms` (`~/.cache/...` without
//! it), private to the user (0600 in a 0700 directory), used only if the
//! directory above it and the file are the user's own and the file is not
//! a symlink. `NETPROF_NO_CACHE` (any value) turns it off. Trampolines of
//! ftrace and optimized kprobes come and go without any of the checked
//! changes: a frame inside one may keep the name of the copy's time.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::kallsyms;
use crate::error::{IoContext, Result};
use crate::outfile::write_atomically;

const MAGIC: &str = "netprof kallsyms cache 1\n";

/// The code symbol lines of /proc/kallsyms (see
/// [`kallsyms::code_symbols_text`]), from the user's cached copy if the
/// kernel's symbols cannot have changed since it was made, else read now
/// (and the copy made again).
pub fn code_symbols_text() -> Result<String> {
    let cache = cache();
    if let Some(text) = cache.as_ref().and_then(|(path, now)| read_copy(path, now)) {
        return Ok(text);
    }
    read_live(cache.as_ref())
}

/// Where the copy lives and what the kernel's symbols depend on now;
/// `None` when caching is off, or when what changed cannot be told (then
/// no copy is used).
fn cache() -> Option<(PathBuf, String)> {
    Some((cache_path()?, fingerprint()?))
}

/// The code symbols read from /proc/kallsyms now, and the copy made again
/// where there is a cache.
fn read_live(cache: Option<&(PathBuf, String)>) -> Result<String> {
    let text = kallsyms::code_symbols_text()?;
    // Hidden addresses (kptr_restrict) are not worth keeping; a copy that
    // cannot be written leaves the report as it would be without one.
    if let Some((path, now)) = cache {
        if kallsyms::address_in(&text, "_text").is_some() {
            let _ = write_copy(path, now, &text);
        }
    }
    Ok(text)
}

/// The kernel's code symbols as a recording stores them at its end.
pub enum CodeSymbols {
    /// Read from /proc/kallsyms now (there was no usable copy).
    Text(String),
    /// Where they lie in the user's copy, open: `len` bytes at `offset`.
    /// The copy is only ever replaced by a rename, so the open file keeps
    /// these bytes; the recording copies them file to file, unread.
    InCopy {
        file: fs::File,
        offset: u64,
        len: u64,
        /// The kernel's `_text`, found in the first lines.
        kernel_text: Option<u64>,
    },
}

impl CodeSymbols {
    /// Their size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            CodeSymbols::Text(text) => text.len() as u64,
            CodeSymbols::InCopy { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Where the kernel's code starts (`_text`), if addresses are shown.
    pub fn kernel_text(&self) -> Option<u64> {
        match self {
            CodeSymbols::Text(text) => kallsyms::address_in(text, "_text"),
            CodeSymbols::InCopy { kernel_text, .. } => *kernel_text,
        }
    }
}

/// The code symbols for a recording: as [`code_symbols_text`], but a
/// usable copy is left where it lies rather than read.
pub fn code_symbols() -> Result<CodeSymbols> {
    let cache = cache();
    if let Some(found) = cache.as_ref().and_then(|(path, now)| open_copy(path, now)) {
        return Ok(found);
    }
    read_live(cache.as_ref()).map(CodeSymbols::Text)
}

/// Where the copy lives, if caching is on and a cache directory is known.
fn cache_path() -> Option<PathBuf> {
    if std::env::var_os("NETPROF_NO_CACHE").is_some() {
        return None;
    }
    let base = match std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir,
        _ => PathBuf::from(std::env::var_os("HOME").filter(|h| !h.is_empty())?).join(".cache"),
    };
    Some(base.join("netprof").join("kallsyms"))
}

/// What the kernel's symbol table depends on beyond the boot: the boot id,
/// each module's name, size and address, and the loaded BPF programs' ids
/// (never reused soon: they count up). `None` where one cannot be read.
fn fingerprint() -> Option<String> {
    let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let mut text = format!("boot {}\n", boot.trim());
    // A kernel without module support has no /proc/modules, and no modules.
    let modules = match fs::read_to_string("/proc/modules") {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(_) => return None,
    };
    for line in modules.lines() {
        // name size refcount deps state address [taint]: the refcount and
        // state change without the symbols changing.
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (name, size, address) = (fields.first()?, fields.get(1)?, fields.get(5)?);
        text.push_str(&format!("module {name} {size} {address}\n"));
    }
    for id in bpf_program_ids()? {
        text.push_str(&format!("bpf {id}\n"));
    }
    Some(text)
}

/// The ids of the loaded BPF programs, `None` if they cannot be listed (no
/// privilege to, or no BPF system call).
fn bpf_program_ids() -> Option<Vec<u32>> {
    let mut ids = Vec::new();
    let mut id = 0u32;
    loop {
        let mut next = 0u32;
        // SAFETY: the call writes one u32 through a pointer to a live local.
        let status = unsafe { libbpf_rs::libbpf_sys::bpf_prog_get_next_id(id, &mut next) };
        if status == -libc::ENOENT {
            return Some(ids);
        }
        if status != 0 {
            return None;
        }
        ids.push(next);
        id = next;
    }
}

/// The copy, open, if `path` is the user's own regular file (not a
/// symlink, writable by no one else) in a directory of theirs.
fn open_own(path: &Path) -> Option<(fs::File, u64)> {
    let dir = path.parent()?;
    let euid = effective_uid();
    let dir_meta = fs::symlink_metadata(dir).ok()?;
    if !dir_meta.is_dir() || dir_meta.uid() != euid || dir_meta.mode() & 0o022 != 0 {
        return None;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.uid() != euid || meta.mode() & 0o077 != 0 {
        return None;
    }
    Some((file, meta.len()))
}

/// The size of the copy's header if `bytes` (its start) hold all of it and
/// it was made with the kernel's symbols as they are now.
fn header_size(bytes: &[u8], now: &str) -> Option<usize> {
    let rest = bytes.strip_prefix(MAGIC.as_bytes())?;
    let newline = rest.iter().position(|&b| b == b'\n')?;
    let len: usize = std::str::from_utf8(&rest[..newline]).ok()?.parse().ok()?;
    let fingerprint = rest.get(newline + 1..newline + 1 + len)?;
    (fingerprint == now.as_bytes()).then_some(MAGIC.len() + newline + 1 + len)
}

/// The copy's text, if it is the user's own and current (see
/// [`open_own`], [`header_size`]).
fn read_copy(path: &Path, now: &str) -> Option<String> {
    let (file, size) = open_own(path)?;
    text_of(&file, size, now)
}

/// The symbols in an open copy of `size` bytes, if it is current.
fn text_of(mut file: &fs::File, size: u64, now: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(size as usize);
    file.read_to_end(&mut bytes).ok()?;
    let header = header_size(&bytes, now)?;
    let mut text = String::from_utf8(bytes).ok()?;
    // The symbols are the rest: the header goes, the megabytes stay put.
    text.drain(..header);
    Some(text)
}

/// The copy, left unread but for its header and first lines, if it is the
/// user's own and current.
fn open_copy(path: &Path, now: &str) -> Option<CodeSymbols> {
    use std::os::unix::fs::FileExt;
    let (file, size) = open_own(path)?;
    // The header, and the first symbols, where the kernel's start is.
    let mut head = vec![0u8; (size as usize).min(now.len() + (64 << 10))];
    file.read_exact_at(&mut head, 0).ok()?;
    let header = header_size(&head, now)?;
    let lines = std::str::from_utf8(&head[header..]).ok()?;
    let whole_lines = &lines[..lines.rfind('\n').map_or(0, |n| n + 1)];
    let kernel_text = match kallsyms::address_in(whole_lines, "_text") {
        Some(address) => Some(address),
        // Not among the first lines: look through them all.
        None => kallsyms::address_in(&text_of(&file, size, now)?, "_text"),
    };
    Some(CodeSymbols::InCopy {
        file,
        offset: header as u64,
        len: size - header as u64,
        kernel_text,
    })
}

/// Writes the copy: header, what the symbols depended on, the symbols.
fn write_copy(path: &Path, now: &str, text: &str) -> Result<()> {
    let dir = path.parent().expect("the cache path has a directory");
    let euid = effective_uid();
    // The directory above ours must be the user's: root under sudo with
    // another user's HOME leaves that home alone.
    let above = dir.parent().expect("the cache directory has a parent");
    match fs::symlink_metadata(above) {
        Ok(m) if m.is_dir() && m.uid() == euid => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(above)
                .io_context(|| format!("cannot create {}", above.display()))?;
        }
        _ => return Ok(()),
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).io_context(|| format!("cannot create {}", dir.display())),
    }
    let dir_meta =
        fs::symlink_metadata(dir).io_context(|| format!("cannot read {}", dir.display()))?;
    if !dir_meta.is_dir() || dir_meta.uid() != euid {
        return Ok(());
    }
    // Only a regular file (or nothing) is replaced.
    match fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() => return Ok(()),
        _ => {}
    }
    write_atomically(path, |out| {
        let header = format!("{MAGIC}{}\n{now}", now.len());
        out.write_all(header.as_bytes())
            .and_then(|()| out.write_all(text.as_bytes()))
            .io_context(|| format!("cannot write {}", path.display()))
    })
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
