//! The HTML pages (`report --html`, `diff --html`) in a real browser:
//! Debian's headless Chromium, driven over the DevTools protocol. Each test
//! records what it shows, opens the page, checks that nothing is fetched and
//! nothing fails, uses the page as a person would (search, click, pick) and
//! keeps a screenshot in target/tmp/screenshots/.
//!
//! The tests run one at a time: two browsers and two recordings at once
//! would share two CPUs.

#[path = "browser/cdp.rs"]
mod cdp;
mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cdp::Browser;
use common::*;
use serde_json::{json, Value};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn screenshot_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{name}.png"))
}

fn run_ok(args: &[&str]) -> String {
    let out = netprof(args);
    assert!(out.status.success(), "netprof {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// `netprof report -i DATA --html PAGE`.
fn report_html(data: &Path, page: &Path) {
    run_ok(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
    ]);
}

/// Opens `page`, checks that it fetched nothing and logged no error.
fn open_clean(browser: &mut Browser, page: &Path) {
    browser.open(page);
    let prefix = format!("file://{}", page.canonicalize().unwrap().display());
    assert_eq!(browser.outside_requests(&prefix), Vec::<String>::new());
    assert_eq!(browser.errors(), Vec::<String>::new());
}

/// The drawn flamegraph frames named `name`.
fn drawn(browser: &mut Browser, name: &str) -> Vec<Value> {
    browser.eval("document.getElementById('flame').scrollIntoView(); 0");
    let all = browser.eval("netprof.drawn()");
    all.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["name"] == name)
        .cloned()
        .collect()
}

