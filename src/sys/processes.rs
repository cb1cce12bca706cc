//! Processes and threads, through procfs.

use procfs::process::Process;

/// Whether a process runs, has exited and waits to be reaped, or is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    Zombie,
    Gone,
}

pub fn state(pid: u32) -> State {
    let stat = i32::try_from(pid)
        .ok()
        .and_then(|p| Process::new(p).ok())
        .and_then(|p| p.stat().ok());
    match stat.map(|s| s.state) {
        None | Some('X') => State::Gone,
        Some('Z') => State::Zombie,
        Some(_) => State::Running,
    }
}

/// Whether process `pid` exists and has not exited (a zombie has).
pub fn is_alive(pid: u32) -> bool {
    state(pid) == State::Running
}

/// Why a process named on the command line cannot be followed, if it cannot.
pub fn check_followable(pid: u32) -> crate::error::Result<()> {
    match state(pid) {
        State::Running => Ok(()),
        State::Zombie => Err(crate::error::Error::not_found(format!(
            "process {pid} has exited (a zombie waiting for its parent to reap it); there is nothing left to follow"
        ))),
        State::Gone => Err(crate::error::Error::not_found(format!(
            "process {pid} does not exist; check the pid with `ps -p {pid}`"
        ))),
    }
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
        assert_eq!(state(u32::MAX), State::Gone);
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        while state(pid) == State::Running {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(state(pid), State::Zombie);
        assert!(check_followable(pid)
            .unwrap_err()
            .message()
            .contains("zombie"));
        child.wait().unwrap();
    }
}
