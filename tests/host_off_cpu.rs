//! `record --off-cpu` on this machine (sched_switch and BPF raw tracepoints
//! work here): where threads wait, in which state, and who wakes them, with
//! the test programs in tests/off_cpu/ whose waits are known in advance.
//!
//! The tests run one at a time: they look at the kernel's list of loaded
//! programs, and their timings want the CPUs to themselves.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// `netprof record --off-cpu -g [extra] -o DIR/NAME.data -- PROGRAM ARGS`.
fn record(dir: &Path, program: &str, args: &[&str], extra: &[&str]) -> (PathBuf, Output) {
    let binary = build_c(dir, &format!("off_cpu/{program}"));
    let data = dir.join(format!("{program}.data"));
    let mut all = vec!["record", "--off-cpu", "-g", "-o", data.to_str().unwrap()];
    all.extend_from_slice(extra);
    all.push("--");
    all.push(binary.to_str().unwrap());
    all.extend_from_slice(args);
    let out = netprof(&all);
    assert!(out.status.success(), "record: {}", stderr(&out));
    (data, out)
}

fn json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

/// `report --threads --json`: every thread.
fn threads(data: &Path) -> Vec<serde_json::Value> {
    let report = json(&netprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--threads",
        "--json",
    ]));
    assert_eq!(report["schema"], "netprof-threads/1");
    report["threads"].as_array().unwrap().clone()
}

/// `report --threads --json`: the threads of `comm`.
fn threads_of(data: &Path, comm: &str) -> Vec<serde_json::Value> {
    threads(data)
        .into_iter()
        .filter(|t| t["comm"] == comm)
        .collect()
}

fn ns(value: &serde_json::Value) -> f64 {
    value.as_u64().unwrap_or(0) as f64
}

/// Folded lines (`comm;root;...;leaf count`) of a report with `args`.
fn folded(data: &Path, args: &[&str]) -> Vec<(String, u64)> {
    let mut all = vec!["report", "-i", data.to_str().unwrap(), "--folded"];
    all.extend_from_slice(args);
    let out = netprof(&all);
    assert!(out.status.success(), "report {args:?}: {}", stderr(&out));
    stdout(&out)
        .lines()
        .map(|l| {
            let (stack, count) = l.rsplit_once(' ').unwrap();
            (stack.to_string(), count.parse().unwrap())
        })
        .collect()
}

