use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use netprof::cli::{
    BpfArgs, Cli, Command, DiffArgs, GraphOrder, LatencyArgs, ProbeArgs, RecordArgs, ReportArgs,
    SortBy,
};
use netprof::outfile::AtomicFile;
use netprof::profile::{Filter, Profile};
use netprof::record::{parse_cpu_list, record, RecordOptions};
use netprof::report::{flame, json, tree, View};

fn main() -> ExitCode {
    // Writing to a closed pipe (`netprof report | head`) should end quietly.
    // SAFETY: restoring the default disposition of SIGPIPE.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Record(args) => run_record(args),
        Command::Report(args) => run_report(args),
        Command::Probe(args) => run_probe(args),
        Command::Bpf(args) => run_bpf(args),
        Command::Latency(args) => run_latency(args),
        Command::Diff(args) => run_diff(args),
        Command::Check => {
            print!(
                "{}",
                netprof::check::render(&netprof::check::capabilities())
            );
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut netprof::cli::command(),
                "netprof",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the causes joined, never a backtrace.
            eprintln!("netprof: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_record(args: RecordArgs) -> Result<()> {
    let opts = RecordOptions {
        events: args.events,
        all_cpus: args.all_cpus,
        pids: args.pids,
        cpus: args.cpus.as_deref().map(parse_cpu_list).transpose()?,
        command: args.command,
        frequency: args.frequency,
        callgraph: args.callgraph,
        output: args.output.clone(),
        duration: args.duration,
        quiet: args.quiet,
        bpf: args.bpf,
        bpf_map_entries: args.bpf_map_entries,
    };
    let summary = record(&opts)?;
    let dropped = summary.bpf_dropped;
    if dropped.total() > 0 {
        eprintln!(
            "netprof: warning: {} samples not counted: the kernel's maps were full ({} for stacks, {} for counts); \
             raise --bpf-map-entries",
            dropped.total(),
            dropped.stacks_full,
            dropped.counts_full
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
    }
    match summary.command_status {
        Some(status) if status != 0 && !args.quiet => {
            eprintln!("netprof: the command exited with status {status}")
        }
        _ => {}
    }
    Ok(())
}

fn run_latency(args: LatencyArgs) -> Result<()> {
    use netprof::latency::{self, Breakdown, LatencyOptions};
    let duration = match args.duration {
        Some(d) if !(d > 0.0 && d.is_finite()) => {
            anyhow::bail!("--duration {d}: give a positive number of seconds")
        }
        d => d.map(std::time::Duration::from_secs_f64),
    };
    for pid in &args.pids {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            anyhow::bail!("process {pid} does not exist; check the pid with `ps -p {pid}`");
        }
    }
    let opts = LatencyOptions {
        functions: args.functions,
        module: args.module,
        pids: args.pids,
        duration,
        breakdown: if args.per_cpu {
            Breakdown::PerCpu
        } else if args.per_pid {
            Breakdown::PerProcess
        } else {
            Breakdown::None
        },
    };
    let functions = latency::resolve_functions(&opts.functions, opts.module.as_deref())?;
    let count = functions.len();
    let report = latency::measure(&functions, &opts, |probes| {
        let until = match duration {
            Some(d) => format!("for {:.1}s", d.as_secs_f64()),
            None => "until Ctrl-C".to_string(),
        };
        eprintln!("netprof: timing {count} functions ({probes}) {until}");
    })?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &report)?;
        writeln!(stdout)?;
    } else {
        latency::render_text(&report, &mut stdout)?;
    }
    Ok(())
}

fn run_diff(args: DiffArgs) -> Result<()> {
    use netprof::diff::{self, InputKind};
    let (before, after) = match (args.files.as_slice(), args.before.is_empty(), args.after.is_empty()) {
        ([b, a], true, true) => (vec![b.clone()], vec![a.clone()]),
        ([], false, false) => (args.before, args.after),
        _ => anyhow::bail!(
            "give BEFORE AFTER, or -b FILE... and -a FILE...; e.g. `netprof diff before.data after.data`"
        ),
    };
    if !(0.0..=100.0).contains(&args.percent_limit) {
        anyhow::bail!("--percent-limit {} is outside 0..100", args.percent_limit);
    }
    let (before, after) = (diff::expand_inputs(&before)?, diff::expand_inputs(&after)?);
    let kind = diff::side_kind(&before)?;
    if diff::side_kind(&after)? != kind {
        anyhow::bail!(
            "one side holds recordings and the other latency results ({} and {}); compare like with like",
            before[0].display(),
            after[0].display()
        );
    }
    let mut stdout = std::io::stdout().lock();
    if kind == InputKind::Latency {
        if args.flame.is_some() || args.folded {
            anyhow::bail!("--flame and --folded need recordings; latency results have no stacks");
        }
        let read = |files: &[std::path::PathBuf]| -> Result<Vec<_>> {
            files.iter().map(|f| diff::read_latency(f)).collect()
        };
        let d = diff::diff_latencies(&read(&before)?, &read(&after)?);
        if args.json {
            serde_json::to_writer_pretty(&mut stdout, &d)?;
            writeln!(stdout)?;
        } else {
            diff::render_latency_table(&d, &mut stdout)?;
        }
        return Ok(());
    }
    let read = |files: &[std::path::PathBuf]| -> Result<Vec<_>> {
        files.iter().map(|f| diff::read_run(f)).collect()
    };
    let (b, a) = (read(&before)?, read(&after)?);
    if let Some(path) = &args.flame {
        let lines = diff::differential_folded(&b, &a)?;
        let mut file = AtomicFile::create(path)?;
        {
            let mut out = std::io::BufWriter::new(file.file());
            diff::write_differential_svg(&lines, "netprof diff", &mut out)?;
            out.flush().context("cannot write the flamegraph")?;
        }
        file.commit()?;
        eprintln!(
            "netprof: differential flamegraph written to {}",
            path.display()
        );
    }
    if args.folded {
        for line in diff::differential_folded(&b, &a)? {
            writeln!(stdout, "{line}")?;
        }
        return Ok(());
    }
    let d = diff::diff_profiles(&b, &a);
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &d)?;
        writeln!(stdout)?;
    } else {
        diff::render_profile_table(&d, args.percent_limit, &mut stdout)?;
    }
    Ok(())
}

