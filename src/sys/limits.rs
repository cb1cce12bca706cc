//! The process's own resource limits, raised where a job needs more than
//! the default allows. Limits belong to the process and end with it, so
//! raising them changes nothing for anyone else. And the machine's memory,
//! which kernel maps netprof sizes must leave most of to others.

use procfs::Current;

use crate::error::{Error, Result};

/// Refuses `bytes` of kernel memory (maps allocated up front) when they are
/// more than half of what is available; `refusal(needed_mib,
/// available_mib)` is the error, saying what to do instead.
pub fn check_kernel_memory(bytes: u64, refusal: impl FnOnce(u64, u64) -> Error) -> Result<()> {
    let available = procfs::Meminfo::current()
        .ok()
        .and_then(|m| m.mem_available);
    match available {
        Some(available) if bytes > available / 2 => Err(refusal(bytes >> 20, available >> 20)),
        _ => Ok(()),
    }
}

/// Descriptors kept free for everything else netprof opens (the output,
/// per-CPU buffers, maps, tracefs files).
const HEADROOM: u64 = 256;

/// Makes room for `more` open files beyond those open now, raising the
/// soft limit (and, with CAP_SYS_RESOURCE, the hard one) as needed;
/// `what` names the job in the error when it cannot.
pub fn make_room_for_files(more: u64, what: &str) -> Result<()> {
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|dir| dir.count() as u64)
        .unwrap_or(64);
    let needed = open + more + HEADROOM;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Ok(()); // the open calls will say what is wrong
    }
    if limit.rlim_cur >= needed {
        return Ok(());
    }
    let raised = libc::rlimit {
        rlim_cur: needed,
        rlim_max: limit.rlim_max.max(needed),
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        return Ok(());
    }
    Err(Error::failed(format!(
        "{what} needs {needed} open files but this process may open {} (ulimit -n); raise the \
         limit (ulimit -n {needed}) or narrow the pattern",
        limit.rlim_max
    )))
}
