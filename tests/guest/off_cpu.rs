//! The guest's check of `record --off-cpu`: waits inside the test module
//! (msleep under netprof_test_nap, state D) with their module frames named,
//! who ended them, and a kprobe's hits on the same function in the same
//! file.

use std::path::Path;

use serde_json::Value;

use super::{folded_of, load_test_module, netprof_ok};

/// Folded lines of `args` that pass through the test module's nap.
fn through_nap(data: &Path, args: &[&str]) -> Vec<(String, u64)> {
    folded_of(data, args)
        .lines()
        .filter(|l| l.contains("netprof_test_nap [netprof_test]"))
        .map(|l| {
            let (stack, n) = l.rsplit_once(' ').unwrap();
            (stack.to_string(), n.parse().unwrap())
        })
        .collect()
}

pub fn off_cpu_in_module(work: &Path) {
    load_test_module();
    let data = work.join("offcpu.data");
    // 10 naps of 20 ms each, with a probe on the napping function.
    netprof_ok(&[
        "record",
        "--off-cpu",
        "--wakeups",
        "-g",
        "-e",
        "cpu-clock,kprobe:netprof_test:netprof_test_nap",
        "-o",
        data.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "echo m10 > /proc/netprof_test",
    ]);
    // Each nap is a D wait in msleep, under the module's frame.
    let naps = through_nap(&data, &["--state", "D"]);
    let asleep: u64 = naps.iter().map(|(_, n)| n).sum();
    assert!(
        (180e6..3e9).contains(&(asleep as f64)),
        "10 x 20 ms in msleep: {asleep} ns; {naps:?}"
    );
    assert!(
        naps.iter().all(|(s, _)| s
            .contains("netprof_test_write [netprof_test];netprof_test_nap [netprof_test];msleep")),
        "{naps:?}"
    );
    // Every nap's wait ended by a wake-up, the waker's stack above it.
    let woken = through_nap(&data, &["--wakeups"]);
    let woken_time: u64 = woken
        .iter()
        .filter(|(s, _)| s.contains(";--;try_to_wake_up"))
        .map(|(_, n)| n)
        .sum();
    assert!(
        woken_time as f64 >= 0.9 * asleep as f64,
        "woken {woken_time} of {asleep}: {woken:?}"
    );
    // The probe's ten hits are in the same file.
    let report: Value = serde_json::from_str(&netprof_ok(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    let probe = report["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .find(|e| e.contains("netprof_test_nap"))
        .unwrap_or_else(|| panic!("no probe event in {}", report["events"]))
        .to_string();
    let hits: u64 = folded_of(&data, &["--event", &probe])
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(hits, 10, "probe hits");
    // The thread's account: its D time is the naps.
    let threads: Value = serde_json::from_str(&netprof_ok(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--threads",
        "--json",
    ]))
    .unwrap();
    let napper = threads["threads"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|t| t["off_cpu_by_state"]["D"].as_u64().unwrap_or(0))
        .unwrap();
    assert!(
        napper["off_cpu_by_state"]["D"].as_u64().unwrap() >= asleep,
        "{napper}"
    );
    eprintln!(
        "guest: record --off-cpu over 10 module naps: {:.1} ms in D under netprof_test_nap, {:.1} ms of it with a waker, {hits} probe hits",
        asleep as f64 / 1e6,
        woken_time as f64 / 1e6
    );
}
