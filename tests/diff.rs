//! `netprof diff` on inputs whose difference is known exactly: synthetic
//! recordings and latency results.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use netprof::model::funcgraph::{Frame, FuncGraphReport, PathCounts, PathTimes, Unpaired};
use netprof::model::latency::{Bucket, FunctionLatency, LatencyReport, BUCKETS};

/// `hsr` samples through HSR's receive path and `dd` samples reading
/// /dev/zero, in one recording.
fn recording(dir: &Path, name: &str, hsr: u32, dd: u32) -> PathBuf {
    let mut s = Synth::new();
    s.comm(100, "nc").comm(200, "dd");
    s.samples(
        hsr,
        100,
        0,
        &[
            k("hsr_forward_skb"),
            k("hsr_handle_frame"),
            k("net_rx_action"),
        ],
        &[],
    );
    s.samples(
        dd,
        200,
        1,
        &[k("read_zero"), k("vfs_read"), k("ksys_read")],
        &[],
    );
    s.write_in(dir, name)
}

/// An HSR node table made slow, as in the net-perf workflow: `slow` samples
/// in hsr_get_node under HSR's receive path, `fast` samples elsewhere in
/// HSR, and `idle` samples of a CPU halted in the idle loop.
fn hsr_recording(dir: &Path, name: &str, slow: u32, fast: u32, idle: u32) -> PathBuf {
    let mut s = Synth::new();
    s.comm(100, "iperf3").comm(0, "swapper/1");
    let receive = [
        k("hsr_handle_frame"),
        k("__netif_receive_skb"),
        k("net_rx_action"),
    ];
    let mut lookup = vec![k("hsr_get_node"), k("hsr_forward_skb")];
    lookup.extend_from_slice(&receive);
    s.samples(slow, 100, 0, &lookup, &[]);
    let mut forward = vec![k("hsr_forward_skb")];
    forward.extend_from_slice(&receive);
    s.samples(fast, 100, 0, &forward, &[]);
    s.samples(idle, 0, 1, &[k("pv_native_safe_halt"), k("do_idle")], &[]);
    s.write_in(dir, name)
}

