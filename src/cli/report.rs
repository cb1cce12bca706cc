//! `netprof report`.

use std::io::Write;
use std::mem::ManuallyDrop;
use std::path::PathBuf;

use clap::Args;

use netprof::error::IoContext;
use netprof::model::off_cpu::{self, WAKER_EVENT};
use netprof::model::profile::Profile;
use netprof::model::symbolize::symbolize;
use netprof::model::view::View;
use netprof::outfile::write_atomically;
use netprof::render::tree::{Order, SortKey, TreeOptions};
use netprof::render::{flame, folded, html, json, pprof, samples, threads, tree};
use netprof::{Error, Result};

use super::selection::SelectionArgs;
use super::values;

/// The longest waits `--threads` shows for each thread.
const TOP_WAITS: usize = 3;

const ORDERS: &[(&str, &str, Order)] = &[
    ("caller", "Under each entry, what it calls", Order::Caller),
    ("callee", "Under each entry, who calls it", Order::Callee),
];

const SORT_KEYS: &[(&str, &str, SortKey)] = &[
    ("symbol", "One entry per function", SortKey::Symbol),
    ("dso", "One entry per module or file", SortKey::Dso),
    ("comm", "One entry per command", SortKey::Comm),
];

const REPORT_LONG_HELP: &str = "\
Call graph: entries are sorted by their inclusive (children) share and show their self share; \
-g caller draws, under each entry, what it calls; -g callee draws who calls it. Percentages are of \
all samples left after the filters. Return addresses are looked up at the call site (address - 1).

