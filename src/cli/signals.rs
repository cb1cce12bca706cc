//! Ctrl-C, SIGTERM and SIGHUP end a run cleanly: the handler only raises a
//! flag, and the library, which polls it, stops, writes a complete file and
//! lets its probes and programs go with their descriptors.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handlers and returns the flag they raise.
pub fn stop_flag() -> &'static AtomicBool {
    STOP.store(false, Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, request_stop as *const () as libc::sighandler_t) };
    }
    &STOP
}

/// Writing to a closed pipe (`netprof report | head`) ends quietly, as for
/// other Unix tools, instead of failing on EPIPE.
pub fn default_sigpipe() {
    // SAFETY: restoring the default disposition of SIGPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Reports map their input files: if another process truncates one while
/// it is read, the kernel sends SIGBUS on the next access of a page that is
/// gone. That ends the run with one line and the corrupt-input status (6)
/// instead of a crash.
pub fn input_truncation_ends_the_run() {
    extern "C" fn truncated(_: libc::c_int) {
        const MESSAGE: &[u8] =
            b"netprof: error: an input file shrank while netprof read it (another process truncated or rewrote it); read it again\n";
        // SAFETY: write and _exit are async-signal-safe.
        unsafe {
            libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
            libc::_exit(6);
        }
    }
    // SAFETY: the handler calls only async-signal-safe functions.
    unsafe { libc::signal(libc::SIGBUS, truncated as *const () as libc::sighandler_t) };
}
