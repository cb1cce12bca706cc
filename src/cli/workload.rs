//! Whose calls a timing command (`latency`, `funcgraph`) measures: every
//! process, some (-p), or a command netprof runs (-- CMD, held until the
//! probes are in place, followed into the processes it starts; with -a,
//! every process's while it runs, as perf does); and the progress lines of
//! attaching many probes.

use std::time::Duration;

use clap::Args;

use netprof::bpf::entry_return::MeasureOptions;
use netprof::bpf::kprobe_links::{Attach, Progress};
use netprof::command::{CommandOutput, HeldChild};
use netprof::error::Error;
use netprof::sys::processes;
use netprof::Result;

use super::values;

/// The options of the commands that probe functions and measure their
/// calls (`latency`, `funcgraph`): where the functions are, whose calls,
/// for how long, how the probes attach.
#[derive(Args, Debug)]
pub struct WorkloadArgs {
    /// Only functions of this module
    #[arg(short = 'm', long = "module")]
    pub module: Option<String>,
    /// Calls of every process (the default; with -- CMD, until the command exits)
    #[arg(short = 'a', long = "all-cpus", conflicts_with = "pids")]
    pub all_cpus: bool,
    /// Only calls made by these processes (comma-separated)
    #[arg(short = 'p', long = "pid", value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Stop after this many seconds (default: at Ctrl-C; at most 31 days)
    #[arg(long, value_name = "SECONDS", value_parser = values::seconds, allow_negative_numbers = true)]
    pub duration: Option<Duration>,
    /// Attach through a kprobe link pair per function, as on kernels without multi-kprobe links
    /// (fprobe), even where the kernel has them
    #[arg(long)]
    pub no_multi_kprobe: bool,
    /// Command to run (after --): its calls, and those of the processes it starts, are measured
    /// until it exits (with -a: every process's)
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// What a measurement waits for.
pub struct Workload {
    child: Option<HeldChild>,
    pids: Vec<u32>,
    /// Every process's calls, even with a command.
    system_wide: bool,
}

/// Checks the command line's choice of workload before anything is done:
/// `-- CMD` or `-p PIDS`, not both, and processes that can be followed.
pub fn check(args: &WorkloadArgs, verb: &str) -> Result<()> {
    let (command, pids) = (&args.command, &args.pids);
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
    pub fn new(args: &WorkloadArgs) -> Result<Workload> {
        // A command starts held, so that none of its calls is missed:
        // probes attach first.
        let child = match args.command.is_empty() {
            true => None,
            false => Some(HeldChild::spawn(&args.command, CommandOutput::ToStderr)?),
        };
        Ok(Workload {
            child,
            pids: args.pids.clone(),
            system_wide: args.all_cpus,
        })
    }

    /// Whose calls to measure (all when no process is named; a command's
    /// and its children's), for how long, attached how.
    pub fn measure_options(&self, args: &WorkloadArgs) -> MeasureOptions {
        let follows_command = self.child.is_some() && !self.system_wide;
        MeasureOptions {
            pids: match &self.child {
                Some(c) if follows_command => vec![c.pid as u32],
                _ => self.pids.clone(),
            },
            follow_children: follows_command,
            duration: args.duration,
            attach: Attach::choose(args.no_multi_kprobe),
        }
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