Frames: kernel frames are named from the kallsyms snapshot stored in the recording (files written \
by perf use this machine's /proc/kallsyms); module frames read `func [module]`, BPF programs \
`bpf_prog_<tag>_<name> [bpf]`; user frames come from the ELF symbols of the mapped file, or of its \
debug file under /usr/lib/debug/.build-id where one is installed (DWARF only for a file without either). \
A kernel address that cannot be named is shown in hex, a user one as file+0xOFFSET. A user call \
chain ends at its first frame outside every executable mapping of its process (a binary without \
frame pointers unwinds into garbage) with one `[unknown]` frame, as perf shows it; the header \
counts the samples so cut. Build with -fno-omit-frame-pointer for whole user stacks.

--no-idle leaves out samples whose leaf is the kernel's idle loop (pv_native_safe_halt, intel_idle, \
default_idle, ...).

Events: a recording of several events (-e cpu-clock -e sched:sched_switch) is reported one event \
at a time, never as one population: the text report has a section per event; --folded, --flame \
and --json show the first event (and name the others on stderr), --event NAME picks one; \
--samples lists every event's samples unless --event is given.

Off-CPU time (a recording made with record --off-cpu): each wait is a sample of an \
offcpu-time:STATE event (R runnable, S sleeping, D uninterruptible, I idle kernel thread, T, t, P) \
whose count is the time away in nanoseconds; the states are reported as one offcpu-time event unless \
--state or --event offcpu-time:S picks some. --event all weighs cpu-clock samples by their mean period \
and puts them beside off-CPU time: wall-clock time. --wakeups shows the offcpu-waker event: the \
blocked thread's kernel stack, a `--` frame, then the kernel stack of whoever woke it. --threads \
lists each thread's on-CPU time, off-CPU time by state and its three longest waits; with --json, \
schema netprof-threads/1: {schema, threads: [{pid, tid, comm, on_cpu_ns, off_cpu_ns, \
off_cpu_by_state: {STATE: ns}, top_waits: [{state, ns, frames: [names, root first]}]}]}.

--html FILE writes one self-contained page (its script, style and data inline; it fetches nothing): \
a flamegraph per event (click zooms, search highlights and gives the matches' share, Icicle turns it \
upside down), the functions with self and total, sortable and filtered by name or module, and for a \
picked function its callers and callees; each thread's samples and probe hits over time (with \
sched:sched_switch in a system-wide recording, its time on a CPU); and the recording's facts. Counts \
drained from the kernel (off-CPU time, --bpf) have no time of their own and stay out of the \
timeline. Past 600,000 call-tree nodes the smallest call paths merge into one [smaller paths] node \
under their caller (totals stay exact; the facts say how many).

JSON schema netprof-report/1: an object with `schema`, `events` (names of all events), `event` \
(the one reported), `total_samples`, `lost_samples`, `truncated_user_samples` (user chains cut at \
[unknown], in the unit of `total_samples`: nanoseconds for off-CPU time), `kernel_names` (snapshot | live-kallsyms | unavailable), `frames` (array of {name, module, kind: kernel|module|bpf|user, resolved}) and \
`stacks` (array of {comm, pid, tid, cpu, event, count, frames: indexes into `frames`, root first}).

Examples:
  netprof report
  netprof report --flame
  netprof report --html
  netprof report -i perf.data --folded > out.folded
  netprof report --module hsr -g callee";

#[derive(Args, Debug)]
#[command(after_long_help = REPORT_LONG_HELP, after_help = "Examples:\n  netprof report\n  netprof report --flame\n  netprof report -i perf.data --folded > out.folded\n  netprof report --module hsr -g callee")]
pub struct ReportArgs {
    /// Input file (netprof's or perf's perf.data)
    #[arg(short = 'i', long = "input", default_value = "netprof.data")]
    pub input: PathBuf,
    /// Leave out entries and branches below this share of samples, in percent
    #[arg(long, default_value = "0.5", value_parser = values::percent, allow_negative_numbers = true)]
    pub percent_limit: f64,
    /// Call graph order
    #[arg(short = 'g', long = "call-graph", default_value = "caller", value_parser = values::choice(ORDERS))]
    pub order: Order,
    /// What the entries of the text report are
    #[arg(long, default_value = "symbol", value_parser = values::choice(SORT_KEYS))]
    pub sort: SortKey,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Write a flamegraph SVG to FILE (default netprof.svg)
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "netprof.svg")]
    pub flame: Option<PathBuf>,
    /// Draw the flamegraph top-down
    #[arg(long, requires = "flame")]
    pub icicle: bool,
    /// Flamegraph title
    #[arg(long, requires = "flame")]
    pub title: Option<String>,
    /// Print folded stacks (comm;root;...;leaf count) instead of the call graph
    #[arg(long, conflicts_with = "json")]
    pub folded: bool,
    /// Print the report as JSON (schema netprof-report/1, see the man page)
    #[arg(long)]
    pub json: bool,
    /// Write the report as a gzip-compressed pprof profile to FILE (default netprof.pb.gz), for
    /// `go tool pprof`, Parca or Pyroscope
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "netprof.pb.gz")]
    pub pprof: Option<PathBuf>,
    /// Print every sample in time order with its stack and its tracepoint or probe fields (like perf script)
    #[arg(long, conflicts_with_all = ["json", "folded"])]
    pub samples: bool,
    /// Write a self-contained web page to FILE (default netprof.html): a flamegraph per event
    /// (zoom, search, icicle), the functions with their callers and callees, each thread's samples
    /// over time, and the recording's facts
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "netprof.html")]
    pub html: Option<PathBuf>,
    /// Time per thread on and off the CPU, off-CPU time by state, and each thread's longest waits
    /// (a recording made with --off-cpu; --json for schema netprof-threads/1)
    #[arg(long, conflicts_with_all = ["folded", "samples", "flame", "html", "event", "state"])]
    pub threads: bool,
    /// Who ended each wait: the waker's kernel stack over the blocked thread's, as offwaketime
    /// draws them (a recording made with --off-cpu --wakeups; same as --event offcpu-waker)
    #[arg(long, conflicts_with_all = ["event", "threads"])]
    pub wakeups: bool,
}