#[test]
fn report_page_shows_dd_reading_zeros_and_its_threads() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dd.data");
    let page = dir.path().join("dd.html");
    let dd = "dd if=/dev/zero of=/dev/null bs=64k count=300000 status=none";
    // System-wide, so that sched_switch shows who runs on each CPU.
    let recorded = netprof(&[
        "record",
        "-a",
        "-g",
        "-F",
        "2000",
        "-e",
        "cpu-clock",
        "-e",
        "sched:sched_switch",
        "-o",
        data.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        &format!("{dd} & {dd} & wait"),
    ]);
    assert!(recorded.status.success(), "{}", stderr(&recorded));
    let recorded = stderr(&recorded);
    report_html(&data, &page);
    // What netprof's own report says: read_zero's share under dd, dd's threads.
    let report: Value = serde_json::from_str(&run_ok(&[
        "report",
        "-i",
        data.to_str().unwrap(),
        "--json",
        "--event",
        "cpu-clock",
    ]))
    .unwrap();
    let read_zero = report["frames"]
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f["name"] == "read_zero")
        .expect("read_zero in the recording");
    let stacks = report["stacks"].as_array().unwrap();
    let count = |s: &&Value| s["count"].as_u64().unwrap();
    let all: u64 = stacks.iter().map(|s| count(&s)).sum();
    let with_read_zero: u64 = stacks
        .iter()
        .filter(|s| s["frames"].as_array().unwrap().contains(&json!(read_zero)))
        .map(|s| count(&s))
        .sum();
    let expected_share = 100.0 * with_read_zero as f64 / all as f64;
    let dd_threads: BTreeSet<i64> = stacks
        .iter()
        .filter(|s| s["comm"] == "dd")
        .map(|s| s["tid"].as_i64().unwrap())
        .collect();
    assert_eq!(dd_threads.len(), 2, "two dd processes ran");

    let mut browser = Browser::launch();
    open_clean(&mut browser, &page);
    assert!(browser.eval("netprof.firstDrawMs").as_f64().is_some());

    // read_zero is drawn, under dd.
    let frames = drawn(&mut browser, "read_zero");
    assert!(!frames.is_empty(), "read_zero is not drawn");
    assert!(
        frames.iter().all(|f| f["path"][0] == "dd"),
        "read_zero outside dd: {frames:?}"
    );

    // A search highlights it and gives its share.
    browser.eval("document.getElementById('search').focus(); 0");
    browser.type_text("read_zero");
    let frames = drawn(&mut browser, "read_zero");
    assert!(
        frames.iter().all(|f| f["highlighted"] == true),
        "{frames:?}"
    );
    let matched = browser.eval("netprof.matchText()");
    let matched = matched.as_str().unwrap();
    let share: f64 = matched
        .split(": ")
        .nth(1)
        .and_then(|s| s.split('%').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no share in {matched:?}"));
    assert!(
        (share - expected_share).abs() < 0.05,
        "page says {share}%, report {expected_share:.2}%"
    );

    // A click on it zooms: it then spans the flamegraph's width.
    let widest = frames
        .iter()
        .max_by(|a, b| a["w"].as_f64().partial_cmp(&b["w"].as_f64()).unwrap())
        .unwrap()
        .clone();
    let center = |r: &Value, axis: &str, size: &str| {
        r[axis].as_f64().unwrap() + r[size].as_f64().unwrap() / 2.0
    };
    browser.click(center(&widest, "x", "w"), center(&widest, "y", "h"));
    assert_eq!(browser.eval("netprof.zoomed()"), "read_zero");
    let width = browser
        .eval("document.getElementById('flame').clientWidth")
        .as_f64()
        .unwrap();
    let zoomed = drawn(&mut browser, "read_zero");
    assert!(
        zoomed
            .iter()
            .any(|f| f["w"].as_f64().unwrap() > width - 2.0),
        "{zoomed:?} in {width} px"
    );

    // The timeline has one row per dd thread.
    let rows = browser.eval("netprof.timelineRows()");
    let dd_rows: BTreeSet<i64> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["comm"] == "dd")
        .map(|r| r["tid"].as_i64().unwrap())
        .collect();
    assert_eq!(dd_rows, dd_threads);
    // sched_switch says how long each ran, and cpu-clock sampled each at
    // 2000 Hz while it ran: the two agree, however fast the machine reads
    // its zeros.
    for row in rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["comm"] == "dd")
    {
        let running = row["running_ns"].as_f64().unwrap() / 1e9;
        let sampled = stacks
            .iter()
            .filter(|s| s["comm"] == "dd" && s["tid"] == row["tid"])
            .map(|s| count(&s))
            .sum::<u64>() as f64
            / 2000.0;
        assert!(sampled > 0.02, "{sampled} s sampled: {row}");
        assert!(
            (0.7..1.4).contains(&(running / sampled)),
            "{running} s running by sched_switch, {sampled} s by cpu-clock: {row}; {recorded}"
        );
    }

    // Picking read_zero in the function table shows its callers and callees.
    assert_eq!(browser.eval("netprof.pickFunction('read_zero')"), true);
    let sandwich = browser.eval("netprof.sandwich()");
    let callers: Vec<&str> = sandwich["callers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        callers.contains(&"vfs_read") && callers.contains(&"dd"),
        "{callers:?}"
    );
    browser.screenshot(&screenshot_path("report"));

    // The other event: the tracepoint's hits, with their own flamegraph.
    browser.eval("const e = document.getElementById('event'); e.value = 1; e.dispatchEvent(new Event('change')); 0");
    let summary = browser.eval("document.getElementById('summary').textContent");
    assert!(
        summary.as_str().unwrap().starts_with("sched:sched_switch"),
        "{summary}"
    );
    assert!(!drawn(&mut browser, "dd").is_empty());
    assert_eq!(browser.errors(), Vec::<String>::new());
    browser.screenshot(&screenshot_path("report-tracepoint"));
}

/// `netprof diff BEFORE AFTER --html` opened cleanly; the browser and the
/// change table's first row (its cells' text).
fn compare_in_browser(before: &Path, after: &Path, dir: &Path) -> (Browser, Value) {
    let page = dir.join("diff.html");
    run_ok(&[
        "diff",
        before.to_str().unwrap(),
        after.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
    ]);
    let mut browser = Browser::launch();
    open_clean(&mut browser, &page);
    let first_row = browser
        .eval("[...document.querySelector('#changes tbody tr').cells].map(c => c.textContent)");
    (browser, first_row)
}

