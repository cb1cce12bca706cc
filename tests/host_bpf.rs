//! In-kernel aggregation on this machine: `record --bpf` and `netprof bpf`,
//! with an XDP program of the tests' own on a veth pair in a namespace.
//!
//! The tests run one at a time (they look at the kernel's list of loaded
//! programs, which the others would change).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// tests/bpf/NAME.bpf.c compiled into DIR/NAME.o.
fn compile(dir: &Path, name: &str) -> PathBuf {
    let object = dir.join(format!("{name}.o"));
    let source = format!("{}/tests/bpf/{name}.bpf.c", env!("CARGO_MANIFEST_DIR"));
    let arch_headers = format!("-I/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    run(
        "clang",
        &[
            "-O2",
            "-target",
            "bpf",
            &arch_headers,
            "-c",
            &source,
            "-o",
            object.to_str().unwrap(),
        ],
    );
    object
}

/// A veth pair, one end in a namespace of its own, with the test XDP
/// program on the end that stays here; removed on drop.
struct XdpLab {
    netns: String,
    host_if: String,
    program_id: u32,
    tag: String,
}

impl XdpLab {
    fn new(dir: &Path) -> XdpLab {
        let n = std::process::id() % 100_000;
        let (netns, host_if, peer_if) = (format!("npt{n}"), format!("npt{n}a"), format!("npt{n}b"));
        let object = compile(dir, "np_test_xdp");
        let _ = Command::new("ip").args(["netns", "del", &netns]).output();
        run("ip", &["netns", "add", &netns]);
        let mut lab = XdpLab {
            netns: netns.clone(),
            host_if: host_if.clone(),
            program_id: 0,
            tag: String::new(),
        };
        run(
            "ip",
            &[
                "link", "add", &host_if, "type", "veth", "peer", "name", &peer_if, "netns", &netns,
            ],
        );
        // No IPv6: its neighbour and multicast chatter would add packets.
        run(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{host_if}.disable_ipv6=1")],
        );
        let ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &netns];
            all.extend_from_slice(args);
            run("ip", &all);
        };
        ns(&[
            "sysctl",
            "-qw",
            &format!("net.ipv6.conf.{peer_if}.disable_ipv6=1"),
        ]);
        run("ip", &["addr", "add", "10.213.0.1/24", "dev", &host_if]);
        run("ip", &["link", "set", &host_if, "up"]);
        ns(&["ip", "addr", "add", "10.213.0.2/24", "dev", &peer_if]);
        ns(&["ip", "link", "set", &peer_if, "up"]);
        run(
            "ip",
            &[
                "link",
                "set",
                "dev",
                &host_if,
                "xdp",
                "obj",
                object.to_str().unwrap(),
                "sec",
                "xdp",
            ],
        );
        let show = Command::new("ip")
            .args(["link", "show", &host_if])
            .output()
            .unwrap();
        let show = String::from_utf8_lossy(&show.stdout).into_owned();
        let field = |name: &str| {
            let words: Vec<&str> = show.split_whitespace().collect();
            let at = words
                .iter()
                .position(|w| *w == name)
                .unwrap_or_else(|| panic!("{name} in {show}"));
            words[at + 1].to_string()
        };
        lab.program_id = field("id").parse().unwrap();
        lab.tag = field("tag");
        lab
    }

    /// Pings the XDP side `count` times from the namespace; each echo
    /// request runs the program once.
    fn ping(&self, count: u32) {
        run(
            "ip",
            &[
                "netns",
                "exec",
                &self.netns,
                "ping",
                "-q",
                "-c",
                &count.to_string(),
                "-i",
                "0.005",
                "10.213.0.1",
            ],
        );
    }
}

