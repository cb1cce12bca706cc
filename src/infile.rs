//! Input files (recordings, results, and the binaries a recording names):
//! opened only if they are regular files, and never in a way that blocks.
//! A FIFO or device named as an input, or planted where a recording says a
//! library was, would otherwise hang a report or feed it endless bytes.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// Opens `path` for reading if it is a regular file (following symlinks).
pub fn open_regular(path: &Path) -> Result<File> {
    // O_NONBLOCK: opening a FIFO would wait for a writer; it is checked
    // and refused below instead. Reads of a regular file ignore the flag.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match ErrorKind::of_io(&e) {
            ErrorKind::NotFound => Error::not_found(format!("{}: no such file", path.display())),
            _ => Error::io(format!("cannot open {}", path.display()), &e),
        })?;
    let kind = file
        .metadata()
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?
        .file_type();
    let what = if kind.is_file() {
        return Ok(file);
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "a socket"
    };
    Err(Error::bad_argument(format!(
        "{} is {what}, not a regular file; pass a file",
        path.display()
    )))
}

/// Whether `path` is a regular file (following symlinks), without opening it.
pub fn is_regular(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        assert!(open_regular(&file).is_ok());
        let err = open_regular(dir.path()).unwrap_err();
        assert!(err.message().contains("is a directory"), "{err}");
        let fifo = dir.path().join("p");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid path string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = open_regular(&fifo).unwrap_err();
        assert!(err.message().contains("is a FIFO"), "{err}");
        let err = open_regular(Path::new("/dev/zero")).unwrap_err();
        assert!(err.message().contains("character device"), "{err}");
        assert_eq!(
            open_regular(&dir.path().join("none")).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
