//! Checks that need a real kernel with kprobes and modules, which this host
//! lacks. On the host, this harness boots each of Debian 12's kernels (6.12
//! and 6.1) once under QEMU (tests/guest/run), one after the other, and runs
//! this same binary inside, where NETPROF_IN_GUEST is set and the selected
//! checks run for real, one after the other, each in a directory of its
//! own. Each check on each kernel is its own test result on the host
//! (`test [6.1] own_module_kprobe ... ok`), and a failure shows that check's
//! output, the guest kernel's console lines included.
//!
//! Filters work as for any cargo test, on the kernel too:
//! `cargo test --test guest_kernel hsr` boots 6.12 for the HSR checks only,
//! `cargo test --test guest_kernel '[6.1]'` boots 6.1 for all of its checks.

mod common;
#[path = "guest/funcgraph.rs"]
mod funcgraph;
#[path = "guest/off_cpu.rs"]
mod off_cpu;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use libtest_mimic::{Arguments, Failed, Trial};

/// The kernels the guest boots (tests/guest/run's NETPROF_GUEST_KERNEL).
const KERNELS: &[&str] = &["6.12", "6.1"];

/// The kind of tests that need every kernel's boot.
const BOTH: &str = "6.12+6.1";

/// Tests on the host across the kernels' boots: each needs one check's
/// output from every kernel, (kernel, output).
type AcrossKernels = fn(&[(&'static str, String)]) -> Result<(), Failed>;
const ACROSS_KERNELS: &[(&str, &str, AcrossKernels)] = &[
    (
        "support_table",
        "check_sees_the_kernel",
        support_table_result,
    ),
    (
        "cross_kernel_diff",
        "cross_kernel_workload",
        cross_kernel_diff,
    ),
];

/// Check `needs`' output from each kernel's boot, all of which must have
/// passed it.
fn across_kernels(
    selected: &HashMap<&'static str, Vec<&'static str>>,
    needs: &str,
) -> Result<Vec<(&'static str, String)>, Failed> {
    let mut outputs = Vec::new();
    for (slot, &kernel) in KERNELS.iter().enumerate() {
        let run = GUESTS[slot].get_or_init(|| {
            let _one = ONE_GUEST_AT_A_TIME
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            boot(kernel, &selected[kernel])
        });
        match run.results.get(needs) {
            Some((true, output)) => outputs.push((kernel, output.clone())),
            Some((false, output)) => {
                return Err(format!("{needs} failed in the {kernel} guest:\n{output}").into())
            }
            None => {
                return Err(
                    format!("the {kernel} guest ended before {needs}: {}", run.ending).into(),
                )
            }
        }
    }
    Ok(outputs)
}

/// A guest run that takes longer than this is stuck: the guest is killed
/// and every check it did not finish fails.
const GUEST_TIMEOUT: Duration = Duration::from_secs(20 * 60);

const CHECK_START: &str = "netprof-guest-check-start ";
const CHECK_END: &str = "netprof-guest-check-end ";

type Check = fn(&Path);

/// Every check, by name, and the kernels it runs on: all of them, but for
/// the checks of HSR, which 6.1 does not build (`# CONFIG_HSR is not set`);
/// the network-module checks that run on both use bridge and sctp.
const CHECKS: &[(&str, Check)] = &[
    ("own_module_kprobe", own_module_kprobe),
    ("own_module_return_probe", own_module_return_probe),
    ("concurrent_recordings", concurrent_recordings),
    ("persistent_probe", persistent_probe),
    ("probe_errors", probe_errors),
    ("kill_nine_leaves_nothing", kill_nine_leaves_nothing),
    ("hsr_ring", hsr_ring),
    ("names_survive_rmmod", names_survive_rmmod),
    ("probe_arguments", probe_arguments),
    ("record_kprobe_glob", record_kprobe_glob),
    ("hsr_glob", hsr_glob),
    ("check_sees_the_kernel", check_sees_the_kernel),
    ("counted_kprobe", counted_kprobe),
    ("latency_of_known_delay", latency_of_known_delay),
    ("latency_leaves_nothing", latency_leaves_nothing),
    (
        "diff_names_the_delayed_function",
        diff_names_the_delayed_function,
    ),
    (
        "counted_probe_hides_no_hit_from_others",
        counted_probe_hides_no_hit_from_others,
    ),
    ("cpu_hotplug_is_followed", cpu_hotplug_is_followed),
    ("latency_follows_a_command", latency_follows_a_command),
    ("whole_module_glob", whole_module_glob),
    ("cross_kernel_workload", cross_kernel_workload),
    ("hsr_slow_node_table_diff", hsr_slow_node_table_diff),
    ("funcgraph_module_paths", funcgraph::funcgraph_module_paths),
    (
        "funcgraph_slowest_and_errors",
        funcgraph::funcgraph_slowest_and_errors,
    ),
    (
        "funcgraph_diff_names_the_delay",
        funcgraph::funcgraph_diff_names_the_delay,
    ),
    (
        "funcgraph_leaves_nothing",
        funcgraph::funcgraph_leaves_nothing,
    ),
    ("hsr_funcgraph_paths", funcgraph::hsr_funcgraph_paths),
    ("off_cpu_in_module", off_cpu::off_cpu_in_module),
];

/// The running kernel's series as KERNELS names it: `6.1` for 6.1.0-56-amd64.
fn kernel_series() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    release.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// Whether check `name` runs on `kernel`.
fn runs_on(name: &str, kernel: &str) -> bool {
    !name.starts_with("hsr_") || kernel != "6.1"
}

fn main() {
    if std::env::var_os("NETPROF_IN_GUEST").is_some() {
        let names: Vec<String> = std::env::args().skip(1).collect();
        in_guest(&names);
        return;
    }
    let args = Arguments::from_args();
    let checks_of = |kernel: &'static str| {
        CHECKS
            .iter()
            .map(|c| c.0)
            .filter(move |name| runs_on(name, kernel))
    };
    // Which checks each boot runs: those libtest-mimic will run (its own
    // filter rules, which see the kernel as the test's kind).
    let selected: HashMap<&str, Vec<&str>> = KERNELS
        .iter()
        .map(|&kernel| {
            let wanted = checks_of(kernel)
                .filter(|&name| {
                    let trial = Trial::test(name, || Ok(())).with_kind(kernel);
                    !args.list && !args.ignored && !args.is_filtered_out(&trial)
                })
                .collect();
            (kernel, wanted)
        })
        .collect();
    // Tests across kernels need a check's result from every kernel.
    let mut selected = selected;
    for &(name, needs, _) in ACROSS_KERNELS {
        let trial = Trial::test(name, || Ok(())).with_kind(BOTH);
        if !args.list && !args.ignored && !args.is_filtered_out(&trial) {
            for wanted in selected.values_mut() {
                if !wanted.contains(&needs) {
                    wanted.push(needs);
                }
            }
        }
    }
    let selected = std::sync::Arc::new(selected);
    let mut trials: Vec<Trial> = KERNELS
        .iter()
        .flat_map(|&kernel| checks_of(kernel).map(move |name| (kernel, name)))
        .map(|(kernel, name)| {
            let selected = selected.clone();
            Trial::test(name, move || guest_result(kernel, &selected[kernel], name))
                .with_kind(kernel)
        })
        .collect();
    for &(name, needs, test) in ACROSS_KERNELS {
        let selected = selected.clone();
        trials.push(
            Trial::test(name, move || test(&across_kernels(&selected, needs)?)).with_kind(BOTH),
        );
    }
    libtest_mimic::run(&args, trials).exit();
}

/// What one boot of the guest said of each check.
struct GuestRun {
    /// Check name -> (passed, its output).
    results: HashMap<String, (bool, String)>,
    /// How the guest ended, and its last lines, for checks it never reached.
    ending: String,
}

/// Each kernel's boot, once; one guest at a time, so that the checks'
/// timings do not share the machine with another guest.
static GUESTS: [OnceLock<GuestRun>; 2] = [OnceLock::new(), OnceLock::new()];
static ONE_GUEST_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn guest_result(kernel: &'static str, selected: &[&str], name: &str) -> Result<(), Failed> {
    let slot = KERNELS.iter().position(|&k| k == kernel).unwrap();
    let run = GUESTS[slot].get_or_init(|| {
        let _one = ONE_GUEST_AT_A_TIME
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        boot(kernel, selected)
    });
    match run.results.get(name) {
        Some((true, output)) => {
            // What a passing check measured stays visible in the log.
            for line in output.lines().filter(|l| l.starts_with("guest: ")) {
                say(&format!("[{kernel}] {name}: {}", &line["guest: ".len()..]));
            }
            Ok(())
        }
        Some((false, output)) => Err(format!("in the {kernel} guest:\n{output}").into()),
        None => Err(format!(
            "the {kernel} guest ended before this check reported: {}",
            run.ending
        )
        .into()),
    }
}

/// Boots `kernel` once for the selected checks and collects their results.
fn boot(kernel: &str, selected: &[&str]) -> GuestRun {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(cross_kernel_dir()).expect("target/cross-kernel");
    let (reader, writer) = std::io::pipe().expect("a pipe");
    let mut guest = Command::new(root.join("tests/guest/run"))
        .env("NETPROF_GUEST_CONSOLE", "1")
        .env("NETPROF_GUEST_KERNEL", kernel)
        .env("NETPROF_GUEST_RWDIR", cross_kernel_dir())
        .args(["env", "NETPROF_IN_GUEST=1", "RUST_BACKTRACE=1"])
        .arg(std::env::current_exe().unwrap())
        .args(selected)
        .stdout(writer.try_clone().expect("a pipe"))
        .stderr(writer)
        .process_group(0)
        .spawn()
        .expect("tests/guest/run starts");
    let pgid = guest.id() as i32;
    let watchdog = std::thread::spawn(move || {
        let start = Instant::now();
        while start.elapsed() < GUEST_TIMEOUT {
            std::thread::sleep(Duration::from_secs(1));
            // SAFETY: signal 0 only checks that the group still exists.
            if unsafe { libc::kill(-pgid, 0) } != 0 {
                return false;
            }
        }
        // SAFETY: ending the guest's own process group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        true
    });
    let mut results = HashMap::new();
    let mut current: Option<(String, String)> = None;
    let mut tail: Vec<String> = Vec::new();
    for line in std::io::BufReader::new(reader).lines() {
        let line = line.unwrap_or_default();
        if let Some(name) = line.strip_prefix(CHECK_START) {
            current = Some((name.to_string(), String::new()));
        } else if let Some(end) = line.strip_prefix(CHECK_END) {
            let (name, verdict) = end.split_once(' ').unwrap_or((end, "failed"));
            let output = current.take().map(|c| c.1).unwrap_or_default();
            results.insert(name.to_string(), (verdict == "ok", output));
        } else if let Some((_, output)) = current.as_mut() {
            output.push_str(&line);
            output.push('\n');
        }
        tail.push(line);
        if tail.len() > 40 {
            tail.remove(0);
        }
    }
    let status = guest.wait().expect("the guest ends");
    let timed_out = watchdog.join().unwrap_or(false);
    let mut ending = if timed_out {
        format!("killed after {GUEST_TIMEOUT:?}")
    } else {
        format!("tests/guest/run exited with {status}")
    };
    if let Some((name, output)) = current {
        ending.push_str(&format!("; {name} was running, its output:\n{output}"));
    }
    ending.push_str(&format!("\nlast lines:\n{}", tail.join("\n")));
    GuestRun { results, ending }
}

/// Inside the guest: runs the named checks (all when none are named), each
/// in a fresh directory, between markers the host reads.
fn in_guest(names: &[String]) {
    load_test_module();
    for &(name, check) in CHECKS {
        if !names.is_empty() && !names.iter().any(|n| n == name) || !runs_on(name, &kernel_series())
        {
            continue;
        }
        // On stderr, with the checks' own messages and panics: one stream
        // keeps them in order.
        eprintln!("{CHECK_START}{name}");
        let work = tempfile::tempdir().unwrap();
        let dir: PathBuf = work.path().to_path_buf();
        let outcome = std::panic::catch_unwind(move || check(&dir));
        // A check that failed half-way may have left the module out.
        load_test_module();
        eprintln!(
            "{CHECK_END}{name} {}",
            if outcome.is_ok() { "ok" } else { "failed" }
        );
    }
}

fn netprof_ok(args: &[&str]) -> String {
    let out = netprof(args);
    assert!(
        out.status.success(),
        "netprof {args:?} failed: {}",
        stderr(&out)
    );
    stdout(&out)
}

fn sh(cmd: &str) {
    let status = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(status.success(), "{cmd} failed");
}

/// The test module built for the running kernel (tests/guest/run says
/// where).
fn module_path() -> PathBuf {
    std::env::var_os("NETPROF_TEST_MODULE")
        .map(PathBuf::from)
        .expect("NETPROF_TEST_MODULE (tests/guest/run sets it)")
}

fn load_test_module() {
    let loaded = std::fs::read_to_string("/proc/modules")
        .unwrap()
        .contains("netprof_test ");
    if !loaded {
        sh(&format!("insmod {}", module_path().display()));
    }
}

fn folded_of(file: &Path, extra: &[&str]) -> String {
    let mut args = vec!["report", "-i", file.to_str().unwrap(), "--folded"];
    args.extend_from_slice(extra);
    netprof_ok(&args)
}

fn count(folded: &str, needle: &str) -> u64 {
    folded
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// Records `event` with call chains, system-wide or following the shell
/// only, while the shell writes `trigger` to the test module's proc file
/// (`N` calls outer -> middle -> inner N times); the run must succeed.
fn record_writes(
    event: &str,
    system_wide: bool,
    trigger: &str,
    data: &Path,
) -> std::process::Output {
    let options: &[&str] = if system_wide { &["-a"] } else { &[] };
    record_writes_with(options, event, trigger, data)
}

/// `record_writes` with more record options (`--bpf`).
fn record_writes_with(
    options: &[&str],
    event: &str,
    trigger: &str,
    data: &Path,
) -> std::process::Output {
    let write = format!("echo {trigger} > /proc/netprof_test");
    let mut args = vec!["record", "-e", event, "-g", "-o", data.to_str().unwrap()];
    args.extend_from_slice(options);
    args.extend(["--", "sh", "-c", &write]);
    let out = netprof(&args);
    assert!(
        out.status.success(),
        "netprof {args:?} failed: {}",
        stderr(&out)
    );
    out
}

/// Samples whose leaf is inner, middle, outer and write of the test module.
fn module_leaf_counts(folded: &str) -> (u64, u64, u64, u64) {
    let leaf = |name: &str| count(folded, &format!(";netprof_test_{name} [netprof_test] "));
    (leaf("inner"), leaf("middle"), leaf("outer"), leaf("write"))
}

const CHAIN: &str = "netprof_test_write [netprof_test];netprof_test_outer [netprof_test];\
netprof_test_middle [netprof_test];netprof_test_inner [netprof_test]";

fn own_module_kprobe(work: &Path) {
    let data = work.join("inner.data");
    record_writes("kprobe:netprof_test_inner", true, "100", &data);
    let f = folded_of(&data, &[]);
    let total: u64 = f
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 100, "one sample per call expected:\n{f}");
    assert_eq!(
        count(&f, &format!("{CHAIN} ")),
        100,
        "every stack is write -> outer -> middle -> inner:\n{f}"
    );
    // --module keeps them all; another module keeps none.
    assert_eq!(
        count(
            &folded_of(&data, &["--module", "netprof_test"]),
            "netprof_test_inner"
        ),
        100
    );
}

fn own_module_return_probe(work: &Path) {
    let data = work.join("ret.data");
    record_writes(
        "kprobe:netprof_test:netprof_test_inner%return",
        true,
        "40",
        &data,
    );
    let f = folded_of(&data, &[]);
    assert_eq!(count(&f, "netprof_test_middle [netprof_test]"), 40, "{f}");
}

fn concurrent_recordings(work: &Path) {
    let run = |name: &str, n: u32| {
        let data = work.join(name);
        let child = Command::new(env!("CARGO_BIN_EXE_netprof"))
            .args([
                "record",
                "-q",
                "-e",
                "kprobe:netprof_test_inner",
                "-g",
                "-o",
                data.to_str().unwrap(),
                "--",
            ])
            .args([
                "sh",
                "-c",
                &format!("sleep 1; echo {n} > /proc/netprof_test; sleep 1"),
            ])
            .spawn()
            .unwrap();
        (data, child)
    };
    let (a, mut ca) = run("a.data", 30);
    let (b, mut cb) = run("b.data", 70);
    assert!(ca.wait().unwrap().success() && cb.wait().unwrap().success());
    assert_eq!(count(&folded_of(&a, &[]), "netprof_test_inner"), 30);
    assert_eq!(count(&folded_of(&b, &[]), "netprof_test_inner"), 70);
}

fn kprobe_events() -> String {
    std::fs::read_to_string("/sys/kernel/tracing/kprobe_events").unwrap()
}

fn persistent_probe(work: &Path) {
    let out = netprof_ok(&["probe", "netprof_test_inner"]);
    assert!(out.contains("added netprof:netprof_test_inner"), "{out}");
    assert!(
        kprobe_events().contains("p:netprof/netprof_test_inner netprof_test:netprof_test_inner"),
        "{}",
        kprobe_events()
    );
    let data = work.join("persist.data");
    record_writes("netprof:netprof_test_inner", true, "25", &data);
    assert_eq!(
        count(&folded_of(&data, &[]), "netprof_test_inner [netprof_test] "),
        25
    );
    let listed = netprof_ok(&["probe", "--list", "-m", "netprof_test"]);
    for f in [
        "netprof_test_inner",
        "netprof_test_middle",
        "netprof_test_outer",
        "netprof_test_delay",
    ] {
        assert!(listed.contains(&format!("{f} [netprof_test]")), "{listed}");
    }
    // A probe of someone else's must survive netprof's --del --all.
    std::fs::OpenOptions::new()
        .append(true)
        .open("/sys/kernel/tracing/kprobe_events")
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"p:other/keep vfs_read\n"))
        .unwrap();
    let out = netprof_ok(&["probe", "--del", "--all"]);
    assert!(out.contains("removed netprof:netprof_test_inner"), "{out}");
    let left = kprobe_events();
    assert!(!left.contains("netprof/"), "{left}");
    assert!(
        left.contains("other/keep"),
        "netprof removed a probe not its own: {left}"
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open("/sys/kernel/tracing/kprobe_events")
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"-:other/keep\n"))
        .unwrap();
}

