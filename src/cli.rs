//! The command line: clap definitions, shared by the binary, the man pages
//! and the shell completions. Flags follow perf where the meaning is the same.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "netprof",
    version,
    about = "Profile Linux kernel networking code: sampled call stacks, caller graphs and flamegraphs with every frame named",
    long_about = "netprof records call stacks with perf events into perf.data files (readable by perf) that also carry \
                  the kernel's symbols, and reports them as caller/callee graphs, folded stacks, JSON and flamegraphs, \
                  naming kernel, module, BPF-program and user frames without debuginfo or --kallsyms."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sample call stacks into a perf.data file
    Record(RecordArgs),
    /// Show a recording as a call graph, folded stacks, JSON or a flamegraph
    Report(ReportArgs),
    /// Add, list or remove persistent kprobes on kernel and module functions
    Probe(ProbeArgs),
    /// Time each call of kernel or module functions: histogram, median, IQR, p90, p99
    Latency(LatencyArgs),
    /// Compare recordings (or latency results) before and after a change: which functions changed, by how much, and whether it is more than noise
    Diff(DiffArgs),
    /// List loaded BPF programs (type, name, tag, attach point) and measure each one's cost per run
    Bpf(BpfArgs),
    /// Show what this kernel can do for netprof, and why each item matters
    Check,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  netprof record -a -g --duration 10\n  netprof record -g -- dd if=/dev/zero of=/dev/null bs=4k count=100000\n  netprof record -e net:net_dev_xmit -a -g --duration 5\n  netprof record --bpf -a -g -F 999 --duration 10"
)]
pub struct RecordArgs {
    /// Sample all CPUs (the default when no command and no -p is given)
    #[arg(short = 'a', long = "all-cpus")]
    pub all_cpus: bool,
    /// Sample these processes and the children they create (comma-separated)
    #[arg(short = 'p', long = "pid", value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Sample only these CPUs, e.g. 0,2-3 (system-wide on them)
    #[arg(short = 'C', long = "cpu")]
    pub cpus: Option<String>,
    /// Sampling frequency in Hz for counting events (tracepoints sample every hit)
    #[arg(short = 'F', long = "freq", default_value_t = 999)]
    pub frequency: u64,
    /// Record kernel and user call chains
    #[arg(short = 'g')]
    pub callgraph: bool,
    /// Event to sample: cpu-clock (default), task-clock, a hardware event such as cycles, a tracepoint
    /// subsystem:name, a probe kprobe:[MODULE:]FUNC[%return] that lives as long as the recording, or a
    /// persistent probe netprof:FUNC; repeatable
    #[arg(short = 'e', long = "event")]
    pub events: Vec<String>,
    /// Output file
    #[arg(short = 'o', long = "output", default_value = "netprof.data")]
    pub output: PathBuf,
    /// Stop after this many seconds
    #[arg(long)]
    pub duration: Option<f64>,
    /// No status line and no summary
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Count stacks in the kernel with BPF instead of copying each sample to user space (far less
    /// recorder CPU on busy systems); the file and its reports are the same. Needs root
    #[arg(long)]
    pub bpf: bool,
    /// With --bpf: room for this many distinct stacks (and counts) per second in the kernel's maps;
    /// samples beyond it are counted as dropped and reported
    #[arg(long, value_name = "N", requires = "bpf", value_parser = clap::value_parser!(u32).range(1..))]
    pub bpf_map_entries: Option<u32>,
    /// Command to run and profile until it exits (after --)
    #[arg(last = true)]
    pub command: Vec<String>,
}

const LATENCY_LONG_HELP: &str = "\
Each call is timed from a probe at the function's entry to one at its return (kprobe and kretprobe; \
all functions in one multi-kprobe link pair where the kernel has fprobe). The times go into a \
histogram in the kernel: exact below 32 ns, then 16 buckets per power of two, so no bucket is wider \
than 1/16 of its value. Quantiles (p25, median, p75, p90, p99) interpolate inside their bucket and \
stay within the exact minimum and maximum; IQR is p75 - p25. Calls already running when netprof \
attaches are not timed; a recursive call hides the outer call's time.

JSON schema netprof-latency/1: {schema, duration_s, probes, dropped, missed_returns, functions: \
[{function, module, cpu?, pid?, count, min_ns, max_ns, mean_ns, p25_ns, median_ns, p75_ns, iqr_ns, \
p90_ns, p99_ns, histogram: [{low_ns, high_ns, count}]}]}.

Examples:
  netprof latency hsr_forward_skb --duration 10
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
    /// Time calls from every process (the default)
    #[arg(short = 'a', long = "all-cpus", conflicts_with = "pids")]
    pub all_cpus: bool,
    /// Time only calls made by these processes (comma-separated)
    #[arg(short = 'p', long = "pid", value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// Stop after this many seconds (default: at Ctrl-C)
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
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

const DIFF_LONG_HELP: &str = "\
Inputs: BEFORE AFTER, or -b FILE... -a FILE... for repeated runs; a directory stands for every file in \
it. Both sides are recordings (netprof's or perf's perf.data) or both are `netprof latency --json` \
results.

Recordings: functions are matched by name and module, never by address, so recordings of two kernel \
builds or module versions compare. Each function has a self share (samples where it is the leaf) and \
a total share (samples with it anywhere on the stack), as percentages of all samples of its side. \
The table lists the change in percentage points, after minus before, with a 95% confidence interval, \
sorted by the size of the self change, then of the total change.

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
marked * under the same Benjamini-Hochberg rule.

--flame writes a differential flamegraph (inferno): frames are as wide as in AFTER, red where they \
grew, blue where they shrank, with BEFORE scaled to AFTER's total samples.

JSON schemas: netprof-diff/1 {schema, method, before_runs, after_runs, before_samples, after_samples, \
functions: [{function, module, self: {before, after, delta, ci95, p_value, significant}, total: {...}}]} \
with shares as fractions; netprof-latency-diff/1 {schema, method, before_runs, after_runs, functions: \
[{function, module, before_calls, after_calls, before_median_ns, after_median_ns, median_change, \
before_iqr_ns, after_iqr_ns, iqr_change_ns, p_value, significant}]}.

Examples:
  netprof diff before.data after.data --flame diff.svg
  netprof diff -b base1.data base2.data base3.data -a patch1.data patch2.data patch3.data
  netprof diff base/ patched/
  netprof diff before-latency.json after-latency.json";

#[derive(Args, Debug)]
#[command(after_long_help = DIFF_LONG_HELP, after_help = "Examples:\n  netprof diff before.data after.data --flame diff.svg\n  netprof diff -b base1.data base2.data -a patch1.data patch2.data\n  netprof diff before-latency.json after-latency.json")]
pub struct DiffArgs {
    /// BEFORE and AFTER: recordings, latency results (--json), or directories of them
    #[arg(value_name = "FILE", num_args = 0..=2)]
    pub files: Vec<PathBuf>,
    /// Before the change: one or more recordings or latency results (repeated runs)
    #[arg(short = 'b', long = "before", value_name = "FILE", num_args = 1.., conflicts_with = "files")]
    pub before: Vec<PathBuf>,
    /// After the change: one or more recordings or latency results (repeated runs)
    #[arg(short = 'a', long = "after", value_name = "FILE", num_args = 1.., conflicts_with = "files")]
    pub after: Vec<PathBuf>,
    /// Write a differential flamegraph SVG to FILE (default netprof-diff.svg)
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "netprof-diff.svg")]
    pub flame: Option<PathBuf>,
    /// Print the differential folded stacks (stack before after) instead of the table
    #[arg(long, conflicts_with = "json")]
    pub folded: bool,
    /// JSON instead of the table (schemas netprof-diff/1, netprof-latency-diff/1)
    #[arg(long)]
    pub json: bool,
    /// Leave out functions whose self and total shares changed by less than this, in percentage points
    #[arg(long, default_value_t = 0.1)]
    pub percent_limit: f64,
}

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
    /// Measure each program's runs per second and ns per run for this many seconds
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// With --duration: read the statistics this often, in milliseconds (one ns/run value per interval)
    #[arg(long, value_name = "MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..))]
    pub interval: u64,
    /// Only these program ids (repeatable)
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<u32>,
    /// JSON instead of a table (schema netprof-bpf/1)
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GraphOrder {
    /// Under each entry, what it calls
    Caller,
    /// Under each entry, who calls it
    Callee,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SortBy {
    Symbol,
    Dso,
    Comm,
}

const REPORT_LONG_HELP: &str = "\
Call graph: entries are sorted by their inclusive (children) share and show their self share; \
-g caller draws, under each entry, what it calls; -g callee draws who calls it. Percentages are of \
all samples left after the filters. Return addresses are looked up at the call site (address - 1).

Frames: kernel frames are named from the kallsyms snapshot stored in the recording (files written \
by perf use this machine's /proc/kallsyms); module frames read `func [module]`, BPF programs \
`bpf_prog_<tag>_<name> [bpf]`; user frames come from the ELF symbols (and DWARF) of the mapped file. \
An address that cannot be named is shown in hex, with its file and offset for user frames.

JSON schema netprof-report/1: an object with `schema`, `events` (names), `total_samples`, \
`lost_samples`, `kernel_names` (snapshot | live-kallsyms | unavailable), `frames` (array of \
{name, module, kind: kernel|module|bpf|user, resolved}) and `stacks` (array of {comm, pid, tid, \
cpu, event, count, frames: indexes into `frames`, root first}).

Examples:
  netprof report
  netprof report --flame
  netprof report -i perf.data --folded > out.folded
  netprof report --module hsr -g callee";

#[derive(Args, Debug)]
#[command(after_long_help = REPORT_LONG_HELP, after_help = "Examples:\n  netprof report\n  netprof report --flame\n  netprof report -i perf.data --folded > out.folded\n  netprof report --module hsr -g callee")]
pub struct ReportArgs {
    /// Input file (netprof's or perf's perf.data)
    #[arg(short = 'i', long = "input", default_value = "netprof.data")]
    pub input: PathBuf,
    /// Leave out entries and branches below this share of samples, in percent
    #[arg(long, default_value_t = 0.5)]
    pub percent_limit: f64,
    /// Call graph order
    #[arg(short = 'g', long = "call-graph", value_enum, default_value = "caller")]
    pub order: GraphOrder,
    /// What the entries of the text report are
    #[arg(long, value_enum, default_value = "symbol")]
    pub sort: SortBy,
    /// Keep only samples of these commands (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub comm: Vec<String>,
    /// Keep only samples of these processes (comma-separated)
    #[arg(long, value_delimiter = ',')]
    pub pid: Vec<i32>,
    /// Keep only samples taken on these CPUs, e.g. 0,2-3
    #[arg(long)]
    pub cpu: Option<String>,
    /// Keep only stacks passing through this kernel module (or `bpf`)
    #[arg(long)]
    pub module: Option<String>,
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
    /// Print every sample in time order with its stack and its tracepoint or probe fields (like perf script)
    #[arg(long, conflicts_with_all = ["json", "folded"])]
    pub samples: bool,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  netprof probe hsr_forward_skb\n  netprof probe -m hsr 'hsr_*'\n  netprof probe tcp_sendmsg%return\n  netprof probe --list -m hsr\n  netprof probe --del --all\n\nA probe stays until --del; record with it as -e netprof:FUNC. For a probe that lives only\nas long as one recording, use netprof record -e kprobe:FUNC."
)]
pub struct ProbeArgs {
    /// Function to probe: FUNC, FUNC%return (a return probe) or a glob such as 'hsr_*', then optionally
    /// arguments to record at each hit: BTF names (len) or positions (len=$arg3)
    pub function: Vec<String>,
    /// Only functions of this module
    #[arg(short = 'm', long)]
    pub module: Option<String>,
    /// List the functions that can be probed (optionally matching FUNCTION as a glob)
    #[arg(long, conflicts_with = "del")]
    pub list: bool,
    /// Remove netprof's probes with these names (globs allowed)
    #[arg(long, num_args = 0.., value_name = "NAME")]
    pub del: Option<Vec<String>>,
    /// With --del: remove all of netprof's probes
    #[arg(long, requires = "del")]
    pub all: bool,
    /// Allow a glob to place more than 300 probes
    #[arg(long)]
    pub force: bool,
    /// Say how probes were attached
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