/// The SVG of `report --flame` with `args`, written beside the recording.
fn flamegraph(data: &Path, args: &[&str]) -> String {
    let svg = data.with_extension("svg");
    let mut all = vec![
        "report",
        "-i",
        data.to_str().unwrap(),
        "--flame",
        svg.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = netprof(&all);
    assert!(out.status.success(), "report {args:?}: {}", stderr(&out));
    std::fs::read_to_string(&svg).unwrap()
}

/// The time of the folded stacks in which `frames` appear in this order,
/// root first.
fn time_through(lines: &[(String, u64)], frames: &[&str]) -> u64 {
    lines
        .iter()
        .filter(|(stack, _)| {
            let names: Vec<&str> = stack.split(';').collect();
            let mut at = 0;
            frames
                .iter()
                .all(|f| match names[at..].iter().position(|n| n == f) {
                    Some(i) => {
                        at += i + 1;
                        true
                    }
                    None => false,
                })
        })
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn busy_then_sleeping_thread_is_a_quarter_on_and_three_quarters_off() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // 5 x (100 ms busy + 300 ms nanosleep).
    let (data, out) = record(dir.path(), "busy_sleep", &["5"], &[]);
    assert!(
        stderr(&out).contains("s of waiting recorded"),
        "{}",
        stderr(&out)
    );
    let threads = threads_of(&data, "busy_sleep");
    assert_eq!(threads.len(), 1, "{threads:?}");
    let t = &threads[0];
    let (on, off) = (ns(&t["on_cpu_ns"]), ns(&t["off_cpu_ns"]));
    let sleeping = ns(&t["off_cpu_by_state"]["S"]);
    let runnable = ns(&t["off_cpu_by_state"]["R"]);
    let wall = on + off;
    // The run took 2 s; its time is all accounted for.
    assert!((1.9e9..2.4e9).contains(&wall), "on {on} + off {off}");
    // The nanosleeps are 75% of it; the busy loop a quarter, on the CPU
    // or (on a loaded machine) waiting for one.
    let sleep_share = sleeping / wall;
    assert!((0.71..0.79).contains(&sleep_share), "S share {sleep_share}");
    let busy_share = (on + runnable) / wall;
    assert!(
        (0.21..0.29).contains(&busy_share),
        "busy share {busy_share}"
    );
    assert!(on / wall > 0.12, "on-CPU share {}", on / wall);
    // The sleeps' stack: do_nanosleep under hrtimer_nanosleep, the longest wait.
    let top = &t["top_waits"][0];
    assert_eq!(top["state"], "S");
    let frames: Vec<&str> = top["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let at = |name: &str| frames.iter().position(|f| *f == name);
    assert!(
        at("hrtimer_nanosleep").is_some() && at("hrtimer_nanosleep") < at("do_nanosleep"),
        "{frames:?}"
    );
    // The tracing machinery is cut off: the wait ends in the scheduler.
    assert!(!frames.iter().any(|f| f.starts_with("bpf_")), "{frames:?}");
    // The same in folded stacks, and the wall-clock view holds both.
    let off_cpu = folded(&data, &["--event", "offcpu-time"]);
    let in_nanosleep = time_through(&off_cpu, &["hrtimer_nanosleep", "do_nanosleep"]);
    assert!((sleeping * 0.99..=sleeping * 1.01).contains(&(in_nanosleep as f64)));
    let wall_view = folded(&data, &["--event", "all"]);
    let total: u64 = wall_view.iter().map(|(_, n)| n).sum();
    assert!(
        (total as f64 - wall).abs() < 0.05 * wall,
        "wall view {total} vs {wall}"
    );
    let asleep_in_wall_view = time_through(&wall_view, &["do_nanosleep"]) as f64;
    assert!((asleep_in_wall_view - sleeping).abs() < 0.01 * sleeping);
    // A flamegraph and the JSON report of the off-CPU time.
    assert!(flamegraph(&data, &["--event", "offcpu-time"]).contains("do_nanosleep"));
    let report = json(&netprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--event",
        "offcpu-time",
        "--json",
    ]));
    assert_eq!(report["event"], "offcpu-time");
}

#[test]
fn tcp_receiver_waits_in_sk_wait_data_under_tcp_recvmsg() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // The sender sleeps 5 x 200 ms before each byte.
    let (data, _) = record(dir.path(), "tcp_wait", &["5"], &[]);
    let lines = folded(&data, &["--event", "offcpu-time:S"]);
    let waiting = time_through(&lines, &["tcp_recvmsg", "sk_wait_data"]);
    assert!(
        (0.9e9..1.3e9).contains(&(waiting as f64)),
        "in sk_wait_data: {waiting} ns; {lines:?}"
    );
}

#[test]
fn pipe_reader_is_woken_by_the_writers_pipe_write() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // The writer sleeps 10 x 50 ms before each byte.
    let (data, _) = record(dir.path(), "pipe_wake", &["10"], &["--wakeups"]);
    let lines = folded(&data, &["--wakeups"]);
    // The reader's wait in pipe_read, under the separator, under the
    // writer's stack from try_to_wake_up down to its write.
    let woken_by_writer: u64 = lines
        .iter()
        .filter(|(stack, _)| {
            let Some((wakee, waker)) = stack.split_once(";--;") else {
                return false;
            };
            wakee.contains("pipe_read")
                && waker.starts_with("try_to_wake_up")
                && waker.split(';').any(|f| f.ends_with("pipe_write"))
        })
        .map(|(_, n)| n)
        .sum();
    assert!(
        (0.45e9..0.8e9).contains(&(woken_by_writer as f64)),
        "waits ended by pipe_write: {woken_by_writer} ns; {lines:?}"
    );
    assert!(flamegraph(&data, &["--wakeups"]).contains("pipe_write"));
    // Without --wakeups, the recording has none, and says how to get them.
    let (plain, _) = record(dir.path(), "busy_sleep", &["1"], &[]);
    assert_error(
        &netprof(&["report", "-i", plain.to_str().unwrap(), "--wakeups"]),
        NotFound,
        "record with --off-cpu --wakeups",
    );
}

