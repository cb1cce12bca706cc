//! `netprof bpf`.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use netprof::analysis::bpf_cost::Cost;
use netprof::bpf::programs;
use netprof::error::IoContext;
use netprof::render::bpf_table::{self, Row};
use netprof::Result;

use super::{signals, values};

const BPF_LONG_HELP: &str = "\
Programs come from the kernel's list of loaded BPF programs; attach points from BPF links (XDP, tcx, \
netkit, cgroup, netfilter, kprobe, tracepoint, ...), from XDP on the interfaces of the current network \
namespace (netlink attachments included, with their mode) and from sockmaps (sk_skb, sk_msg). Programs \
attached the older way to tc (cls_bpf), cgroups or perf events show no attach point.

Cost (--duration): the kernel's BPF statistics count each program's runs and run time while netprof \
holds a BPF_ENABLE_STATS descriptor; they go off when netprof exits, however it exits, and the \
kernel.bpf_stats_enabled sysctl is left as it was. Every --interval, netprof reads each program's run \
count and run time; ns per run is computed per interval, and the table shows the median over the \
intervals that had runs, ± the interquartile range (p75 - p25). The JSON adds the quartiles, the \
mean over the whole measurement and the number of intervals. Statistics add two clock reads to each run.

JSON schema netprof-bpf/1: {schema, duration_s, programs: [{id, type, name, tag, symbol, attached: \
[string], cost: {runs, runs_per_second, mean_ns, median_ns, p25_ns, p75_ns, intervals}}]}; cost only \
with --duration.

Examples:
  netprof bpf
  netprof bpf --duration 10
  netprof bpf --id 42 --duration 5 --json";

#[derive(Args, Debug)]
#[command(after_long_help = BPF_LONG_HELP, after_help = "Examples:\n  netprof bpf\n  netprof bpf --duration 10\n  netprof bpf --id 42 --duration 5 --json")]
pub struct BpfArgs {
    /// Measure each program's runs per second and ns per run for this many seconds (at most 31 days)
    #[arg(long, value_name = "SECONDS", value_parser = values::seconds, allow_negative_numbers = true)]
    pub duration: Option<Duration>,
    /// With --duration: read the statistics this often, in milliseconds from 10 to 60000 (one ns/run
    /// value per interval)
    #[arg(long, value_name = "MS", default_value = "100", value_parser = values::interval_ms)]
    pub interval: Duration,
    /// Only these program ids (repeatable)
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<u32>,
    /// JSON instead of a table (schema netprof-bpf/1)
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: BpfArgs) -> Result<()> {
    let programs = programs::list(&args.ids)?;
    let mut costs: Vec<Option<Cost>> = vec![None; programs.len()];
    if let Some(duration) = args.duration {
        eprintln!(
            "netprof: measuring {} BPF programs for {:.1}s (Ctrl-C ends early)",
            programs.len(),
            duration.as_secs_f64()
        );
        let ids: Vec<u32> = programs.iter().map(|p| p.id).collect();
        let stop = signals::stop_flag();
        let (intervals, elapsed) = programs::measure(&ids, duration, args.interval, stop)?;
        for (program, cost) in programs.iter().zip(costs.iter_mut()) {
            let measured = intervals.get(&program.id).map_or(&[][..], Vec::as_slice);
            *cost = Some(Cost::of(measured, elapsed.as_secs_f64()));
        }
    }
    let rows: Vec<Row> = programs
        .iter()
        .zip(&costs)
        .map(|(program, cost)| Row {
            program,
            cost: cost.as_ref(),
        })
        .collect();
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let doc = serde_json::json!({
            "schema": "netprof-bpf/1",
            "duration_s": args.duration.map(|d| d.as_secs_f64()),
            "programs": rows,
        });
        serde_json::to_writer_pretty(&mut stdout, &doc)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout))
    } else {
        bpf_table::render_table(&rows, &mut stdout)
    }
    .io_context(|| "cannot write the table")
}
