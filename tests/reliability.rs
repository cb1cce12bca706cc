//! Reliability: no input, signal, device or neighbour makes netprof crash,
//! hang, lose data or disturb others. Each test is a fault a user or the
//! system can inflict, with what netprof must do about it.

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Runs netprof with `args` under an address-space limit, killed after
/// `limit`; panics if it had to be killed (a hang).
fn run_limited<S: AsRef<OsStr>>(args: &[S], limit: Duration) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netprof"));
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 4 << 30,
                rlim_max: 4 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
            Ok(())
        });
    }
    let child = command.spawn().expect("netprof starts");
    wait_limited(child, limit)
}

fn wait_limited(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!("netprof hung (killed after {limit:?}): {}", stderr(&out));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().unwrap()
}

/// Exit status 0, or one line of error with a documented status: never a
/// signal, a panic or an abort.
fn assert_clean(out: &Output, what: &str) {
    let err = stderr(out);
    assert!(
        out.status.signal().is_none(),
        "{what}: killed by signal {:?}: {err}",
        out.status.signal()
    );
    let code = out.status.code().unwrap();
    assert!((0..=7).contains(&code), "{what}: exit status {code}: {err}");
    if code != 0 {
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
        assert!(err.starts_with("netprof: error: "), "{what}: {err}");
    }
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{what}: {err}"
    );
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A small synthetic recording: 50 samples of dd in read_zero.
fn small_recording(dir: &Path) -> PathBuf {
    let mut s = Synth::new();
    s.comm(7, "dd")
        .samples(50, 7, 0, &[k("read_zero"), k("vfs_read")], &[]);
    s.write_in(dir, "small.data")
}

fn mknod(path: &Path, mode: libc::mode_t, dev: libc::dev_t) {
    let c = std::ffi::CString::new(p(path)).unwrap();
    // SAFETY: a valid path string; the test runs as root.
    assert_eq!(
        unsafe { libc::mknod(c.as_ptr(), mode, dev) },
        0,
        "mknod {path:?}"
    );
}

fn mkfifo(path: &Path) {
    mknod(path, libc::S_IFIFO | 0o600, 0);
}

