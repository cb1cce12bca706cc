//! Writes perf.data files (the "PERFILE2" layout, little endian).
//!
//! Layout: header, data section (records as the kernel produced them, plus
//! the records netprof synthesizes), feature section table and bodies, then
//! the ids and attrs. Only the header's fixed offsets are fixed; everything
//! else is found through them, so attrs may follow the data. The file becomes
//! visible under its name only when complete (see [`crate::outfile`]).

use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use super::attr::{EventAttr, ATTR_SIZE};
use super::*;
use crate::error::{Error, IoContext, Result};
use crate::outfile::{Access, OutputFile};

const HEADER_SIZE: u64 = 104;
const FILE_SECTION_SIZE: usize = 16;

/// One event of the file: its attr, the name perf shows, and the kernel ids of
/// its per-CPU (or per-task) instances, by which samples find their event.
pub struct EventDesc {
    pub attr: EventAttr,
    pub name: String,
    pub ids: Vec<u64>,
}

/// A feature section's contents.
pub enum FeatureBody {
    Bytes(Vec<u8>),
    /// `len` bytes at `offset` of an open file, copied file to file by the
    /// kernel (copy_file_range) rather than read and written back: the
    /// kernel symbols are megabytes, and reading them in and writing them
    /// out was a tenth of a 30 s `record --bpf`'s CPU.
    File {
        file: std::fs::File,
        offset: u64,
        len: u64,
    },
}

impl FeatureBody {
    fn len(&self) -> u64 {
        match self {
            FeatureBody::Bytes(bytes) => bytes.len() as u64,
            FeatureBody::File { len, .. } => *len,
        }
    }
}

impl From<Vec<u8>> for FeatureBody {
    fn from(bytes: Vec<u8>) -> Self {
        FeatureBody::Bytes(bytes)
    }
}

/// Room the buffered writer may still hold when the disk fills up.
const BUFFER: usize = 1 << 20;

pub struct PerfDataWriter {
    out: BufWriter<OutputFile>,
    data_size: u64,
    /// The disk filled up: the reserve was spent on what was buffered, and
    /// records are no longer taken, so the end of the file still fits.
    full: bool,
}

