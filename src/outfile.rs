//! Output files that hold kernel addresses: created 0600, never through a
//! symlink, and replaced atomically so that a reader never sees half a file.
//!
//! A file is written under a temporary name in the destination's directory and
//! renamed over the destination when complete. `rename` replaces a symlink at
//! the destination rather than following it. If the writer dies (kill -9), the
//! destination keeps its old content and the temporary file stays behind; the
//! next netprof run writing to that directory removes temporaries whose
//! process is gone.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

const TMP_MARK: &str = ".netprof-tmp-";

pub struct AtomicFile {
    file: Option<File>,
    tmp_path: PathBuf,
    final_path: PathBuf,
}

impl AtomicFile {
    pub fn create(final_path: &Path) -> Result<Self> {
        let dir = match final_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = final_path
            .file_name()
            .ok_or_else(|| {
                Error::bad_argument(format!(
                    "{}: not a file name; give a path such as out.data",
                    final_path.display()
                ))
            })?
            .to_string_lossy()
            .into_owned();
        if final_path.is_dir() {
            return Err(Error::bad_argument(format!(
                "{} is a directory; give a file name for the output",
                final_path.display()
            )));
        }
        sweep_dead_temporaries(&dir);
        let tmp_path = dir.join(format!(".{name}{TMP_MARK}{}", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp_path)
            .map_err(|e| permission_hint(e, &dir))
            .io_context(|| format!("cannot create a file in {}", dir.display()))?;
        Ok(AtomicFile {
            file: Some(file),
            tmp_path,
            final_path: final_path.to_path_buf(),
        })
    }

    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("file used after commit")
    }

    /// Makes the complete file visible under its final name.
    pub fn commit(mut self) -> Result<()> {
        let file = self.file.take().expect("committed twice");
        file.sync_all()
            .io_context(|| format!("cannot write {}", self.final_path.display()))?;
        drop(file);
        fs::rename(&self.tmp_path, &self.final_path)
            .io_context(|| format!("cannot write {}", self.final_path.display()))?;
        Ok(())
    }
}

// Buffered writers (the perf.data writer, SVG output) write through to the
// temporary file.
impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file().seek(pos)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

/// Writes a file through `write`, buffered, and gives it its name only if
/// every byte was written: a failed or interrupted run leaves the old file.
pub fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<&mut AtomicFile>) -> Result<()>,
) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    {
        let mut out = io::BufWriter::new(&mut file);
        write(&mut out)?;
        out.flush()
            .io_context(|| format!("cannot write {}", path.display()))?;
    }
    file.commit()
}

fn permission_hint(e: io::Error, dir: &Path) -> io::Error {
    if e.kind() == io::ErrorKind::PermissionDenied {
        io::Error::new(
            e.kind(),
            format!(
                "permission denied; write to a directory you own or pass -o with another path ({})",
                dir.display()
            ),
        )
    } else {
        e
    }
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
        let Ok(pid) = pid.parse::<i32>() else {
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

    #[test]
    fn file_is_private_and_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.data");
        let mut f = AtomicFile::create(&out).unwrap();
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
        let mut f = AtomicFile::create(&out).unwrap();
        f.file().write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert!(!fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
    }

    #[test]
    fn abandoned_file_leaves_nothing_and_dead_temporaries_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.data");
        drop(AtomicFile::create(&out).unwrap());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        // A temporary of a pid that cannot exist (above pid_max).
        let stale = dir.path().join(format!(".x.data{TMP_MARK}99999999"));
        fs::write(&stale, b"").unwrap();
        let f = AtomicFile::create(&out).unwrap();
        assert!(!stale.exists());
        drop(f);
    }
}
