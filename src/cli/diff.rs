//! `netprof diff`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use netprof::analysis::diff::funcgraph;
use netprof::analysis::diff::latency::{self, LatencyDiff};
use netprof::analysis::diff::profiles::{
    diff_profiles, differential_folded, Counts, RunCounts, Selection,
};
use netprof::analysis::diff::{expand_inputs, side_kind, InputKind};
use netprof::error::{Error, IoContext};
use netprof::outfile::write_atomically;
use netprof::render::diff_flame::{self, Totals, Widths};
use netprof::render::diff_table::{self, TableOptions};
use netprof::render::html;
use netprof::Result;

use super::selection::SelectionArgs;
use super::values;

const DIFF_LONG_HELP: &str = "\
Inputs: BEFORE AFTER, or -b FILE... -a FILE... for repeated runs; a directory stands for every file in \
it. Both sides are recordings (netprof's or perf's perf.data), both are `netprof latency --json` \
results, or both are `netprof funcgraph --json` results.

Recordings: functions are matched by name and module, never by address, so recordings of two kernel \
builds or module versions compare. Each function has a self share (samples where it is the leaf) and \
a total share (samples with it anywhere on the stack), as percentages of all samples of its side. \
The table lists the change in percentage points, after minus before, with a 95% confidence interval: \
the changes beyond noise first, then the others, each sorted by the size of the self change, then of \
the total change; a screenful of rows (--all for every one). The JSON has every function, sorted by \
the size of the change. Report's filters select the samples compared on both sides: --comm, --pid, \
--cpu, --module, --event (default: each recording's first event), and --no-idle, which leaves out \
samples taken in the kernel's idle loop.