/// A tmpfs mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(options: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "mount: {}", stderr(&out));
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn devices_fifos_and_standard_output_are_written_in_place_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let recording = small_recording(dir.path());

    // A character device of the null kind, made here, and /dev/null itself.
    let nd = dir.path().join("nd");
    mknod(&nd, libc::S_IFCHR | 0o644, libc::makedev(1, 3));
    for target in [nd.as_path(), Path::new("/dev/null")] {
        let before = std::fs::metadata(target).unwrap();
        let out = run_limited(
            &["record", "-a", "-q", "--duration", "0.2", "-o", p(target)],
            Duration::from_secs(30),
        );
        assert_clean(&out, "record -o a device");
        assert!(out.status.success(), "{}", stderr(&out));
        let after = std::fs::metadata(target).unwrap();
        assert!(
            after.file_type().is_char_device(),
            "{target:?} was replaced"
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(before.rdev(), after.rdev());
    }

    // /dev/stdout is where the shell sends it, and stays a link.
    let svg = dir.path().join("x.svg");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} report -i {} --flame /dev/stdout > {}",
            env!("CARGO_BIN_EXE_netprof"),
            p(&recording),
            p(&svg)
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("read_zero"));
    assert!(std::fs::symlink_metadata("/dev/stdout")
        .unwrap()
        .file_type()
        .is_symlink());

    // A FIFO: written for its reader; without one, an error, not a wait.
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let out = run_limited(
        &["report", "-i", p(&recording), "--flame", p(&fifo)],
        Duration::from_secs(10),
    );
    assert_error(&out, Failed, "has no reader");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    std::thread::sleep(Duration::from_millis(200));
    let out = run_limited(
        &["report", "-i", p(&recording), "--flame", p(&fifo)],
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(reader.join().unwrap().contains("read_zero"));
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());

    // A recording is written back to front: a stream cannot take one.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{} record -a --duration 0.1 -o /dev/stdout | cat > /dev/null",
            env!("CARGO_BIN_EXE_netprof")
        ))
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("cannot be written from its start"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn read_only_and_full_file_systems_are_said_and_lose_nothing_recorded() {
    let read_only = Tmpfs::new("ro,size=1m");
    let out = run_limited(
        &[
            "record",
            "-a",
            "--duration",
            "0.2",
            "-o",
            p(&read_only.path().join("x.data")),
        ],
        Duration::from_secs(30),
    );
    assert_error(&out, Failed, "Read-only file system");

    // Too little room to start: said before anything runs.
    let tiny = Tmpfs::new("size=6m");
    let out = run_limited(
        &[
            "record",
            "-a",
            "--duration",
            "0.2",
            "-o",
            p(&tiny.path().join("x.data")),
        ],
        Duration::from_secs(30),
    );
    assert_error(&out, Failed, "MiB are free for");
    assert_eq!(std::fs::read_dir(tiny.path()).unwrap().count(), 0);

    // The disk fills up while recording: the file holds everything until
    // then, complete, and nothing else is left in the directory.
    let small = Tmpfs::new("size=24m");
    let data = small.path().join("full.data");
    let out = run_limited(
        &[
            "record",
            "-a",
            "-g",
            "-q",
            "-F",
            "20000",
            "-o",
            p(&data),
            "--",
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=4k",
            "count=100000000",
            "status=none",
        ],
        Duration::from_secs(120),
    );
    assert_error(&out, Failed, "filled up after");
    let names: Vec<String> = std::fs::read_dir(small.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["full.data"]);
    let json = netprof(&["report", "-i", p(&data), "--json"]);
    assert!(json.status.success(), "{}", stderr(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        v["total_samples"].as_u64().unwrap() > 10_000,
        "{}",
        v["total_samples"]
    );
}

#[test]
fn a_followed_process_that_exits_ends_the_recording() {
    let dir = tempfile::tempdir().unwrap();
    let mut sleeper = Command::new("sleep").arg("1").spawn().unwrap();
    let data = dir.path().join("p.data");
    let pid = sleeper.id().to_string();
    let start = Instant::now();
    let out = run_limited(
        &["record", "-p", &pid, "-o", p(&data)],
        Duration::from_secs(20),
    );
    sleeper.wait().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the followed processes have exited"),
        "{}",
        stderr(&out)
    );
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // No round markers written for nothing: the file is the snapshot and
    // little more.
    assert!(std::fs::metadata(&data).unwrap().len() < 20 << 20);

    // A zombie is not a process to follow.
    let mut zombie = Command::new("true").spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let out = netprof(&["record", "-p", &zombie.id().to_string(), "-o", p(&data)]);
    assert_error(&out, NotFound, "zombie");
    zombie.wait().unwrap();
}

#[test]
fn a_command_that_ignores_sigterm_is_killed_after_a_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("c.data");
    let child = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args(["record", "-o", p(&data), "--", "sh", "-c"])
        .arg("trap '' TERM INT; sleep 30")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = wait_limited(child, Duration::from_secs(10));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("killed it after 2 s"),
        "{}",
        stderr(&out)
    );
    assert!(netprof(&["report", "-i", p(&data)]).status.success());
}

/// A program that calls getppid `n` times after a pause: a known number
/// of hits of syscalls:sys_enter_getppid from a known process.
fn getppid_program(dir: &Path) -> PathBuf {
    let source = dir.join("getppid.c");
    std::fs::write(
        &source,
        "#include <unistd.h>\n#include <stdlib.h>\n\
         int main(int c, char **v) { sleep(2); for (int i = 0; i < atoi(v[1]); i++) getppid(); sleep(1); return 0; }\n",
    )
    .unwrap();
    let binary = dir.join("getppid");
    let out = Command::new("clang")
        .arg("-O1")
        .arg(&source)
        .arg("-o")
        .arg(&binary)
        .output()
        .expect("clang (tests/run-all installs it)");
    assert!(out.status.success(), "{}", stderr(&out));
    binary
}

