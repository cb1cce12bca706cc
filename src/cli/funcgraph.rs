//! `netprof funcgraph`.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use netprof::bpf::funcgraph::{self, FuncGraphOptions, Keep, MAX_DEPTH};
use netprof::bpf::kprobe_links;
use netprof::error::Error;
use netprof::model::funcgraph::FuncGraphReport;
use netprof::outfile::write_atomically;
use netprof::probe::resolve::{Limit, Resolver, MAX_BPF_FUNCTIONS};
use netprof::probe::Function;
use netprof::render::funcgraph::{self as render, TreeOptions};
use netprof::Result;

use super::workload::{self, Workload, WorkloadArgs};
use super::{signals, values};

const FUNCGRAPH_LONG_HELP: &str = "\
Every matching function gets an entry and a return probe (all in one multi-kprobe link pair where \
the kernel has fprobe; else, or with --no-multi-kprobe, a link pair per function, with a progress \
line). In the kernel, each thread keeps a stack of the traced functions it is inside; on each return \
the call's wall time (entry to return, waiting and preemption included) is added to its call path: \
the chain of traced functions from the thread's outermost traced call down to it. Untraced \
functions in between do not show (the path skips them). Per path: calls, total time, self time \
(total minus the traced children's), minimum, maximum, calls that returned a negative errno, and a \
histogram of total and of self time per call (the buckets of `netprof latency`).

Calls that do not pair up are counted, never guessed at: returns of calls begun while the probes \
were being placed or removed, calls still running at the end, entries whose return never came, \
calls deeper than --depth. A recursive call is \
timed on a path with the function twice. A return value is taken as an errno when it is a long in \
[-4095, -1], or an int there (the register's upper half zero).

The tree (text) has one line per path, children under their parent sorted by total; --percent-limit \
folds the paths below that share of all time into one line. --folded prints each path with its self \
time in ns, so that a flamegraph (--flame) draws each function as wide as its total wall time. \
--slowest N keeps the N slowest calls of the outermost functions whole: every traced call under \
each, with when it began, its duration and its return value (at most 256 calls a tree). --errors \
keeps only outermost calls under which a traced call returned a negative errno (the 10 slowest, or \
--slowest N) and marks where the first error started: the first call to return an errno, the deepest \
of its chain.

JSON schema netprof-funcgraph/1: {schema, duration_s, probes, functions, under?, max_depth, \
unpaired: {no_entry, still_running, no_return, too_deep, recursive, no_thread_room, no_path_room, log_truncated, \
no_log_room, log_lost}, missed_returns, not_probed?, paths: [{path: [{function, module}], count, \
errors, total_ns, self_ns, min_ns, max_ns, median_ns, p99_ns, self_median_ns, self_p99_ns, \
histogram: [{low_ns, high_ns, count}], self_histogram: [...]}], kept_calls?: [{pid, tid, comm, \
duration_ns, truncated, calls: [{function, module, depth, start_ns, duration_ns, ret, errno, \
error_origin?}]}]}. `netprof diff` compares two such files path by path.

Examples:
  netprof funcgraph -m hsr 'hsr_*' --duration 10
  netprof funcgraph --under hsr_handle_frame 'hsr_*' 'skb_*' netif_rx --duration 5
  netprof funcgraph -m netprof_test 'netprof_test_*' --slowest 3 -- sh -c 'echo s10 > /proc/netprof_test'
  netprof funcgraph -m hsr 'hsr_*' --duration 10 --json > before.json";

#[derive(Args, Debug)]
#[command(after_long_help = FUNCGRAPH_LONG_HELP, after_help = "Examples:\n  netprof funcgraph -m hsr 'hsr_*' --duration 10\n  netprof funcgraph --under hsr_handle_frame 'hsr_*' 'skb_*' --duration 5\n  netprof funcgraph -m hsr 'hsr_*' --duration 10 --flame hsr.svg")]
pub struct FuncgraphArgs {
    /// Functions to trace: names or globs (several at once)
    #[arg(required = true, value_name = "FUNC")]
    pub functions: Vec<String>,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// Only calls made, directly or not, under these functions (names or globs; traced too, as the
    /// top of every path), like ftrace's set_graph_function
    #[arg(long, value_name = "FUNC")]
    pub under: Vec<String>,
    /// Time calls at most this many traced functions deep (1-32)
    #[arg(long, value_name = "N", default_value_t = MAX_DEPTH, value_parser = clap::value_parser!(u32).range(1..=MAX_DEPTH as i64))]
    pub depth: u32,
    /// Room in the kernel for this many distinct paths (about 9.3 KiB each)
    #[arg(long, value_name = "N", default_value = "2048", value_parser = values::path_entries)]
    pub max_paths: u32,
    /// Fold paths below this share of all time (percent) into one line
    #[arg(long, default_value = "0", value_parser = values::percent, allow_negative_numbers = true)]
    pub percent_limit: f64,
    /// Keep the N slowest calls of the outermost functions whole, with every traced call under
    /// each
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub slowest: Option<u32>,
    /// Keep only outermost calls under which a call returned a negative errno (the 10 slowest, or
    /// --slowest N), marking where the first error started
    #[arg(long)]
    pub errors: bool,
    /// Print folded stacks weighted by wall time in ns instead of the tree
    #[arg(long, conflicts_with = "json")]
    pub folded: bool,
    /// Also write a flamegraph of wall time to FILE (default netprof-funcgraph.svg)
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "netprof-funcgraph.svg")]
    pub flame: Option<PathBuf>,
    /// JSON instead of the tree (schema netprof-funcgraph/1)
    #[arg(long)]
    pub json: bool,
}