pub fn run(args: ReportArgs) -> Result<()> {
    // The page's timeline draws every sample at its time.
    let filter = args.selection.filter(args.samples || args.html.is_some());
    // The process ends with the report: the kernel takes the profile's
    // memory back at once, where dropping it frees its allocations one by
    // one (25 ms for a recording of 126k distinct stacks).
    let mut profile = ManuallyDrop::new(Profile::read(&args.input, &filter)?);
    if args.threads {
        return threads(&profile, &args);
    }
    let event = match args.wakeups {
        true if !profile.events.iter().any(|e| e == WAKER_EVENT) => {
            return Err(Error::not_found(format!(
                "{} has no {WAKER_EVENT} samples; record with --off-cpu --wakeups",
                args.input.display()
            )))
        }
        true => Some(WAKER_EVENT),
        false => args.selection.event.as_deref(),
    };
    let chosen = profile.choose_event(event, args.selection.state.as_ref())?;
    let symbols = ManuallyDrop::new(symbolize(&profile));
    let view_filter = |event: Option<u16>| args.selection.view(event);
    let file_or_listing =
        args.flame.is_some() || args.pprof.is_some() || args.folded || args.json || args.samples;
    if let Some(path) = &args.html {
        // Every event on one page, unless --event picked one.
        let events = match chosen {
            Some(e) => vec![e],
            None => profile.sampled_events(),
        };
        let views = events
            .iter()
            .map(|&e| View::build(&profile, &symbols, view_filter(Some(e))))
            .collect::<Result<Vec<_>>>()?;
        if views.is_empty() {
            return Err(Error::corrupt_input(format!(
                "{} holds no samples; record longer or check the events",
                args.input.display()
            )));
        }
        write_atomically(path, |out| {
            html::write(&html::report_page(&views, &args.input), out)
                .io_context(|| "cannot write the page")
        })?;
        eprintln!(
            "netprof: report page written to {} (open it in a browser)",
            path.display()
        );
        if !file_or_listing {
            return Ok(());
        }
    }
    if !file_or_listing {
        // One section per event: time samples and probe hits never mix.
        let events = match chosen {
            Some(e) => vec![e],
            None => profile.sampled_events(),
        };
        let opts = TreeOptions {
            percent_limit: args.percent_limit,
            order: args.order,
            sort: args.sort,
        };
        let mut text = String::new();
        for (i, &event) in events.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            text.push_str(&tree::render(
                &View::build(&profile, &symbols, view_filter(Some(event)))?,
                &opts,
            ));
        }
        if events.is_empty() {
            text = tree::render(&View::build(&profile, &symbols, view_filter(None))?, &opts);
        }
        return write!(std::io::stdout().lock(), "{text}").io_context(|| "cannot write the report");
    }
    // --samples lists every event in time order; the other outputs one event.
    let event = match (chosen, args.samples) {
        (Some(e), _) => Some(e),
        (None, true) => None,
        (None, false) => first_event_noting_others(&profile),
    };
    let view = View::build(&profile, &symbols, view_filter(event))?;
    if let Some(path) = &args.flame {
        let options = flame::FlameOptions {
            title: args.title.clone(),
            icicle: args.icicle,
        };
        write_atomically(path, |out| flame::write_svg(&view, &options, out))?;
        eprintln!(
            "netprof: flamegraph of {} samples written to {}",
            view.total,
            path.display()
        );
    }
    if let Some(path) = &args.pprof {
        write_atomically(path, |out| pprof::write(&view, out))?;
        eprintln!(
            "netprof: pprof profile of {} written to {} (go tool pprof -top {})",
            view.event_name(),
            path.display(),
            path.display()
        );
    }
    let mut stdout = std::io::stdout().lock();
    let printed = if args.samples {
        write!(stdout, "{}", samples::render(&view))
    } else if args.folded {
        folded::write(&view, &mut stdout)
    } else if args.json {
        writeln!(stdout, "{}", json::to_json(&view))
    } else {
        Ok(())
    };
    printed.io_context(|| "cannot write the report")
}

/// `--threads`: time on and off the CPU per thread.
fn threads(profile: &Profile, args: &ReportArgs) -> Result<()> {
    let times = off_cpu::thread_times(profile, TOP_WAITS)?;
    let symbols = symbolize(profile);
    let text = match args.json {
        true => format!("{}\n", threads::to_json(&times, profile, &symbols)),
        false => threads::render(&times, profile, &symbols, args.percent_limit),
    };
    write!(std::io::stdout().lock(), "{text}").io_context(|| "cannot write the report")
}

/// The recording's first event with samples; the others are named on
/// stderr, with how to pick one.
fn first_event_noting_others(profile: &Profile) -> Option<u16> {
    let events = profile.sampled_events();
    let (&first, others) = events.split_first()?;
    if !others.is_empty() {
        let names: Vec<&str> = others
            .iter()
            .map(|&e| profile.events[e as usize].as_str())
            .collect();
        eprintln!(
            "netprof: showing {}; the recording also has {} (pick one with --event)",
            profile.events[first as usize],
            names.join(", ")
        );
    }
    Some(first)
}
