//! `netprof bpf`.

use std::io::Write;
use std::time::Duration;

use clap::Args;

use netprof::analysis::bpf_cost::Cost;
use netprof::bpf::programs::{self, Until};
use netprof::command::{CommandOutput, HeldChild};
use netprof::error::IoContext;
use netprof::render::bpf_table::{self, Row};
use netprof::sys::processes;
use netprof::Result;

use super::{signals, values};

const BPF_LONG_HELP: &str = "\
Programs come from the kernel's list of loaded BPF programs; attach points from BPF links (XDP, tcx, \
netkit, cgroup, netfilter, kprobe, tracepoint, ...), from XDP on the interfaces of the current network \
namespace (netlink attachments included, with their mode), from tc cls_bpf filters on those interfaces \
(`tc filter add dev X ingress bpf da obj ...`, libbpf's bpf_tc_attach: direction, priority, and `da` \
for direct-action), from sockmaps (sk_skb, sk_msg), and from the perf events of every process \
(kprobes, tracepoints, uprobes, with or without a link: BPF_TASK_FD_QUERY, as bpftool perf). \
Programs attached the older way to cgroups show no attach point.

Cost (--duration, or -- COMMAND: until the command exits, or both: whichever ends first): the kernel's BPF statistics count each program's runs and run time while netprof \
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
  netprof bpf --id 42 --duration 5 --json
  netprof bpf -- ip netns exec blue iperf3 -c 10.0.0.2 -t 5";

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
    /// Command to run (after --): the programs' cost is measured while it runs
    #[arg(last = true)]
    pub command: Vec<String>,
}

pub fn run(args: BpfArgs) -> Result<()> {
    let mut programs = programs::list(&args.ids)?;
    let mut costs: Vec<Option<Cost>> = vec![None; programs.len()];
    let mut measured_for = None;
    if args.duration.is_some() || !args.command.is_empty() {
        let stop = signals::stop_flag();
        // A command starts once the statistics are on, so that its runs
        // from the first one count.
        let mut child = match args.command.is_empty() {
            true => None,
            false => Some(HeldChild::spawn(&args.command, CommandOutput::ToStderr)?),
        };
        let what = match (args.duration, &child) {
            (Some(d), _) => format!("for {:.1}s", d.as_secs_f64()),
            _ => "while the command runs".to_string(),
        };
        eprintln!(
            "netprof: measuring {} BPF programs {what} (Ctrl-C ends early)",
            if args.ids.is_empty() {
                "all".to_string()
            } else {
                programs.len().to_string()
            }
        );
        let exited = {
            let pid = child.as_ref().map(|c| c.pid as u32);
            move || pid.is_some_and(|p| !processes::is_alive(p))
        };
        let until = Until {
            duration: args.duration,
            stop,
        };
        let start = || child.as_mut().map_or(Ok(()), HeldChild::release);
        let (intervals, elapsed) =
            programs::measure(&args.ids, until, args.interval, start, exited)?;
        if let Some(mut c) = child {
            let (status, _) = c.stop();
            if status != 0 {
                eprintln!("netprof: the command exited with status {status}");
            }
        }
        // Programs the command loaded, still there, are listed too.
        if args.ids.is_empty() {
            for p in programs::list(&[])? {
                if !programs.iter().any(|q| q.id == p.id) {
                    programs.push(p);
                    costs.push(None);
                }
            }
        }
        for (program, cost) in programs.iter().zip(costs.iter_mut()) {
            let measured = intervals.get(&program.id).map_or(&[][..], Vec::as_slice);
            *cost = Some(Cost::of(measured, elapsed.as_secs_f64()));
        }
        measured_for = Some(elapsed.as_secs_f64());
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
            "duration_s": measured_for,
            "programs": rows,
        });
        serde_json::to_writer_pretty(&mut stdout, &doc)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout))
    } else {
        bpf_table::render_table(&rows, args.interval, &mut stdout)
    }
    .io_context(|| "cannot write the table")
}
