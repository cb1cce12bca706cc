//! Whose calls a timing command (`latency`, `funcgraph`) measures: every
//! process, some (-p), or a command netprof runs (-- CMD, held until the
//! probes are in place, followed into the processes it starts; with -a,
//! every process's while it runs, as perf does); and the progress lines of
//! attaching many probes.

use std::time::Duration;

use netprof::bpf::kprobe_links::{Attach, Progress};
use netprof::command::{CommandOutput, HeldChild};
use netprof::error::Error;
use netprof::sys::processes;
use netprof::Result;

/// What a measurement waits for.
pub struct Workload {
    child: Option<HeldChild>,
    pids: Vec<u32>,
    /// Every process's calls, even with a command.
    system_wide: bool,
}

/// Checks the command line's choice of workload before anything is done:
/// `-- CMD` or `-p PIDS`, not both, and processes that can be followed.
pub fn check(command: &[String], pids: &[u32], verb: &str) -> Result<()> {
    if !command.is_empty() && !pids.is_empty() {
        return Err(Error::bad_argument(format!(
            "-- CMD {verb} the command's calls, and -p those of other processes; pick one (-a -- CMD: \
             every process's while the command runs)"
        )));
    }
    for &pid in pids {
        processes::check_followable(pid)?;
    }
    Ok(())
}

impl Workload {
    /// From the command line ([`check`]ed): `-- CMD` (started now, held),
    /// `-p PIDS`, or every process (`-a`, also with a command).
    pub fn new(command: &[String], all_cpus: bool, pids: &[u32]) -> Result<Workload> {
        // A command starts held, so that none of its calls is missed:
        // probes attach first.
        let child = match command.is_empty() {
            true => None,
            false => Some(HeldChild::spawn(command, CommandOutput::ToStderr)?),
        };
        Ok(Workload {
            child,
            pids: pids.to_vec(),
            system_wide: all_cpus,
        })
    }

    /// The processes to measure (all when empty).
    pub fn pids(&self) -> Vec<u32> {
        match &self.child {
            Some(c) if !self.system_wide => vec![c.pid as u32],
            _ => self.pids.clone(),
        }
    }

    /// Whether the processes they start are measured too.
    pub fn follows_children(&self) -> bool {
        self.child.is_some() && !self.system_wide
    }

    /// "for 5.0s", "until the command exits", "until Ctrl-C".
    pub fn until(&self, duration: Option<Duration>) -> String {
        match (duration, &self.child) {
            (Some(d), _) => format!("for {:.1}s", d.as_secs_f64()),
            (None, Some(_)) => "until the command exits".to_string(),
            (None, None) => "until Ctrl-C".to_string(),
        }
    }

    /// Runs `measure` with what it calls once its probes are in place
    /// (`announce`, then the command is released) and what tells it the
    /// command has exited; then waits for the command.
    pub fn run<T>(
        &mut self,
        announce: impl FnOnce(&str),
        measure: impl FnOnce(
            Box<dyn FnOnce(&str) -> Result<()> + '_>,
            Box<dyn FnMut() -> bool + '_>,
        ) -> Result<T>,
    ) -> Result<T> {
        let Some(child) = self.child.as_mut() else {
            let started = Box::new(|probes: &str| {
                announce(probes);
                Ok(())
            });
            return measure(started, Box::new(|| false));
        };
        // The command has exited once it is a zombie waiting for us.
        let pid = child.pid as u32;
        let result = {
            let started = Box::new(|probes: &str| {
                announce(probes);
                child.release()
            });
            measure(started, Box::new(move || !processes::is_alive(pid)))
        };
        let (status, _) = child.stop();
        if status != 0 {
            eprintln!("netprof: the command exited with status {status}");
        }
        result
    }
}

/// The progress lines of placing or removing many probes, one by one
/// (`per_function_asked`: because --no-multi-kprobe says so).
pub fn progress_lines(per_function_asked: bool) -> impl FnMut(Progress) {
    move |progress| match progress {
        Progress::OneByOne(functions) if functions > 1 => eprintln!(
            "netprof: attaching {functions} functions through a kprobe link pair each ({})",
            Attach::why_per_function(per_function_asked)
        ),
        Progress::OneByOne(_) => {}
        Progress::Placed { done, total } => {
            eprintln!("netprof: attaching probes one by one: {done} of {total}")
        }
        Progress::Removing(count) => {
            eprintln!("netprof: removing {count} probes (one at a time on this kernel)")
        }
    }
}