impl Drop for XdpLab {
    fn drop(&mut self) {
        // The host end goes with its peer, and the program with the device.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

fn bpf_stats_sysctl() -> String {
    std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled").unwrap()
}

/// Ids of netprof's counting programs now loaded.
fn counting_programs() -> Vec<u64> {
    let list = json(&netprof(&["bpf", "--json"]));
    list["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().unwrap().starts_with("count_"))
        .map(|p| p["id"].as_u64().unwrap())
        .collect()
}

fn samples_of_summary(stderr: &str) -> u64 {
    let line = stderr
        .lines()
        .find(|l| l.contains(" samples ("))
        .unwrap_or_else(|| panic!("summary line in {stderr}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `record --bpf -a -g` (with `extra` options) while dd reads `count` pages
/// of /dev/zero.
fn record_bpf_dd(data: &Path, extra: &[&str], count: u32) -> std::process::Output {
    let count = format!("count={count}");
    let mut args = vec!["record", "--bpf", "-a", "-g", "-o", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend([
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=4k",
        &count,
        "status=none",
    ]);
    netprof(&args)
}

#[test]
fn record_bpf_counts_dd_and_reports_read_zero() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dd.data");
    let out = record_bpf_dd(&data, &[], 1_500_000);
    assert!(out.status.success(), "{}", stderr(&out));
    let recorded = samples_of_summary(&stderr(&out));
    assert!(recorded > 100, "{}", stderr(&out));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // The kernel's counts, drained, add up to what the recorder counted.
    let report = json(&netprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(report["total_samples"].as_u64().unwrap(), recorded);

    let folded = netprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--folded",
        "--comm",
        "dd",
    ]);
    let folded = stdout(&folded);
    let read_zero: u64 = folded
        .lines()
        .filter(|l| l.starts_with("dd;") && l.contains(";vfs_read;read_zero"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(
        read_zero >= 10,
        "read_zero under dd, with its callers: {folded}"
    );
    // User frames are named too (dd calls read through libc).
    assert!(folded.contains("read;entry_SYSCALL_64"), "{folded}");
    assert!(
        counting_programs().is_empty(),
        "counting programs left loaded"
    );
}

/// Sample records in a recording (with report options `extra`): a record
/// of `--bpf` is one count, of as many samples as its period.
fn sample_records(data: &Path, extra: &[&str]) -> usize {
    let mut args = vec!["report", "-i", data.to_str().unwrap(), "--samples"];
    args.extend_from_slice(extra);
    stdout(&netprof(&args))
        .lines()
        .filter(|l| l.trim_end().ends_with(": cpu-clock:"))
        .count()
}

/// Sample records in a recording of `comm`, and the samples they stand for.
fn records_and_samples(data: &Path, comm: &str) -> (usize, u64) {
    let records = sample_records(data, &["--comm", comm]);
    let data = data.to_str().unwrap();
    let report = json(&netprof(&["report", "-i", data, "--json", "--comm", comm]));
    (records, report["total_samples"].as_u64().unwrap())
}

/// `record --bpf -g -F 999 -o DATA -- COMMAND`, which must succeed.
fn record_bpf_g(data: &Path, command: &[&str]) {
    let mut args = vec![
        "record",
        "--bpf",
        "-g",
        "-F",
        "999",
        "-o",
        data.to_str().unwrap(),
        "--",
    ];
    args.extend_from_slice(command);
    let out = netprof(&args);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// User stacks are walked by frame pointers; the counting program keeps a
/// frame only if it follows a call instruction. Built with frame pointers,
/// main -> outer -> (through a pointer) middle -> leaf stays whole; perl,
/// built without, has its walk cut where it leaves the return addresses,
/// so its samples aggregate into a few counts instead of one each.
#[test]
fn record_bpf_keeps_called_user_frames_and_cuts_the_rest() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let calls = build_c(dir.path(), "user_stacks/calls");
    let data = dir.path().join("calls.data");
    record_bpf_g(&data, &[calls.to_str().unwrap(), "1"]);
    let folded = stdout(&netprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--folded",
        "--comm",
        "calls",
    ]));
    let (mut whole, mut all) = (0, 0);
    for line in folded.lines() {
        let (stack, count) = line.rsplit_once(' ').unwrap();
        let count: u64 = count.parse().unwrap();
        all += count;
        if stack.contains(";main;outer;middle;leaf") {
            whole += count;
        }
    }
    assert!(all > 500, "{folded}");
    assert!(whole * 10 >= all * 9, "chains cut short: {folded}");

    let data = dir.path().join("perl.data");
    record_bpf_g(
        &data,
        &["perl", "-e", "my $x = 0; for (1..3e7) { $x += $_ * 3 % 7 }"],
    );
    let (records, samples) = records_and_samples(&data, "perl");
    assert!(samples > 500, "{samples} samples");
    assert!(
        records * 6 < samples as usize,
        "{records} counts for {samples} samples: perl's stacks did not aggregate"
    );
    let report = json(&netprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--json",
    ]));
    assert!(
        report["truncated_user_samples"].as_u64().unwrap() > 0,
        "{report}"
    );
}

#[test]
fn bpf_lists_own_xdp_program_measures_its_runs_and_names_its_frame() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let lab = XdpLab::new(dir.path());
    let sysctl_before = bpf_stats_sysctl();

    let listed = json(&netprof(&["bpf", "--json"]));
    let ours = listed["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"].as_u64() == Some(lab.program_id as u64))
        .unwrap_or_else(|| panic!("program {} in {listed}", lab.program_id))
        .clone();
    assert_eq!(ours["type"], "xdp");
    assert_eq!(ours["name"], "np_test_xdp");
    assert_eq!(ours["tag"], lab.tag.as_str());
    assert_eq!(
        ours["attached"],
        serde_json::json!([format!("xdp (driver) on {}", lab.host_if)])
    );

    // Measure while exactly 200 echo requests cross the program.
    let id = lab.program_id.to_string();
    let mut measuring = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args(["bpf", "--id", &id, "--duration", "3", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(measuring.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("measuring 1 BPF programs"), "{line}");
    lab.ping(200);
    let out = measuring.wait_with_output().unwrap();
    let measured = json(&out);
    let cost = &measured["programs"][0]["cost"];
    let runs = cost["runs"].as_u64().unwrap();
    // ARP adds a packet or two.
    assert!((200..=205).contains(&runs), "runs {runs}: {measured}");
    let rate = cost["runs_per_second"].as_f64().unwrap();
    assert!(
        (60.0..=70.0).contains(&rate),
        "runs/s {rate} for ~200 runs in 3 s"
    );
    let median = cost["median_ns"].as_f64().unwrap();
    assert!(median > 0.0 && median < 1e6, "ns per run {median}");
    assert!(
        cost["p25_ns"].as_f64().unwrap() <= median && median <= cost["p75_ns"].as_f64().unwrap()
    );
    assert_eq!(
        bpf_stats_sysctl(),
        sysctl_before,
        "kernel.bpf_stats_enabled changed"
    );

    // The table says the same.
    let table = stdout(&netprof(&["bpf", "--id", &id]));
    assert!(
        table.contains("np_test_xdp") && table.contains(&lab.tag),
        "{table}"
    );

    // The program's frame is named in stacks taken inside it, counted in
    // the kernel: one tracepoint hit per packet.
    let data = dir.path().join("xdp.data");
    let mut recording = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args([
            "record",
            "--bpf",
            "-a",
            "-g",
            "-e",
            "bpf_trace:bpf_trace_printk",
            "-o",
        ])
        .arg(&data)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // The counting program sits on the tracepoint's perf event without a
    // link; netprof bpf finds it there.
    let listed = json(&netprof(&["bpf", "--json"]));
    let counting: Vec<&serde_json::Value> = listed["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["attached"] == serde_json::json!(["tracepoint bpf_trace_printk"]))
        .collect();
    assert_eq!(counting.len(), 1, "{listed}");
    assert_eq!(counting[0]["name"], "count_tracepoin", "{listed}");
    lab.ping(50);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(recording.id() as i32, libc::SIGINT) };
    let status = recording.wait().unwrap();
    assert!(status.success());
    let folded = stdout(&netprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--folded",
    ]));
    let frame = format!(";bpf_prog_{}_np_test_xdp [bpf];bpf_trace_printk", lab.tag);
    let hits: u64 = folded
        .lines()
        .filter(|l| l.contains(&frame))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert!(
        (50..=53).contains(&hits),
        "{hits} hits with {frame} in: {folded}"
    );
}

/// The attached programs named `name` in `netprof bpf --json`, by where they
/// are attached (detached ones linger until the kernel frees them).
fn attached_programs(name: &str) -> Vec<(serde_json::Value, u64)> {
    let listed = json(&netprof(&["bpf", "--json"]));
    let mut found: Vec<(serde_json::Value, u64)> = listed["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == name && p["attached"] != serde_json::json!([]))
        .map(|p| (p["attached"].clone(), p["id"].as_u64().unwrap()))
        .collect();
    found.sort_by_key(|p| p.0.to_string());
    found
}

#[test]
fn bpf_shows_tc_filters_and_measures_while_a_command_runs() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let lab = XdpLab::new(dir.path());
    let object = compile(dir.path(), "np_test_tc");
    let object = object.to_str().unwrap();
    let dev = lab.host_if.as_str();
    run("tc", &["qdisc", "add", "dev", dev, "clsact"]);
    run(
        "tc",
        &[
            "filter", "add", "dev", dev, "ingress", "bpf", "da", "obj", object, "sec", "tc",
        ],
    );
    run(
        "tc",
        &[
            "filter", "add", "dev", dev, "egress", "prio", "7", "bpf", "obj", object, "sec", "tc",
        ],
    );

    // The classic cls_bpf way makes no BPF link: only netlink tells where.
    let found = attached_programs("np_test_tc");
    let places: Vec<&serde_json::Value> = found.iter().map(|p| &p.0).collect();
    assert_eq!(
        places,
        [
            &serde_json::json!([format!("tc egress on {dev} (cls_bpf, prio 7)")]),
            &serde_json::json!([format!("tc ingress on {dev} (cls_bpf, prio 49152, da)")]),
        ]
    );
    let ingress = found[1].1.to_string();

    // Measured while a command runs, and only then: 100 echo requests cross
    // the ingress program, and netprof ends when ping does.
    let out = netprof(&[
        "bpf",
        "--id",
        &ingress,
        "--json",
        "--",
        "ip",
        "netns",
        "exec",
        &lab.netns,
        "ping",
        "-q",
        "-c",
        "100",
        "-i",
        "0.005",
        "10.213.0.1",
    ]);
    let measured = json(&out);
    let runs = measured["programs"][0]["cost"]["runs"].as_u64().unwrap();
    assert!((100..=105).contains(&runs), "runs {runs}: {measured}");
    let seconds = measured["duration_s"].as_f64().unwrap();
    assert!(
        (0.4..5.0).contains(&seconds),
        "measured for {seconds} s around a ping of about 0.5 s"
    );
    assert!(
        stderr(&out).contains("while the command runs"),
        "{}",
        stderr(&out)
    );

    // The table names its cost statistic; the command's output stays off
    // netprof's standard output.
    let out = netprof(&[
        "bpf",
        "--id",
        &ingress,
        "--interval",
        "50",
        "--",
        "ip",
        "netns",
        "exec",
        &lab.netns,
        "ping",
        "-c",
        "20",
        "-i",
        "0.01",
        "10.213.0.1",
    ]);
    let table = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        table.contains("NS/RUN (median of 50 ms means ± IQR)"),
        "{table}"
    );
    assert!(
        !table.contains("PING") && stderr(&out).contains("PING"),
        "{table}"
    );