Noise: with one recording on a side, a share is a binomial proportion of that side's samples, and \
the sides are compared with a two-proportion z-test. With two or more recordings on both sides, each \
recording gives one share per function, and the sides are compared with Welch's t-test (confidence \
interval from Student's t), which accounts for run-to-run variation that one pair of recordings \
cannot show; use repeated runs to judge a change of a few percent. Across all functions of one \
comparison the Benjamini-Hochberg procedure keeps the expected share of false discoveries at 5%: \
changes it keeps are marked *, the others are within noise. Only shares of at least 0.5% on one side \
take part (hundreds of rare functions would raise the bar for all without clearing it themselves); \
rarer ones are never marked.

Latency results: each function's histograms are pooled per side (runs, CPUs, processes), and the \
table shows median and IQR before and after, the median's relative change, and the two-sided p-value \
of the Mann-Whitney U test (normal approximation; values in one histogram bucket count as ties), \
marked * under the same Benjamini-Hochberg rule; rows beyond noise come first, then by the size of \
the median's change.

Funcgraph results: paths are matched by their functions' names and modules. Per path, the median \
total and self time per call before and after and the change; with one result a side, the \
Mann-Whitney U test on each side's histograms; with two or more on both sides, Welch's t-test on \
each run's medians (which sees how much runs differ); Benjamini-Hochberg across all paths' tests, \
and a change smaller than the histograms' resolution (1/16) is never marked. Rows beyond noise \
first, then by the size of the change in self time (the path where time was added or removed), \
then in total time. Paths timed on one side only are listed after the table.

--flame FILE writes two differential flamegraphs (inferno), both sides weighed to the same total so \
that colours compare shares: FILE with frames as wide as in AFTER (red where they grew, blue where \
they shrank), and FILE with `.before` before its extension with frames as wide as in BEFORE, so \
that what shrank is wide. Each \
frame's tooltip gives its samples and share before and after, and the change in points. --folded \
prints the stacks with both counts, BEFORE scaled to AFTER's total (as inferno-diff-folded \
--normalize), for inferno-flamegraph or other tools.

--html FILE writes one self-contained page: for recordings, the differential flamegraph (AFTER's \
widths, or BEFORE's; red grew, blue shrank, by share) with the change table (the changes beyond \
noise first, marked *; a row finds its function in the flamegraph) and the functions with their \
callers and callees; for latency results, the table and both sides' histograms of a picked function \
overlaid on a log time axis.

JSON schemas: netprof-diff/1 {schema, method, before_runs, after_runs, before_samples, after_samples, \
functions: [{function, module, only_in: before|after|null (a kernel function the other side's kernel \
lacks), self: {before, after, delta, ci95, p_value, significant}, total: {...}}]} \
with shares as fractions; netprof-latency-diff/1 {schema, method, before_runs, after_runs, functions: \
[{function, module, before_calls, after_calls, before_median_ns, after_median_ns, median_change, \
before_iqr_ns, after_iqr_ns, iqr_change_ns, p_value, significant}]}; netprof-funcgraph-diff/1 \
{schema, method, before_runs, after_runs, paths: [{path: [{function, module}], before_calls, \
after_calls, total: {before_median_ns, after_median_ns, change_ns, relative, p_value, significant}, \
self: {...}}], only_before: [path], only_after: [path]}.

Examples:
  netprof diff before.data after.data --flame diff.svg
  netprof diff before.data after.data --html
  netprof diff before.data after.data --module hsr --no-idle
  netprof diff -b base1.data base2.data base3.data -a patch1.data patch2.data patch3.data
  netprof diff base/ patched/
  netprof diff before-latency.json after-latency.json
  netprof diff before-funcgraph.json after-funcgraph.json";

#[derive(Args, Debug)]
#[command(after_long_help = DIFF_LONG_HELP, after_help = "Examples:\n  netprof diff before.data after.data --flame diff.svg\n  netprof diff -b base1.data base2.data -a patch1.data patch2.data\n  netprof diff before-latency.json after-latency.json")]
pub struct DiffArgs {
    /// BEFORE and AFTER: recordings, latency or funcgraph results (--json), or directories of them
    #[arg(value_name = "FILE", num_args = 0..=2)]
    pub files: Vec<PathBuf>,
    /// Before the change: one or more recordings or latency results (repeated runs)
    #[arg(short = 'b', long = "before", value_name = "FILE", num_args = 1.., conflicts_with = "files")]
    pub before: Vec<PathBuf>,
    /// After the change: one or more recordings or latency results (repeated runs)
    #[arg(short = 'a', long = "after", value_name = "FILE", num_args = 1.., conflicts_with = "files")]
    pub after: Vec<PathBuf>,
    /// Write differential flamegraphs: FILE with AFTER's widths (what grew is red), and FILE with
    /// `.before` before its extension with BEFORE's widths (what shrank is wide and blue); default
    /// netprof-diff.svg
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "netprof-diff.svg")]
    pub flame: Option<PathBuf>,
    /// Write a self-contained web page to FILE (default netprof-diff.html): the differential
    /// flamegraph, the change table and, for latency results, both sides' histograms overlaid
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "netprof-diff.html", conflicts_with = "folded")]
    pub html: Option<PathBuf>,
    /// Print the differential folded stacks (stack before after) instead of the table
    #[arg(long, conflicts_with = "json")]
    pub folded: bool,
    /// JSON instead of the table (schemas netprof-diff/1, netprof-latency-diff/1,
    /// netprof-funcgraph-diff/1)
    #[arg(long)]
    pub json: bool,
    /// Leave out functions whose self and total shares changed by less than this, in percentage points
    #[arg(long, default_value = "0.1", value_parser = values::percent, allow_negative_numbers = true)]
    pub percent_limit: f64,
    /// Show every row of the table, not a screenful
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub selection: SelectionArgs,
}

pub fn run(args: DiffArgs) -> Result<()> {
    let (before, after) = match (args.files.as_slice(), args.before.is_empty(), args.after.is_empty()) {
        ([b, a], true, true) => (vec![b.clone()], vec![a.clone()]),
        ([], false, false) => (args.before.clone(), args.after.clone()),
        _ => {
            return Err(Error::bad_argument(
                "give BEFORE AFTER, or -b FILE... and -a FILE...; e.g. `netprof diff before.data after.data`",
            ))
        }
    };
    let (before, after) = (expand_inputs(&before)?, expand_inputs(&after)?);
    let kind = side_kind(&before)?;
    if side_kind(&after)? != kind {
        return Err(Error::bad_argument(format!(
            "the sides hold results of different kinds ({} and {}: recordings, latency or funcgraph \
             results); compare like with like",
            before[0].display(),
            after[0].display()
        )));
    }
    match kind {
        InputKind::Latency => latencies(&args, &before, &after),
        InputKind::FuncGraph => funcgraphs(&args, &before, &after),
        InputKind::Recording => recordings(&args, &before, &after),
    }
}

fn funcgraphs(args: &DiffArgs, before: &[PathBuf], after: &[PathBuf]) -> Result<()> {
    if args.flame.is_some() || args.folded || args.html.is_some() {
        return Err(Error::bad_argument(
            "--flame, --folded and --html need recordings (--html also takes latency results); compare funcgraph results as a table or JSON \
             (each result draws its own flamegraph: `netprof funcgraph --flame`)",
        ));
    }
    let read = |files: &[PathBuf]| -> Result<Vec<_>> {
        files.iter().map(|f| funcgraph::read(f)).collect()
    };
    let d = funcgraph::diff_funcgraphs(&read(before)?, &read(after)?)?;
    super::print_result(args.json, &d, "the comparison", |out| {
        diff_table::render_funcgraph_table(&d, table_options(args), out)
    })
}

fn table_options(args: &DiffArgs) -> TableOptions {
    TableOptions {
        percent_limit: args.percent_limit,
        all: args.all,
    }
}

fn latencies(args: &DiffArgs, before: &[PathBuf], after: &[PathBuf]) -> Result<()> {
    if args.flame.is_some() || args.folded {
        return Err(Error::bad_argument(
            "--flame and --folded need recordings; latency results have no stacks",
        ));
    }
    let read = |files: &[PathBuf]| -> Result<Vec<_>> {
        files
            .iter()
            .map(|f| {
                let report = latency::read(f)?;
                super::latency::warn_about_losses(&report, Some(f));
                Ok(report)
            })
            .collect()
    };
    let (b, a) = (read(before)?, read(after)?);
    let d: LatencyDiff = latency::diff_latencies(&b, &a)?;
    if let Some(path) = &args.html {
        let page = html::latency_page((&b, &a), (before, after), &d)?;
        write_page(path, &page)?;
    }
    super::print_result(args.json, &d, "the comparison", |out| {
        diff_table::render_latency_table(&d, out)
    })
}

fn recordings(args: &DiffArgs, before: &[PathBuf], after: &[PathBuf]) -> Result<()> {
    let selection = Selection {
        filter: args.selection.filter(false),
        module: args.selection.module.as_deref(),
        event: args.selection.event.as_deref(),
        states: args.selection.state.as_ref(),
        no_idle: args.selection.no_idle,
    };
    let read = |files: &[PathBuf]| -> Result<Vec<_>> {
        files
            .iter()
            .map(|f| RunCounts::read(f, &selection))
            .collect()
    };
    let (b, a) = (read(before)?, read(after)?);
    for (path, run) in before.iter().chain(after).zip(b.iter().chain(&a)) {
        if !run.other_events.is_empty() {
            eprintln!(
                "netprof: {}: comparing its {} samples; it also has {}",
                path.display(),
                run.event,
                run.other_events.join(", ")
            );
        }
    }
    if let Some(path) = &args.flame {
        write_flamegraphs(path, &b, &a)?;
    }
    if args.folded {
        let mut stdout = std::io::stdout().lock();
        for line in differential_folded(&b, &a, Counts::Normalized)? {
            writeln!(stdout, "{line}").io_context(|| "cannot write the folded stacks")?;
        }
        return Ok(());
    }
    let d = diff_profiles(&b, &a);
    if let Some(path) = &args.html {
        write_page(path, &html::profiles_page((&b, &a), (before, after), &d))?;
    }
    super::print_result(args.json, &d, "the comparison", |out| {
        diff_table::render_profile_table(&d, table_options(args), out)
    })
}

fn write_page(path: &Path, page: &html::Page) -> Result<()> {
    write_atomically(path, |out| {
        html::write(page, out).io_context(|| "cannot write the page")
    })?;
    eprintln!(
        "netprof: comparison page written to {} (open it in a browser)",
        path.display()
    );
    Ok(())
}

/// The two views: AFTER's widths in `path`, BEFORE's beside it (not for a
/// device or stream, which takes one).
fn write_flamegraphs(path: &Path, before: &[RunCounts], after: &[RunCounts]) -> Result<()> {
    let lines = differential_folded(before, after, Counts::Raw)?;
    let samples = |side: &[RunCounts]| side.iter().map(|r| r.samples).sum::<u64>();
    let totals = Totals {
        before: samples(before),
        after: samples(after),
    };
    write_atomically(path, |out| {
        diff_flame::write_differential_svg(&lines, Widths::After, totals, out)
    })?;
    let in_place = path.starts_with("/dev") || path.starts_with("/proc");
    let Some(before_path) = (!in_place).then(|| before_view_path(path)) else {
        eprintln!(
            "netprof: differential flamegraph (AFTER's widths) written to {}",
            path.display()
        );
        return Ok(());
    };
    write_atomically(&before_path, |out| {
        diff_flame::write_differential_svg(&lines, Widths::Before, totals, out)
    })?;
    eprintln!(
        "netprof: differential flamegraphs written to {} (AFTER's widths) and {} (BEFORE's widths)",
        path.display(),
        before_path.display()
    );
    Ok(())
}

/// `diff.svg` -> `diff.before.svg`.
fn before_view_path(path: &Path) -> PathBuf {
    match (path.file_stem(), path.extension()) {
        (Some(stem), Some(ext)) => path.with_file_name(format!(
            "{}.before.{}",
            stem.to_string_lossy(),
            ext.to_string_lossy()
        )),
        _ => PathBuf::from(format!("{}.before", path.display())),
    }
}
