//! The command line: clap definitions (one module per command, each with
//! the function that runs it), value checks ([`values`]) and signals
//! ([`signals`]). Flags follow perf where the meaning is the same.

mod bpf;
mod diff;
mod funcgraph;
mod latency;
mod probe;
mod record;
mod report;
mod selection;
pub mod signals;
mod values;
mod workload;

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand};

use netprof::error::{IoContext, EXIT_CODES_HELP};
use netprof::Result;

/// What netprof keeps between runs, and how to turn it off.
const FILES_HELP: &str = "Files: $XDG_CACHE_HOME/netprof/kallsyms (~/.cache/netprof/kallsyms without it) \
holds a private copy (0600) of the kernel's code symbols: reports on perf-written files and recordings \
read it instead of /proc/kallsyms while the boot, the loaded modules and the loaded BPF programs are \
the same as when it was made, which spares the kernel tens of milliseconds of formatting per run. \
Set NETPROF_NO_CACHE to any value to neither read nor write it.\n\n";

#[derive(Parser, Debug)]
#[command(
    name = "netprof",
    version,
    about = "Profile Linux kernel networking code: sampled call stacks, caller graphs and flamegraphs with every frame named",
    long_about = "netprof records call stacks with perf events into perf.data files (readable by perf) that also carry \
                  the kernel's symbols, and reports them as caller/callee graphs, folded stacks, JSON and flamegraphs, \
                  naming kernel, module, BPF-program and user frames without debuginfo or --kallsyms.",
    after_help = EXIT_CODES_HELP,
    after_long_help = format!("{FILES_HELP}{EXIT_CODES_HELP}")
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Sample call stacks into a perf.data file
    Record(record::RecordArgs),
    /// Show a recording as a call graph, folded stacks, JSON or a flamegraph
    Report(report::ReportArgs),
    /// Add, list or remove persistent kprobes on kernel and module functions
    Probe(probe::ProbeArgs),
    /// Time each call of kernel or module functions: histogram, median, IQR, p90, p99
    Latency(latency::LatencyArgs),
    /// Trace the call paths under kernel or module functions: which path, and which child, took the wall time
    Funcgraph(funcgraph::FuncgraphArgs),
    /// Compare recordings (or latency results) before and after a change: which functions changed, by how much, and whether it is more than noise
    Diff(diff::DiffArgs),
    /// List loaded BPF programs (type, name, tag, attach point) and measure each one's cost per run
    Bpf(bpf::BpfArgs),
    /// Show what this kernel can do for netprof, and why each item matters
    Check {
        /// JSON instead of text (schema netprof-check/1: {schema, kernel, capabilities: [{name,
        /// available, detail, why, without}]}; without: what netprof does where it is missing)
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages into DIR (man/ in the repository is made so)
    #[command(hide = true)]
    ManPages { dir: PathBuf },
}

/// Runs one command.
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::Record(args) => record::run(args),
        Command::Report(args) => {
            signals::input_truncation_ends_the_run();
            report::run(args)
        }
        Command::Probe(args) => probe::run(args),
        Command::Latency(args) => latency::run(args),
        Command::Funcgraph(args) => funcgraph::run(args),
        Command::Diff(args) => {
            signals::input_truncation_ends_the_run();
            diff::run(args)
        }
        Command::Bpf(args) => bpf::run(args),
        Command::Check { json } => {
            let caps = netprof::sys::capabilities::capabilities();
            let text = match json {
                true => netprof::render::check::to_json(&caps),
                false => netprof::render::check::render(&caps),
            };
            print!("{text}");
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "netprof",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::ManPages { dir } => write_man_pages(&dir),
    }
}

/// Prints a result on stdout: as JSON (pretty, one value) when `json`,
/// else as `text` writes it; `what` names it in the error ("the result").
fn print_result<T: serde::Serialize>(
    json: bool,
    value: &T,
    what: &str,
    text: impl FnOnce(&mut std::io::StdoutLock) -> std::io::Result<()>,
) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match json {
        true => serde_json::to_writer_pretty(&mut stdout, value)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout)),
        false => text(&mut stdout),
    }
    .io_context(|| format!("cannot write {what}"))
}

/// One page for netprof and one per visible subcommand.
fn write_man_pages(dir: &Path) -> Result<()> {
    let root = Cli::command();
    let mut pages: Vec<(String, clap::Command)> = root
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set())
        .map(|sub| {
            let name = format!("netprof-{}", sub.get_name());
            (name.clone(), sub.clone().name(name))
        })
        .collect();
    pages.push(("netprof".to_string(), root));
    for (name, command) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut page = Vec::new();
        clap_mangen::Man::new(command)
            .render(&mut page)
            .io_context(|| format!("cannot render {name}.1"))?;
        std::fs::write(&path, page).io_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