#[test]
fn recorders_on_one_tracepoint_each_get_every_hit() {
    let dir = tempfile::tempdir().unwrap();
    let program = getppid_program(dir.path());
    const EVENT: &str = "syscalls:sys_enter_getppid";
    let start = |name: &str, extra: &[&str]| {
        let data = dir.path().join(name);
        let mut args = vec!["record", "-q", "-a", "-e", EVENT, "-o", p(&data)];
        args.extend_from_slice(extra);
        let child = Command::new(env!("CARGO_BIN_EXE_netprof"))
            .args(&args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        (data, child)
    };
    let perf_data = dir.path().join("perf.data");
    let perf = Command::new("perf")
        .args(["record", "-q", "-a", "-e", EVENT, "-o", p(&perf_data)])
        .stderr(Stdio::null())
        .spawn()
        .expect("perf (linux-perf)");
    let recorders = [
        start("plain.data", &[]),
        start("counted.data", &["--bpf"]),
        start("plain2.data", &[]),
    ];
    let mut workload = Command::new(&program).arg("1000").spawn().unwrap();
    let pid = workload.id();
    workload.wait().unwrap();
    for child in std::iter::once(perf.id()).chain(recorders.iter().map(|(_, c)| c.id())) {
        // SAFETY: signalling our own children.
        unsafe { libc::kill(child as i32, libc::SIGINT) };
    }
    let mut perf = perf;
    perf.wait().unwrap();
    for (data, child) in recorders {
        let out = wait_limited(child, Duration::from_secs(30));
        assert!(out.status.success(), "{}", stderr(&out));
        let json = netprof(&[
            "report",
            "-i",
            p(&data),
            "--json",
            "--pid",
            &pid.to_string(),
        ]);
        let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(v["total_samples"], 1000, "{data:?}");
    }
    let script = Command::new("perf")
        .args(["script", "-i", p(&perf_data)])
        .output()
        .unwrap();
    let hits = String::from_utf8_lossy(&script.stdout)
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(&pid.to_string()))
        .count();
    assert_eq!(hits, 1000, "perf's recording alongside netprof's");
}

#[test]
fn pipe_mode_compressed_and_dwarf_recordings_from_perf() {
    let dir = tempfile::tempdir().unwrap();
    let dd = "dd if=/dev/zero of=/dev/null bs=4k count=400000 status=none";
    // perf record -o - | netprof report -i -
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "perf record -q -e cpu-clock -g -o - -- {dd} 2>/dev/null | {} report -i - --folded --comm dd",
            env!("CARGO_BIN_EXE_netprof")
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("read_zero"), "{}", stdout(&out));

    let compressed = dir.path().join("z.data");
    let perf = |args: &[&str]| {
        let out = Command::new("perf").args(args).output().unwrap();
        assert!(out.status.success(), "perf {args:?}: {}", stderr(&out));
    };
    perf(&[
        "record",
        "-q",
        "-z",
        "-e",
        "cpu-clock",
        "-g",
        "-o",
        p(&compressed),
        "--",
        "sh",
        "-c",
        dd,
    ]);
    let folded = netprof(&["report", "-i", p(&compressed), "--folded", "--comm", "dd"]);
    assert!(stdout(&folded).contains("read_zero"), "{}", stderr(&folded));

    let dwarf = dir.path().join("dwarf.data");
    perf(&[
        "record",
        "-q",
        "--call-graph",
        "dwarf",
        "-e",
        "cpu-clock",
        "-o",
        p(&dwarf),
        "--",
        "sh",
        "-c",
        dd,
    ]);
    let text = stdout(&netprof(&["report", "-i", p(&dwarf)]));
    assert!(text.contains("DWARF stack snapshots"), "{text}");
}