/// Calls kept by --errors without --slowest.
const ERRORS_KEPT: usize = 10;

pub fn run(args: FuncgraphArgs) -> Result<()> {
    workload::check(&args.workload, "traces")?;
    let (functions, roots) = resolve(&args)?;
    let mut workload = Workload::new(&args.workload)?;
    let stop = signals::stop_flag();
    let keep = match (args.slowest, args.errors) {
        (None, false) => None,
        (slowest, errors_only) => Some(Keep {
            slowest: slowest.map_or(ERRORS_KEPT, |n| n as usize),
            errors_only,
        }),
    };
    let opts = FuncGraphOptions {
        measure: workload.measure_options(&args.workload),
        max_depth: args.depth,
        max_paths: args.max_paths,
        roots,
        keep,
    };
    let count = functions.len();
    let until = workload.until(args.workload.duration);
    let report = workload.run(
        |probes| eprintln!("netprof: tracing {count} functions ({probes}) {until}"),
        |started, finished| {
            funcgraph::measure(
                &functions,
                &opts,
                stop,
                workload::progress_lines(args.workload.no_multi_kprobe),
                started,
                finished,
            )
        },
    )?;
    warn_about_losses(&report);
    if let Some(note) = kprobe_links::refused_note(&report.not_probed) {
        eprintln!("netprof: {note}");
    }
    if let Some(path) = &args.flame {
        write_atomically(path, |out| render::write_svg(&report, None, out))?;
        eprintln!(
            "netprof: flamegraph of wall time written to {}",
            path.display()
        );
    }
    super::print_result(args.json, &report, "the result", |out| {
        if args.folded {
            render::folded_lines(&report)
                .iter()
                .try_for_each(|line| writeln!(out, "{line}"))
        } else {
            let opts = TreeOptions {
                percent_limit: args.percent_limit,
            };
            render::render_text(&report, &opts, out)
        }
    })
}

/// The functions to trace and, with --under, which of them (by index)
/// tracing starts in: those are traced too, whether or not a pattern
/// matched them, wherever they are (vmlinux or a module).
fn resolve(args: &FuncgraphArgs) -> Result<(Vec<Function>, Vec<usize>)> {
    let resolver = Resolver::load()?;
    let limit = Limit {
        max: MAX_BPF_FUNCTIONS,
        remedy: "",
    };
    let patterns: Vec<&str> = args.functions.iter().map(String::as_str).collect();
    let mut functions =
        resolver.resolve(&patterns, args.workload.module.as_deref(), Some(limit))?;
    let mut roots = Vec::new();
    for pattern in &args.under {
        // In the module given, else anywhere.
        let found = match args.workload.module.as_deref() {
            Some(m) => resolver
                .resolve(&[pattern.as_str()], Some(m), Some(limit))
                .or_else(|_| resolver.resolve(&[pattern.as_str()], None, Some(limit)))?,
            None => resolver.resolve(&[pattern.as_str()], None, Some(limit))?,
        };
        for f in found {
            let at = match functions.iter().position(|g| g.address == f.address) {
                Some(at) => at,
                None => {
                    functions.push(f);
                    functions.len() - 1
                }
            };
            if !roots.contains(&at) {
                roots.push(at);
            }
        }
    }
    if functions.len() > MAX_BPF_FUNCTIONS {
        return Err(Error::bad_argument(format!(
            "{} functions with those under --under, more than {MAX_BPF_FUNCTIONS}; narrow the patterns",
            functions.len()
        )));
    }
    Ok((functions, roots))
}

/// What the kernel could not time, said on stderr whatever the output.
fn warn_about_losses(report: &FuncGraphReport) {
    let u = &report.unpaired;
    if u.no_thread_room > 0 || u.no_path_room > 0 {
        eprintln!(
            "netprof: warning: {} calls not timed (too many threads inside traced calls at once) and \
             {} not counted (more paths than --max-paths {}); trace fewer functions or raise --max-paths",
            u.no_thread_room,
            u.no_path_room,
            report.paths.len()
        );
    }
    if report.missed_returns > 0 || u.no_return > 0 {
        eprintln!(
            "netprof: warning: {} returns missed by the kernel; trace fewer functions at once",
            report.missed_returns.max(u.no_return)
        );
    }
    if u.log_lost > 0 {
        eprintln!(
            "netprof: warning: {} kept calls lost (netprof did not read them in time)",
            u.log_lost
        );
    }
}