impl PerfDataWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let mut out = BufWriter::with_capacity(BUFFER, OutputFile::create(path, Access::Seekable)?);
        out.write_all(&[0u8; HEADER_SIZE as usize])
            .io_context(|| format!("cannot write {}", path.display()))?;
        Ok(PerfDataWriter {
            out,
            data_size: 0,
            full: false,
        })
    }

    /// Whether the file is netprof's standard output.
    pub fn is_stdout(&self) -> bool {
        self.out.get_ref().is_standard_output()
    }

    /// Holds back room for the end of the file (`trailer` bytes: the kernel
    /// symbols and other features) and for what the buffer holds, so that a
    /// disk that fills up while recording still takes a complete file.
    /// Fails at once when the disk has not that much room.
    pub fn reserve(&mut self, trailer: u64) -> Result<()> {
        let bytes = trailer + 2 * BUFFER as u64;
        let file = self.out.get_mut();
        if let Some(free) = file.free_space() {
            if free < bytes + 2 * BUFFER as u64 {
                return Err(Error::failed(format!(
                    "only {} MiB are free for {}; a recording needs at least {} MiB there (its kernel symbols \
                     alone take {} MiB): free space or record elsewhere with -o",
                    free >> 20,
                    file.path().display(),
                    (bytes >> 20) + 4,
                    trailer >> 20
                )));
            }
        }
        file.reserve(bytes)
    }

    /// Whether the disk filled up: records are no longer taken, and what
    /// was taken will be a complete file.
    pub fn disk_full(&self) -> bool {
        self.full
    }

    /// Appends one record (header included) to the data section.
    pub fn write_record(&mut self, record: &[u8]) -> Result<()> {
        if self.full {
            return Ok(());
        }
        if let Err(e) = self.out.write_all(record) {
            let disk_full = matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT));
            if !(disk_full && self.out.get_mut().release_reserve()) {
                return Err(Error::io(
                    format!("cannot write {}", self.out.get_ref().path().display()),
                    &e,
                ));
            }
            // The reserve's room takes what was buffered and this record.
            self.full = true;
            self.out
                .write_all(record)
                .and_then(|()| self.out.flush())
                .map_err(|e| {
                    Error::io(
                        format!("cannot write {}", self.out.get_ref().path().display()),
                        &e,
                    )
                })?;
        }
        self.data_size += record.len() as u64;
        Ok(())
    }

    /// Marks that every record before this point was read from all ring
    /// buffers, so readers may sort by time up to here (as perf does).
    pub fn finish_round(&mut self) -> Result<()> {
        self.write_record(&record_header(PERF_RECORD_FINISHED_ROUND, 0, 8))
    }

    /// Writes features, ids, attrs and the header, and gives the file its
    /// name; returns the size of the whole file.
    pub fn finish(mut self, events: &[EventDesc], features: &[(u32, FeatureBody)]) -> Result<u64> {
        let path = self.out.get_ref().path().to_path_buf();
        // The end of the file goes where the reserve was.
        self.out.get_mut().release_reserve();
        let (file, size) = self
            .write_trailer(events, features)
            .io_context(|| format!("cannot write {}", path.display()))?;
        file.commit()?;
        Ok(size)
    }

    fn write_trailer(
        mut self,
        events: &[EventDesc],
        features: &[(u32, FeatureBody)],
    ) -> std::io::Result<(OutputFile, u64)> {
        let mut features: Vec<&(u32, FeatureBody)> = features.iter().collect();
        features.sort_by_key(|(bit, _)| *bit);

        let data_end = HEADER_SIZE + self.data_size;
        let table_size = (features.len() * FILE_SECTION_SIZE) as u64;
        let mut pos = data_end + table_size;
        for (_, body) in &features {
            self.out.write_all(&section(pos, body.len()))?;
            pos += body.len();
        }
        for (_, body) in &features {
            match body {
                FeatureBody::Bytes(bytes) => self.out.write_all(bytes)?,
                FeatureBody::File { file, offset, len } => {
                    self.out.flush()?;
                    copy_range(file, *offset, *len, self.out.get_mut().file())?;
                }
            }
        }
        // perf reads ids and attrs with 8-byte loads; align them.
        let pad = (8 - pos % 8) % 8;
        self.out.write_all(&vec![0u8; pad as usize])?;
        pos += pad;

        let mut id_sections = Vec::new();
        for ev in events {
            id_sections.push(section(pos, 8 * ev.ids.len() as u64));
            for id in &ev.ids {
                self.out.write_all(&id.to_le_bytes())?;
            }
            pos += 8 * ev.ids.len() as u64;
        }
        let attrs_offset = pos;
        for (ev, ids) in events.iter().zip(&id_sections) {
            self.out.write_all(&ev.attr.to_bytes())?;
            self.out.write_all(ids)?;
        }
        let attr_entry = (ATTR_SIZE + FILE_SECTION_SIZE) as u64;

        let mut header = Vec::with_capacity(HEADER_SIZE as usize);
        header.extend_from_slice(b"PERFILE2");
        header.extend_from_slice(&HEADER_SIZE.to_le_bytes());
        header.extend_from_slice(&attr_entry.to_le_bytes());
        header.extend_from_slice(&section(attrs_offset, attr_entry * events.len() as u64));
        header.extend_from_slice(&section(HEADER_SIZE, self.data_size));
        header.extend_from_slice(&section(0, 0)); // event_types: unused since perf 2.6
        let mut bitmap = [0u64; 4];
        for (bit, _) in &features {
            bitmap[*bit as usize / 64] |= 1 << (bit % 64);
        }
        for word in bitmap {
            header.extend_from_slice(&word.to_le_bytes());
        }
        let size = pos + attr_entry * events.len() as u64;
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&header)?;
        Ok((self.out.into_inner().map_err(|e| e.into_error())?, size))
    }
}

/// Appends `len` bytes at `offset` of `from` to `to` (at its position): by
/// copy_file_range where the kernel can (regular files, even across file
/// systems since 5.19), else read and written.
fn copy_range(
    from: &std::fs::File,
    offset: u64,
    len: u64,
    to: &mut std::fs::File,
) -> std::io::Result<()> {
    use std::os::fd::AsFd;
    let mut at = offset;
    let end = offset + len;
    while at < end {
        let want = (end - at).min(1 << 30) as usize;
        match rustix::fs::copy_file_range(from.as_fd(), Some(&mut at), to.as_fd(), None, want) {
            Ok(0) => break,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            // A pipe, another file system before 5.19, an old kernel.
            Err(_) => break,
        }
    }
    let mut buf = vec![0u8; (end - at).min(1 << 20) as usize];
    while at < end {
        use std::os::unix::fs::FileExt;
        let want = ((end - at) as usize).min(buf.len());
        let n = from.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "a feature's source file ended early",
            ));
        }
        to.write_all(&buf[..n])?;
        at += n as u64;
    }
    Ok(())
}