#[test]
fn compressed_and_auxtrace_records_that_lie_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    // 128 MiB of zeros in a few KiB of zstd: a record perf never writes.
    let zeros = vec![0u8; 128 << 20];
    let mut compressed = vec![0u8; zstd_safe::compress_bound(zeros.len())];
    let n = zstd_safe::compress(&mut compressed[..], &zeros, 19).unwrap();
    let mut s = Synth::new();
    s.comm(7, "dd").samples(5, 7, 0, &[k("read_zero")], &[]);
    let mut bomb = Vec::new();
    bomb.extend_from_slice(&81u32.to_le_bytes());
    bomb.extend_from_slice(&0u16.to_le_bytes());
    bomb.extend_from_slice(&((8 + n) as u16).to_le_bytes());
    bomb.extend_from_slice(&compressed[..n]);
    s.raw(bomb);
    let file = s.write_in(dir.path(), "bomb.data");
    let out = run_limited(&["report", "-i", p(&file)], Duration::from_secs(30));
    assert_error(&out, CorruptInput, "expands past 64 MiB");

    let mut s = Synth::new();
    s.comm(7, "dd").samples(5, 7, 0, &[k("read_zero")], &[]);
    let mut aux = Vec::new();
    aux.extend_from_slice(&71u32.to_le_bytes());
    aux.extend_from_slice(&0u16.to_le_bytes());
    aux.extend_from_slice(&48u16.to_le_bytes());
    aux.extend_from_slice(&(64u64 << 30).to_le_bytes());
    aux.extend_from_slice(&[0u8; 32]);
    s.raw(aux);
    let file = s.write_in(dir.path(), "aux.data");
    let out = run_limited(&["report", "-i", p(&file)], Duration::from_secs(30));
    assert_error(&out, CorruptInput, "AUXTRACE");
}

#[test]
fn inputs_that_are_not_regular_files_are_refused_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let recording = small_recording(dir.path());
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let limit = Duration::from_secs(10);
    assert_error(
        &run_limited(&["report", "-i", p(&fifo)], limit),
        BadArgument,
        "is a FIFO",
    );
    assert_error(
        &run_limited(&["report", "-i", p(dir.path())], limit),
        BadArgument,
        "is a directory",
    );
    assert_error(
        &run_limited(&["report", "-i", "/dev/zero"], limit),
        BadArgument,
        "character device",
    );
    assert_error(
        &run_limited(&["report", "-i", "/proc/cpuinfo"], limit),
        CorruptInput,
        "a /proc or /sys file",
    );
    assert_error(
        &run_limited(&["diff", p(&fifo), p(&recording)], limit),
        BadArgument,
        "is a FIFO",
    );
    assert_error(
        &run_limited(&["diff", p(&recording), p(&fifo)], limit),
        BadArgument,
        "is a FIFO",
    );

    // A recording that says a library was where a FIFO is now: its frames
    // stay unnamed, and the report does not wait on it.
    let mut s = Synth::new();
    s.comm(9, "app")
        .mmap(9, 0x400000, 0x500000, p(&fifo))
        .samples(20, 9, 0, &[], &[0x401000, 0x402000]);
    let planted = s.write_in(dir.path(), "planted.data");
    let out = run_limited(&["report", "-i", p(&planted), "--folded"], limit);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("fifo+0x1000"), "{}", stdout(&out));
}

#[test]
fn truncating_an_input_while_it_is_read_ends_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.data");
    let out = netprof(&[
        "record",
        "-a",
        "-g",
        "-F",
        "20000",
        "-q",
        "-o",
        p(&big),
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=4k",
        "count=6000000",
        "status=none",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut hits = 0;
    for attempt in 0..12 {
        let copy = dir.path().join("copy.data");
        std::fs::copy(&big, &copy).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_netprof"))
            .args(["report", "-i", p(&copy), "--folded"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5 + 5 * attempt));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&copy)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let out = wait_limited(child, Duration::from_secs(30));
        assert_clean(&out, "report of a file truncated while read");
        if out.status.code() == Some(6) && stderr(&out).contains("shrank while netprof read it") {
            hits += 1;
        }
    }
    assert!(hits > 0, "no attempt truncated the file while it was read");
}