#[test]
fn diff_page_puts_the_shifted_function_first_and_marks_it() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_c(dir.path(), "browser/spin");
    let record = |name: &str, shares: [&str; 3]| {
        let data = dir.path().join(name);
        let mut args = vec![
            "record",
            "-g",
            "-F",
            "999",
            "-o",
            data.to_str().unwrap(),
            "--",
        ];
        args.push(binary.to_str().unwrap());
        args.extend(shares);
        run_ok(&args);
        data
    };
    // work_a: 10% of the work before, 70% after; b and c lose 30 points each.
    let before = record("before.data", ["10", "45", "45"]);
    let after = record("after.data", ["70", "15", "15"]);
    let (mut browser, first_row) = compare_in_browser(&before, &after, dir.path());
    assert_eq!(first_row[0], "*", "{first_row}");
    assert_eq!(first_row[1], "work_a", "{first_row}");
    let delta: f64 = first_row[5].as_str().unwrap().parse().unwrap();
    assert!((45.0..75.0).contains(&delta), "{first_row}");
    let interval: f64 = first_row[6]
        .as_str()
        .unwrap()
        .trim_start_matches('±')
        .parse()
        .unwrap();
    assert!(interval > 0.0 && interval < delta / 4.0, "{first_row}");
    // The flamegraph colours what grew red: work_a's frame under spin.
    let frames = drawn(&mut browser, "work_a");
    assert!(frames.iter().any(|f| f["path"][0] == "spin"), "{frames:?}");
    browser.eval("document.querySelector('#changes tbody tr').click(); 0");
    assert!(browser
        .eval("netprof.matchText()")
        .as_str()
        .unwrap()
        .contains("work_a"));
    browser.screenshot(&screenshot_path("diff"));
}

/// A `netprof latency --json` result with one function's calls in two buckets.
fn latency_result(path: &Path, low_calls: u64, high_calls: u64) {
    let total = low_calls + high_calls;
    let result = json!({
        "schema": "netprof-latency/1", "duration_s": 1.0, "probes": "kprobe.multi",
        "dropped": 0, "missed_returns": 0,
        "functions": [
            {"function": "hsr_forward_skb", "module": "hsr", "count": total,
             "min_ns": 1000, "max_ns": 8191, "mean_ns": 3000.0, "p25_ns": 1000.0, "median_ns": 2000.0,
             "p75_ns": 4000.0, "iqr_ns": 3000.0, "p90_ns": 8000.0, "p99_ns": 8000.0,
             "histogram": [{"low_ns": 1024, "high_ns": 1088, "count": low_calls},
                           {"low_ns": 8192, "high_ns": 8704, "count": high_calls}]},
            {"function": "tcp_sendmsg", "module": null, "count": 1000,
             "min_ns": 500, "max_ns": 520, "mean_ns": 510.0, "p25_ns": 505.0, "median_ns": 510.0,
             "p75_ns": 515.0, "iqr_ns": 10.0, "p90_ns": 518.0, "p99_ns": 519.0,
             "histogram": [{"low_ns": 496, "high_ns": 512, "count": 500},
                           {"low_ns": 512, "high_ns": 528, "count": 500}]}
        ]
    });
    std::fs::write(path, result.to_string()).unwrap();
}

#[test]
fn latency_diff_page_overlays_both_histograms() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (before, after) = (
        dir.path().join("before.json"),
        dir.path().join("after.json"),
    );
    latency_result(&before, 900, 100);
    latency_result(&after, 100, 900);
    let (mut browser, first_row) = compare_in_browser(&before, &after, dir.path());
    assert_eq!(
        (first_row[0].as_str(), first_row[1].as_str()),
        (Some("*"), Some("hsr_forward_skb"))
    );
    // Both sides are drawn: pixels of the before colour (blue) and of the
    // after colour (red) on the histogram.
    let colours = browser.eval(
        "(() => { const c = document.getElementById('histogram');
                  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let blue = 0, red = 0;
                  for (let i = 0; i < d.length; i += 4) {
                    if (d[i + 3] === 0) continue;
                    if (d[i + 2] > d[i] + 40) blue++; else if (d[i] > d[i + 2] + 40) red++;
                  }
                  return [blue, red]; })()",
    );
    assert!(
        colours[0].as_u64().unwrap() > 500 && colours[1].as_u64().unwrap() > 500,
        "{colours}"
    );
    browser.screenshot(&screenshot_path("latency-diff"));
}

