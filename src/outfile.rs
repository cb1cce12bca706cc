//! Output files that hold kernel addresses: created 0600, never through a
//! symlink netprof was not meant to follow, never replacing what is not a
//! regular file, and complete or absent, never half written.
//!
//! What the destination is decides how it is written:
//! - a new path or a regular file: written under a temporary name in the
//!   same directory and renamed over the destination when complete
//!   (`rename` replaces a symlink there rather than following it). If the
//!   writer dies (kill -9), the destination keeps its old content and the
//!   temporary stays behind; the next netprof run writing to that directory
//!   removes temporaries whose process is gone;
//! - a character device (`/dev/null`) or a FIFO named directly, and the
//!   standard streams (`/dev/stdout`, `/dev/fd/N`, `/proc/self/fd/N`):
//!   written in place, through the descriptor the shell redirected;
//! - anything else (a directory, a block device, a socket): refused.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, IoContext, Result};

const TMP_MARK: &str = ".netprof-tmp-";

/// An output being written; [`OutputFile::commit`] completes it.
pub struct OutputFile {
    file: Option<File>,
    path: PathBuf,
    /// For a replaced file: the temporary it is written under.
    tmp_path: Option<PathBuf>,
    reserve: Option<Reserve>,
}

/// Disk space held back beside an output (a preallocated file), so that a
/// writer whose disk fills up can still finish: releasing it frees the room.
struct Reserve {
    path: PathBuf,
}

impl Drop for Reserve {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What kind of output a file must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Written from start to end (SVG, text).
    Sequential,
    /// Seeked back into while written (perf.data's header comes last).
    Seekable,
}

impl OutputFile {
    pub fn create(path: &Path, access: Access) -> Result<OutputFile> {
        if let Some(fd) = standard_stream(path) {
            // SAFETY: a standard stream's descriptor stays open for the whole
            // run; the duplicate is ours to close.
            let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
            if dup < 0 {
                return Err(Error::io(
                    format!("cannot write to {}", path.display()),
                    &io::Error::last_os_error(),
                ));
            }
            // SAFETY: dup is a fresh descriptor we own.
            let file = File::from(unsafe { OwnedFd::from_raw_fd(dup) });
            return in_place(file, path, access);
        }
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => replace(path),
            Err(e) => Err(Error::io(format!("cannot write {}", path.display()), &e)),
            Ok(m) if m.is_file() || m.file_type().is_symlink() => replace(path),
            Ok(m) if m.is_dir() => Err(Error::bad_argument(format!(
                "{} is a directory; give a file name for the output",
                path.display()
            ))),
            Ok(m) if m.file_type().is_char_device() => {
                let file = OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(path)
                    .io_context(|| format!("cannot write {}", path.display()))?;
                in_place(file, path, access)
            }
            Ok(m) if m.file_type().is_fifo() => in_place(open_fifo(path)?, path, access),
            Ok(_) => Err(Error::bad_argument(format!(
                "{} is neither a regular file nor a character device or FIFO; give a file name for the output",
                path.display()
            ))),
        }
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("file used after commit")
    }

    /// Completes the output: a replaced file appears under its name.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("committed twice");
        let Some(tmp_path) = self.tmp_path.take() else {
            return Ok(());
        };
        file.sync_all()
            .io_context(|| format!("cannot write {}", self.path.display()))?;
        drop(file);
        fs::rename(&tmp_path, &self.path)
            .io_context(|| format!("cannot write {}", self.path.display()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether netprof's standard output writes to this very file (`-o
    /// /dev/stdout`, or the same file redirected), so that nothing else
    /// may be printed there.
    pub fn is_standard_output(&self) -> bool {
        let (Some(file), Ok(stdout)) = (&self.file, rustix::fs::fstat(io::stdout())) else {
            return false;
        };
        let Ok(ours) = rustix::fs::fstat(file) else {
            return false;
        };
        (ours.st_dev, ours.st_ino) == (stdout.st_dev, stdout.st_ino)
    }

    /// Free bytes on the file system the output is written to (replaced
    /// files only: a device or a stream has no such limit to check).
    pub fn free_space(&self) -> Option<u64> {
        let stat = rustix::fs::statvfs(self.tmp_path.as_deref()?).ok()?;
        Some(stat.f_bavail.saturating_mul(stat.f_frsize))
    }

    /// Holds back `bytes` of the output's file system for the end of the
    /// file (replaced files only). Fails when there is not that much room.
    pub fn reserve(&mut self, bytes: u64) -> Result<()> {
        let Some(tmp) = &self.tmp_path else {
            return Ok(());
        };
        let path = PathBuf::from(format!(
            "{}.reserve{TMP_MARK}{}",
            tmp.to_string_lossy()
                .split(TMP_MARK)
                .next()
                .unwrap_or_default(),
            std::process::id()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .io_context(|| format!("cannot reserve space beside {}", self.path.display()))?;
        let reserve = Reserve { path };
        allocate(&file, bytes).io_context(|| {
            format!(
                "cannot reserve {} MiB beside {}",
                bytes >> 20,
                self.path.display()
            )
        })?;
        self.reserve = Some(reserve);
        Ok(())
    }

    /// Gives the reserved space back; false if there was none.
    pub fn release_reserve(&mut self) -> bool {
        self.reserve.take().is_some()
    }
}

impl Drop for OutputFile {
    /// An output given up (an error, a failed write) leaves no temporary.
    fn drop(&mut self) {
        if let (Some(_), Some(tmp)) = (&self.file, &self.tmp_path) {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Takes `bytes` of the file system for `file`: fallocate, or where the
/// file system has none (9p, some FUSE and NFS mounts) zeros written out,
/// which take the room just the same.
fn allocate(file: &File, bytes: u64) -> io::Result<()> {
    match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, bytes) {
        Ok(()) => return Ok(()),
        Err(e) if e == rustix::io::Errno::OPNOTSUPP => {}
        Err(e) => return Err(io::Error::from_raw_os_error(e.raw_os_error())),
    }
    let zeros = vec![0u8; 1 << 16];
    let mut writer = file;
    let mut left = bytes;
    while left > 0 {
        let chunk = left.min(zeros.len() as u64) as usize;
        writer.write_all(&zeros[..chunk])?;
        left -= chunk as u64;
    }
    file.sync_data()
}

/// The descriptor behind a path that names a standard stream, which the
/// user means to write through (`report --flame /dev/stdout > x.svg`).
fn standard_stream(path: &Path) -> Option<i32> {
    let text = path.to_str()?;
    match text {
        "/dev/stdout" => return Some(1),
        "/dev/stderr" => return Some(2),
        _ => {}
    }
    let number = text
        .strip_prefix("/dev/fd/")
        .or_else(|| text.strip_prefix("/proc/self/fd/"))?;
    number.parse().ok().filter(|&fd: &i32| fd >= 0)
}

/// A FIFO opened for writing; a FIFO nobody reads is an error, not a wait
/// that Ctrl-C cannot end.
fn open_fifo(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENXIO) => Error::failed(format!(
                "FIFO {} has no reader; start the reading side first",
                path.display()
            )),
            _ => Error::io(format!("cannot write {}", path.display()), &e),
        })?;
    // Writes block as usual once a reader is there.
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    Ok(file)
}

/// An output written in place; perf.data needs it seekable from its start.
fn in_place(mut file: File, path: &Path, access: Access) -> Result<OutputFile> {
    if access == Access::Seekable && !matches!(file.stream_position(), Ok(0)) {
        return Err(Error::bad_argument(format!(
            "{} cannot be written from its start (a pipe or terminal?): a recording is written back to front; \
             give a regular file with -o",
            path.display()
        )));
    }
    Ok(OutputFile {
        file: Some(file),
        path: path.to_path_buf(),
        tmp_path: None,
        reserve: None,
    })
}

/// A regular file (or new path, or symlink) replaced when complete.
fn replace(path: &Path) -> Result<OutputFile> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| {
            Error::bad_argument(format!(
                "{}: not a file name; give a path such as out.data",
                path.display()
            ))
        })?
        .to_string_lossy()
        .into_owned();
    sweep_dead_temporaries(&dir);
    let tmp_path = dir.join(format!(".{name}{TMP_MARK}{}", std::process::id()));
    let file = OpenOptions::new()
        .write(true)
        .read(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp_path)
        .map_err(|e| match ErrorKind::of_io(&e) {
            ErrorKind::NoPermission => Error::no_permission(format!(
                "no permission to create a file in {} ({e}); write to a directory you own or pass another path",
                dir.display()
            )),
            _ => Error::io(format!("cannot create a file in {}", dir.display()), &e),
        })?;
    Ok(OutputFile {
        file: Some(file),
        path: path.to_path_buf(),
        tmp_path: Some(tmp_path),
        reserve: None,
    })
}

