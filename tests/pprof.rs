//! `report --pprof` read back by `go tool pprof` (Debian's golang-go): the
//! same top functions and shares as netprof's own report, module frames
//! with their module, off-CPU time in nanoseconds, and one-line errors for
//! recordings that cannot be read.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// `go tool pprof ARGS FILE`'s output (HOME set: pprof keeps state there).
fn go_pprof(args: &[&str], file: &Path) -> String {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("go")
        .args(["tool", "pprof"])
        .args(args)
        .arg(file)
        .env("HOME", home.path())
        .output()
        .expect("go (Debian's golang-go; tests/run-all installs it)");
    assert!(
        out.status.success(),
        "go tool pprof {args:?}: {}",
        stderr(&out)
    );
    stdout(&out)
}

/// `-top` rows: (function, flat share in percent), as pprof sorts them.
fn top(file: &Path, n: usize) -> Vec<(String, f64)> {
    let nodecount = format!("-nodecount={n}");
    go_pprof(&["-top", &nodecount], file)
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("flat"))
        .skip(1)
        .map(|l| {
            // flat flat% sum% cum cum% name (which may hold spaces)
            let fields: Vec<&str> = l.split_whitespace().collect();
            let share = fields[1].trim_end_matches('%').parse().unwrap();
            (fields[5..].join(" "), share)
        })
        .collect()
}

