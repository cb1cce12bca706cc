//! A mapped file's separate debug file, read for its ELF symbol table.
//!
//! Distributions ship a library's full symbol table (static functions
//! included) in a debug file named after its build id, beside DWARF that
//! takes far longer to read: libc's is megabytes of compressed sections, 25
//! ms of every report that names a libc frame. A report names functions
//! only, and the symbol table has every function's name. The debug file
//! keeps the sections' addresses but not their bytes, so frames are looked
//! up there by address, the mapped file's own program headers turning each
//! file offset into one.

use std::path::{Path, PathBuf};

/// Where distributions install debug files, as blazesym looks for them.
const DEBUG_DIRS: [&str; 2] = ["/usr/lib/debug", "/lib/debug"];

/// A mapped file's debug file and how to find its addresses.
pub struct DebugFile {
    pub path: PathBuf,
    /// The file's loaded segments: (file offset, size in the file, address).
    segments: Vec<(u64, u64, u64)>,
}

impl DebugFile {
    /// The debug file of the ELF file at `path` with build id `build_id`,
    /// if one is installed (a regular file).
    pub fn find(path: &str, build_id: &[u8]) -> Option<DebugFile> {
        let (first, rest) = build_id.split_first()?;
        if rest.is_empty() {
            return None;
        }
        let rest: String = rest.iter().map(|b| format!("{b:02x}")).collect();
        let debug = DEBUG_DIRS
            .iter()
            .map(|dir| PathBuf::from(format!("{dir}/.build-id/{first:02x}/{rest}.debug")))
            .find(|p| crate::infile::is_regular(p))?;
        let segments = load_segments(Path::new(path))?;
        Some(DebugFile {
            path: debug,
            segments,
        })
    }

    /// The address of the byte at `offset` in the mapped file, as the
    /// symbol table counts addresses; None outside its loaded segments.
    pub fn address(&self, offset: u64) -> Option<u64> {
        self.segments.iter().find_map(|&(start, size, address)| {
            let within = offset.checked_sub(start).filter(|&d| d < size)?;
            address.checked_add(within)
        })
    }
}

/// The PT_LOAD program headers of a 64-bit ELF file in this machine's byte
/// order: (p_offset, p_filesz, p_vaddr) each. None for other files, which
/// are then named as before, from their own sections.
fn load_segments(path: &Path) -> Option<Vec<(u64, u64, u64)>> {
    use std::io::{Read, Seek, SeekFrom};
    const PT_LOAD: u32 = 1;
    let mut file = std::fs::File::open(path).ok()?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header).ok()?;
    let native = if cfg!(target_endian = "little") { 1 } else { 2 };
    // ELF magic, 64-bit class, native byte order.
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != native {
        return None;
    }
    let u16_at = |b: &[u8], at: usize| u16::from_ne_bytes([b[at], b[at + 1]]);
    let u64_at =
        |b: &[u8], at: usize| u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let (phoff, phentsize, phnum) = (
        u64_at(&header, 0x20),
        usize::from(u16_at(&header, 0x36)),
        usize::from(u16_at(&header, 0x38)),
    );
    // An ELF64 program header is 56 bytes; a count of 0xffff means the
    // real one is elsewhere (no library has that many). Anything else is
    // not a file to trust with an allocation.
    if !(56..=256).contains(&phentsize) || phnum == 0 || phnum >= 0xffff {
        return None;
    }
    let mut table = vec![0u8; phentsize * phnum];
    file.seek(SeekFrom::Start(phoff)).ok()?;
    file.read_exact(&mut table).ok()?;
    let segments: Vec<(u64, u64, u64)> = table
        .chunks_exact(phentsize)
        .filter(|h| u32::from_ne_bytes(h[..4].try_into().expect("4 bytes")) == PT_LOAD)
        .map(|h| (u64_at(h, 8), u64_at(h, 32), u64_at(h, 16)))
        .collect();
    (!segments.is_empty()).then_some(segments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_addresses_through_the_loaded_segments() {
        let file = DebugFile {
            path: PathBuf::new(),
            segments: vec![(0, 0x1000, 0), (0x1000, 0x2000, 0x201000)],
        };
        assert_eq!(file.address(0x10), Some(0x10));
        assert_eq!(file.address(0x1010), Some(0x201010));
        assert_eq!(file.address(0x3000), None);
        // A corrupt header's sizes and addresses cannot overflow.
        let corrupt = DebugFile {
            path: PathBuf::new(),
            segments: vec![(u64::MAX - 1, u64::MAX, u64::MAX)],
        };
        assert_eq!(corrupt.address(u64::MAX), None);
    }

    #[test]
    fn the_test_binary_has_loaded_segments_and_no_other_file_does() {
        let me = std::env::current_exe().unwrap();
        let segments = load_segments(&me).unwrap();
        assert!(segments.iter().any(|&(_, size, _)| size > 0));
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("not-elf");
        std::fs::write(&text, [b'x'; 100]).unwrap();
        assert!(load_segments(&text).is_none());
    }
}
