//! `netprof latency`.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use netprof::bpf::kprobe_links::{self, Attach};
use netprof::bpf::latency::{self, Breakdown, LatencyOptions};
use netprof::error::IoContext;
use netprof::model::latency::LatencyReport;
use netprof::probe::resolve::{Limit, Resolver, MAX_BPF_FUNCTIONS};
use netprof::render;
use netprof::Result;

use super::workload::{self, Workload};
use super::{signals, values};

const LATENCY_LONG_HELP: &str = "\
Each call is timed from a probe at the function's entry to one at its return (kprobe and kretprobe; \
all functions in one multi-kprobe link pair where the kernel has fprobe; else, or with \
--no-multi-kprobe, a link pair per function, placed by address, with a progress line; functions the \
kernel will not probe are left out and named). The times go into a \
histogram in the kernel: exact below 32 ns, then 16 buckets per power of two, so no bucket is wider \
than 1/16 of its value. Quantiles (p25, median, p75, p90, p99) interpolate inside their bucket and \
stay within the exact minimum and maximum; IQR is p75 - p25. Calls already running when netprof \
attaches are not timed; a recursive call hides the outer call's time.

JSON schema netprof-latency/1: {schema, duration_s, probes, dropped, missed_returns, not_probed \
(functions the kernel would not probe; absent when none), functions: \
[{function, module, cpu?, pid?, count, min_ns, max_ns, mean_ns, p25_ns, median_ns, p75_ns, iqr_ns, \
p90_ns, p99_ns, histogram: [{low_ns, high_ns, count}]}]}.

Examples:
  netprof latency hsr_forward_skb --duration 10
  netprof latency -m netprof_test 'netprof_test_*' -- sh -c 'echo 10 > /proc/netprof_test'
  netprof latency -m hsr 'hsr_*frame*' --per-cpu
  netprof latency tcp_sendmsg -p 1234 --duration 5 --json";

#[derive(Args, Debug)]
#[command(after_long_help = LATENCY_LONG_HELP, after_help = "Examples:\n  netprof latency hsr_forward_skb --duration 10\n  netprof latency -m hsr 'hsr_*frame*' --per-cpu\n  netprof latency tcp_sendmsg -p 1234 --duration 5 --json")]
pub struct LatencyArgs {
    /// Functions to time: names or globs (several at once)
    #[arg(required = true, value_name = "FUNC")]
    pub functions: Vec<String>,
    /// Only functions of this module
    #[arg(short = 'm', long = "module")]
    pub module: Option<String>,
    /// Time calls from every process (the default; with -- CMD, until the command exits)
    #[arg(short = 'a', long = "all-cpus", conflicts_with = "pids")]
    pub all_cpus: bool,
    /// Time only calls made by these processes (comma-separated)
    #[arg(short = 'p', long = "pid", value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Stop after this many seconds (default: at Ctrl-C; at most 31 days)
    #[arg(long, value_name = "SECONDS", value_parser = values::seconds, allow_negative_numbers = true)]
    pub duration: Option<Duration>,
    /// One histogram per CPU
    #[arg(long, conflicts_with = "per_pid")]
    pub per_cpu: bool,
    /// One histogram per process
    #[arg(long)]
    pub per_pid: bool,
    /// Attach through a kprobe link pair per function, as on kernels without multi-kprobe links
    /// (fprobe), even where the kernel has them
    #[arg(long)]
    pub no_multi_kprobe: bool,
    /// JSON instead of text (schema netprof-latency/1)
    #[arg(long)]
    pub json: bool,
    /// Command to run (after --): its calls, and those of the processes it starts, are timed until
    /// it exits
    #[arg(last = true)]
    pub command: Vec<String>,
}

pub fn run(args: LatencyArgs) -> Result<()> {
    workload::check(&args.command, &args.pids, "times")?;
    let patterns: Vec<&str> = args.functions.iter().map(String::as_str).collect();
    let limit = Limit {
        max: MAX_BPF_FUNCTIONS,
        remedy: "",
    };
    let functions = Resolver::load()?.resolve(&patterns, args.module.as_deref(), Some(limit))?;
    let mut workload = Workload::new(&args.command, args.all_cpus, &args.pids)?;
    let stop = signals::stop_flag();
    let opts = LatencyOptions {
        pids: workload.pids(),
        follow_children: workload.follows_children(),
        duration: args.duration,
        breakdown: if args.per_cpu {
            Breakdown::PerCpu
        } else if args.per_pid {
            Breakdown::PerProcess
        } else {
            Breakdown::None
        },
        attach: Attach::choose(args.no_multi_kprobe),
    };
    let count = functions.len();
    let until = workload.until(args.duration);
    let report = workload.run(
        |probes| eprintln!("netprof: timing {count} functions ({probes}) {until}"),
        |started, finished| {
            latency::measure(
                &functions,
                &opts,
                stop,
                workload::progress_lines(args.no_multi_kprobe),
                started,
                finished,
            )
        },
    )?;
    warn_about_losses(&report, None);
    if let Some(note) = kprobe_links::refused_note(&report.not_probed) {
        eprintln!("netprof: {note}");
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout))
    } else {
        render::latency::render_text(&report, &mut stdout)
    }
    .io_context(|| "cannot write the result")
}

/// Calls the kernel did not time, said on stderr whatever the output.
pub fn warn_about_losses(report: &LatencyReport, file: Option<&std::path::Path>) {
    let of = file
        .map(|f| format!(" in {}", f.display()))
        .unwrap_or_default();
    if report.dropped > 0 {
        eprintln!(
            "netprof: warning: {} calls not timed{of}: the kernel's maps were full (more threads or CPUs \
             than they hold); time fewer functions, or use -p",
            report.dropped
        );
    }
    if report.missed_returns > 0 {
        eprintln!(
            "netprof: warning: {} returns missed{of}: the kernel ran out of return-probe instances; time \
             fewer functions at once",
            report.missed_returns
        );
    }
}