#[test]
fn events_of_one_recording_are_reported_apart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("two.data");
    let out = netprof(&[
        "record",
        "-a",
        "-g",
        "-q",
        "-e",
        "cpu-clock",
        "-e",
        "sched:sched_switch",
        "--duration",
        "1",
        "-o",
        p(&data),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&netprof(&["report", "-i", p(&data)]));
    let headers: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("# netprof report:"))
        .collect();
    assert_eq!(headers.len(), 2, "{text}");
    assert!(
        headers[0].contains("samples of cpu-clock (")
            && headers[1].contains("of sched:sched_switch (")
    );
    let folded = netprof(&["report", "-i", p(&data), "--folded"]);
    assert!(
        stderr(&folded).contains("also has sched:sched_switch"),
        "{}",
        stderr(&folded)
    );
    assert!(stdout(&folded)
        .lines()
        .all(|l| !l.contains("__traceiter_sched_switch")));
    let json = netprof(&[
        "report",
        "-i",
        p(&data),
        "--json",
        "--event",
        "sched:sched_switch",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["event"], "sched:sched_switch");
    assert!(v["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["event"] == "sched:sched_switch"));
    assert_error(
        &netprof(&["report", "-i", p(&data), "--event", "cycles"]),
        NotFound,
        "no event 'cycles'",
    );
}

#[test]
fn the_summary_counts_every_byte_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("s.data");
    let out = netprof(&["record", "-a", "--duration", "0.3", "-o", p(&data)]);
    let line = stderr(&out);
    let mb: f64 = line
        .split(" MB written")
        .next()
        .and_then(|l| l.rsplit(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    let size = std::fs::metadata(&data).unwrap().len() as f64 / 1e6;
    assert!((mb - size).abs() < 0.1, "summary {mb} MB, file {size} MB");
}

#[test]
fn latency_results_whose_counts_overflow_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let result = |name: &str, counts: &[u64]| {
        let histogram: Vec<serde_json::Value> = counts
            .iter()
            .enumerate()
            .map(|(i, &c)| serde_json::json!({"low_ns": 1000 + 10 * i, "high_ns": 1010 + 10 * i, "count": c}))
            .collect();
        let doc = serde_json::json!({
            "schema": "netprof-latency/1", "duration_s": 1.0, "probes": "kprobe", "dropped": 0,
            "missed_returns": 0,
            "functions": [{"function": "f", "module": null, "count": 3, "min_ns": 1000,
                "max_ns": 1100, "mean_ns": 1050.0, "p25_ns": 1000.0, "median_ns": 1050.0,
                "p75_ns": 1100.0, "iqr_ns": 100.0, "p90_ns": 1100.0, "p99_ns": 1100.0,
                "histogram": histogram}]
        });
        let path = dir.path().join(name);
        std::fs::write(&path, doc.to_string()).unwrap();
        path
    };
    let wraps = result("wraps.json", &[u64::MAX - 1, 5]);
    let fine = result("fine.json", &[1, 2]);
    assert_error(
        &netprof(&["diff", p(&wraps), p(&fine)]),
        CorruptInput,
        "than can be added up",
    );
}

/// One recording, ended by `signal` after `delay`: a readable file (or, for
/// SIGKILL, the file that was there before, and nothing else).
fn signal_during_a_recording(bpf: bool, signal: i32, delay: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sig.data");
    std::fs::write(&data, b"old").unwrap();
    let mut args = vec!["record", "-a", "-g", "-q", "-o", p(&data)];
    if bpf {
        args.push("--bpf");
    }
    let child = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args(&args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = wait_limited(child, Duration::from_secs(30));
    let what = format!("signal {signal} after {delay:?} (bpf {bpf})");
    // A signal in the first milliseconds, before netprof has set up
    // anything (its handlers included), ends it as any program: nothing
    // was touched yet.
    let died_at_once = out.status.signal() == Some(signal) && delay < Duration::from_millis(50);
    if signal == libc::SIGKILL || died_at_once {
        assert_eq!(std::fs::read(&data).unwrap(), b"old", "{what}");
        // The next run in that directory sweeps the dead one's temporaries.
        let next = netprof(&["record", "-a", "-q", "--duration", "0.1", "-o", p(&data)]);
        assert!(next.status.success(), "{}", stderr(&next));
    } else {
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        let report = netprof(&["report", "-i", p(&data), "--folded"]);
        assert!(report.status.success(), "{what}: {}", stderr(&report));
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["sig.data"], "{what}");
}

#[test]
fn signals_at_any_point_of_a_recording_leave_a_complete_file() {
    for bpf in [false, true] {
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGKILL] {
            for delay in [5, 150, 1200] {
                signal_during_a_recording(bpf, signal, Duration::from_millis(delay));
            }
        }
    }
}