#[test]
fn state_d_keeps_only_uninterruptible_waits() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // 3 x (200 ms in D waiting for a vfork child + 100 ms of nanosleep in S).
    let (all, _) = record(dir.path(), "vfork_wait", &["3"], &[]);
    let parent = threads_of(&all, "vfork_wait")
        .into_iter()
        .max_by_key(|t| t["off_cpu_by_state"]["D"].as_u64().unwrap_or(0))
        .unwrap();
    let by_state = &parent["off_cpu_by_state"];
    assert!(ns(&by_state["D"]) > 0.55e9, "{parent}");
    assert!(ns(&by_state["S"]) > 0.25e9, "{parent}");
    // At report time: --state D leaves the nanosleeps out.
    let d_only = folded(&all, &["--state", "D"]);
    assert!(
        time_through(&d_only, &["kernel_clone"]) as f64 > 0.55e9,
        "{d_only:?}"
    );
    assert_eq!(time_through(&d_only, &["do_nanosleep"]), 0, "{d_only:?}");
    // At record time: only D waits are counted at all.
    std::fs::remove_file(&all).unwrap();
    let (d_data, _) = record(dir.path(), "vfork_wait", &["3"], &["--state", "D"]);
    for t in threads_of(&d_data, "vfork_wait") {
        let states: Vec<&String> = t["off_cpu_by_state"].as_object().unwrap().keys().collect();
        assert!(states.iter().all(|s| *s == "D"), "{t}");
    }
    let lines = folded(&d_data, &["--event", "offcpu-time"]);
    assert!(time_through(&lines, &["kernel_clone"]) as f64 > 0.55e9);
    assert_eq!(time_through(&lines, &["do_nanosleep"]), 0);
}

#[test]
fn min_block_leaves_short_waits_out_and_counts_them() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    // The parent's 100 ms naps are shorter than 150 ms; its 200 ms waits
    // for the vfork child are not.
    let (data, out) = record(dir.path(), "vfork_wait", &["3"], &["--min-block", "150000"]);
    let err = stderr(&out);
    let short: u64 = err
        .split("; ")
        .find(|part| part.contains("waits shorter than --min-block left out"))
        .and_then(|part| part.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no count of short waits in: {err}"));
    assert!(short >= 3, "{err}");
    let parent = threads_of(&data, "vfork_wait")
        .into_iter()
        .max_by_key(|t| t["off_cpu_by_state"]["D"].as_u64().unwrap_or(0))
        .unwrap();
    assert!(ns(&parent["off_cpu_by_state"]["D"]) > 0.55e9, "{parent}");
    assert!(ns(&parent["off_cpu_by_state"]["S"]) < 0.05e9, "{parent}");
}

