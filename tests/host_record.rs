//! Recordings made on this machine: real perf events, real workloads, and
//! perf itself reading our files and writing files we read.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const DD: [&str; 6] = [
    "dd",
    "if=/dev/zero",
    "of=/dev/null",
    "bs=4k",
    "count=1500000",
    "status=none",
];

fn folded(file: &Path, extra: &[&str]) -> String {
    let mut args = vec!["report", "-i", file.to_str().unwrap(), "--folded"];
    args.extend_from_slice(extra);
    let out = netprof(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

fn samples_in(folded: &str) -> u64 {
    folded
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

fn perf(args: &[&str]) -> String {
    let out = Command::new("perf")
        .args(args)
        .output()
        .expect("perf is installed (linux-perf); .ci/run installs it");
    assert!(
        out.status.success(),
        "perf {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn dd_reads_zero_in_text_folded_svg_and_in_perf() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dd.data");
    let mut args = vec!["record", "-a", "-g", "-o", data.to_str().unwrap(), "--"];
    args.extend_from_slice(&DD);
    let out = netprof(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("samples (0 lost)"),
        "{}",
        stderr(&out)
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let f = folded(&data, &[]);
    assert!(
        f.lines()
            .any(|l| l.starts_with("dd;") && l.contains(";vfs_read;read_zero ")),
        "no dd stack through read_zero:\n{f}"
    );

    let out = netprof(&["report", "-i", data.to_str().unwrap(), "--comm", "dd"]);
    let text = stdout(&out);
    assert!(text.contains("[k] read_zero"), "{text}");
    let block = text
        .split("\n\n")
        .find(|b| b.contains("[k] vfs_read"))
        .expect("vfs_read entry");
    assert!(
        block.contains("read_zero"),
        "read_zero not under vfs_read:\n{block}"
    );

    let svg = dir.path().join("dd.svg");
    let out = netprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--flame",
        svg.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("read_zero"));

    // perf reads the same file and finds the same function under dd.
    let report = perf(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--stdio",
        "--comm",
        "dd",
        "--no-children",
        "--sort",
        "sym",
        "-g",
        "none",
    ]);
    assert!(
        report.contains("read_zero"),
        "perf report lacks read_zero:\n{report}"
    );
    let script = perf(&["script", "-i", data.to_str().unwrap(), "--comm", "dd"]);
    assert!(script.contains("read_zero"), "perf script lacks read_zero");

    // The same top symbols: perf's hottest self symbol of dd is among ours.
    let perf_top: Vec<String> = report
        .lines()
        .filter(|l| {
            l.trim_start()
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .filter_map(|l| l.split_once("] ").map(|(_, sym)| sym.trim().to_string()))
        .take(1)
        .collect();
    let ours = top_self_symbols(&data, "dd", 3);
    assert!(!perf_top.is_empty(), "{report}");
    assert!(
        ours.contains(&perf_top[0]),
        "perf's top {perf_top:?} not in ours {ours:?}"
    );
}

/// The `n` frames with the most samples at the leaf for `comm`, from --json.
fn top_self_symbols(file: &Path, comm: &str, n: usize) -> Vec<String> {
    let out = netprof(&[
        "report",
        "-i",
        file.to_str().unwrap(),
        "--json",
        "--comm",
        comm,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let frames = v["frames"].as_array().unwrap();
    let mut self_counts = std::collections::HashMap::<String, u64>::new();
    for s in v["stacks"].as_array().unwrap() {
        let leaf = s["frames"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_u64()
            .unwrap() as usize;
        *self_counts
            .entry(frames[leaf]["name"].as_str().unwrap().to_string())
            .or_default() += s["count"].as_u64().unwrap();
    }
    let mut v: Vec<(u64, String)> = self_counts.into_iter().map(|(k, c)| (c, k)).collect();
    v.sort_by(|a, b| b.cmp(a));
    v.into_iter().take(n).map(|(_, k)| k).collect()
}

#[test]
fn reads_files_written_by_perf_record() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("perf.data");
    let mut args = vec![
        "record",
        "-q",
        "-e",
        "cpu-clock",
        "-a",
        "-g",
        "-o",
        data.to_str().unwrap(),
        "--",
    ];
    args.extend_from_slice(&DD);
    perf(&args);
    let f = folded(&data, &["--comm", "dd"]);
    assert!(
        f.lines()
            .any(|l| l.starts_with("dd;") && l.contains(";read_zero ")),
        "{f}"
    );
    let out = netprof(&["report", "-i", data.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kernel_names"], "live-kallsyms");
}

#[test]
fn tracepoint_gives_a_stack_on_every_hit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tp.data");
    let out = netprof(&[
        "record",
        "-e",
        "sched:sched_switch",
        "-g",
        "-o",
        data.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.01; done",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let f = folded(&data, &[]);
    // Every sleep switches out at least once; each hit carries a stack ending
    // in the scheduler.
    let sleeps: u64 = f
        .lines()
        .filter(|l| l.starts_with("sleep;"))
        .map(samples_in)
        .sum();
    assert!(sleeps >= 10, "expected >= 10 switches of sleep:\n{f}");
    // The fields of each hit: in our --samples, and in perf script.
    let samples = netprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--samples",
        "--comm",
        "sleep",
    ]);
    assert!(
        stdout(&samples).contains("sched:sched_switch: prev_comm=sleep"),
        "{}",
        stdout(&samples)
    );
    let script = perf(&["script", "-i", data.to_str().unwrap()]);
    assert!(
        script.contains("prev_comm=sleep"),
        "perf script lacks the fields"
    );
    assert!(
        f.lines()
            .filter(|l| l.starts_with("sleep;"))
            .all(|l| l.contains("__schedule")),
        "{f}"
    );
}

#[test]
fn command_without_a_follows_only_that_command() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cmd.data");
    let mut args = vec!["record", "-g", "-o", data.to_str().unwrap(), "--"];
    args.extend_from_slice(&DD);
    let out = netprof(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let f = folded(&data, &[]);
    assert!(samples_in(&f) > 20, "{f}");
    assert!(
        f.lines().all(|l| l.starts_with("dd;")),
        "other tasks recorded:\n{f}"
    );
}

#[test]
fn pid_and_cpu_targets() {
    let dir = tempfile::tempdir().unwrap();
    let mut dd = Command::new("dd")
        .args(["if=/dev/zero", "of=/dev/null", "bs=4k"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = dd.id().to_string();
    let data = dir.path().join("pid.data");
    let out = netprof(&[
        "record",
        "-g",
        "-p",
        &pid,
        "--duration",
        "1",
        "-o",
        data.to_str().unwrap(),
    ]);
    let data2 = dir.path().join("cpu.data");
    let out2 = netprof(&[
        "record",
        "-C",
        "0",
        "--duration",
        "0.5",
        "-o",
        data2.to_str().unwrap(),
    ]);
    dd.kill().unwrap();
    dd.wait().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let f = folded(&data, &[]);
    assert!(samples_in(&f) > 100, "{f}");
    assert!(f.lines().all(|l| l.starts_with("dd;")), "{f}");
    assert!(f.contains("read_zero"), "{f}");

    assert!(out2.status.success(), "{}", stderr(&out2));
    let json = netprof(&["report", "-i", data2.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let stacks = v["stacks"].as_array().unwrap();
    assert!(!stacks.is_empty());
    assert!(
        stacks.iter().all(|s| s["cpu"] == 0),
        "samples from other CPUs with -C 0"
    );
}

#[test]
fn ten_khz_on_all_cpus_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fast.data");
    let out = netprof(&[
        "record",
        "-a",
        "-g",
        "-F",
        "10000",
        "-o",
        data.to_str().unwrap(),
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=4k",
        "count=6000000",
        "status=none",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("(0 lost)"), "{err}");
    let samples: u64 = err.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(samples > 5000, "{err}");
}

fn interrupted_run_leaves_a_complete_file(signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sig.data");
    let child = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args(["record", "-a", "-g", "-o", data.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let f = folded(&data, &[]);
    assert!(samples_in(&f) > 100, "{f}");
    // Nothing but the file is left in the directory.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn sigint_ends_the_run_with_a_readable_file() {
    interrupted_run_leaves_a_complete_file(libc::SIGINT);
}

#[test]
fn sigterm_ends_the_run_with_a_readable_file() {
    interrupted_run_leaves_a_complete_file(libc::SIGTERM);
}

#[test]
fn status_line_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("s.data");
    let cmd = format!(
        "{} record -a --duration 1 -o {}",
        env!("CARGO_BIN_EXE_netprof"),
        data.display()
    );
    // `script` gives netprof a pseudo-terminal.
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("script (util-linux)");
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(
        tty.contains("[ netprof record:") && tty.contains("lost ]"),
        "{tty}"
    );
    let plain = netprof(&[
        "record",
        "-a",
        "--duration",
        "0.5",
        "-o",
        data.to_str().unwrap(),
    ]);
    assert!(
        !stderr(&plain).contains("[ netprof record:"),
        "{}",
        stderr(&plain)
    );
    let quiet = netprof(&[
        "record",
        "-a",
        "-q",
        "--duration",
        "0.3",
        "-o",
        data.to_str().unwrap(),
    ]);
    assert!(quiet.status.success());
    assert_eq!(stderr(&quiet), "");
}

/// Records `command` with `record ARGS -o DIR/NAME.data -- command`.
fn record_command(dir: &Path, name: &str, args: &[&str], command: &[&str]) -> std::path::PathBuf {
    let data = dir.join(format!("{name}.data"));
    let mut all = vec!["record"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", data.to_str().unwrap(), "--"]);
    all.extend_from_slice(command);
    let out = netprof(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    data
}

/// Samples of `event` in `file`.
fn event_samples(file: &Path, event: &str) -> u64 {
    samples_in(&folded(file, &["--event", event]))
}

/// A frame named by nothing but its address.
fn is_address(frame: &str) -> bool {
    frame
        .strip_prefix("0x")
        .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

// Debian's perl, like most distribution binaries, is built without frame
// pointers: its user call chains end in whatever the unwinder found.
const PERL_LOOP: [&str; 3] = ["perl", "-e", "my $x = 0; for (1..1e7) { $x += $_ * 3 % 7 }"];

#[test]
fn a_binary_without_frame_pointers_has_no_address_frames_and_diffs_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| record_command(dir.path(), name, &["-g"], &PERL_LOOP))
        .collect();
    for data in &runs {
        let f = folded(data, &["--comm", "perl"]);
        assert!(samples_in(&f) > 100, "{f}");
        for line in f.lines() {
            let (stack, _) = line.rsplit_once(' ').unwrap();
            assert!(!stack.split(';').any(is_address), "address frame in {line}");
        }
        // The chains were cut, and the header says how many.
        let report: serde_json::Value = serde_json::from_slice(
            &netprof(&["report", "-i", data.to_str().unwrap(), "--json"]).stdout,
        )
        .unwrap();
        let cut = report["truncated_user_samples"].as_u64().unwrap();
        assert!(cut > 0, "perl's chains were whole? {report}");
        assert!(f.contains(";[unknown];"), "{f}");
    }
    // Two runs of the same work compare function by function.
    let (a, b) = (runs[0].to_str().unwrap(), runs[1].to_str().unwrap());
    let out = netprof(&["diff", a, b, "--comm", "perl", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let diff: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let functions = diff["functions"].as_array().unwrap();
    assert!(functions
        .iter()
        .any(|f| f["function"] == "Perl_runops_standard"));
    for f in functions {
        assert!(!is_address(f["function"].as_str().unwrap()), "{f}");
    }
    let table = stdout(&netprof(&["diff", a, b, "--comm", "perl"]));
    for row in table.lines().filter(|l| !l.starts_with('#')) {
        let function = row.split_whitespace().last().unwrap();
        assert!(!is_address(function), "{row}\n{table}");
    }
}

/// Twenty sleeps from one shell: 20 forks, 21 execs and exits, and at least
/// 20 switches out of sleep and 20 wakeups of the waiting shell.
const TWENTY_SLEEPS: [&str; 3] = [
    "sh",
    "-c",
    "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 0.01; done",
];

#[test]
fn comma_separated_events_are_each_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let data = record_command(
        dir.path(),
        "list",
        &["-e", "sched:sched_switch,sched:sched_wakeup"],
        &TWENTY_SLEEPS,
    );
    let report: serde_json::Value = serde_json::from_slice(
        &netprof(&["report", "-i", data.to_str().unwrap(), "--json"]).stdout,
    )
    .unwrap();
    assert_eq!(
        report["events"],
        serde_json::json!(["sched:sched_switch", "sched:sched_wakeup"])
    );
    let samples_of = |event: &str| {
        stdout(&netprof(&[
            "report",
            "-i",
            data.to_str().unwrap(),
            "--samples",
            "--event",
            event,
        ]))
    };
    let fields = |event: &str, needle: &str| {
        samples_of(event)
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    };
    let switches = fields("sched:sched_switch", "prev_comm=sleep");
    // Each sleep's exit wakes sh, when sh is already waiting for it (not
    // always: a sleep can end before sh waits).
    let wakeups = fields("sched:sched_wakeup", "comm=sh ");
    assert!(
        (20..200).contains(&switches),
        "{switches} switches out of sleep"
    );
    assert!((10..200).contains(&wakeups), "{wakeups} wakeups of sh");
    // prev_state reads as perf prints it (S for a sleep), not as a number.
    let text = samples_of("sched:sched_switch");
    let states: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("prev_comm=sleep"))
        .filter_map(|l| l.split("prev_state=").nth(1)?.split_whitespace().next())
        .collect();
    assert!(states.contains(&"S"), "{states:?}");
    assert!(
        states
            .iter()
            .all(|s| !s.is_empty() && !s.chars().all(|c| c.is_ascii_digit())),
        "{states:?}"
    );
}

#[test]
fn tracepoint_globs_expand_to_every_match() {
    let dir = tempfile::tempdir().unwrap();
    let data = record_command(dir.path(), "glob", &["-e", "sched:*"], &TWENTY_SLEEPS);
    let report: serde_json::Value = serde_json::from_slice(
        &netprof(&["report", "-i", data.to_str().unwrap(), "--json"]).stdout,
    )
    .unwrap();
    let events: Vec<&str> = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    // Every sched tracepoint the kernel has, and nothing else.
    let listed = std::fs::read_dir("/sys/kernel/tracing/events/sched")
        .or_else(|_| std::fs::read_dir("/sys/kernel/debug/tracing/events/sched"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
        .count();
    assert_eq!(events.len(), listed, "{events:?}");
    assert!(events.iter().all(|e| e.starts_with("sched:")), "{events:?}");
    assert_eq!(event_samples(&data, "sched:sched_process_fork"), 20);
    assert_eq!(event_samples(&data, "sched:sched_process_exec"), 21);
    assert_eq!(event_samples(&data, "sched:sched_process_exit"), 21);
}

#[test]
fn uprobes_count_a_programs_calls_and_returns_with_stacks() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("calls.c");
    std::fs::write(
        &source,
        "#include <stdlib.h>\n\
         __attribute__((noinline)) int np_target(int i) { return i * 3 + 1; }\n\
         int main(int argc, char **argv) {\n\
             int n = atoi(argv[1]), s = 0;\n\
             for (int i = 0; i < n; i++) s += np_target(i);\n\
             return s == -1;\n\
         }\n",
    )
    .unwrap();
    let binary = dir.path().join("calls");
    let cc = Command::new("clang")
        .args(["-O1", "-fno-omit-frame-pointer", "-o"])
        .args([&binary, &source])
        .output()
        .expect("clang (.ci/run installs it)");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let binary = binary.to_str().unwrap();
    let entry = format!("uprobe:{binary}:np_target");
    let exit = format!("{entry}%return");
    let events = format!("{entry},{exit}");
    let data = record_command(
        dir.path(),
        "up",
        &["-a", "-g", "-e", &events],
        &[binary, "37"],
    );
    assert_eq!(event_samples(&data, &entry), 37);
    assert_eq!(event_samples(&data, &exit), 37);
    // With stacks: the probe fires in np_target, the return probe in its caller.
    let calls = folded(&data, &["--event", &entry]);
    assert!(
        calls
            .lines()
            .all(|l| l.starts_with("calls;") && l.contains(";np_target ")),
        "{calls}"
    );
    let returns = folded(&data, &["--event", &exit]);
    assert!(
        returns.lines().all(|l| l.ends_with(";main 37")),
        "{returns}"
    );

    // A function the binary lacks: one line naming it.
    let missing = netprof(&[
        "record",
        "-a",
        "-e",
        &format!("uprobe:{binary}:np_nothing"),
        "--duration",
        "0.1",
    ]);
    assert_eq!(missing.status.code(), Some(3), "{}", stderr(&missing));
    assert_eq!(stderr(&missing).lines().count(), 1, "{}", stderr(&missing));
}

#[test]
fn library_functions_only_its_debug_file_names_are_named_from_it() {
    // memcpy's code is one of several implementations chosen at load time
    // (__memcpy_avx_unaligned_erms, ...): local symbols, which only the C
    // library's debug file (libc6-dbg, installed by tests/run-all) holds.
    let dir = tempfile::tempdir().unwrap();
    let copies = build_c(dir.path(), "user_stacks/copies");
    let data = record_command(
        dir.path(),
        "copies",
        &["-g"],
        &[copies.to_str().unwrap(), "1"],
    );
    let text = folded(&data, &["--comm", "copies"]);
    let total = samples_in(&text);
    let in_copy: u64 = text
        .lines()
        .filter(|l| {
            l.split(';')
                .any(|f| f.starts_with("__mem") && f.contains("unaligned"))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(
        total > 0 && in_copy * 2 > total,
        "{in_copy} of {total}: {text}"
    );
    assert!(!text.contains("libc.so.6+0x"), "{text}");
}
