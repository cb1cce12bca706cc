//! Processes and threads, through procfs.

use procfs::process::Process;

/// Whether process `pid` exists and has not exited (a zombie has).
pub fn is_alive(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(|p| Process::new(p).ok())
        .is_some_and(|p| p.is_alive())
}

/// The threads of process `pid` (the pid alone if they cannot be read).
pub fn threads(pid: u32) -> Vec<u32> {
    let tids: Vec<u32> = i32::try_from(pid)
        .ok()
        .and_then(|p| Process::new(p).ok())
        .and_then(|p| p.tasks().ok())
        .map(|tasks| tasks.flatten().map(|t| t.tid as u32).collect())
        .unwrap_or_default();
    if tids.is_empty() {
        vec![pid]
    } else {
        tids
    }
}

/// Every process now running.
pub fn all() -> Vec<u32> {
    procfs::process::all_processes()
        .map(|all| all.flatten().map(|p| p.pid as u32).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_seen_with_its_threads() {
        let me = std::process::id();
        assert!(is_alive(me));
        assert!(all().contains(&me));
        assert!(threads(me).contains(&me));
        assert!(!is_alive(u32::MAX));
    }
}
