//! `netprof latency`.

use clap::Args;

use netprof::bpf::kprobe_links;
use netprof::bpf::latency::{self, Breakdown, LatencyOptions};
use netprof::model::latency::LatencyReport;
use netprof::probe::resolve::{Limit, Resolver, MAX_BPF_FUNCTIONS};
use netprof::render;
use netprof::Result;

use super::signals;
use super::workload::{self, Workload, WorkloadArgs};

const LATENCY_LONG_HELP: &str = "\
Each call is timed from a probe at the function's entry to one at its return (kprobe and kretprobe; \
all functions in one session multi-kprobe link where the kernel has them (6.10 and later), else \
in a multi-kprobe link pair where it has fprobe; else, or with \
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
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// One histogram per CPU
    #[arg(long, conflicts_with = "per_pid")]
    pub per_cpu: bool,
    /// One histogram per process
    #[arg(long)]
    pub per_pid: bool,
    /// JSON instead of text (schema netprof-latency/1)
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: LatencyArgs) -> Result<()> {
    workload::check(&args.workload, "times")?;
    let patterns: Vec<&str> = args.functions.iter().map(String::as_str).collect();
    let limit = Limit {
        max: MAX_BPF_FUNCTIONS,
        remedy: "",
    };
    let functions =
        Resolver::load()?.resolve(&patterns, args.workload.module.as_deref(), Some(limit))?;
    let mut workload = Workload::new(&args.workload)?;
    let stop = signals::stop_flag();
    let opts = LatencyOptions {
        measure: workload.measure_options(&args.workload),
        breakdown: if args.per_cpu {
            Breakdown::PerCpu
        } else if args.per_pid {
            Breakdown::PerProcess
        } else {
            Breakdown::None
        },
    };
    let count = functions.len();
    let until = workload.until(args.workload.duration);
    let report = workload.run(
        |probes| eprintln!("netprof: timing {count} functions ({probes}) {until}"),
        |started, finished| {
            latency::measure(
                &functions,
                &opts,
                stop,
                workload::progress_lines(args.workload.no_multi_kprobe),
                started,
                finished,
            )
        },
    )?;
    warn_about_losses(&report, None);
    if let Some(note) = kprobe_links::refused_note(&report.not_probed) {
        eprintln!("netprof: {note}");
    }
    super::print_result(args.json, &report, "the result", |out| {
        render::latency::render_text(&report, out)
    })
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