/// The function of the first row of the diff table.
fn first_row(table: &str) -> &str {
    let row = table.lines().find(|l| !l.starts_with('#')).unwrap();
    row.split("  ").last().unwrap().trim()
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = netprof(args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn the_shifted_function_comes_first_with_its_sign_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let before = recording(dir.path(), "before.data", 1000, 1000);
    let after = recording(dir.path(), "after.data", 3000, 1000);
    let d = json(&["diff", p(&before), p(&after), "--json"]);
    assert_eq!(d["schema"], "netprof-diff/1");
    let first = &d["functions"][0];
    // HSR's leaf went from 50% to 75% of the samples.
    assert_eq!(first["function"], "hsr_forward_skb", "{d}");
    assert_eq!(first["module"], "hsr");
    let delta = first["self"]["delta"].as_f64().unwrap();
    assert!((delta - 0.25).abs() < 1e-9, "{delta}");
    assert_eq!(first["self"]["significant"], true);
    // read_zero lost the same share.
    let read_zero = d["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "read_zero")
        .unwrap();
    assert!((read_zero["self"]["delta"].as_f64().unwrap() + 0.25).abs() < 1e-9);

    // The table says the same, first line first.
    let out = netprof(&["diff", p(&before), p(&after)]);
    let table = stdout(&out);
    let first_row = table.lines().find(|l| !l.starts_with('#')).unwrap();
    assert!(
        first_row.contains("+25.00±")
            && first_row.contains("*")
            && first_row.ends_with("hsr_forward_skb [hsr]"),
        "{table}"
    );

    // The differential flamegraph and folded stacks carry both counts,
    // before scaled to after's total (4000).
    let svg = dir.path().join("diff.svg");
    let out = netprof(&[
        "diff",
        p(&before),
        p(&after),
        "--flame",
        p(&svg),
        "--folded",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let folded = stdout(&out);
    assert!(
        folded
            .lines()
            .any(|l| l.starts_with("nc;") && l.ends_with("hsr_forward_skb [hsr] 2000 3000")),
        "{folded}"
    );
    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.contains("hsr_forward_skb") && svg.contains("<svg"));
}

#[test]
fn filters_and_no_idle_put_the_real_change_first() {
    let dir = tempfile::tempdir().unwrap();
    // The machine idles far more once the lookup is fast.
    let before = hsr_recording(dir.path(), "before.data", 1100, 2000, 500);
    let after = hsr_recording(dir.path(), "after.data", 40, 2000, 3000);
    let (b, a) = (p(&before), p(&after));
    let table = |extra: &[&str]| {
        let mut args = vec!["diff", b, a];
        args.extend_from_slice(extra);
        let out = netprof(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    // Unfiltered, the idle loop's growth leads.
    assert_eq!(
        first_row(&table(&[])),
        "pv_native_safe_halt",
        "{}",
        table(&[])
    );
    for filter in [
        &["--no-idle"][..],
        &["--module", "hsr"],
        &["--comm", "iperf3"],
        &["--cpu", "0"],
    ] {
        let t = table(filter);
        assert_eq!(first_row(&t), "hsr_get_node [hsr]", "{filter:?}: {t}");
        let first = t.lines().find(|l| !l.starts_with('#')).unwrap();
        assert!(first.contains('*') && first.contains('-'), "{first}");
        assert!(!t.contains("pv_native_safe_halt"), "{filter:?}: {t}");
    }
    // report --no-idle keeps every other sample.
    let out = netprof(&["report", "-i", a, "--no-idle", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["total_samples"], 2040, "{}", stderr(&out));
}

/// The width, in percent of the whole graph, of the widest frame named
/// `name` in a flamegraph (inferno writes each frame's width in percent).
fn widest(svg: &str, name: &str) -> f64 {
    svg.split("<g>")
        .filter(|g| g.contains(&format!("<title>{name}")))
        .filter_map(|g| {
            let width = g.split("width=\"").nth(1)?;
            width.split('%').next()?.parse::<f64>().ok()
        })
        .fold(0.0, f64::max)
}

#[test]
fn diff_flame_draws_after_and_before_widths() {
    let dir = tempfile::tempdir().unwrap();
    let before = hsr_recording(dir.path(), "before.data", 1100, 2000, 0);
    let after = hsr_recording(dir.path(), "after.data", 40, 2000, 0);
    let svg = dir.path().join("diff.svg");
    let out = netprof(&["diff", p(&before), p(&after), "--flame", p(&svg)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after_view = std::fs::read_to_string(&svg).unwrap();
    let before_view = std::fs::read_to_string(dir.path().join("diff.before.svg")).unwrap();
    assert!(after_view.contains("widths from AFTER"), "title");
    assert!(before_view.contains("widths from BEFORE"), "title");
    // hsr_get_node went from 1100 of 3100 samples (35%) to 40 of 2040 (2%):
    // a sliver in AFTER's widths, wide in BEFORE's.
    let (thin, wide) = (
        widest(&after_view, "hsr_get_node"),
        widest(&before_view, "hsr_get_node"),
    );
    assert!((1.5..2.5).contains(&thin), "AFTER width {thin}");
    assert!((33.0..38.0).contains(&wide), "BEFORE width {wide}");
    // Its tooltip gives both sides and the change, in either view.
    let tooltip = "hsr_get_node [hsr]: before 1,100 samples (35.48%), after 40 samples (1.96%), change -33.52 points";
    for view in [&after_view, &before_view] {
        assert!(
            view.contains(tooltip),
            "{}",
            view.split("<title>hsr_get_node").nth(1).unwrap_or("")
        );
    }
}

#[test]
fn the_table_stops_at_a_screenful_unless_all_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    // Sixty functions of an application, each moving from one run to the
    // other (user frames with no symbols: one function per offset).
    let side = |name: &str, shift: u32| {
        let mut s = Synth::new();
        s.comm(300, "app")
            .mmap(300, 0x400000, 0x500000, "/nonexistent/app");
        for i in 0..60u32 {
            s.samples(
                10 + (i + shift) % 60 * 5,
                300,
                0,
                &[],
                &[0x401000 + u64::from(i) * 0x100],
            );
        }
        s.write_in(dir.path(), name)
    };
    let (before, after) = (side("before.data", 0), side("after.data", 30));
    let table = stdout(&netprof(&["diff", p(&before), p(&after)]));
    let rows: Vec<&str> = table.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rows.len(), 40, "{table}");
    let last = table.lines().last().unwrap();
    assert!(
        last.starts_with("# 20 more rows changed by 0.1 points or more,")
            && last.ends_with("--all shows every row"),
        "{table}"
    );
    // Significant rows come before the others.
    let marked: Vec<bool> = rows.iter().map(|r| r.contains('*')).collect();
    assert!(marked.windows(2).all(|w| w[0] >= w[1]), "{table}");
    let all = stdout(&netprof(&["diff", p(&before), p(&after), "--all"]));
    assert_eq!(
        all.lines().filter(|l| !l.starts_with('#')).count(),
        60,
        "{all}"
    );
}

#[test]
fn identical_inputs_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let a = recording(dir.path(), "a.data", 700, 300);
    let d = json(&["diff", p(&a), p(&a), "--json"]);
    for f in d["functions"].as_array().unwrap() {
        assert_eq!(f["self"]["delta"], 0.0, "{f}");
        assert_eq!(f["self"]["significant"], false, "{f}");
        assert_eq!(f["total"]["significant"], false, "{f}");
    }
    let table = stdout(&netprof(&["diff", p(&a), p(&a)]));
    assert!(table.contains("no function changed"), "{table}");
}

#[test]
fn repeated_runs_tell_a_change_from_run_to_run_noise() {
    let dir = tempfile::tempdir().unwrap();
    // Runs that wander by a few percent around 50% HSR...
    let before: Vec<PathBuf> = [(1000, 1000), (1100, 950), (950, 1050)]
        .iter()
        .enumerate()
        .map(|(i, &(h, d))| recording(dir.path(), &format!("b{i}.data"), h, d))
        .collect();
    // ...against runs that wander the same way around 50%: noise.
    let same: Vec<PathBuf> = [(1050, 1000), (980, 1020), (1000, 1010)]
        .iter()
        .enumerate()
        .map(|(i, &(h, d))| recording(dir.path(), &format!("s{i}.data"), h, d))
        .collect();
    // ...and against runs around 75%: a change.
    let after: Vec<PathBuf> = [(3000, 1000), (3100, 980), (2950, 1020)]
        .iter()
        .enumerate()
        .map(|(i, &(h, d))| recording(dir.path(), &format!("a{i}.data"), h, d))
        .collect();
    let args = |b: &[PathBuf], a: &[PathBuf]| {
        let mut v = vec!["diff".to_string(), "--json".into(), "-b".into()];
        v.extend(b.iter().map(|x| p(x).to_string()));
        v.push("-a".into());
        v.extend(a.iter().map(|x| p(x).to_string()));
        v
    };
    let run = |v: Vec<String>| json(&v.iter().map(String::as_str).collect::<Vec<_>>());
    let noise = run(args(&before, &same));
    assert!(
        noise["method"].as_str().unwrap().starts_with("Welch"),
        "{noise}"
    );
    for f in noise["functions"].as_array().unwrap() {
        assert_eq!(f["self"]["significant"], false, "{f}");
    }
    let change = run(args(&before, &after));
    let first = &change["functions"][0];
    assert_eq!(first["function"], "hsr_forward_skb", "{change}");
    assert_eq!(first["self"]["significant"], true, "{first}");
    let delta = first["self"]["delta"].as_f64().unwrap();
    assert!((0.2..0.3).contains(&delta), "{delta}");
    assert!(first["self"]["ci95"].as_f64().unwrap() < 0.1);

    // A directory stands for its files.
    let bdir = dir.path().join("before");
    let adir = dir.path().join("after");
    std::fs::create_dir(&bdir).unwrap();
    std::fs::create_dir(&adir).unwrap();
    for (i, f) in before.iter().enumerate() {
        std::fs::copy(f, bdir.join(format!("{i}.data"))).unwrap();
    }
    for (i, f) in after.iter().enumerate() {
        std::fs::copy(f, adir.join(format!("{i}.data"))).unwrap();
    }
    let by_dir = json(&["diff", p(&bdir), p(&adir), "--json"]);
    assert_eq!(by_dir["before_runs"], 3);
    assert_eq!(
        by_dir["functions"][0]["self"]["delta"],
        first["self"]["delta"]
    );
}

#[test]
fn recordings_of_two_kernel_builds_compare_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let a = recording(dir.path(), "a.data", 500, 500);
    // The same functions at other addresses: another build of the kernel
    // and of the module.
    let shift = 0x20_0000;
    let moved: String = KALLSYMS
        .lines()
        .map(|l| {
            let addr = u64::from_str_radix(&l[..16], 16).unwrap() + shift;
            format!("{addr:016x}{}\n", &l[16..])
        })
        .collect();
    let mut s = Synth::new();
    s.kallsyms = Some(moved);
    s.comm(100, "nc").comm(200, "dd");
    let at = |name: &str| k(name) + shift;
    s.samples(
        500,
        100,
        0,
        &[
            at("hsr_forward_skb"),
            at("hsr_handle_frame"),
            at("net_rx_action"),
        ],
        &[],
    );
    s.samples(
        500,
        200,
        1,
        &[at("read_zero"), at("vfs_read"), at("ksys_read")],
        &[],
    );
    let b = s.write_in(dir.path(), "b.data");
    let d = json(&["diff", p(&a), p(&b), "--json"]);
    let functions = d["functions"].as_array().unwrap();
    assert_eq!(functions.len(), 6, "{d}");
    for f in functions {
        assert_eq!(f["self"]["delta"], 0.0, "{f}");
        assert_eq!(f["total"]["delta"], 0.0, "{f}");
    }
}

#[test]
fn functions_of_one_kernel_only_are_marked() {
    let dir = tempfile::tempdir().unwrap();
    // BEFORE's kernel has read_zero; AFTER's renamed it read_iter_zero.
    let renamed = KALLSYMS.replace(" read_zero", " read_iter_zero");
    let side = |name: &str, kallsyms: &str, leaf: &str| {
        let mut s = Synth::new();
        s.kallsyms = Some(kallsyms.to_string());
        s.comm(200, "dd");
        let address = |f: &str| {
            let line = kallsyms
                .lines()
                .find(|l| l.ends_with(&format!(" {f}")))
                .unwrap();
            u64::from_str_radix(&line[..16], 16).unwrap() + 0x10
        };
        s.samples(500, 200, 0, &[address(leaf), address("vfs_read")], &[]);
        s.write_in(dir.path(), name)
    };
    let before = side("before.data", KALLSYMS, "read_zero");
    let after = side("after.data", &renamed, "read_iter_zero");
    let d = json(&["diff", p(&before), p(&after), "--json"]);
    let only = |name: &str| {
        d["functions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["function"] == name)
            .unwrap_or_else(|| panic!("{name} in {d}"))["only_in"]
            .clone()
    };
    assert_eq!(only("read_zero"), "before");
    assert_eq!(only("read_iter_zero"), "after");
    assert_eq!(only("vfs_read"), serde_json::Value::Null);
    let table = stdout(&netprof(&["diff", p(&before), p(&after)]));
    assert!(
        table.contains("read_zero  (only in BEFORE's kernel)"),
        "{table}"
    );
    assert!(
        table.contains("read_iter_zero  (only in AFTER's kernel)"),
        "{table}"
    );
}

/// `calls` calls of `function` spread over five 1/16-wide buckets around
/// `center_ns`.
fn latency_function(function: &str, center_ns: u64, calls: u64) -> FunctionLatency {
    let width = center_ns / 16;
    let per_bucket = calls.div_ceil(5);
    let histogram: Vec<Bucket> = (0..5)
        .map(|i| Bucket {
            low_ns: center_ns + (i as u64) * width - 2 * width,
            high_ns: center_ns + (i as u64 + 1) * width - 2 * width,
            count: per_bucket.min(calls - (per_bucket * i as u64).min(calls)),
        })
        .filter(|b| b.count > 0)
        .collect();
    FunctionLatency {
        function: function.into(),
        module: Some("netprof_test".into()),
        cpu: None,
        pid: None,
        count: calls,
        min_ns: histogram[0].low_ns,
        max_ns: histogram.last().unwrap().high_ns - 1,
        mean_ns: center_ns as f64,
        p25_ns: 0.0,
        median_ns: center_ns as f64,
        p75_ns: 0.0,
        iqr_ns: 0.0,
        p90_ns: 0.0,
        p99_ns: 0.0,
        histogram,
    }
}

fn latency_report(functions: Vec<FunctionLatency>) -> LatencyReport {
    LatencyReport {
        schema: netprof::model::latency::SCHEMA.into(),
        duration_s: 1.0,
        probes: "kprobe.multi".into(),
        dropped: 0,
        missed_returns: 0,
        not_probed: Vec::new(),
        functions,
    }
}

fn latency_file(dir: &Path, name: &str, center_ns: u64, calls: u64) -> PathBuf {
    let report = latency_report(vec![latency_function(
        "netprof_test_delay",
        center_ns,
        calls,
    )]);
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string(&report).unwrap()).unwrap();
    path
}

#[test]
fn latency_results_compare_medians_with_mann_whitney() {
    let dir = tempfile::tempdir().unwrap();
    let before = latency_file(dir.path(), "before.json", 200_000, 100);
    let after = latency_file(dir.path(), "after.json", 400_000, 100);
    let d = json(&["diff", p(&before), p(&after), "--json"]);
    assert_eq!(d["schema"], "netprof-latency-diff/1");
    let f = &d["functions"][0];
    assert_eq!(f["function"], "netprof_test_delay");
    let change = f["median_change"].as_f64().unwrap();
    assert!((0.95..1.05).contains(&change), "median doubled: {change}");
    assert_eq!(f["significant"], true);
    assert!(f["p_value"].as_f64().unwrap() < 1e-6);

    let same = json(&["diff", p(&before), p(&before), "--json"]);
    assert_eq!(same["functions"][0]["significant"], false);
    assert_eq!(same["functions"][0]["median_change"], 0.0);
    let table = stdout(&netprof(&["diff", p(&before), p(&after)]));
    assert!(
        table.contains("+100.0%*") && table.contains("netprof_test_delay [netprof_test]"),
        "{table}"
    );
}

#[test]
fn latency_diff_puts_significant_rows_first_and_says_p_plainly() {
    let dir = tempfile::tempdir().unwrap();
    // Two functions: one whose three calls tripled (no evidence), one whose
    // thousand calls took 20% longer (overwhelming evidence).
    let side = |name: &str, rare_ns: u64, busy_ns: u64| {
        let functions = [("rare_fn", rare_ns, 3), ("busy_fn", busy_ns, 1000)]
            .map(|(name, ns, calls)| latency_function(name, ns, calls));
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            serde_json::to_string(&latency_report(functions.to_vec())).unwrap(),
        )
        .unwrap();
        path
    };
    let before = side("before.json", 1000, 10_000);
    let after = side("after.json", 3000, 12_000);
    let table = stdout(&netprof(&["diff", p(&before), p(&after)]));
    let rows: Vec<&str> = table.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        rows[0].contains("busy_fn") && rows[0].contains("< 1e-6"),
        "{table}"
    );
    assert!(
        rows[1].contains("rare_fn") && !rows[1].contains('*'),
        "{table}"
    );
    assert!(!table.contains("e0"), "{table}");
}

#[test]
fn calls_the_kernel_did_not_time_are_said_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let mut report = latency_report(vec![latency_function("hsr_get_node", 7000, 500)]);
    report.dropped = 5227;
    let lossy = dir.path().join("lossy.json");
    std::fs::write(&lossy, serde_json::to_string(&report).unwrap()).unwrap();
    let clean = latency_file(dir.path(), "clean.json", 1200, 500);
    for args in [
        vec!["diff", p(&lossy), p(&clean)],
        vec!["diff", p(&lossy), p(&clean), "--json"],
    ] {
        let out = netprof(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("5227 calls not timed in") && err.contains("lossy.json"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("clean.json"), "{err}");
    }
}

#[test]
fn bad_inputs_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let rec = recording(dir.path(), "r.data", 10, 10);
    let lat = latency_file(dir.path(), "l.json", 1000, 10);
    assert_error(
        &netprof(&["diff", p(&rec), p(&lat)]),
        BadArgument,
        "the sides hold results of different kinds",
    );
    let empty = Synth::new().write_in(dir.path(), "empty.data");
    assert_error(
        &netprof(&["diff", p(&empty), p(&rec)]),
        CorruptInput,
        "holds no samples",
    );
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "hello").unwrap();
    assert_error(
        &netprof(&["diff", p(&junk), p(&rec)]),
        CorruptInput,
        "neither a recording",
    );
    assert_error(
        &netprof(&["diff", p(&rec)]),
        BadArgument,
        "give BEFORE AFTER",
    );
    assert_error(
        &netprof(&["diff", p(&lat), p(&lat), "--flame"]),
        BadArgument,
        "--flame and --folded need recordings",
    );
    let missing = dir.path().join("missing.data");
    assert_error(
        &netprof(&["diff", p(&missing), p(&rec)]),
        NotFound,
        "no such file",
    );
}