    // The older ingress qdisc has no egress hook, yet answers an egress dump
    // with its ingress filters: they are listed once, as ingress.
    run("tc", &["qdisc", "del", "dev", dev, "clsact"]);
    run("tc", &["qdisc", "add", "dev", dev, "ingress"]);
    run(
        "tc",
        &[
            "filter", "add", "dev", dev, "parent", "ffff:", "bpf", "da", "obj", object, "sec", "tc",
        ],
    );
    let found = attached_programs("np_test_tc");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].0,
        serde_json::json!([format!("tc ingress on {dev} (cls_bpf, prio 49152, da)")])
    );
}

#[test]
fn record_bpf_reports_samples_its_full_maps_dropped() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("full.data");
    let out = record_bpf_dd(&data, &["--bpf-map-entries", "2"], 500_000);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let warning = err
        .lines()
        .find(|l| l.contains("samples not counted: the kernel side had no room"))
        .unwrap_or_else(|| panic!("no dropped-samples warning: {err}"));
    assert!(warning.contains("raise --bpf-map-entries"), "{warning}");
    let dropped: u64 = warning.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(dropped > 0, "{warning}");
    // What was counted is still a readable recording.
    let report = json(&netprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(
        report["total_samples"].as_u64().unwrap(),
        samples_of_summary(&err)
    );
}