#[test]
fn perf_script_reads_off_cpu_samples_and_diff_compares_two_recordings() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (sleeps, _) = record(dir.path(), "busy_sleep", &["3"], &[]);
    let (vforks, _) = record(dir.path(), "vfork_wait", &["3"], &[]);
    let script = Command::new("perf")
        .args(["script", "-i"])
        .arg(&sleeps)
        .output()
        .expect("perf");
    assert!(script.status.success(), "{}", stderr(&script));
    let text = stdout(&script);
    assert!(
        text.lines()
            .any(|l| l.contains("offcpu-time:S") && l.contains("busy_sleep")),
        "{}",
        &text[..text.len().min(2000)]
    );
    assert!(text.contains("do_nanosleep"));
    // netprof's own sample listing of one event holds that event only.
    let listed = netprof(&[
        "report",
        "-i",
        sleeps.to_str().unwrap(),
        "--samples",
        "--event",
        "offcpu-time",
    ]);
    let headers: Vec<String> = stdout(&listed)
        .lines()
        .filter(|l| l.ends_with(':') && !l.starts_with('\t'))
        .map(str::to_string)
        .collect();
    assert!(!headers.is_empty(), "{}", stderr(&listed));
    assert!(
        headers.iter().all(|l| l.ends_with("offcpu-time:")),
        "{headers:?}"
    );
    // The waits moved from nanosleep to vfork: diff says so.
    let out = netprof(&[
        "diff",
        sleeps.to_str().unwrap(),
        vforks.to_str().unwrap(),
        "--event",
        "offcpu-time",
        "--json",
    ]);
    let diff = json(&out);
    let function = |name: &str| {
        diff["functions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["function"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {diff}"))
    };
    let clone = function("kernel_clone");
    assert!(clone["total"]["delta"].as_f64().unwrap() > 0.2, "{clone}");
    assert_eq!(clone["total"]["significant"], true);
    let nanosleep = function("do_nanosleep");
    assert!(
        nanosleep["total"]["delta"].as_f64().unwrap() < -0.2,
        "{nanosleep}"
    );
}

/// Ids of netprof's off-CPU programs now loaded.
fn off_cpu_programs() -> Vec<u64> {
    let list = json(&netprof(&["bpf", "--json"]));
    list["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().unwrap().starts_with("off_cpu_"))
        .map(|p| p["id"].as_u64().unwrap())
        .collect()
}

/// Starts `record --off-cpu --wakeups -a` and waits until its programs are loaded.
fn start_system_wide(data: &Path) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args(["record", "-q", "--off-cpu", "--wakeups", "-a", "-g", "-o"])
        .arg(data)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while off_cpu_programs().len() < 2 {
        assert!(Instant::now() < deadline, "off-CPU programs never loaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

fn wait_until_unloaded() -> Vec<u64> {
    // The kernel frees programs shortly after their last descriptor closes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !off_cpu_programs().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    off_cpu_programs()
}

#[test]
fn off_cpu_leaves_nothing_behind_and_hides_nothing_from_perf() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(off_cpu_programs(), Vec::<u64>::new(), "already loaded");
    let data = dir.path().join("a.data");
    let mut recording = start_system_wide(&data);
    // Another perf user of sched_switch still counts every switch.
    let stat = Command::new("perf")
        .args([
            "stat",
            "-x,",
            "-e",
            "sched:sched_switch",
            "-a",
            "sleep",
            "0.5",
        ])
        .output()
        .expect("perf");
    let switches: u64 = stderr(&stat)
        .lines()
        .find(|l| l.contains("sched:sched_switch"))
        .and_then(|l| l.split(',').next()?.parse().ok())
        .unwrap_or_else(|| panic!("perf stat: {}", stderr(&stat)));
    assert!(switches > 10, "perf saw {switches} switches");
    // Ctrl-C: a readable file, with off-CPU time in it, and nothing loaded.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(recording.id() as i32, libc::SIGINT) };
    assert!(recording.wait().unwrap().success());
    assert_eq!(
        wait_until_unloaded(),
        Vec::<u64>::new(),
        "left after Ctrl-C"
    );
    let threads = json(&netprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--threads",
        "--json",
    ]));
    assert!(!threads["threads"].as_array().unwrap().is_empty());
    // kill -9: the kernel drops the programs with the process's descriptors.
    let mut recording = start_system_wide(&dir.path().join("b.data"));
    recording.kill().unwrap();
    recording.wait().unwrap();
    assert_eq!(
        wait_until_unloaded(),
        Vec::<u64>::new(),
        "left after kill -9"
    );
}