/// A funcgraph result: `slow` calling `delay` (whose calls take
/// `delay_ns`, spread over a few buckets) and `inner`, `calls` times.
fn funcgraph_file(dir: &Path, name: &str, delay_ns: u64, calls: u64) -> PathBuf {
    let frame = |name: &str| Frame {
        function: format!("netprof_test_{name}"),
        module: Some("netprof_test".into()),
    };
    // Calls spread over the bucket of `ns` and the next two.
    let counts = |ns: u64| -> Vec<u64> {
        let mut buckets = vec![0; BUCKETS];
        let first = (0..BUCKETS)
            .find(|&b| netprof::model::latency::bucket_bounds(b).1 > ns)
            .unwrap();
        for (i, share) in [(0, 2), (1, 2), (2, 1)] {
            buckets[first + i] = calls * share / 5;
        }
        buckets
    };
    let path = |names: &[&str], total: u64, own: u64| {
        PathTimes::new(
            names.iter().map(|n| frame(n)).collect(),
            &PathCounts {
                count: calls,
                errors: 0,
                total_ns: calls * total,
                self_ns: calls * own,
                min_ns: total,
                max_ns: total + total / 4,
                total_buckets: counts(total),
                self_buckets: counts(own),
            },
        )
    };
    let report = FuncGraphReport {
        schema: netprof::model::funcgraph::SCHEMA.into(),
        duration_s: 1.0,
        probes: "kprobe.multi".into(),
        functions: 3,
        under: Vec::new(),
        max_depth: 32,
        unpaired: Unpaired::default(),
        missed_returns: 0,
        not_probed: Vec::new(),
        paths: vec![
            path(&["slow"], delay_ns + 6000, 5000),
            path(&["slow", "delay"], delay_ns, delay_ns),
            path(&["slow", "inner"], 1000, 1000),
        ],
        kept_calls: Vec::new(),
    };
    let file = dir.join(name);
    std::fs::write(&file, serde_json::to_string(&report).unwrap()).unwrap();
    file
}

