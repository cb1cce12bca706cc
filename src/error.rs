//! netprof's errors: a kind that says what went wrong in terms a user can
//! act on, and a one-line message that names the cause and a fix.
//!
//! The kind decides the exit status (documented in `netprof --help` and
//! the README), so scripts can tell "fix your command line" from "this
//! kernel cannot do it" without reading the message. Callers decide by
//! kind, never by the message's text.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A command-line value, or a combination of them, that the user can
    /// correct. Exit status 2, as for clap's own usage errors.
    BadArgument,
    /// Something named does not exist: a file, function, module, process,
    /// event, CPU or BPF program. Exit status 3.
    NotFound,
    /// netprof lacks a privilege it needs. Exit status 4.
    NoPermission,
    /// This kernel or machine lacks a feature (kprobes, a hardware PMU,
    /// BPF statistics). Exit status 5.
    Unsupported,
    /// An input file that is not a readable recording or result: corrupt,
    /// truncated, of the wrong kind, or empty. Exit status 6.
    CorruptInput,
    /// The kernel refused what netprof asked: a probe on a blacklisted
    /// function, a BPF program the verifier rejects. Exit status 7.
    KernelRefused,
    /// Anything else, such as a failed write or a full disk. Exit status 1.
    Failed,
}

impl ErrorKind {
    /// The process exit status for an error of this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Failed => 1,
            ErrorKind::BadArgument => 2,
            ErrorKind::NotFound => 3,
            ErrorKind::NoPermission => 4,
            ErrorKind::Unsupported => 5,
            ErrorKind::CorruptInput => 6,
            ErrorKind::KernelRefused => 7,
        }
    }

    /// The kind that matches an I/O error, for errors netprof only passes on.
    pub fn of_io(e: &std::io::Error) -> ErrorKind {
        match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::NoPermission,
            _ => match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => ErrorKind::NoPermission,
                _ => ErrorKind::Failed,
            },
        }
    }
}

/// The exit statuses, as `netprof --help` lists them.
pub const EXIT_CODES_HELP: &str = "Exit status: 0 success; 1 failure (e.g. a write failed); \
2 bad command-line argument; 3 not found (file, function, module, process, event); \
4 no permission; 5 not supported by this kernel or machine; 6 unreadable or corrupt input file; \
7 refused by the kernel (probe or BPF program).";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_argument(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::BadArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NotFound, message)
    }

    pub fn no_permission(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::NoPermission, message)
    }

    pub fn unsupported(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Unsupported, message)
    }

    pub fn corrupt_input(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::CorruptInput, message)
    }

    pub fn kernel_refused(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::KernelRefused, message)
    }

    pub fn failed(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Failed, message)
    }

    /// An I/O error passed on with what netprof was doing: "CONTEXT: CAUSE".
    pub fn io(context: impl fmt::Display, e: &std::io::Error) -> Error {
        Error::new(ErrorKind::of_io(e), format!("{context}: {e}"))
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error with `prefix` before its message (a file name, say).
    pub fn prefixed(self, prefix: impl fmt::Display) -> Error {
        Error {
            kind: self.kind,
            message: format!("{prefix}{}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// `.io_context(|| "cannot write FILE")` on I/O results.
pub trait IoContext<T> {
    fn io_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_context<C: fmt::Display>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|e| Error::io(context(), &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_exit_codes() {
        let kinds = [
            ErrorKind::Failed,
            ErrorKind::BadArgument,
            ErrorKind::NotFound,
            ErrorKind::NoPermission,
            ErrorKind::Unsupported,
            ErrorKind::CorruptInput,
            ErrorKind::KernelRefused,
        ];
        let mut codes: Vec<u8> = kinds.iter().map(|k| k.exit_code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes, vec![1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn io_errors_keep_their_kind_and_context() {
        let e = std::io::Error::from_raw_os_error(libc::EACCES);
        let err = Error::io("cannot open x", &e);
        assert_eq!(err.kind(), ErrorKind::NoPermission);
        assert!(err.message().starts_with("cannot open x: "), "{err}");
        let e = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(Error::io("w", &e).kind(), ErrorKind::Failed);
    }
}