fn probe_errors(_: &Path) {
    assert_error(
        &netprof(&["probe", "netprof_test_innr"]),
        NotFound,
        "did you mean netprof_test_inner",
    );
    assert_error(
        &netprof(&[
            "record",
            "-e",
            "kprobe:netprof_test_innr",
            "-a",
            "--duration",
            "0.1",
        ]),
        NotFound,
        "no function 'netprof_test_innr'",
    );
    // A function on the kprobe blacklist: the kernel refuses, netprof explains.
    let blacklist = std::fs::read_to_string("/sys/kernel/debug/kprobes/blacklist").unwrap();
    let refused = blacklist
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .find(|f| !f.contains('.'))
        .expect("a blacklisted function");
    let out = netprof(&["probe", refused]);
    assert_error(&out, KernelRefused, "the kernel refuses a probe on");
    assert!(!kprobe_events().contains(refused), "{}", kprobe_events());
    // Not root: each way in says so.
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_netprof"))
            .args(args)
            .current_dir("/tmp")
            .output()
            .unwrap()
    };
    assert_error(
        &as_nobody(&["probe", "netprof_test_inner"]),
        NoPermission,
        "no permission",
    );
    assert_error(
        &as_nobody(&[
            "record",
            "-e",
            "kprobe:netprof_test_inner",
            "-a",
            "--duration",
            "0.1",
            "-o",
            "/tmp/x.data",
        ]),
        NoPermission,
        "no permission",
    );
    assert_error(
        &netprof(&["probe", "-m", "nosuchmod", "foo"]),
        NotFound,
        "module 'nosuchmod' is not loaded",
    );
}

