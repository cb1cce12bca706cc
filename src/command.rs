//! A command that netprof runs and profiles, held between fork and exec
//! until its events are open, so that not one of its samples is missed.

use std::ffi::CString;
use std::io::Write;
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};

/// How long a command has to end after SIGTERM before it gets SIGKILL.
pub const GRACE: Duration = Duration::from_secs(2);

/// A command forked and held before exec until its events are open.
///
/// std's `Command::spawn` waits for the exec to happen, so it cannot hold the
/// child at a gate; this forks by hand. The child only calls async-signal-safe
/// functions between fork and exec.
pub struct HeldChild {
    pub pid: libc::pid_t,
    gate: Option<std::fs::File>,
    exec_status: std::fs::File,
    exited: Option<i32>,
}

/// Where the command's standard output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandOutput {
    /// netprof's own standard output.
    Shared,
    /// netprof's standard error, because netprof's standard output carries
    /// its result (a table, JSON, perf.data on `-o -`) that the command's
    /// lines would corrupt.
    ToStderr,
}

impl HeldChild {
    pub fn spawn(args: &[String], output: CommandOutput) -> Result<Self> {
        let argv: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|_| Error::bad_argument("the command contains a NUL byte"))?;
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let (gate_r, gate_w) = pipe()?;
        let (status_r, status_w) = pipe()?;
        // SAFETY: the child branch calls only async-signal-safe functions
        // (close, read, dup2, execvp, write, _exit) on memory prepared before fork.
        unsafe {
            let pid = libc::fork();
            if pid < 0 {
                return Err(Error::io(
                    "cannot start the command",
                    &std::io::Error::last_os_error(),
                ));
            }
            if pid == 0 {
                libc::close(gate_w);
                libc::close(status_r);
                let mut byte = 0u8;
                libc::read(gate_r, (&mut byte as *mut u8).cast(), 1);
                if output == CommandOutput::ToStderr {
                    libc::dup2(2, 1);
                }
                if byte == 1 {
                    libc::execvp(argv_ptrs[0], argv_ptrs.as_ptr());
                    let errno = *libc::__errno_location();
                    libc::write(status_w, (&errno as *const i32).cast(), 4);
                }
                libc::_exit(127);
            }
            libc::close(gate_r);
            libc::close(status_w);
            use std::os::fd::FromRawFd;
            Ok(HeldChild {
                pid,
                gate: Some(std::fs::File::from_raw_fd(gate_w)),
                exec_status: std::fs::File::from_raw_fd(status_r),
                exited: None,
            })
        }
    }

    /// Lets the command exec; reports an exec failure such as a missing program.
    pub fn release(&mut self) -> Result<()> {
        use std::io::Read;
        if let Some(mut gate) = self.gate.take() {
            gate.write_all(&[1])
                .io_context(|| "cannot start the command")?;
        }
        let mut errno = [0u8; 4];
        if self.exec_status.read_exact(&mut errno).is_ok() {
            let err = std::io::Error::from_raw_os_error(i32::from_le_bytes(errno));
            self.stop();
            return Err(Error::new(
                crate::error::ErrorKind::of_io(&err),
                format!("cannot run the command: {err}; check the program name and PATH"),
            ));
        }
        Ok(())
    }

    pub fn try_wait(&mut self) -> Option<i32> {
        if self.exited.is_none() {
            let mut status = 0;
            // SAFETY: waitpid on our own child with a valid status pointer.
            if unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } == self.pid {
                self.exited = Some(decode_status(status));
            }
        }
        self.exited
    }

    /// Ends the command if it still runs and reaps it: SIGTERM, as perf
    /// does, then SIGKILL if it is still there after [`GRACE`] (a command
    /// that ignores SIGTERM must not keep netprof from writing its file).
    /// Returns the exit status, and whether it had to be killed.
    pub fn stop(&mut self) -> (i32, bool) {
        if let Some(s) = self.try_wait() {
            return (s, false);
        }
        self.gate.take();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        let deadline = Instant::now() + GRACE;
        while Instant::now() < deadline {
            if let Some(s) = self.try_wait() {
                return (s, false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut status = 0;
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, &mut status, 0);
        }
        let s = decode_status(status);
        self.exited = Some(s);
        (s, true)
    }
}

fn decode_status(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

fn pipe() -> Result<(i32, i32)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::io(
            "cannot create a pipe",
            &std::io::Error::last_os_error(),
        ));
    }
    Ok((fds[0], fds[1]))
}

impl Drop for HeldChild {
    /// A command left running by an error path is ended and reaped.
    fn drop(&mut self) {
        self.stop();
    }
}