#[test]
fn html_refuses_what_it_cannot_draw() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.data");
    std::fs::write(&empty, b"").unwrap();
    let page = dir.path().join("out.html");
    let out = netprof(&[
        "report",
        "-i",
        empty.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_error(&out, ErrorKind::CorruptInput, "is empty");
    assert!(!page.exists());
}

#[test]
fn report_page_switches_to_off_cpu_time() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_c(dir.path(), "off_cpu/busy_sleep");
    let data = dir.path().join("off.data");
    let page = dir.path().join("off.html");
    // 100 ms on the CPU, then 300 ms asleep, three times.
    run_ok(&[
        "record",
        "--off-cpu",
        "--wakeups",
        "-g",
        "-o",
        data.to_str().unwrap(),
        "--",
        binary.to_str().unwrap(),
        "3",
    ]);
    report_html(&data, &page);
    let mut browser = Browser::launch();
    open_clean(&mut browser, &page);
    let events = browser.eval("[...document.getElementById('event').options].map(o => o.text)");
    let mut events: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let off_cpu = events
        .iter()
        .position(|&e| e == "offcpu-time")
        .unwrap_or_else(|| panic!("no offcpu-time among {events:?}"));
    events.sort_unstable();
    assert_eq!(events, ["cpu-clock", "offcpu-time", "offcpu-waker"]);
    browser.eval(&format!(
        "const e = document.getElementById('event'); e.value = {off_cpu}; e.dispatchEvent(new Event('change')); 0"
    ));
    // The three naps: about 0.9 s asleep, drawn under nanosleep.
    let summary = browser.eval("document.getElementById('summary').textContent");
    // "offcpu-time: 900.584 ms. ..."
    let amount = summary
        .as_str()
        .unwrap()
        .strip_prefix("offcpu-time: ")
        .unwrap();
    let mut words = amount.split_whitespace();
    let value: f64 = words.next().unwrap().parse().unwrap();
    let seconds = match words.next().unwrap().trim_end_matches('.') {
        "s" => value,
        "ms" => value / 1e3,
        unit => panic!("{unit} in {summary}"),
    };
    assert!((0.8..1.3).contains(&seconds), "{summary}");
    let naps = drawn(&mut browser, "do_nanosleep");
    assert!(
        naps.iter().any(|f| f["path"][0] == "busy_sleep"),
        "{naps:?}"
    );
    // The timeline shows the thread's three bursts on the CPU: its
    // cpu-clock bins fall in three groups, 300 ms apart.
    let bins = browser.eval(
        "(() => { const t = JSON.parse(document.getElementById('data').textContent).timeline;
                  const row = t.threads.find(r => r.comm === 'busy_sleep');
                  const s = row.series.find(s => s.profile === 0);
                  let bin = 0; const out = [];
                  for (let i = 0; i < s.bins.length; i += 2) { bin += s.bins[i]; out.push(bin * t.bin_ns / 1e6); }
                  return out; })()",
    );
    let ms: Vec<f64> = bins
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    // A burst is a run of bins with no 200 ms gap, holding tens of ms on
    // the CPU; the exit after the last nap may add a bin or two alone.
    let mut bursts = vec![0usize];
    for w in ms.windows(2) {
        if w[1] - w[0] > 200.0 {
            bursts.push(0);
        }
        *bursts.last_mut().unwrap() += 1;
    }
    let long = bursts.iter().filter(|&&bins| bins >= 20).count();
    assert_eq!(long, 3, "bins per burst {bursts:?}: {ms:?}");
    browser.screenshot(&screenshot_path("report-off-cpu"));
}
