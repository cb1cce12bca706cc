//! Bad input: each case ends with one line naming the cause and a fix, a
//! non-zero exit, and no panic.

mod common;

use std::process::Command;

use common::*;

#[test]
fn missing_empty_truncated_and_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();

    assert_error(
        &netprof(&["report", "-i", &p("none.data")]),
        NotFound,
        "no such file; record one with `netprof record`",
    );

    std::fs::write(p("empty.data"), b"").unwrap();
    assert_error(
        &netprof(&["report", "-i", &p("empty.data")]),
        CorruptInput,
        "is empty",
    );

    let mut s = Synth::new();
    s.comm(1, "x").samples(50, 1, 0, &[k("read_zero")], &[]);
    let good = s.write_in(dir.path(), "good.data");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(p("trunc.data"), &bytes[..bytes.len() / 3]).unwrap();
    assert_error(
        &netprof(&["report", "-i", &p("trunc.data")]),
        CorruptInput,
        "is truncated",
    );

    let mut garbage = b"PERFILE2".to_vec();
    garbage.extend((0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    std::fs::write(p("corrupt.data"), &garbage).unwrap();
    assert_error(
        &netprof(&["report", "-i", &p("corrupt.data")]),
        CorruptInput,
        "corrupt.data",
    );

    std::fs::write(p("text.data"), b"this is not a recording\n").unwrap();
    assert_error(
        &netprof(&["report", "-i", &p("text.data")]),
        CorruptInput,
        "not a readable perf.data file",
    );

    // Header intact, a record's size field broken in the middle of the data.
    let mut broken = bytes.clone();
    let mid = 104 + 8 * 40;
    broken[mid..mid + 8].copy_from_slice(&[0xff; 8]);
    let out = netprof(&["report", "-i", &{
        let q = p("broken.data");
        std::fs::write(&q, &broken).unwrap();
        q
    }]);
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

#[test]
fn unknown_events_suggest_close_names() {
    assert_error(
        &netprof(&["record", "-e", "cpu-clok", "--duration", "0.1"]),
        BadArgument,
        "did you mean cpu-clock",
    );
    assert_error(
        &netprof(&["record", "-e", "sched:sched_swich", "--duration", "0.1"]),
        NotFound,
        "did you mean sched:sched_switch",
    );
    assert_error(
        &netprof(&["record", "-e", "nosuchsys:x", "--duration", "0.1"]),
        NotFound,
        "unknown tracepoint subsystem",
    );
}

#[test]
fn hardware_event_without_a_pmu_says_so() {
    assert!(
        !std::path::Path::new("/sys/bus/event_source/devices/cpu").exists(),
        "this test needs a machine without a hardware PMU (the build VM's)"
    );
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("hw.data");
    let out = netprof(&[
        "record",
        "-e",
        "cycles",
        "-a",
        "--duration",
        "0.2",
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert_error(
        &out,
        Unsupported,
        "needs a hardware PMU and this machine has none",
    );
    assert!(stderr(&out).contains("use -e cpu-clock"));
    assert!(!out_file.exists(), "no file may be left by a failed run");
}

#[test]
fn no_permission_names_the_sysctl() {
    let paranoid: i32 = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        paranoid >= 1,
        "test needs perf_event_paranoid >= 1 to deny unprivileged system-wide sampling"
    );
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_netprof"))
        .args(["record", "-a", "--duration", "0.2", "-o"])
        .arg(dir.path().join("x.data"))
        .output()
        .expect("setpriv (util-linux)");
    assert_error(
        &out,
        NoPermission,
        "no permission to open event 'cpu-clock' (kernel.perf_event_paranoid =",
    );
}

#[test]
fn bad_targets_and_commands() {
    assert_error(
        &netprof(&["record", "-C", "999", "--duration", "0.1"]),
        BadArgument,
        "CPU 999 is not a CPU of this machine",
    );
    assert_error(
        &netprof(&["record", "-C", "3-1"]),
        BadArgument,
        "bad CPU list",
    );
    assert_error(
        &netprof(&["record", "-p", "999999999"]),
        NotFound,
        "process 999999999 does not exist",
    );
    assert_error(
        &netprof(&["record", "--", "/nonexistent/prog"]),
        NotFound,
        "cannot run the command",
    );
    assert_error(
        &netprof(&["record", "-F", "0"]),
        BadArgument,
        "frequency must be at least 1 Hz",
    );
    let dir = tempfile::tempdir().unwrap();
    assert_error(
        &netprof(&[
            "record",
            "--duration",
            "0.1",
            "-o",
            dir.path().to_str().unwrap(),
        ]),
        BadArgument,
        "is a directory",
    );
}

#[test]
fn probes_on_a_kernel_without_kprobes_say_what_still_works() {
    assert!(
        !std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists(),
        "this test needs a kernel without kprobes (the build machine's); the guest suite covers kernels with them"
    );
    let check = stdout(&netprof(&["check"]));
    let kprobe_line = check
        .lines()
        .find(|l| l.contains(" kprobes "))
        .expect("kprobes line");
    assert!(kprobe_line.starts_with("NO"), "{check}");
    assert!(
        check.contains("without it: probe commands say so; sampling, tracepoints, uprobes"),
        "{check}"
    );
    for args in [
        vec!["probe", "tcp_sendmsg"],
        vec!["probe", "--list"],
        vec![
            "record",
            "-e",
            "kprobe:tcp_sendmsg",
            "-a",
            "--duration",
            "0.1",
        ],
        vec!["latency", "tcp_sendmsg", "--duration", "0.1"],
        vec!["funcgraph", "tcp_*", "--duration", "0.1"],
    ] {
        let out = netprof(&args);
        assert_error(
            &out,
            Unsupported,
            "this kernel has no kprobes (CONFIG_KPROBES is off",
        );
        assert!(stderr(&out).contains("tracepoints") && stderr(&out).contains("netprof check"));
    }
}