fn kill_nine_leaves_nothing(work: &Path) {
    let data = work.join("killed.data");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args([
            "record",
            "-q",
            "-e",
            "kprobe:vfs_read",
            "-a",
            "-g",
            "-o",
            data.to_str().unwrap(),
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The probe belonged to the dead process's file descriptors: the kernel
    // removed it with them. Nothing of netprof is in kprobe_events, and the
    // kernel's probe list has no vfs_read probe left.
    assert!(!kprobe_events().contains("netprof"), "{}", kprobe_events());
    let listed = std::fs::read_to_string("/sys/kernel/debug/kprobes/list").unwrap_or_default();
    assert!(
        !listed.contains("vfs_read"),
        "a probe on vfs_read survived: {listed}"
    );
    // The next run in that directory sweeps the dead run's temporary file.
    netprof_ok(&[
        "record",
        "-q",
        "-a",
        "--duration",
        "0.2",
        "-o",
        data.to_str().unwrap(),
    ]);
    let leftovers: Vec<_> = std::fs::read_dir(work)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("netprof-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn counted_kprobe(work: &Path) {
    // Counted in the kernel, the stacks taken at function entry keep the
    // direct caller: write -> outer -> middle -> inner, every time.
    let data = work.join("counted.data");
    record_writes_with(&["--bpf", "-a"], "kprobe:netprof_test_inner", "100", &data);
    let f = folded_of(&data, &[]);
    // Every line matches the empty needle: the total of all stacks.
    assert_eq!(count(&f, ""), 100, "{f}");
    assert_eq!(count(&f, &format!("{CHAIN} ")), 100, "{f}");

    // A glob: one counted kprobe per function.
    let data = work.join("counted-glob.data");
    record_writes_with(
        &["--bpf", "-a"],
        "kprobe:netprof_test:netprof_test_*",
        "10",
        &data,
    );
    let f = folded_of(&data, &[]);
    assert_eq!(module_leaf_counts(&f), (10, 10, 10, 1), "{f}");
}

/// Starts `netprof latency ARGS --json`, waits until its probes are
/// attached, runs `trigger` in a shell, and returns the parsed result.
fn latency_while(args: &[&str], trigger: &str) -> serde_json::Value {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .arg("latency")
        .args(args)
        .arg("--json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    // Attaching one by one may say how far it got first.
    let mut said = String::new();
    loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 || line.contains("netprof: timing") {
            assert!(
                line.contains("netprof: timing"),
                "latency {args:?}: {said}{line}"
            );
            break;
        }
        said.push_str(&line);
    }
    sh(trigger);
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(out.status.success(), "latency {args:?}: {rest}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn latency_of_known_delay(_: &Path) {
    let v = latency_while(
        &["netprof_test_delay", "--duration", "6"],
        "echo d25 > /proc/netprof_test",
    );
    let f = &v["functions"][0];
    assert_eq!(f["function"], "netprof_test_delay", "{v}");
    assert_eq!(f["module"], "netprof_test", "{v}");
    assert_eq!(f["count"], 25, "{v}");
    let median = f["median_ns"].as_f64().unwrap();
    eprintln!(
        "guest: netprof_test_delay (a 200 us busy loop): median {:.1} us, IQR {:.1} us, min {:.1} us, max {:.1} us ({})",
        median / 1e3,
        f["iqr_ns"].as_f64().unwrap() / 1e3,
        f["min_ns"].as_f64().unwrap() / 1e3,
        f["max_ns"].as_f64().unwrap() / 1e3,
        v["probes"]
    );
    assert!(
        (160_000.0..=240_000.0).contains(&median),
        "median {median} ns is not within 20% of the 200 us delay: {v}"
    );
    let hist_total: u64 = f["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(hist_total, 25);

    // Only one process's calls: a shell that waits until the probes are
    // attached (however long loading takes in an emulated guest), then
    // calls the delay 5 times, while another shell calls it 3 times.
    let go = std::env::temp_dir().join(format!("netprof-go-{}", std::process::id()));
    let _ = std::fs::remove_file(&go);
    let go = go.to_str().unwrap();
    let mut target = Command::new("sh")
        .args([
            "-c",
            &format!("while [ ! -e {go} ]; do sleep 0.05; done; echo d5 > /proc/netprof_test"),
        ])
        .spawn()
        .unwrap();
    let pid = target.id().to_string();
    let v = latency_while(
        &["netprof_test_delay", "-p", &pid, "--duration", "6"],
        &format!("touch {go}; echo d3 > /proc/netprof_test"),
    );
    let _ = std::fs::remove_file(go);
    assert!(target.wait().unwrap().success());
    assert_eq!(
        v["functions"][0]["count"], 5,
        "only process {pid}'s calls: {v}"
    );

    // Several functions at once, one histogram per CPU: the same counts
    // through a multi-kprobe link pair (where the kernel has one) and
    // through a link pair each (--no-multi-kprobe).
    for extra in [&[][..], &["--no-multi-kprobe"][..]] {
        let mut args = vec![
            "-m",
            "netprof_test",
            "netprof_test_*",
            "--per-cpu",
            "--duration",
            "5",
        ];
        args.extend_from_slice(extra);
        let v = latency_while(&args, "echo 10 > /proc/netprof_test");
        if !extra.is_empty() || !has_fprobe() {
            assert_eq!(v["probes"], "kprobe", "{extra:?}: {v}");
        }
        // Every call timed: first calls of several functions at once once
        // found no histogram allocatable in the probe.
        assert_eq!(v["dropped"], 0, "{extra:?}: {v}");
        let mut calls = std::collections::BTreeMap::<String, u64>::new();
        for f in v["functions"].as_array().unwrap() {
            if f["count"].as_u64().unwrap() > 0 {
                assert!(f["cpu"].is_u64(), "per-CPU histograms name their CPU: {f}");
            }
            *calls
                .entry(f["function"].as_str().unwrap().to_string())
                .or_default() += f["count"].as_u64().unwrap();
        }
        for (name, n) in [
            ("inner", 10),
            ("middle", 10),
            ("outer", 10),
            ("write", 1),
            ("delay", 0),
            ("work", 0),
        ] {
            assert_eq!(
                calls.get(&format!("netprof_test_{name}")),
                Some(&n),
                "{extra:?}: {calls:?}"
            );
        }
    }
}

fn latency_programs() -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&netprof_ok(&["bpf", "--json"])).unwrap();
    v["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().unwrap().starts_with("latency_"))
        .cloned()
        .collect()
}

fn latency_leaves_nothing(_: &Path) {
    // Every function of the module, through a multi-kprobe link pair, or a
    // link pair each.
    let count = netprof_ok(&["probe", "--list", "-m", "netprof_test", "netprof_test_*"])
        .lines()
        .count();
    assert!(count >= 7, "{count} functions in the test module");
    let kind = if has_fprobe() {
        "kprobe.multi"
    } else {
        "kprobe"
    };
    let ret_kind = if has_fprobe() {
        "kretprobe.multi"
    } else {
        "kretprobe"
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args(["latency", "-m", "netprof_test", "netprof_test_*"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let places_of = |programs: &[serde_json::Value]| -> Vec<String> {
        programs
            .iter()
            .flat_map(|p| p["attached"].as_array().unwrap().clone())
            .map(|a| a.as_str().unwrap().to_string())
            .collect()
    };
    // One session program at entry and return (6.10 and later), or an
    // entry and a return program. Programs load first, then their links
    // attach, one function at a time without multi-kprobe links: wait for
    // all of them.
    let attached_everywhere = |programs: &[serde_json::Value]| {
        let places = places_of(programs);
        let returns_too =
            programs.len() == 1 || places.contains(&format!("{ret_kind} on {count} functions"));
        places.contains(&format!("{kind} on {count} functions")) && returns_too
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let running = loop {
        let programs = latency_programs();
        if attached_everywhere(&programs) || std::time::Instant::now() > deadline {
            break programs;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    // Killed before any assertion, so that a failure leaves no probes to
    // the checks after it.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        attached_everywhere(&running),
        "netprof bpf shows where latency's programs are attached: {running:?}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !latency_programs().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        latency_programs(),
        Vec::<serde_json::Value>::new(),
        "left after kill -9"
    );
    let listed = std::fs::read_to_string("/sys/kernel/debug/kprobes/list").unwrap_or_default();
    assert!(!listed.contains("netprof_test"), "{listed}");
}

fn diff_names_the_delayed_function(work: &Path) {
    // The example users copy (examples/diff_module_delay.sh): the test
    // module's delay goes from 200 us to 400 us between the two sides.
    let out_dir = work.join("diff");
    let out = Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/diff_module_delay.sh"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NETPROF", env!("CARGO_BIN_EXE_netprof"))
        .env("OUT", &out_dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", stderr(&out));
    eprintln!(
        "guest: {}",
        text.lines()
            .filter(|l| l.contains("netprof_test_delay"))
            .collect::<Vec<_>>()
            .join("\nguest: ")
    );
    let json =
        |args: &[&str]| -> serde_json::Value { serde_json::from_str(&netprof_ok(args)).unwrap() };
    let file = |name: &str| out_dir.join(name).to_str().unwrap().to_string();
    // The delay's own time is spent busy reading the kernel's clock, its leaf:
    // that leaf's self share grows most, and the delay's total share grows.
    // `one_pair`: one recording a side. Over three a side, each function's
    // shares are three numbers a side: Welch's test may then have two
    // degrees of freedom, and Benjamini-Hochberg over every function can
    // leave even a 14-point growth short of significance (as on 6.1): there
    // the change must still exceed its 95% interval.
    let delay_first = |d: &serde_json::Value, one_pair: bool| {
        let rows = d["functions"].as_array().unwrap();
        let delay = rows
            .iter()
            .find(|f| f["function"] == "netprof_test_delay")
            .unwrap_or_else(|| panic!("{d}"));
        let total = &delay["total"];
        let delta = total["delta"].as_f64().unwrap();
        assert!(delta > 0.05, "{delay}");
        if one_pair {
            assert_eq!(total["significant"], true, "{delay}");
        } else {
            assert!(delta > total["ci95"].as_f64().unwrap(), "{delay}");
        }
        // Of the module's functions, only its caller (the proc write
        // handler, which holds it) can have grown as much.
        let grew_most = rows
            .iter()
            .filter(|f| f["module"] == "netprof_test" && f["function"] != "netprof_test_write")
            .max_by(|a, b| {
                let delta = |f: &serde_json::Value| f["total"]["delta"].as_f64().unwrap();
                delta(a).total_cmp(&delta(b))
            })
            .unwrap();
        assert_eq!(grew_most["function"], "netprof_test_delay", "{d}");
        // The largest self growth is the busy loop's: the delay itself, or
        // the clocksource it reads (read_hpet on 6.1 under emulation), by
        // more than 5 points; beyond noise where one pair is compared (over
        // three runs a side, the loop's time split between the two can
        // leave each short of significance, as on 6.1).
        let first = rows
            .iter()
            .filter(|f| !one_pair || f["self"]["significant"] == true)
            .max_by(|a, b| {
                let delta = |f: &serde_json::Value| f["self"]["delta"].as_f64().unwrap();
                delta(a).total_cmp(&delta(b))
            })
            .unwrap_or_else(|| panic!("no self change beyond noise: {d}"));
        assert!(first["self"]["delta"].as_f64().unwrap() > 0.05, "{first}");
        let name = first["function"].as_str().unwrap();
        assert!(
            name == "netprof_test_delay" || name.starts_with("read_"),
            "{first}"
        );
        eprintln!(
            "guest: largest self growth: {name} ({:+.1} points)",
            100.0 * first["self"]["delta"].as_f64().unwrap()
        );
    };
    delay_first(
        &json(&[
            "diff",
            &file("before-1.data"),
            &file("after-1.data"),
            "--json",
        ]),
        true,
    );
    let (b, a) = (
        (1..=3).map(|i| file(&format!("before-{i}.data"))),
        (1..=3).map(|i| file(&format!("after-{i}.data"))),
    );
    let mut args = vec!["diff".to_string(), "--json".into(), "-b".into()];
    args.extend(b);
    args.push("-a".into());
    args.extend(a);
    delay_first(
        &json(&args.iter().map(String::as_str).collect::<Vec<_>>()),
        false,
    );
    let d = json(&[
        "diff",
        &file("before-latency.json"),
        &file("after-latency.json"),
        "--json",
    ]);
    let f = &d["functions"][0];
    assert_eq!(f["function"], "netprof_test_delay", "{d}");
    let change = f["median_change"].as_f64().unwrap();
    assert!((0.8..1.2).contains(&change), "200 -> 400 us is +100%: {d}");
    assert_eq!(f["significant"], true, "{d}");
    let svg = std::fs::read_to_string(out_dir.join("diff.svg")).unwrap();
    assert!(svg.contains("netprof_test_delay"));
}

/// An HSR ring made of two nodes in their own namespaces (hsra at
/// 192.0.2.1, hsrb at 192.0.2.2, addresses from the documentation range),
/// joined by two veth pairs, a1-b1 and a2-b2: the ring's two directions.
/// With `extra_nodes`, hsra learns that many other nodes before it hears
/// of hsrb, so that its lookups of hsrb walk past all of them.
fn hsr_ring_up(extra_nodes: u16) {
    sh("modprobe hsr");
    sh("ip netns add hsra && ip netns add hsrb \
        && ip link add a1 netns hsra type veth peer name b1 netns hsrb \
        && ip link add a2 netns hsra type veth peer name b2 netns hsrb \
        && for ns in hsra hsrb; do ip -n $ns link set lo up; done \
        && ip -n hsra link set a1 up && ip -n hsra link set a2 up \
        && ip -n hsrb link set b1 up && ip -n hsrb link set b2 up \
        && ip -n hsra link add hsr0 type hsr slave1 a1 slave2 a2 \
        && ip -n hsrb link add hsr0 type hsr slave1 b1 slave2 b2 \
        && ip -n hsra addr add 192.0.2.1/24 dev hsr0 && ip -n hsra link set hsr0 up \
        && ip -n hsrb addr add 192.0.2.2/24 dev hsr0");
    if extra_nodes > 0 {
        inject_hsr_nodes("hsrb", "b1", extra_nodes);
    }
    sh("ip -n hsrb link set hsr0 up");
}

fn hsr_ring_down() {
    sh("ip netns del hsra; ip netns del hsrb");
}

/// Runs `f` with an HSR ring up (`extra_nodes` learned ahead of the peer)
/// and takes the ring down after it, whatever happens.
fn with_hsr_ring<T>(extra_nodes: u16, f: impl FnOnce() -> T) -> T {
    hsr_ring_up(extra_nodes);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    hsr_ring_down();
    result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Records `event` system-wide, with stacks, while namespace `netns` sends
/// 5 pings to `address`.
fn record_pings(event: &str, data: &Path, netns: &str, address: &str) -> std::process::Output {
    netprof(&[
        "record",
        "-e",
        event,
        "-a",
        "-g",
        "-o",
        data.to_str().unwrap(),
        "--",
        "ip",
        "netns",
        "exec",
        netns,
        "ping",
        "-c",
        "5",
        "-i",
        "0.2",
        "-W",
        "2",
        address,
    ])
}

/// Records `event` system-wide while 5 pings cross the HSR ring.
fn record_ping_across_hsr(event: &str, data: &Path) -> std::process::Output {
    with_hsr_ring(0, || record_pings(event, data, "hsra", "192.0.2.2"))
}

fn hsr_ring(work: &Path) {
    let data = work.join("hsr.data");
    let out = record_ping_across_hsr("kprobe:hsr_forward_skb", &data);
    assert!(out.status.success(), "{}", stderr(&out));
    let f = folded_of(&data, &[]);
    assert!(count(&f, "hsr_forward_skb [hsr]") >= 5, "{f}");
    let only_hsr = folded_of(&data, &["--module", "hsr"]);
    assert!(
        !only_hsr.is_empty() && only_hsr.lines().all(|l| l.contains("[hsr]")),
        "{only_hsr}"
    );
}

fn names_survive_rmmod(work: &Path) {
    let data = work.join("inner.data");
    record_writes("kprobe:netprof_test_inner", true, "100", &data);
    sh("rmmod netprof_test");
    assert!(!std::fs::read_to_string("/proc/kallsyms")
        .unwrap()
        .contains("[netprof_test]"));
    let f = folded_of(&data, &[]);
    assert_eq!(count(&f, &format!("{CHAIN} ")), 100, "{f}");
    load_test_module();
}

fn hsr_glob(_: &Path) {
    // Every probe-able function of the module: HSR has about 230 symbols,
    // half of them data or __pfx_ padding; ftrace can trace 73 in 6.12.
    let hsr_functions = netprof_ok(&["probe", "--list", "-m", "hsr", "*"])
        .lines()
        .count();
    assert!(
        hsr_functions > 60,
        "{hsr_functions} probe-able hsr functions"
    );
    let start = std::time::Instant::now();
    let out = netprof(&["probe", "-v", "-m", "hsr", "*"]);
    let added = start.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("added through kprobe_events"),
        "{}",
        stderr(&out)
    );
    let created = stdout(&out)
        .lines()
        .filter(|l| l.starts_with("added netprof:"))
        .count();
    // The kernel may refuse a few (inlined, notrace); nearly all must be there.
    assert!(
        created * 10 >= hsr_functions * 9,
        "{created} of {hsr_functions} probes added"
    );
    assert_eq!(
        kprobe_events()
            .lines()
            .filter(|l| l.contains(" hsr:"))
            .count(),
        created
    );
    let start = std::time::Instant::now();
    netprof_ok(&["probe", "--del", "--all"]);
    let removed = start.elapsed();
    assert!(!kprobe_events().contains("netprof/"), "{}", kprobe_events());
    eprintln!("guest: {created} hsr probes added in {added:?}, removed in {removed:?} (software-emulated CPU)");
}

fn check_sees_the_kernel(_: &Path) {
    let out = netprof_ok(&["check"]);
    for item in [
        "kprobes",
        "return probes",
        "persistent probes (kprobe_events)",
        "loadable modules",
        "BTF",
    ] {
        let line = out
            .lines()
            .find(|l| l[5..].starts_with(item))
            .unwrap_or_else(|| panic!("{item} missing:\n{out}"));
        assert!(line.starts_with("yes"), "{line}");
    }
    // What is missing comes with what netprof does instead.
    let missing = out.lines().filter(|l| l.starts_with("NO ")).count();
    assert_eq!(out.matches("without it: ").count(), missing, "{out}");
    if !has_fprobe() {
        assert!(
            out.contains("without it: one BPF link per function"),
            "{out}"
        );
    }
    // Session kprobes came with 6.10: 6.12 has them, 6.1 does not.
    let sessions = out
        .lines()
        .find(|l| l[5..].starts_with("kprobe sessions"))
        .unwrap_or_else(|| panic!("kprobe sessions missing:\n{out}"));
    assert_eq!(
        sessions.starts_with("yes"),
        kernel_series() == "6.12",
        "{sessions}"
    );
    // In the suite's log: what this kernel offers.
    for line in out.lines() {
        eprintln!("guest: {line}");
    }
    // For the README's table of what works on each kernel.
    let json: serde_json::Value = serde_json::from_str(&netprof_ok(&["check", "--json"])).unwrap();
    eprintln!("{CHECK_JSON}{json}");
}

/// Marks the line of check_sees_the_kernel's output holding `check --json`.
const CHECK_JSON: &str = "netprof-guest-check-json ";

/// Where the README's table of what works on each kernel begins and ends.
const TABLE_START: &str =
    "<!-- generated by the guest suite from `netprof check --json` on each kernel; \
NETPROF_UPDATE_README=1 cargo test --test guest_kernel support_table rewrites it -->";
const TABLE_END: &str = "<!-- end of the generated table -->";

/// The README's support table from each kernel's `netprof check --json`.
fn support_table(checks: &[(&str, serde_json::Value)]) -> String {
    let mut table = String::from("| capability |");
    for (kernel, _) in checks {
        table.push_str(&format!(" {kernel} |"));
    }
    table.push_str(" what it gives | where it is missing |\n|---|");
    table.push_str(&"---|".repeat(checks.len() + 2));
    table.push('\n');
    let capabilities = checks[0].1["capabilities"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for capability in capabilities {
        let name = capability["name"].as_str().unwrap_or_default();
        table.push_str(&format!("| {name} |"));
        for (_, check) in checks {
            let found = check["capabilities"]
                .as_array()
                .and_then(|all| all.iter().find(|c| c["name"] == name))
                .is_some_and(|c| c["available"] == true);
            table.push_str(if found { " yes |" } else { " no |" });
        }
        table.push_str(&format!(
            " {} | {} |\n",
            capability["why"].as_str().unwrap_or_default(),
            capability["without"].as_str().unwrap_or_default()
        ));
    }
    table
}

/// Compares (or, with NETPROF_UPDATE_README=1, rewrites) the README's table
/// with what each kernel's `netprof check` said in its boot.
fn support_table_result(outputs: &[(&'static str, String)]) -> Result<(), Failed> {
    let mut checks = Vec::new();
    for (kernel, output) in outputs {
        let json = output
            .lines()
            .find_map(|l| l.strip_prefix(CHECK_JSON))
            .ok_or_else(|| format!("no `netprof check --json` from the {kernel} guest"))?;
        checks.push((
            *kernel,
            serde_json::from_str(json).map_err(|e| e.to_string())?,
        ));
    }
    let table = support_table(&checks);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
    let (before, rest) = readme
        .split_once(TABLE_START)
        .ok_or("the README has no support table marker")?;
    let (current, after) = rest
        .split_once(TABLE_END)
        .ok_or("the README's support table has no end marker")?;
    if current.trim() == table.trim() {
        return Ok(());
    }
    if std::env::var_os("NETPROF_UPDATE_README").is_some() {
        let updated = format!("{before}{TABLE_START}\n{table}{TABLE_END}{after}");
        std::fs::write(&path, updated).map_err(|e| e.to_string())?;
        return Ok(());
    }
    Err(format!(
        "the README's support table is stale; NETPROF_UPDATE_README=1 cargo test --test guest_kernel \
         support_table rewrites it as:\n{table}"
    )
    .into())
}

fn probe_arguments(work: &Path) {
    // By position, typed: inner is called with 2i+1 for i = 0..5.
    netprof_ok(&["probe", "netprof_test_inner x=$arg1:s32"]);
    let data = work.join("args.data");
    record_writes("netprof:netprof_test_inner", true, "5", &data);
    let samples = netprof_ok(&["report", "-i", data.to_str().unwrap(), "--samples"]);
    let mut xs: Vec<i64> = samples
        .lines()
        .filter_map(|l| l.split(" x=").nth(1))
        .map(|v| v.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    xs.sort_unstable();
    assert_eq!(xs, vec![1, 3, 5, 7, 9], "{samples}");
    assert!(
        samples
            .contains("\tnetprof_test_inner [netprof_test]\n\tnetprof_test_middle [netprof_test]"),
        "{samples}"
    );

    // By BTF name, on a vmlinux function: dd reads 4096 bytes at a time.
    // Kernels before 6.6 take no names in kprobe_events: netprof resolves
    // them from BTF, and says so.
    let out = netprof(&["probe", "vfs_read", "count"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let resolved_here = stderr(&out).contains("netprof resolved them from BTF: count=$arg3:x64");
    assert_eq!(resolved_here, kernel_series() == "6.1", "{}", stderr(&out));
    // Fields behind pointers too: the file's mode (fmode_t, hex).
    let out = netprof(&["probe", "vfs_write", "mode=file->f_mode"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let data = work.join("btf.data");
    netprof_ok(&[
        "record",
        "-e",
        "netprof:vfs_read",
        "-g",
        "-o",
        data.to_str().unwrap(),
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=4096",
        "count=3",
        "status=none",
    ]);
    let samples = netprof_ok(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--samples",
        "--comm",
        "dd",
    ]);
    assert!(
        samples
            .lines()
            .filter(|l| l.contains("count=0x1000"))
            .count()
            >= 3,
        "{samples}"
    );
    netprof_ok(&["probe", "--del", "--all"]);

    assert_error(
        &netprof(&["probe", "netprof_test_inner", "x=$nosuch"]),
        BadArgument,
        "the kernel rejects the arguments",
    );
}

/// Whether the guest kernel has multi-kprobe links (6.12 does, 6.1 not).
fn has_fprobe() -> bool {
    netprof_ok(&["check"])
        .lines()
        .any(|l| l.starts_with("yes") && l.contains("multi-kprobe (fprobe)"))
}

fn record_kprobe_glob(work: &Path) {
    // System-wide: one BPF program on every function, through a multi-kprobe
    // link where the kernel has them, else through a link each; and through
    // a link each when asked. The same counts every way.
    let native = if has_fprobe() {
        "functions probed at once through a multi-kprobe BPF link"
    } else {
        "functions probed through one BPF link each"
    };
    for (options, says) in [
        (&[][..], native),
        (
            &["--no-multi-kprobe"][..],
            "functions probed through one BPF link each",
        ),
    ] {
        let data = work.join("glob.data");
        let mut all = vec!["-a"];
        all.extend_from_slice(options);
        let out = record_writes_with(&all, "kprobe:netprof_test:netprof_test_*", "10", &data);
        assert!(stderr(&out).contains(says), "{options:?}: {}", stderr(&out));
        let f = folded_of(&data, &[]);
        assert_eq!(module_leaf_counts(&f), (10, 10, 10, 1), "{options:?}: {f}");
        assert_eq!(
            count(&f, &format!("{CHAIN} ")),
            10,
            "{options:?}: hits keep their full call chain:\n{f}"
        );
    }

    // Following a command: one kprobe-PMU probe per function, reported as
    // the one event they make up, with the same counts as the link's.
    let data = work.join("glob-task.data");
    record_writes("kprobe:netprof_test:netprof_test_*", false, "10", &data);
    assert_eq!(module_leaf_counts(&folded_of(&data, &[])), (10, 10, 10, 1));
    let out = netprof_ok(&["report", "-i", data.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["event"], "kprobe:netprof_test:netprof_test_*", "{v}");

    // A whole network module at once, built on both kernels: the bridge,
    // with traffic through it.
    let data = work.join("bridge-all.data");
    let out = record_ping_across_bridge("kprobe:bridge:*", &data);
    assert!(out.status.success(), "{}", stderr(&out));
    eprintln!(
        "guest: {}",
        stderr(&out)
            .lines()
            .filter(|l| l.contains("functions probed") || l.contains("detached"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let f = folded_of(&data, &["--module", "bridge"]);
    assert!(count(&f, "br_handle_frame [bridge]") >= 3, "{f}");
}

/// Records `event` system-wide while 5 pings cross a bridge: namespaces
/// bra (192.0.2.11) and brb (192.0.2.12), each joined by a veth pair to
/// bridge br0 in namespace brx.
fn record_ping_across_bridge(event: &str, data: &Path) -> std::process::Output {
    sh("modprobe bridge");
    sh("ip netns add bra && ip netns add brb && ip netns add brx \
        && ip -n brx link add br0 type bridge && ip -n brx link set br0 up \
        && ip link add qa netns bra type veth peer name pa netns brx \
        && ip link add qb netns brb type veth peer name pb netns brx \
        && ip -n brx link set pa master br0 && ip -n brx link set pb master br0 \
        && ip -n brx link set pa up && ip -n brx link set pb up \
        && ip -n bra addr add 192.0.2.11/24 dev qa && ip -n bra link set qa up \
        && ip -n brb addr add 192.0.2.12/24 dev qb && ip -n brb link set qb up");
    let out = record_pings(event, data, "bra", "192.0.2.12");
    sh("ip netns del bra; ip netns del brb; ip netns del brx");
    out
}

/// A recording of `event` system-wide until interrupted, with `options`.
fn start_recording(event: &str, options: &[&str], data: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args([
            "record",
            "-q",
            "-a",
            "-g",
            "-e",
            event,
            "-o",
            data.to_str().unwrap(),
        ])
        .args(options)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn interrupt(child: std::process::Child) -> std::process::Output {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

fn counted_probe_hides_no_hit_from_others(work: &Path) {
    // A persistent probe is a tracefs event: its BPF programs run for every
    // perf event on it, and one that drops the hit would blind the others.
    netprof_ok(&["probe", "netprof_test_inner"]);
    let (counted, plain) = (work.join("counted.data"), work.join("plain.data"));
    let recorders = [
        start_recording("netprof:netprof_test_inner", &["--bpf"], &counted),
        start_recording("netprof:netprof_test_inner", &[], &plain),
    ];
    // Emulated, a recorder takes a few seconds to start.
    std::thread::sleep(Duration::from_secs(6));
    sh("echo 50 > /proc/netprof_test");
    std::thread::sleep(Duration::from_secs(1));
    for child in recorders {
        interrupt(child);
    }
    netprof_ok(&["probe", "--del", "--all"]);
    for data in [&counted, &plain] {
        let f = folded_of(data, &[]);
        assert_eq!(count(&f, &format!("{CHAIN} ")), 50, "{data:?}: {f}");
    }
}

fn cpu_hotplug_is_followed(work: &Path) {
    let online = Path::new("/sys/devices/system/cpu/cpu1/online");
    assert!(
        online.exists(),
        "the guest needs a second CPU that can go offline"
    );
    let data = work.join("hotplug.data");
    let child = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args([
            "record",
            "-a",
            "-g",
            "--duration",
            "12",
            "-o",
            data.to_str().unwrap(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(5));
    std::fs::write(online, "0").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    std::fs::write(online, "1").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    // Work pinned to the CPU that came back: sampled only if its events
    // were opened again.
    sh("timeout 2 taskset -c 1 sh -c 'while :; do :; done' || true");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("CPU 1 went offline") && err.contains("CPU 1 came back online"),
        "{err}"
    );
    let json = netprof_ok(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--json",
        "--cpu",
        "1",
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let busy: u64 = v["stacks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["comm"] == "sh")
        .map(|s| s["count"].as_u64().unwrap())
        .sum();
    eprintln!("guest: {busy} samples of the pinned loop on CPU 1 after it came back");
    assert!(busy > 50, "{busy} samples of the pinned loop on CPU 1: {v}");
}

fn latency_follows_a_command(_: &Path) {
    // The command's calls, and its children's, from the moment it starts
    // (no --duration: the result comes when it exits), while another shell
    // calls the same function three times.
    let mut other = Command::new("sh")
        .args(["-c", "sleep 1; echo d3 > /proc/netprof_test"])
        .spawn()
        .unwrap();
    let out = netprof(&[
        "latency",
        "netprof_test_delay",
        "--json",
        "--",
        "sh",
        "-c",
        "sleep 2; echo d4 > /proc/netprof_test; sh -c 'echo d3 > /proc/netprof_test'",
    ]);
    assert!(other.wait().unwrap().success());
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["functions"][0]["count"], 7, "{v}");

    // The table lists what was called, and counts the rest in one line.
    let out = netprof(&[
        "latency",
        "-m",
        "netprof_test",
        "netprof_test_*",
        "--",
        "sh",
        "-c",
        "echo 4 > /proc/netprof_test",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // Of the module's functions, the write path ran; the delay (and the
    // read side, by nobody) did not.
    let not_called = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("# ")?
                .strip_suffix(" matched functions were not called")
        })
        .unwrap_or_else(|| panic!("{text}"));
    assert!(not_called.parse::<u32>().unwrap() >= 1, "{text}");
    assert!(
        !text.contains("netprof_test_delay") && text.contains("netprof_test_inner"),
        "{text}"
    );
    assert!(!text.contains("no calls"), "{text}");
}

/// Sends `count` HSR-tagged frames, each from a source MAC address of its
/// own, out of `dev` in network namespace `netns`: the HSR node at the
/// other end learns one node per address, which lengthens the list that
/// hsr_get_node walks for the nodes learned after them.
fn inject_hsr_nodes(netns: &str, dev: &str, count: u16) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // setns applies to this thread only; the socket stays in
                // the namespace it was made in.
                let ns = std::fs::File::open(format!("/var/run/netns/{netns}")).unwrap();
                // SAFETY: plain system calls on descriptors this thread owns.
                unsafe {
                    assert_eq!(libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET), 0);
                    let protocol = (libc::ETH_P_ALL as u16).to_be() as i32;
                    let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, protocol);
                    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
                    let socket = OwnedFd::from_raw_fd(fd);
                    let name = std::ffi::CString::new(dev).unwrap();
                    let mut to: libc::sockaddr_ll = std::mem::zeroed();
                    to.sll_family = libc::AF_PACKET as u16;
                    to.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
                    to.sll_halen = 6;
                    for i in 0..count {
                        let [hi, lo] = i.to_be_bytes();
                        let mut frame = vec![0x02, 0, 0, 0, 0x99, 0x99]; // to no one
                        frame.extend([0x02, 0x4e, 0x50, 0x00, hi, lo]); // from node i
                        frame.extend([0x89, 0x2f]); // HSR tag
                        frame.extend([0x00, 0x2e, hi, lo]); // path, size, sequence
                        frame.extend([0x88, 0xb5]); // local experimental payload
                        frame.resize(60, 0);
                        let sent = libc::sendto(
                            socket.as_raw_fd(),
                            frame.as_ptr().cast(),
                            frame.len(),
                            0,
                            (&to as *const libc::sockaddr_ll).cast(),
                            std::mem::size_of::<libc::sockaddr_ll>() as u32,
                        );
                        assert_eq!(sent, 60, "{}", std::io::Error::last_os_error());
                    }
                }
            })
            .join()
            .unwrap()
    });
}

/// The command that has hsra flood hsrb with `count` pings.
fn hsr_flood(count: &str) -> [&str; 10] {
    [
        "ip",
        "netns",
        "exec",
        "hsra",
        "ping",
        "-q",
        "-f",
        "-c",
        count,
        "192.0.2.2",
    ]
}

/// Records the whole machine while hsra floods hsrb with pings.
fn record_hsr_flood(data: &Path) {
    let mut args = vec!["record", "-a", "-g", "-o", data.to_str().unwrap(), "--"];
    args.extend_from_slice(&hsr_flood("1500"));
    netprof_ok(&args);
}

fn hsr_slow_node_table_diff(work: &Path) {
    // net-perf's workflow: the same traffic over a ring whose node table
    // was made slow (a thousand nodes ahead of the peer) and over a normal
    // one. (Nodes are forgotten after a minute without frames: the
    // recording starts at once.)
    let normal = work.join("normal.data");
    let slow = work.join("slow.data");
    for (data, extra_nodes) in [(&normal, 0), (&slow, 1000)] {
        with_hsr_ring(extra_nodes, || record_hsr_flood(data));
    }
    let (before, after) = (slow.to_str().unwrap(), normal.to_str().unwrap());
    // The fix, as a user would compare it: slow before, normal after. The
    // node lookup's share is what shrinks most, beyond noise. (Not
    // necessarily the table's first row: shares add up to 100%, and what
    // fills the time the lookup gave back can grow by more than it shrank,
    // as a clock read on an emulated HPET did on one CI machine.)
    for filter in [&["--module", "hsr"][..], &["--no-idle"]] {
        let mut args = vec!["diff", before, after];
        args.extend_from_slice(filter);
        let table = netprof_ok(&args);
        let lookup = table
            .lines()
            .find(|l| !l.starts_with('#') && l.ends_with("  hsr_get_node [hsr]"))
            .unwrap_or_else(|| panic!("{filter:?}: no hsr_get_node row:\n{table}"));
        args.push("--json");
        let d: serde_json::Value = serde_json::from_str(&netprof_ok(&args)).unwrap();
        let self_delta = |f: &serde_json::Value| f["self"]["delta"].as_f64().unwrap();
        let shrank_most = d["functions"]
            .as_array()
            .unwrap()
            .iter()
            .min_by(|a, b| self_delta(a).total_cmp(&self_delta(b)))
            .unwrap();
        assert!(
            shrank_most["function"] == "hsr_get_node"
                && shrank_most["module"] == "hsr"
                && shrank_most["self"]["significant"] == true
                && lookup.contains('*'),
            "{filter:?}:\n{table}"
        );
        eprintln!("guest: diff {}: {lookup}", filter.join(" "));
    }
    // In BEFORE's widths hsr_get_node is wide; in AFTER's a sliver.
    let svg = work.join("diff.svg");
    netprof_ok(&[
        "diff",
        before,
        after,
        "--no-idle",
        "--flame",
        svg.to_str().unwrap(),
    ]);
    let width = |file: &Path| -> f64 {
        let text = std::fs::read_to_string(file).unwrap();
        text.split("<g>")
            .filter(|g| g.contains("<title>hsr_get_node [hsr]"))
            .filter_map(|g| g.split("width=\"").nth(1)?.split('%').next()?.parse().ok())
            .fold(0.0, f64::max)
    };
    let (wide, thin) = (width(&work.join("diff.before.svg")), width(&svg));
    eprintln!("guest: hsr_get_node is {wide:.1}% wide in BEFORE's widths, {thin:.1}% in AFTER's");
    assert!(wide > 5.0 && wide > 3.0 * thin, "{wide} vs {thin}");
}

/// The number before `needle` in `text`'s line that holds it.
fn number_before(text: &str, needle: &str) -> usize {
    text.lines()
        .find_map(|l| {
            let before = &l[..l.find(needle)?];
            before.split_whitespace().last()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no '{needle}' in: {text}"))
}

fn whole_module_glob(work: &Path) {
    // sctp: about 700 probe-able functions, built on both kernels. With
    // multi-kprobe links or without (6.1), a glob over the whole module
    // attaches, is recorded and timed, and leaves nothing behind.
    sh("modprobe sctp");
    let listed = netprof_ok(&["probe", "--list", "-m", "sctp", "*"])
        .lines()
        .count();
    assert!(listed > 500, "{listed} probe-able sctp functions");
    let data = work.join("sctp.data");
    let out = netprof(&[
        "record",
        "-e",
        "kprobe:sctp:*",
        "-a",
        "-g",
        "--duration",
        "1",
        "-o",
        data.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let probed = number_before(&stderr(&out), "functions probed");
    assert!(
        probed * 10 >= listed * 9,
        "{probed} of {listed} attached: {}",
        stderr(&out)
    );
    if !has_fprobe() {
        // One probe at a time: it says so while placing and removing them.
        let said = stderr(&out);
        assert!(said.contains("through one BPF link each"), "{said}");
        assert_eq!(
            number_before(&said, "probes (one at a time"),
            probed,
            "{said}"
        );
    }
    eprintln!(
        "guest: record: {}",
        stderr(&out)
            .lines()
            .filter(|l| l.contains("functions probed") || l.contains("detached"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    let start = Instant::now();
    let out = netprof(&["latency", "-m", "sctp", "*", "--duration", "1", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    if !has_fprobe() {
        let said = stderr(&out);
        assert!(said.contains("through a kprobe link pair each"), "{said}");
        assert!(said.contains("attaching probes one by one:"), "{said}");
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["functions"].as_array().unwrap().len() * 10 >= listed * 9,
        "{v}"
    );
    eprintln!(
        "guest: latency over {} sctp functions ({}): {:?} from start to result",
        v["functions"].as_array().unwrap().len(),
        v["probes"],
        start.elapsed()
    );
    let left = std::fs::read_to_string("/sys/kernel/debug/kprobes/list").unwrap_or_default();
    assert!(!left.contains("[sctp]"), "probes left: {left}");

    // Ctrl-C while probes are placed one by one: the rest are given up, the
    // recording ends with what was placed, and nothing is left behind.
    let interrupted = work.join("interrupted.data");
    let (status, said) = interrupt_while_attaching(&[
        "record",
        "-e",
        "kprobe:sctp:*",
        "-a",
        "--no-multi-kprobe",
        "-o",
        interrupted.to_str().unwrap(),
    ]);
    assert!(status.success(), "{said}");
    let placed = number_before(&said, "functions probed");
    assert!(
        placed < listed,
        "{placed} of {listed} placed after Ctrl-C: {said}"
    );
    assert!(said.contains("interrupted while attaching"), "{said}");
    let left = std::fs::read_to_string("/sys/kernel/debug/kprobes/list").unwrap_or_default();
    assert!(!left.contains("[sctp]"), "probes left after Ctrl-C: {left}");
    eprintln!(
        "guest: Ctrl-C while attaching one by one: {placed} of {listed} placed, then removed"
    );

    // The same for latency: nothing timed is said so, not shown as a table
    // of functions never called.
    let (status, said) =
        interrupt_while_attaching(&["latency", "-m", "sctp", "*", "--no-multi-kprobe", "--json"]);
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(
        said.contains("interrupted while attaching probes: nothing was timed"),
        "{said}"
    );
    let left = std::fs::read_to_string("/sys/kernel/debug/kprobes/list").unwrap_or_default();
    assert!(
        !left.contains("[sctp]"),
        "probes left after latency's Ctrl-C: {left}"
    );
}

/// Runs netprof with `args`, sends it SIGINT once it says it is attaching
/// probes one by one, and returns how it ended and all it said.
fn interrupt_while_attaching(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains("attaching probes one by one") {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            break;
        }
    }
    for line in lines {
        said.push_str(&line.unwrap());
        said.push('\n');
    }
    (child.wait().unwrap(), said)
}

/// One line on stderr in one write, so that it does not get mixed into the
/// test harness's lines printed from other threads.
fn say(line: &str) {
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// Where the guests write what the host compares across kernels (the
/// guests write through NETPROF_GUEST_RWDIR, one directory per kernel).
fn cross_kernel_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/cross-kernel")
}

fn cross_kernel_workload(_: &Path) {
    // The worked example's guest half: the same workload on each kernel.
    let out =
        std::env::var("NETPROF_GUEST_RWDIR").expect("tests/guest/run passes NETPROF_GUEST_RWDIR");
    let run = Command::new("sh")
        .args(["examples/cross_kernel.sh", "record"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NETPROF", env!("CARGO_BIN_EXE_netprof"))
        .env("OUT", &out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}{}", stdout(&run), stderr(&run));
    let series = kernel_series();
    for file in ["workload.data", "latency.json"] {
        assert!(
            Path::new(&out).join(&series).join(file).is_file(),
            "{file} missing"
        );
    }
}

/// The worked example's host half: one kernel's recording against the
/// other's, by name although every address differs.
fn cross_kernel_diff(_: &[(&'static str, String)]) -> Result<(), Failed> {
    let dir = cross_kernel_dir();
    let file = |kernel: &str, name: &str| dir.join(kernel).join(name).to_str().unwrap().to_string();
    let diff = |args: &[&str]| -> Result<serde_json::Value, Failed> {
        let out = netprof(args);
        if !out.status.success() {
            return Err(format!("netprof {args:?}: {}", stderr(&out)).into());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string().into())
    };
    let (old, new) = (file("6.1", "workload.data"), file("6.12", "workload.data"));
    // The module's own functions did the same work on both kernels (a
    // fixed computation, half in each of two functions): no share moved
    // beyond noise, and both kernels have them all.
    let module = diff(&["diff", &old, &new, "--module", "netprof_test", "--json"])?;
    let functions = module["functions"].as_array().cloned().unwrap_or_default();
    for name in [
        "netprof_test_write",
        "netprof_test_work",
        "netprof_test_spin",
    ] {
        let f = functions
            .iter()
            .find(|f| f["function"] == name && f["module"] == "netprof_test")
            .ok_or_else(|| format!("{name} is missing: {module}"))?;
        if f["total"]["significant"] == true
            || f["self"]["significant"] == true
            || !f["only_in"].is_null()
        {
            return Err(format!("{f} changed between kernels running the same work").into());
        }
    }
    let samples = module["before_samples"].as_u64().unwrap_or(0);
    if samples < 300 {
        return Err(format!("too few of the module's samples to compare: {module}").into());
    }
    say(&format!(
        "[{BOTH}] cross_kernel_diff: the module's functions unchanged over {samples} and {} samples",
        module["after_samples"]
    ));
    // The kernels themselves differ: some functions exist in one only.
    let all = diff(&["diff", &old, &new, "--no-idle", "--json"])?;
    let only: Vec<String> = all["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| !f["only_in"].is_null())
        .map(|f| format!("{} ({})", f["function"], f["only_in"]))
        .collect();
    if only.is_empty() {
        return Err(format!("no function is marked as one kernel's only: {all}").into());
    }
    say(&format!(
        "[{BOTH}] cross_kernel_diff: {} of {} functions exist in one kernel only, e.g. {}",
        only.len(),
        all["functions"].as_array().map_or(0, Vec::len),
        only.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
    ));
    // The busy delay takes its 200 us on both.
    let latency = diff(&[
        "diff",
        &file("6.1", "latency.json"),
        &file("6.12", "latency.json"),
        "--json",
    ])?;
    let delay = latency["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["function"] == "netprof_test_delay")
        .ok_or_else(|| format!("no netprof_test_delay in {latency}"))?;
    let change = delay["median_change"].as_f64().unwrap_or(f64::NAN);
    if !(-0.1..=0.1).contains(&change) {
        return Err(
            format!("the delay's median moved {change:+.3} between kernels: {delay}").into(),
        );
    }
    Ok(())
}