// Buffered writers (the perf.data writer, SVG output) write through.
impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Seek for OutputFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file().seek(pos)
    }
}

/// Writes an output through `write`, buffered; a replaced file gets its
/// name only if every byte was written, so a failed or interrupted run
/// leaves the old file.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<&mut OutputFile>) -> Result<()>,
) -> Result<()> {
    let mut file = OutputFile::create(path, Access::Sequential)?;
    {
        let mut out = io::BufWriter::new(&mut file);
        write(&mut out)?;
        out.flush()
            .io_context(|| format!("cannot write {}", path.display()))?;
    }
    file.commit()
}

/// Removes temporaries left in `dir` by netprof processes that no longer run.
fn sweep_dead_temporaries(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some((_, pid)) = name.rsplit_once(TMP_MARK) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn create(path: &Path) -> OutputFile {
        OutputFile::create(path, Access::Seekable).unwrap()
    }

    #[test]
    fn file_is_private_and_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.data");
        let mut f = create(&out);
        f.file().write_all(b"hello").unwrap();
        assert!(!out.exists());
        f.commit().unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"hello");
        assert_eq!(
            fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn symlink_at_destination_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let out = dir.path().join("x.data");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        let mut f = create(&out);
        f.file().write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert!(!fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
    }

    #[test]
    fn abandoned_file_leaves_nothing_and_dead_temporaries_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.data");
        drop(create(&out));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        // A temporary of a pid that cannot exist (above pid_max).
        let stale = dir.path().join(format!(".x.data{TMP_MARK}99999999"));
        fs::write(&stale, b"").unwrap();
        let f = create(&out);
        assert!(!stale.exists());
        drop(f);
    }

    #[test]
    fn standard_streams_are_recognised() {
        assert_eq!(standard_stream(Path::new("/dev/stdout")), Some(1));
        assert_eq!(standard_stream(Path::new("/dev/fd/5")), Some(5));
        assert_eq!(standard_stream(Path::new("/proc/self/fd/2")), Some(2));
        assert_eq!(standard_stream(Path::new("/dev/fd/x")), None);
        assert_eq!(standard_stream(Path::new("stdout")), None);
    }

    #[test]
    fn directories_and_sockets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = OutputFile::create(dir.path(), Access::Sequential)
            .err()
            .unwrap();
        assert!(err.message().contains("is a directory"), "{err}");
        let socket = dir.path().join("s");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let err = OutputFile::create(&socket, Access::Sequential)
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::BadArgument);
        assert!(socket.exists());
    }
}
