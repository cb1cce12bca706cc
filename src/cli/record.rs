//! `netprof record`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use netprof::model::off_cpu::StateSelection;
use netprof::record::event::EventRequest;
use netprof::record::{self, OffCpuRequest, Progress, RecordOptions};
use netprof::sys::cpus::CpuList;
use netprof::{Error, Result};

use super::{signals, values};

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  netprof record -a -g --duration 10\n  netprof record -g -- dd if=/dev/zero of=/dev/null bs=4k count=100000\n  netprof record -e net:net_dev_xmit -a -g --duration 5\n  netprof record --bpf -a -g -F 999 --duration 10\n  netprof record --off-cpu --wakeups -g -- CMD"
)]
pub struct RecordArgs {
    /// Sample all CPUs (the default when no command and no -p is given)
    #[arg(short = 'a', long = "all-cpus")]
    pub all_cpus: bool,
    /// Sample these processes and the children they create (comma-separated); the recording ends
    /// when they have all exited
    #[arg(short = 'p', long = "pid", value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Sample only these CPUs, e.g. 0,2-3 (system-wide on them)
    #[arg(short = 'C', long = "cpu", value_parser = values::cpus_of_this_machine)]
    pub cpus: Option<CpuList>,
    /// Sampling frequency in Hz for counting events (tracepoints sample every hit), up to
    /// kernel.perf_event_max_sample_rate
    #[arg(short = 'F', long = "freq", default_value = "999", value_parser = values::frequency)]
    pub frequency: u64,
    /// Record kernel and user call chains
    #[arg(short = 'g')]
    pub callgraph: bool,
    /// Event to sample: cpu-clock (default), task-clock, a hardware event such as cycles, a tracepoint
    /// subsystem:name (globs such as 'sched:*' too), a probe kprobe:[MODULE:]FUNC[%return] or
    /// uprobe:BINARY:FUNC[%return] that lives as long as the recording, or a persistent probe
    /// netprof:FUNC; repeatable, or several separated by commas
    #[arg(short = 'e', long = "event", value_parser = values::event, value_delimiter = ',')]
    pub events: Vec<EventRequest>,
    /// Output file
    #[arg(short = 'o', long = "output", default_value = "netprof.data")]
    pub output: PathBuf,
    /// Stop after this many seconds (at most 31 days)
    #[arg(long, value_name = "SECONDS", value_parser = values::seconds, allow_negative_numbers = true)]
    pub duration: Option<Duration>,
    /// No status line and no summary
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Count stacks in the kernel with BPF instead of copying each sample to user space (far less
    /// recorder CPU on busy systems); the file and its reports are the same. Needs root
    #[arg(long)]
    pub bpf: bool,
    /// With --bpf: room for this many distinct counts (and stacks remembered as sent) at a time in the kernel's maps,
    /// which are drained as they fill, up to 1048576; samples beyond it are counted as dropped and
    /// reported
    #[arg(long, value_name = "N", requires = "bpf", value_parser = values::map_entries)]
    pub bpf_map_entries: Option<u32>,
    /// Attach a kprobe glob (-e 'kprobe:GLOB' -a) through one BPF link per function, as on kernels
    /// without multi-kprobe links (fprobe), even where the kernel has them
    #[arg(long)]
    pub no_multi_kprobe: bool,
    /// Also record where threads wait: each interval a thread spends off the CPU (from sched_switch
    /// out to back in) becomes an offcpu-time:STATE sample whose period is the time away in ns,
    /// with its kernel (and with -g user) stack. Counted in the kernel with BPF; needs root
    #[arg(long)]
    pub off_cpu: bool,
    /// With --off-cpu: only waits in these thread states: all (default), or letters among R
    /// (preempted, waiting for a CPU), S (sleeping), D (uninterruptible), I (idle kernel thread),
    /// T, t, P, comma-separated
    #[arg(long, value_name = "STATES", requires = "off_cpu", value_parser = values::states)]
    pub state: Option<StateSelection>,
    /// With --off-cpu: leave out waits shorter than this many microseconds (their number and time
    /// are reported)
    #[arg(long, value_name = "US", requires = "off_cpu", value_parser = values::microseconds)]
    pub min_block: Option<Duration>,
    /// With --off-cpu: also note who ended each wait (offcpu-waker samples: the waker's kernel
    /// stack over the blocked one; see report --wakeups)
    #[arg(long, requires = "off_cpu")]
    pub wakeups: bool,
    /// Command to run and profile until it exits (after --)
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// Notes and the status line on stderr; the status line only on a terminal.
struct Terminal {
    quiet: bool,
    status_line: bool,
    /// A status line is on screen and must be cleared before other output.
    showing: bool,
}

impl Terminal {
    fn clear(&mut self) {
        if self.showing {
            eprint!("\r\x1b[K");
            self.showing = false;
        }
    }
}

impl Progress for Terminal {
    fn note(&mut self, text: &str) {
        // Warnings show even with -q; other notes do not.
        if !self.quiet || text.starts_with("warning:") {
            self.clear();
            eprintln!("netprof: {text}");
        }
    }

    fn status(&mut self, elapsed: Duration, samples: u64, lost: u64) {
        if self.status_line {
            eprint!(
                "\r\x1b[K[ netprof record: {:.1}s  {samples} samples  {lost} lost ]",
                elapsed.as_secs_f64()
            );
            let _ = std::io::stderr().flush();
            self.showing = true;
        }
    }

    fn shows_status(&self) -> bool {
        self.status_line
    }
}

/// Targets that contradict each other, refused with the reason.
fn check_targets(args: &RecordArgs) -> Result<()> {
    if args.pids.is_empty() {
        return Ok(());
    }
    let conflict = if args.all_cpus {
        "-a samples every task on every CPU and -p only the given processes; pick one"
    } else if args.cpus.is_some() {
        "-C samples every task on the given CPUs and -p the given processes wherever they run; pick one"
    } else if !args.command.is_empty() {
        "-p follows running processes and -- CMD starts a new one; record them in two runs, or use -a while CMD runs"
    } else {
        return Ok(());
    };
    Err(Error::bad_argument(conflict))
}

pub fn run(args: RecordArgs) -> Result<()> {
    check_targets(&args)?;
    let opts = RecordOptions {
        events: args.events,
        all_cpus: args.all_cpus,
        pids: args.pids,
        cpus: args.cpus,
        command: args.command,
        frequency: args.frequency,
        callgraph: args.callgraph,
        output: args.output.clone(),
        duration: args.duration,
        bpf: args.bpf,
        bpf_map_entries: args.bpf_map_entries,
        no_multi_kprobe: args.no_multi_kprobe,
        off_cpu: args.off_cpu.then(|| OffCpuRequest {
            states: args.state.clone().unwrap_or_else(StateSelection::all),
            min_block: args.min_block.unwrap_or_default(),
            wakers: args.wakeups,
        }),
    };
    let mut terminal = Terminal {
        quiet: args.quiet,
        status_line: !args.quiet && std::io::stderr().is_terminal(),
        showing: false,
    };
    let stop = signals::stop_flag();
    let result = record::record(&opts, stop, &mut terminal);
    terminal.clear();
    let summary = result?;
    let dropped = summary.bpf_dropped;
    if dropped.stacks_full + dropped.counts_full > 0 {
        eprintln!(
            "netprof: warning: {} {} not counted: the kernel side had no room ({} for new stacks, {} for counts); \
             raise --bpf-map-entries",
            dropped.stacks_full + dropped.counts_full,
            match args.off_cpu {
                true => "samples or waits",
                false => "samples",
            },
            dropped.stacks_full,
            dropped.counts_full
        );
    }
    if dropped.blocked_full > 0 {
        eprintln!(
            "netprof: warning: {} waits not counted: two threads that share a slot were off the CPU at once; \
             narrow the recording with -p or -- CMD",
            dropped.blocked_full
        );
    }
    if args.off_cpu && !args.quiet {
        let short = match dropped.short_blocks {
            0 => String::new(),
            n => format!(
                "; {n} waits shorter than --min-block left out ({:.1} ms in all)",
                dropped.short_blocks_ns as f64 / 1e6
            ),
        };
        eprintln!(
            "netprof: off-CPU: {:.3} s of waiting recorded{short}",
            summary.off_cpu.as_secs_f64()
        );
    }
    if !args.quiet {
        eprintln!(
            "netprof: {} samples ({} lost) in {:.1}s, {:.1} MB written to {}",
            summary.samples,
            summary.lost,
            summary.elapsed.as_secs_f64(),
            summary.bytes as f64 / 1e6,
            args.output.display()
        );
        if let Some(status) = summary.command_status.filter(|&s| s != 0) {
            eprintln!("netprof: the command exited with status {status}");
        }
    }
    if summary.disk_full {
        return Err(Error::failed(format!(
            "the disk holding {} filled up after {:.1}s; the recording up to then is complete in it \
             (free space, or record elsewhere with -o)",
            args.output.display(),
            summary.elapsed.as_secs_f64()
        )));
    }
    Ok(())
}