#[test]
fn funcgraph_results_compare_path_by_path() {
    let dir = tempfile::tempdir().unwrap();
    let before = funcgraph_file(dir.path(), "before.json", 200_000, 100);
    let after = funcgraph_file(dir.path(), "after.json", 400_000, 100);
    let d = json(&["diff", p(&before), p(&after), "--json"]);
    assert_eq!(d["schema"], "netprof-funcgraph-diff/1");
    let first = &d["paths"][0];
    assert_eq!(first["path"][1]["function"], "netprof_test_delay", "{d}");
    assert_eq!(first["self"]["significant"], true, "{d}");
    let relative = first["self"]["relative"].as_f64().unwrap();
    assert!((0.9..1.1).contains(&relative), "the delay doubled: {d}");
    // The unchanged child is not marked; its parent's total is.
    for p in d["paths"].as_array().unwrap() {
        let leaf = p["path"].as_array().unwrap().last().unwrap()["function"].clone();
        match leaf.as_str().unwrap() {
            "netprof_test_inner" => assert_eq!(p["total"]["significant"], false, "{p}"),
            "netprof_test_slow" => {
                assert_eq!(p["total"]["significant"], true, "{p}");
                assert_eq!(p["self"]["significant"], false, "{p}");
            }
            _ => {}
        }
    }
    let table = stdout(&netprof(&["diff", p(&before), p(&after)]));
    let row = table.lines().find(|l| !l.starts_with('#')).unwrap();
    assert!(
        row.ends_with("netprof_test_slow [netprof_test];netprof_test_delay [netprof_test]")
            && row.contains("us*"),
        "{table}"
    );
    let same = json(&["diff", p(&before), p(&before), "--json"]);
    assert!(same["paths"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["self"]["significant"] == false && p["total"]["significant"] == false));
    // Kinds do not mix; funcgraph results draw no differential flamegraph.
    let lat = latency_file(dir.path(), "l.json", 1000, 10);
    assert_error(
        &netprof(&["diff", p(&before), p(&lat)]),
        BadArgument,
        "different kinds",
    );
    for drawing in ["--flame", "--html"] {
        assert_error(
            &netprof(&["diff", p(&before), p(&after), drawing]),
            BadArgument,
            "--flame, --folded and --html need recordings",
        );
    }
    let wrong = dir.path().join("wrong.json");
    std::fs::write(&wrong, r#"{"schema": "netprof-funcgraph/9", "paths": []}"#).unwrap();
    assert_error(
        &netprof(&["diff", p(&wrong), p(&after)]),
        CorruptInput,
        "wrong.json is not a `netprof funcgraph --json` result",
    );
}