fn run_bpf(args: BpfArgs) -> Result<()> {
    let duration = match args.duration {
        Some(d) if !(d > 0.0 && d.is_finite()) => {
            anyhow::bail!("--duration {d}: give a positive number of seconds")
        }
        d => d.map(std::time::Duration::from_secs_f64),
    };
    let mut programs = netprof::bpfprog::list(&args.ids)?;
    if let Some(duration) = duration {
        eprintln!(
            "netprof: measuring {} BPF programs for {:.1}s (Ctrl-C ends early)",
            programs.len(),
            duration.as_secs_f64()
        );
        let interval = std::time::Duration::from_millis(args.interval);
        netprof::bpfprog::measure(&mut programs, duration, interval)?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let doc = serde_json::json!({
            "schema": "netprof-bpf/1",
            "duration_s": args.duration,
            "programs": programs,
        });
        serde_json::to_writer_pretty(&mut stdout, &doc)?;
        writeln!(stdout)?;
    } else {
        netprof::bpfprog::render_table(&programs, &mut stdout)?;
    }
    Ok(())
}

fn run_report(args: ReportArgs) -> Result<()> {
    if !(0.0..=100.0).contains(&args.percent_limit) {
        anyhow::bail!("--percent-limit {} is outside 0..100", args.percent_limit);
    }
    let filter = Filter {
        comms: args.comm,
        pids: args.pid,
        cpus: args
            .cpu
            .as_deref()
            .map(parse_cpu_list)
            .transpose()?
            .unwrap_or_default(),
        keep_samples: args.samples,
    };
    let profile = Profile::read(&args.input, &filter)?;
    let view = View::build(&profile, args.module.as_deref())?;
    let mut stdout = std::io::stdout().lock();
    if let Some(path) = &args.flame {
        let mut file = AtomicFile::create(path)?;
        {
            let mut out = std::io::BufWriter::new(file.file());
            flame::write_svg(
                &view,
                &flame::FlameOptions {
                    title: args.title,
                    icicle: args.icicle,
                },
                &mut out,
            )?;
            out.flush().context("cannot write the flamegraph")?;
        }
        file.commit()?;
        eprintln!(
            "netprof: flamegraph of {} samples written to {}",
            view.total,
            path.display()
        );
        if !args.folded && !args.json && !args.samples {
            return Ok(());
        }
    }
    if args.samples {
        write!(stdout, "{}", netprof::report::samples::render(&view))?;
    } else if args.folded {
        for (stack, count) in view.folded() {
            writeln!(stdout, "{stack} {count}")?;
        }
    } else if args.json {
        writeln!(stdout, "{}", json::to_json(&view))?;
    } else {
        let opts = tree::TreeOptions {
            percent_limit: args.percent_limit,
            order: match args.order {
                GraphOrder::Caller => tree::Order::Caller,
                GraphOrder::Callee => tree::Order::Callee,
            },
            sort: match args.sort {
                SortBy::Symbol => tree::SortKey::Symbol,
                SortBy::Dso => tree::SortKey::Dso,
                SortBy::Comm => tree::SortKey::Comm,
            },
        };
        write!(stdout, "{}", tree::render(&view, &opts))?;
    }
    Ok(())
}

fn run_probe(args: ProbeArgs) -> Result<()> {
    use netprof::probe;
    let function = args.function.join(" ");
    let function = (!function.is_empty()).then_some(function);
    if args.list {
        for f in probe::probeable(args.module.as_deref(), function.as_deref())? {
            println!(
                "{}{}",
                f.name,
                f.module.map(|m| format!(" [{m}]")).unwrap_or_default()
            );
        }
        return Ok(());
    }
    if let Some(names) = args.del {
        if names.is_empty() && !args.all {
            anyhow::bail!("--del needs probe names, or --all to remove every netprof probe");
        }
        for name in probe::delete(&names, args.all)? {
            println!("removed netprof:{name}");
        }
        return Ok(());
    }
    let Some(function) = function else {
        anyhow::bail!("name a function to probe (netprof probe FUNC), or use --list or --del");
    };
    let (created, one_write) = probe::add(&function, args.module.as_deref(), args.force)?;
    if args.verbose {
        let how = if one_write {
            "in one write"
        } else {
            "one at a time"
        };
        eprintln!(
            "netprof: {} probe(s) added through kprobe_events {how}; to attach a glob at once for one recording, use record -e 'kprobe:GLOB' -a (a multi-kprobe BPF link)",
            created.len()
        );
    }
    for name in &created {
        println!("added netprof:{name}   (record with: netprof record -e netprof:{name} -a -g)");
    }
    Ok(())
}