#[test]
fn off_cpu_refusals_are_one_line_errors() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let data = dir.path().join("x.data");
    let as_nobody = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_netprof"))
        .args([
            "record",
            "--off-cpu",
            "-o",
            data.to_str().unwrap(),
            "--",
            "true",
        ])
        .output()
        .expect("setpriv (util-linux)");
    assert_error(&as_nobody, NoPermission, "run as root");
    assert!(!data.exists());
    assert_error(
        &netprof(&[
            "record",
            "--state",
            "D",
            "-o",
            data.to_str().unwrap(),
            "--",
            "true",
        ]),
        BadArgument,
        "--off-cpu",
    );
    assert_error(
        &netprof(&["record", "--off-cpu", "--state", "X", "--", "true"]),
        BadArgument,
        "unknown thread state 'X'",
    );
    let (plain, _) = {
        let out = netprof(&["record", "-q", "-o", data.to_str().unwrap(), "--", "true"]);
        assert!(out.status.success(), "{}", stderr(&out));
        (data.clone(), out)
    };
    assert_error(
        &netprof(&["report", "-i", plain.to_str().unwrap(), "--threads"]),
        NotFound,
        "record with --off-cpu",
    );
    assert_error(
        &netprof(&["report", "-i", plain.to_str().unwrap(), "--event", "all"]),
        NotFound,
        "record with --off-cpu",
    );
}

#[test]
fn off_cpu_shares_one_file_with_tracepoint_hits() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = record(
        dir.path(),
        "busy_sleep",
        &["2"],
        &["-e", "cpu-clock,syscalls:sys_enter_clock_nanosleep"],
    );
    // Each nanosleep is a hit with its fields, and a wait of 300 ms.
    let hits = netprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--samples",
        "--event",
        "syscalls:sys_enter_clock_nanosleep",
    ]);
    assert!(hits.status.success(), "{}", stderr(&hits));
    let text = stdout(&hits);
    assert_eq!(text.matches("which_clock").count(), 2, "{text}");
    let t = &threads_of(&data, "busy_sleep")[0];
    assert!(ns(&t["off_cpu_by_state"]["S"]) > 0.55e9, "{t}");
    // perf reads the mixed layout (tracepoint fields, empty ones for waits).
    let script = Command::new("perf")
        .args(["script", "-i"])
        .arg(&data)
        .output()
        .expect("perf");
    let text = stdout(&script);
    assert!(script.status.success(), "{}", stderr(&script));
    assert_eq!(text.matches("sys_enter_clock_nanosleep:").count(), 2);
    assert!(text.contains("offcpu-time:S"));
}

#[test]
fn pid_recording_counts_only_that_process() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_c(dir.path(), "off_cpu/busy_sleep");
    // 10 x 400 ms: still running when the 1.5 s recording ends.
    let mut program = Command::new(&binary).arg("10").spawn().unwrap();
    let data = dir.path().join("p.data");
    let pid = program.id().to_string();
    let out = netprof(&[
        "record",
        "-q",
        "--off-cpu",
        "-g",
        "-p",
        &pid,
        "--duration",
        "1.5",
        "-o",
        data.to_str().unwrap(),
    ]);
    program.kill().unwrap();
    program.wait().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let threads = threads(&data);
    assert!(!threads.is_empty());
    // Only the followed process has waits in the file.
    for t in threads
        .iter()
        .filter(|t| t["off_cpu_ns"].as_u64().unwrap() > 0)
    {
        assert_eq!(t["pid"].to_string(), pid, "{t}");
    }
    let pid_number: u64 = pid.parse().unwrap();
    let followed = threads
        .iter()
        .find(|t| t["pid"].as_u64() == Some(pid_number))
        .unwrap();
    assert!(ns(&followed["off_cpu_by_state"]["S"]) > 0.8e9, "{followed}");
}