/// Maps are drained as they fill, not only every ten seconds: a shell
/// spawning a hundred processes a second brings far more distinct (task,
/// stacks) in five seconds than 256 entries hold, and none is dropped.
#[test]
fn record_bpf_drains_maps_as_they_fill() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("spawn.data");
    let out = netprof(&[
        "record",
        "--bpf",
        "-a",
        "-g",
        "--bpf-map-entries",
        "256",
        "--duration",
        "5",
        "-o",
        data.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "while :; do /bin/true; sleep 0.01; done",
    ]);
    let err = stderr(&out);
    assert!(!err.contains("not counted"), "{err}");
    let counts = sample_records(&data, &[]);
    assert!(counts > 2 * 256, "only {counts} distinct counts: {err}");
}

#[test]
fn record_bpf_makes_room_for_new_stacks_while_known_ones_recur() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let paths = build_c(dir.path(), "user_stacks/paths");
    let data = dir.path().join("paths.data");
    // 768 user stacks, each hit once in each of 3 rounds, with 512 of them
    // remembered as sent: those forgotten are sent again when they recur,
    // and every hit is counted with its stack.
    let out = netprof(&[
        "record",
        "--bpf",
        "-a",
        "-g",
        "-e",
        "syscalls:sys_enter_getppid",
        "--bpf-map-entries",
        "512",
        "-o",
        data.to_str().unwrap(),
        "--",
        paths.to_str().unwrap(),
        "768",
        "3",
        "500",
    ]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("not counted"), "{err}");
    let out = netprof(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--folded",
        "--comm",
        "paths",
    ]);
    let text = stdout(&out);
    let counts: Vec<u64> = text
        .lines()
        .filter(|l| l.contains("descend"))
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.len(), 768, "{}", stderr(&out));
    assert!(counts.iter().all(|&n| n == 3), "{text}");
}