fn section(offset: u64, size: u64) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&offset.to_le_bytes());
    s[8..].copy_from_slice(&size.to_le_bytes());
    s
}

pub fn record_header(type_: u32, misc: u16, size: u16) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&type_.to_le_bytes());
    h[4..6].copy_from_slice(&misc.to_le_bytes());
    h[6..].copy_from_slice(&size.to_le_bytes());
    h
}

/// The trailer that `sample_id_all` requires on every non-sample record, in the
/// field order of our sample_type: pid/tid, time, id, cpu.
pub struct SampleId {
    pub pid: u32,
    pub tid: u32,
    pub id: u64,
}

/// Builds records netprof synthesizes: the state of the system at the start
/// (process names, memory maps, kernel and module maps) that the kernel only
/// reports for changes during the run.
pub struct RecordBuilder {
    buf: Vec<u8>,
}

impl RecordBuilder {
    fn new() -> Self {
        Self::with_room(0)
    }
    /// A record of `bytes` after its header grows no buffer on the way.
    fn with_room(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(8 + bytes);
        buf.resize(8, 0);
        RecordBuilder { buf }
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A NUL-terminated string padded to 8 bytes.
    fn string(&mut self, s: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(s);
        let padded = (s.len() + 1).div_ceil(8) * 8;
        self.buf.resize(self.buf.len() + padded - s.len(), 0);
        self
    }
    fn finish(mut self, type_: u32, misc: u16, sid: &SampleId) -> Vec<u8> {
        self.u32(sid.pid)
            .u32(sid.tid)
            .u64(0)
            .u64(sid.id)
            .u32(0)
            .u32(0);
        let size = self.buf.len() as u16;
        self.buf[..8].copy_from_slice(&record_header(type_, misc, size));
        self.buf
    }

    /// A sample in netprof's layout (see `EventAttr::sample_type`) with no
    /// raw data (an empty one where the layout has it), written into `buf`
    /// (emptied first; a writer of many samples keeps one buffer).
    /// `callchain`, when given, is the frames with their PERF_CONTEXT
    /// markers as the kernel writes them, in parts taken one after another.
    pub fn sample_into(buf: &mut Vec<u8>, s: &SampleFields, callchain: Option<&[&[u64]]>) {
        let frames: usize = callchain.map_or(0, |parts| parts.iter().map(|p| p.len()).sum());
        buf.clear();
        buf.reserve(8 + 48 + 8 + 8 * frames + 8);
        buf.resize(8, 0);
        // The builder borrows the buffer's room and hands it back below.
        let mut r = RecordBuilder {
            buf: std::mem::take(buf),
        };
        r.u64(s.ip)
            .u32(s.pid)
            .u32(s.tid)
            .u64(s.time)
            .u64(s.id)
            .u32(s.cpu)
            .u32(0)
            .u64(s.period);
        if let Some(parts) = callchain {
            r.u64(frames as u64);
            for &f in parts.iter().copied().flatten() {
                r.u64(f);
            }
        }
        if s.empty_raw {
            // As the kernel writes it: a size of 4, then 4 zero bytes.
            r.u32(4).u32(0);
        }
        let size = r.buf.len() as u16;
        let misc = if s.kernel {
            PERF_RECORD_MISC_KERNEL
        } else {
            PERF_RECORD_MISC_USER
        };
        r.buf[..8].copy_from_slice(&record_header(PERF_RECORD_SAMPLE, misc, size));
        *buf = r.buf;
    }

    /// Samples of event `id` that were not recorded (PERF_RECORD_LOST).
    pub fn lost(id: u64, count: u64) -> Vec<u8> {
        let mut r = Self::new();
        r.u64(id).u64(count);
        r.finish(PERF_RECORD_LOST, 0, &SampleId { pid: 0, tid: 0, id })
    }

    pub fn comm(pid: u32, tid: u32, comm: &[u8], id: u64) -> Vec<u8> {
        let mut r = Self::new();
        r.u32(pid).u32(tid).string(&comm[..comm.len().min(15)]);
        r.finish(PERF_RECORD_COMM, 0, &SampleId { pid, tid, id })
    }

    /// A user-space file mapping of process `pid` (MMAP2 without
    /// device/inode identity).
    pub fn mmap2(pid: u32, m: &Mapping, id: u64) -> Vec<u8> {
        let mut r = Self::new();
        r.u32(pid)
            .u32(pid)
            .u64(m.start)
            .u64(m.end - m.start)
            .u64(m.pgoff);
        r.u32(0).u32(0).u64(0).u64(0); // maj, min, ino, ino_generation
        r.u32(libc::PROT_READ as u32 | libc::PROT_EXEC as u32)
            .u32(libc::MAP_PRIVATE as u32);
        r.string(m.path.as_bytes());
        r.finish(
            PERF_RECORD_MMAP2,
            PERF_RECORD_MISC_USER,
            &SampleId { pid, tid: pid, id },
        )
    }

    /// A kernel map (vmlinux as `[kernel.kallsyms]_text`, or a module), the
    /// way `perf record` synthesizes them: pid -1 and the kernel misc bit.
    pub fn kernel_mmap(name: &str, start: u64, end: u64, pgoff: u64, id: u64) -> Vec<u8> {
        let mut r = Self::new();
        r.u32(u32::MAX)
            .u32(0)
            .u64(start)
            .u64(end - start)
            .u64(pgoff);
        r.string(name.as_bytes());
        r.finish(
            PERF_RECORD_MMAP,
            PERF_RECORD_MISC_KERNEL,
            &SampleId {
                pid: u32::MAX,
                tid: 0,
                id,
            },
        )
    }
}

/// The fixed fields of a sample record.
#[derive(Clone, Copy, Debug)]
pub struct SampleFields {
    pub ip: u64,
    pub pid: u32,
    pub tid: u32,
    pub time: u64,
    pub id: u64,
    pub cpu: u32,
    pub period: u64,
    /// Whether the sample hit in the kernel.
    pub kernel: bool,
    /// The file's layout has raw data, and this sample has none.
    pub empty_raw: bool,
}

/// perf's header string: u32 length (padded to 64), bytes, NULs.
fn header_string(out: &mut Vec<u8>, s: &str) {
    let len = (s.len() + 1).div_ceil(64) * 64;
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    out.resize(out.len() + len - s.len(), 0);
}

pub fn string_feature(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    header_string(&mut out, s);
    out
}

pub fn cmdline_feature(args: &[String]) -> Vec<u8> {
    let mut out = (args.len() as u32).to_le_bytes().to_vec();
    for a in args {
        header_string(&mut out, a);
    }
    out
}

pub fn nrcpus_feature(available: u32, online: u32) -> Vec<u8> {
    let mut out = available.to_le_bytes().to_vec();
    out.extend_from_slice(&online.to_le_bytes());
    out
}

/// Event names, so that perf and netprof show `cpu-clock` or
/// `sched:sched_switch` rather than numbers.
pub fn event_desc_feature(events: &[EventDesc]) -> Vec<u8> {
    let mut out = (events.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&(ATTR_SIZE as u32).to_le_bytes());
    for ev in events {
        out.extend_from_slice(&ev.attr.to_bytes());
        out.extend_from_slice(&(ev.ids.len() as u32).to_le_bytes());
        header_string(&mut out, &ev.name);
        for id in &ev.ids {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    out
}

/// A file and its GNU build id, for perf's BUILD_ID feature: readers use it
/// to tell whether the file on disk is still the one that was profiled.
pub struct BuildId {
    pub kernel: bool,
    pub path: String,
    pub id: Vec<u8>,
}

/// PERF_RECORD_HEADER_BUILD_ID entries, the layout perf writes.
pub fn build_id_feature(ids: &[BuildId]) -> Vec<u8> {
    const PERF_RECORD_HEADER_BUILD_ID: u32 = 67;
    const MISC_BUILD_ID_SIZE: u16 = 1 << 15;
    let mut out = Vec::new();
    for b in ids {
        let name_len = (b.path.len() + 1).div_ceil(64) * 64;
        let size = 8 + 4 + 24 + name_len;
        let misc = if b.kernel {
            PERF_RECORD_MISC_KERNEL
        } else {
            PERF_RECORD_MISC_USER
        } | MISC_BUILD_ID_SIZE;
        out.extend_from_slice(&record_header(
            PERF_RECORD_HEADER_BUILD_ID,
            misc,
            size as u16,
        ));
        out.extend_from_slice(&(-1i32).to_le_bytes()); // the host machine
        let mut id = [0u8; 24];
        let n = b.id.len().min(20);
        id[..n].copy_from_slice(&b.id[..n]);
        id[20] = n as u8;
        out.extend_from_slice(&id);
        out.extend_from_slice(b.path.as_bytes());
        out.resize(out.len() + name_len - b.path.len(), 0);
    }
    out
}

/// Tracepoint formats: for each event, u32 length + name, u32 length + format.
pub fn tp_formats_feature(formats: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, format) in formats {
        for s in [name, format] {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

/// perf's TRACING_DATA feature, which perf needs to decode the fields of
/// tracepoint samples: the trace-cmd layout with the ring-buffer headers and
/// the formats of the recorded events only (no ftrace formats, kallsyms,
/// printk formats or command lines; netprof has its own kallsyms snapshot).
pub fn tracing_data_feature(
    header_page: &str,
    header_event: &str,
    formats: &[(&str, &str)],
) -> Vec<u8> {
    let mut out = b"\x17\x08\x44tracing".to_vec();
    out.extend_from_slice(b"0.6\0");
    out.push(0); // little endian
    out.push(std::mem::size_of::<libc::c_long>() as u8);
    out.extend_from_slice(&(procfs::page_size() as u32).to_le_bytes());
    for (name, text) in [("header_page", header_page), ("header_event", header_event)] {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(&(text.len() as u64).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(&0u32.to_le_bytes()); // ftrace formats
                                                // Event formats grouped by system (`sched` of `sched:sched_switch`).
    let mut systems: Vec<&str> = formats
        .iter()
        .map(|(n, _)| n.split(':').next().unwrap_or(n))
        .collect();
    systems.dedup();
    out.extend_from_slice(&(systems.len() as u32).to_le_bytes());
    for system in systems {
        out.extend_from_slice(system.as_bytes());
        out.push(0);
        let of_system: Vec<&str> = formats
            .iter()
            .filter(|(n, _)| n.split(':').next() == Some(system))
            .map(|(_, f)| *f)
            .collect();
        out.extend_from_slice(&(of_system.len() as u32).to_le_bytes());
        for f in of_system {
            out.extend_from_slice(&(f.len() as u64).to_le_bytes());
            out.extend_from_slice(f.as_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes()); // kallsyms
    out.extend_from_slice(&0u32.to_le_bytes()); // printk formats
    out.extend_from_slice(&0u64.to_le_bytes()); // saved command lines
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};

    /// Bytes 1000..31000 of a file of counting bytes.
    fn source() -> (tempfile::NamedTempFile, Vec<u8>) {
        let bytes: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&bytes).unwrap();
        (file, bytes[1000..31_000].to_vec())
    }

    #[test]
    fn a_range_is_copied_after_what_the_file_holds() {
        let (from, want) = source();
        let mut to = tempfile::tempfile().unwrap();
        to.write_all(b"head").unwrap();
        copy_range(from.as_file(), 1000, 30_000, &mut to).unwrap();
        let mut got = Vec::new();
        to.seek(SeekFrom::Start(0)).unwrap();
        to.read_to_end(&mut got).unwrap();
        assert_eq!(&got[..4], b"head");
        assert!(got[4..] == want[..]);
    }

    #[test]
    fn a_range_reaches_a_pipe_by_reading_and_writing() {
        let (from, want) = source();
        let mut fds = [0; 2];
        // SAFETY: pipe writes two descriptors into the array, which the
        // OwnedFds below then own.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the two descriptors are open and owned by nothing else.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut to = std::fs::File::from(write_end);
        // 30,000 bytes fit in a pipe's 64 KiB.
        copy_range(from.as_file(), 1000, 30_000, &mut to).unwrap();
        drop(to);
        let mut got = Vec::new();
        std::fs::File::from(read_end).read_to_end(&mut got).unwrap();
        assert!(got == want);
    }

    #[test]
    fn a_source_shorter_than_its_range_is_an_error() {
        let (from, _) = source();
        let mut to = tempfile::tempfile().unwrap();
        assert!(copy_range(from.as_file(), 39_000, 2000, &mut to).is_err());
    }
}