/// Self shares by function name, from netprof's JSON report.
fn self_shares(data: &Path, extra: &[&str]) -> HashMap<String, f64> {
    let mut args = vec!["report", "-i", data.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = netprof(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let frames = report["frames"].as_array().unwrap();
    let label = |f: &serde_json::Value| match (f["kind"].as_str(), f["module"].as_str()) {
        (Some("module" | "bpf"), Some(m)) => format!("{} [{m}]", f["name"].as_str().unwrap()),
        _ => f["name"].as_str().unwrap().to_string(),
    };
    let mut shares: HashMap<String, f64> = HashMap::new();
    let mut total = 0.0;
    for stack in report["stacks"].as_array().unwrap() {
        let count = stack["count"].as_f64().unwrap();
        total += count;
        if let Some(leaf) = stack["frames"].as_array().unwrap().last() {
            *shares
                .entry(label(&frames[leaf.as_u64().unwrap() as usize]))
                .or_default() += count;
        }
    }
    shares.values_mut().for_each(|s| *s *= 100.0 / total);
    shares
}

/// `netprof record -q ARGS -o DIR/NAME.data`; the recording's path.
fn record(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let data = dir.join(format!("{name}.data"));
    let mut all = vec!["record", "-q", "-o", data.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = netprof(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    data
}

/// `netprof report -i DATA EXTRA --pprof`, written beside the recording.
fn export(data: &Path, extra: &[&str]) -> PathBuf {
    let pprof = data.with_extension("pb.gz");
    let mut all = vec!["report", "-i", data.to_str().unwrap()];
    all.extend_from_slice(extra);
    all.extend(["--pprof", pprof.to_str().unwrap()]);
    let out = netprof(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    pprof
}

/// pprof's top five are netprof's top five, shares within 0.1 point.
fn assert_same_top_five(data: &Path, pprof: &Path, extra: &[&str]) {
    let theirs = top(pprof, 5);
    let ours = self_shares(data, extra);
    let mut ranked: Vec<(&String, &f64)> = ours.iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(a.1));
    assert_eq!(theirs.len(), 5, "{theirs:?}");
    assert_shares_match(&theirs, &ours);
    // Ties aside, the same five: each of ours is at least pprof's fifth.
    let fifth = theirs[4].1;
    for (name, share) in ranked.iter().take(5) {
        assert!(
            theirs.iter().any(|(n, _)| n == *name) || **share <= fifth + 0.1,
            "{name} ({share}%) missing from pprof's top five {theirs:?}"
        );
    }
}

#[test]
fn go_pprof_reads_the_same_top_functions_as_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = record(
        dir.path(),
        "dd",
        &[
            "-g",
            "--",
            "dd",
            "if=/dev/zero",
            "of=/dev/null",
            "bs=4k",
            "count=300000",
            "status=none",
        ],
    );
    let pprof = export(&data, &[]);
    assert_same_top_five(&data, &pprof, &[]);
    assert!(top(&pprof, 20).iter().any(|(n, _)| n == "read_zero"));
    // cpu-clock: samples and cpu nanoseconds, labelled by thread.
    let raw = go_pprof(&["-raw"], &pprof);
    assert!(
        raw.contains("samples/count cpu/nanoseconds"),
        "{}",
        &raw[..raw.len().min(600)]
    );
    let tags = go_pprof(&["-tags"], &pprof);
    assert!(tags.contains("comm: ") && tags.contains("dd"), "{tags}");
    assert!(tags.contains("tid: "), "{tags}");
}

#[test]
fn module_frames_keep_their_module_and_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Synth::new();
    s.comm(10, "ping")
        .samples(
            30,
            10,
            0,
            &[k("hsr_forward_skb"), k("__netif_receive_skb")],
            &[],
        )
        .samples(10, 10, 1, &[k("read_zero"), k("vfs_read")], &[]);
    let pprof = export(&s.write_in(dir.path(), "hsr.data"), &[]);
    let top = top(&pprof, 5);
    assert_eq!(top[0].0, "hsr_forward_skb [hsr]", "{top:?}");
    assert!((top[0].1 - 75.0).abs() < 0.01, "{top:?}");
    let raw = go_pprof(&["-raw"], &pprof);
    // Samples whose period says nothing of time are counted, not timed.
    assert!(raw.contains("samples/count"), "{raw}");
    assert!(!raw.contains("nanoseconds"), "{raw}");
    assert!(raw.contains("[hsr]"), "{raw}");
    assert!(raw.contains("[kernel.kallsyms]"), "{raw}");
}

#[test]
fn off_cpu_time_exports_as_nanoseconds() {
    let dir = tempfile::tempdir().unwrap();
    let data = record(
        dir.path(),
        "sleep",
        &["--off-cpu", "-g", "--", "sleep", "0.3"],
    );
    let pprof = export(&data, &["--event", "offcpu-time"]);
    let text = go_pprof(&["-top"], &pprof);
    assert!(text.contains("Type: off_cpu"), "{text}");
    // The nap is 300 ms of it, in do_nanosleep.
    let cum = go_pprof(&["-top", "-cum", "-unit=ms", "-focus=do_nanosleep"], &pprof);
    assert!(cum.contains("do_nanosleep"), "{cum}");
    assert_same_top_five_or_fewer(&data, &pprof);
}

/// Off-CPU stacks all end in __schedule: fewer than five leaves.
fn assert_same_top_five_or_fewer(data: &Path, pprof: &Path) {
    assert_shares_match(
        &top(pprof, 5),
        &self_shares(data, &["--event", "offcpu-time"]),
    );
}

/// Each of pprof's rows has netprof's share of the function, within 0.1 point.
fn assert_shares_match(theirs: &[(String, f64)], ours: &HashMap<String, f64>) {
    for (name, share) in theirs {
        let mine = ours.get(name).copied().unwrap_or(0.0);
        assert!(
            (mine - share).abs() <= 0.1,
            "{name}: pprof {share}%, netprof {mine}%"
        );
    }
}

#[test]
fn unreadable_recordings_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.data");
    std::fs::write(&empty, b"").unwrap();
    let out_path = dir.path().join("x.pb.gz");
    assert_error(
        &netprof(&[
            "report",
            "-i",
            empty.to_str().unwrap(),
            "--pprof",
            out_path.to_str().unwrap(),
        ]),
        CorruptInput,
        "is empty",
    );
    let garbage = dir.path().join("garbage.data");
    std::fs::write(&garbage, b"PERFILE2 this is not a recording").unwrap();
    let out = netprof(&[
        "report",
        "-i",
        garbage.to_str().unwrap(),
        "--pprof",
        out_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim_end().lines().count(),
        1,
        "{}",
        stderr(&out)
    );
    assert!(
        !out_path.exists(),
        "nothing written for an unreadable recording"
    );
}