#[test]
fn record_bpf_leaves_nothing_loaded_after_kill_9() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let before = counting_programs();
    assert!(
        before.is_empty(),
        "counting programs already loaded: {before:?}"
    );
    let mut recording = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args([
            "record",
            "-q",
            "--bpf",
            "-a",
            "-g",
            "-e",
            "cpu-clock",
            "-e",
            "sched:sched_switch",
            "-o",
        ])
        .arg(dir.path().join("k.data"))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let loaded = loop {
        let loaded = counting_programs();
        if loaded.len() >= 2 || Instant::now() > deadline {
            break loaded;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // One program per event, each with its three entry points.
    assert!(
        loaded.len() >= 2,
        "counting programs while recording: {loaded:?}"
    );
    recording.kill().unwrap();
    recording.wait().unwrap();
    // The kernel frees programs shortly after their last descriptor closes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !counting_programs().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        counting_programs(),
        Vec::<u64>::new(),
        "left loaded after kill -9"
    );
}

#[test]
fn bpf_refusals_are_one_line_errors() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_netprof"))
            .args(args)
            .output()
            .expect("setpriv (util-linux)")
    };
    let data: PathBuf = dir.path().join("x.data");
    assert_error(
        &as_nobody(&[
            "record",
            "--bpf",
            "-a",
            "--duration",
            "0.2",
            "-o",
            data.to_str().unwrap(),
        ]),
        NoPermission,
        "no permission to load netprof's BPF program",
    );
    assert!(!data.exists());
    assert_error(
        &as_nobody(&["bpf"]),
        NoPermission,
        "cannot list BPF programs",
    );
    assert_error(
        &netprof(&[
            "record",
            "--bpf",
            "-e",
            "sched:sched_switch",
            "-o",
            data.to_str().unwrap(),
            "--",
            "true",
        ]),
        BadArgument,
        "record --bpf counts tracepoints and kprobes system-wide only",
    );
    assert_error(
        &netprof(&["bpf", "--id", "4000000000"]),
        NotFound,
        "no BPF program with id 4000000000",
    );
    assert_error(
        &netprof(&["bpf", "--duration", "0"]),
        BadArgument,
        "give a positive number of seconds",
    );
    assert!(counting_programs().is_empty());
}
