//! The guest's checks of `netprof funcgraph` (and of `diff` on its
//! results): exact paths and counts on the test module, the slowest and
//! erring calls kept whole, the module's delay named by diff, HSR's
//! forwarding path under pings, and nothing left behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::*;
use super::{has_fprobe, hsr_flood, netprof_ok, sh, with_hsr_ring};

/// The test module's functions the checks trace (not its proc handlers,
/// so that each trigger's calls are outermost).
const TRACED: &[&str] = &[
    "netprof_test_outer",
    "netprof_test_middle",
    "netprof_test_inner",
    "netprof_test_delay",
    "netprof_test_slow",
    "netprof_test_recurse",
    "netprof_test_parse",
    "netprof_test_validate",
];

/// `netprof funcgraph -m netprof_test TRACED ARGS --json -- sh -c TRIGGER`.
fn funcgraph_of(args: &[&str], trigger: &str) -> Value {
    let mut all = vec!["funcgraph", "-m", "netprof_test"];
    all.extend_from_slice(TRACED);
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", "--", "sh", "-c", trigger]);
    serde_json::from_str(&netprof_ok(&all)).unwrap()
}

/// `outer;middle;inner` (short names of the test module) -> the path.
fn paths_of(v: &Value) -> BTreeMap<String, Value> {
    v["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let names: Vec<String> = p["path"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    let name = f["function"].as_str().unwrap();
                    name.strip_prefix("netprof_test_")
                        .unwrap_or(name)
                        .to_string()
                })
                .collect();
            (names.join(";"), p.clone())
        })
        .collect()
}

fn u(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
}

fn f(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
}

fn set_delay_us(us: u32) {
    std::fs::write(
        "/sys/module/netprof_test/parameters/delay_us",
        us.to_string(),
    )
    .unwrap();
}

pub fn funcgraph_module_paths(work: &Path) {
    set_delay_us(200);
    let trigger = "echo 50 > /proc/netprof_test; echo s7 > /proc/netprof_test; \
                   echo r3 > /proc/netprof_test; echo d4 > /proc/netprof_test";
    let v = funcgraph_of(&[], trigger);
    let paths = paths_of(&v);
    let counts: BTreeMap<&str, u64> = paths
        .iter()
        .map(|(k, p)| (k.as_str(), u(p, "count")))
        .collect();
    let expected: BTreeMap<&str, u64> = [
        ("outer", 50),
        ("outer;middle", 50),
        ("outer;middle;inner", 50),
        ("slow", 7),
        ("slow;inner", 7),
        ("slow;delay", 7),
        ("recurse", 3),
        ("recurse;recurse", 3),
        ("recurse;recurse;recurse", 3),
        ("recurse;recurse;recurse;recurse", 3),
        ("recurse;recurse;recurse;recurse;inner", 3),
        ("delay", 4),
    ]
    .into_iter()
    .collect();
    assert_eq!(counts, expected, "{v}");
    let unpaired = &v["unpaired"];
    assert_eq!(u(unpaired, "recursive"), 9, "3 calls, each 3 levels: {v}");
    for field in [
        "no_entry",
        "no_return",
        "too_deep",
        "still_running",
        "no_path_room",
    ] {
        assert_eq!(u(unpaired, field), 0, "{field}: {v}");
    }
    // Children take part of their parent's time.
    let total = |k: &str| u(&paths[k], "total_ns");
    assert!(
        total("outer") >= total("outer;middle")
            && total("outer;middle") >= total("outer;middle;inner")
    );
    // Self time is total minus the traced children: over a subtree, the
    // self times add up to its root's total.
    let subtree_self: u64 = paths
        .iter()
        .filter(|(k, _)| k.starts_with("outer"))
        .map(|(_, p)| u(p, "self_ns"))
        .sum();
    assert_eq!(subtree_self, total("outer"), "{v}");
    // The delay: its median within its known 200 us; slow's total holds
    // it, slow's self time does not.
    let delay_median = f(&paths["slow;delay"], "median_ns");
    assert!((160_000.0..=240_000.0).contains(&delay_median), "{v}");
    assert!(
        (160_000.0..=240_000.0).contains(&f(&paths["delay"], "median_ns")),
        "{v}"
    );
    assert!(f(&paths["slow"], "median_ns") >= delay_median, "{v}");
    assert!(
        f(&paths["slow"], "self_median_ns") < 50_000.0,
        "slow's self time leaves its child's delay out: {v}"
    );
    assert!(total("slow") >= total("slow;delay") + total("slow;inner"));
    eprintln!(
        "guest: funcgraph ({}): slow;delay median {:.1} us, slow median {:.1} us, self {:.1} us",
        v["probes"],
        delay_median / 1e3,
        f(&paths["slow"], "median_ns") / 1e3,
        f(&paths["slow"], "self_median_ns") / 1e3
    );

    // The tree: children under their parent, sorted by total.
    let mut args = vec!["funcgraph", "-m", "netprof_test"];
    args.extend_from_slice(TRACED);
    args.extend_from_slice(&["--", "sh", "-c", trigger]);
    let tree = netprof_ok(&args);
    let line_of = |needle: &str| {
        tree.lines()
            .position(|l| l.ends_with(needle))
            .unwrap_or_else(|| panic!("no line ending in {needle}:\n{tree}"))
    };
    let outer = line_of("  netprof_test_outer [netprof_test]");
    assert!(
        tree.lines()
            .nth(outer + 1)
            .unwrap()
            .ends_with("└─ netprof_test_middle [netprof_test]"),
        "{tree}"
    );
    assert!(
        tree.lines()
            .nth(outer + 2)
            .unwrap()
            .ends_with("   └─ netprof_test_inner [netprof_test]"),
        "{tree}"
    );
    let slow = line_of("  netprof_test_slow [netprof_test]");
    // The delay first: it takes longer than inner.
    assert!(
        tree.lines()
            .nth(slow + 1)
            .unwrap()
            .ends_with("├─ netprof_test_delay [netprof_test]"),
        "{tree}"
    );
    assert!(
        tree.lines()
            .nth(slow + 2)
            .unwrap()
            .ends_with("└─ netprof_test_inner [netprof_test]"),
        "{tree}"
    );

    // Folded stacks weigh each path by its self time; the flamegraph
    // draws them.
    let mut args = vec!["funcgraph", "-m", "netprof_test"];
    args.extend_from_slice(TRACED);
    let svg = work.join("wall.svg");
    args.extend_from_slice(&[
        "--folded",
        "--flame",
        svg.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        "echo s5 > /proc/netprof_test",
    ]);
    let folded = netprof_ok(&args);
    let weight = |path: &str| -> u64 {
        folded
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{path} ")))
            .unwrap_or_else(|| panic!("no {path} in:\n{folded}"))
            .parse()
            .unwrap()
    };
    // Five calls of the delay; slow's own time is the rest (on a
    // software-emulated CPU, its first call pays for the probes' first
    // runs, so only the medians above say how small it is).
    let delay = weight("netprof_test_slow [netprof_test];netprof_test_delay [netprof_test]");
    assert!(delay >= 5 * 160_000, "{folded}");
    assert!(weight("netprof_test_slow [netprof_test]") > 0, "{folded}");
    assert!(
        weight("netprof_test_slow [netprof_test];netprof_test_inner [netprof_test]") > 0,
        "{folded}"
    );
    assert_eq!(folded.lines().count(), 3, "{folded}");
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(
        drawn.contains("netprof_test_delay [netprof_test]"),
        "the flamegraph names the delay"
    );

    // --depth 2: deeper calls are not timed, and counted.
    let v = funcgraph_of(&["--depth", "2"], "echo 10 > /proc/netprof_test");
    let paths = paths_of(&v);
    assert_eq!(
        paths.keys().cloned().collect::<Vec<_>>(),
        ["outer", "outer;middle"],
        "{v}"
    );
    assert_eq!(u(&v["unpaired"], "too_deep"), 10, "{v}");

    // --under slow: only what slow calls, with slow on top, though inner
    // is also called from outer.
    let v: Value = serde_json::from_str(&netprof_ok(&[
        "funcgraph",
        "-m",
        "netprof_test",
        "netprof_test_inner",
        "netprof_test_delay",
        "--under",
        "netprof_test_slow",
        "--json",
        "--",
        "sh",
        "-c",
        "echo 10 > /proc/netprof_test; echo s3 > /proc/netprof_test; echo d2 > /proc/netprof_test",
    ]))
    .unwrap();
    let counts: BTreeMap<String, u64> = paths_of(&v)
        .into_iter()
        .map(|(k, p)| (k, u(&p, "count")))
        .collect();
    let expected: BTreeMap<String, u64> = [("slow", 3), ("slow;delay", 3), ("slow;inner", 3)]
        .map(|(k, n)| (k.to_string(), n))
        .into();
    assert_eq!(counts, expected, "{v}");
    assert_eq!(
        u(&v["unpaired"], "no_entry"),
        0,
        "calls outside slow are not missed entries: {v}"
    );
}

pub fn funcgraph_slowest_and_errors(_: &Path) {
    // Five calls at 200 us, then one at 10 ms: the slowest two kept, the
    // 10 ms one first, each with its whole tree. (Under emulation, a first
    // call after the probes go in can take 6 ms more on 6.1.)
    set_delay_us(200);
    let v = funcgraph_of(
        &["--slowest", "2"],
        "echo s5 > /proc/netprof_test; echo 10000 > /sys/module/netprof_test/parameters/delay_us; \
         echo s1 > /proc/netprof_test; echo 200 > /sys/module/netprof_test/parameters/delay_us; \
         echo 3 > /proc/netprof_test",
    );
    set_delay_us(200);
    let kept = v["kept_calls"].as_array().unwrap();
    assert_eq!(kept.len(), 2, "{v}");
    let shape = |call: &Value| -> Vec<(String, u64)> {
        call["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["function"].as_str().unwrap().replace("netprof_test_", ""),
                    u(c, "depth"),
                )
            })
            .collect()
    };
    assert_eq!(
        shape(&kept[0]),
        [
            ("slow".to_string(), 0),
            ("inner".to_string(), 1),
            ("delay".to_string(), 1)
        ],
        "{v}"
    );
    // The second: another call of slow (200 us), or, on an emulated CPU, a
    // first call slowed by the probes' first runs; a whole tree either way.
    let (first, second) = (u(&kept[0], "duration_ns"), u(&kept[1], "duration_ns"));
    assert!(first >= 10_000_000 && first >= second, "{v}");
    assert_eq!(shape(&kept[1])[0].1, 0, "{v}");
    assert!(shape(&kept[1]).len() >= 3, "{v}");
    let delay_call = &kept[0]["calls"][2];
    assert!(u(delay_call, "duration_ns") >= 10_000_000, "{v}");
    assert!(
        u(delay_call, "start_ns") > u(&kept[0]["calls"][1], "start_ns"),
        "{v}"
    );

    // Errors: parse(i) fails for odd i, the error made in validate. Of six
    // calls, the three that failed are kept, validate marked.
    let v = funcgraph_of(
        &["--errors"],
        "echo e6 > /proc/netprof_test; echo 4 > /proc/netprof_test",
    );
    let kept = v["kept_calls"].as_array().unwrap();
    assert_eq!(kept.len(), 3, "{v}");
    for call in kept {
        let calls = call["calls"].as_array().unwrap();
        assert_eq!(calls[0]["function"], "netprof_test_parse", "{call}");
        assert_eq!(calls[0]["errno"], -22, "{call}");
        assert_eq!(calls[1]["function"], "netprof_test_validate", "{call}");
        assert_eq!(calls[1]["errno"], -22, "{call}");
        assert_eq!(calls[1]["error_origin"], true, "{call}");
        assert!(calls[0].get("error_origin").is_none(), "{call}");
    }
    let paths = paths_of(&v);
    assert_eq!(u(&paths["parse"], "errors"), 3, "{v}");
    assert_eq!(u(&paths["parse;validate"], "errors"), 3, "{v}");
    assert_eq!(u(&paths["parse;validate"], "count"), 6, "{v}");
    // The text shows where the error starts.
    let mut args = vec!["funcgraph", "-m", "netprof_test"];
    args.extend_from_slice(TRACED);
    args.extend_from_slice(&[
        "--errors",
        "--slowest",
        "1",
        "--",
        "sh",
        "-c",
        "echo e2 > /proc/netprof_test",
    ]);
    let text = netprof_ok(&args);
    assert!(
        text.lines().any(|l| l
            .contains("netprof_test_validate [netprof_test] = -22 (Invalid argument)")
            && l.contains("<- the error starts here")),
        "{text}"
    );
}

pub fn funcgraph_diff_names_the_delay(work: &Path) {
    let run = |name: &str, delay_us: u32| -> String {
        set_delay_us(delay_us);
        let v = funcgraph_of(
            &[],
            "echo s30 > /proc/netprof_test; echo 30 > /proc/netprof_test",
        );
        let file = work.join(name);
        std::fs::write(&file, v.to_string()).unwrap();
        file.to_str().unwrap().to_string()
    };
    let base = [run("base1.json", 200), run("base2.json", 200)];
    let again = [run("again1.json", 200), run("again2.json", 200)];
    let slower = run("slower.json", 400);
    set_delay_us(200);
    // One run a side: the path ending in the delay first, marked, in self
    // and total time; slow's own time unchanged.
    let d: Value =
        serde_json::from_str(&netprof_ok(&["diff", &base[0], &slower, "--json"])).unwrap();
    assert_eq!(d["schema"], "netprof-funcgraph-diff/1", "{d}");
    let label = |p: &Value| -> String {
        p["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function"].as_str().unwrap().replace("netprof_test_", ""))
            .collect::<Vec<_>>()
            .join(";")
    };
    let first = &d["paths"][0];
    assert_eq!(label(first), "slow;delay", "{d}");
    assert_eq!(first["self"]["significant"], true, "{d}");
    assert_eq!(first["total"]["significant"], true, "{d}");
    assert!((0.7..1.3).contains(&f(&first["self"], "relative")), "{d}");
    let slow = d["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| label(p) == "slow")
        .unwrap();
    // slow's total holds the delay. (Its own few microseconds may move
    // too: on an emulated CPU they grow with the delay's length.)
    assert_eq!(slow["total"]["significant"], true, "{d}");
    assert!(f(&slow["self"], "change_ns").abs() < 50_000.0, "{d}");
    let table = netprof_ok(&["diff", &base[0], &slower]);
    let first_row = table.lines().find(|l| !l.starts_with('#')).unwrap();
    assert!(
        first_row.ends_with("netprof_test_slow [netprof_test];netprof_test_delay [netprof_test]")
            && first_row.contains('*'),
        "{table}"
    );
    eprintln!("guest: funcgraph diff 200 -> 400 us: {first_row}");
    // Repeated runs of the same module a side: nothing marked.
    let d: Value = serde_json::from_str(&netprof_ok(&[
        "diff", "-b", &base[0], &base[1], "-a", &again[0], &again[1], "--json",
    ]))
    .unwrap();
    let marked: Vec<String> = d["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["self"]["significant"] == true || p["total"]["significant"] == true)
        .map(label)
        .collect();
    assert!(marked.is_empty(), "identical runs marked {marked:?}: {d}");
}

/// funcgraph's programs loaded now (named funcgraph_*).
fn funcgraph_programs() -> usize {
    let v: Value = serde_json::from_str(&netprof_ok(&["bpf", "--json"])).unwrap();
    v["programs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().unwrap().starts_with("funcgraph_"))
        .count()
}

pub fn funcgraph_leaves_nothing(_: &Path) {
    for signal in [libc::SIGINT, libc::SIGKILL] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netprof"))
            .args(["funcgraph", "-m", "netprof_test", "netprof_test_*"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Tracing once it says so: one session program (6.10 and later), or
        // an entry and a return program.
        let mut said = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        while !line.contains("netprof: tracing") {
            line.clear();
            assert!(
                std::io::BufRead::read_line(&mut said, &mut line).unwrap() > 0,
                "{line}"
            );
        }
        let running = funcgraph_programs();
        let expected = if line.contains("kprobe.session") {
            1
        } else {
            2
        };
        assert_eq!(running, expected, "funcgraph's programs run: {line}");
        sh("echo 5 > /proc/netprof_test");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = child.wait_with_output().unwrap();
        if signal == libc::SIGINT {
            // Ctrl-C ends tracing and shows what it saw.
            assert!(out.status.success(), "{out:?}");
            assert!(String::from_utf8_lossy(&out.stdout)
                .contains("└─ netprof_test_inner [netprof_test]"));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while funcgraph_programs() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(funcgraph_programs(), 0, "left after signal {signal}");
        let listed = std::fs::read_to_string("/sys/kernel/debug/kprobes/list").unwrap_or_default();
        assert!(!listed.contains("netprof_test"), "{listed}");
    }
    // Clear errors.
    let out = netprof(&[
        "funcgraph",
        "-m",
        "netprof_test",
        "netprof_test_inne",
        "--duration",
        "1",
    ]);
    assert_error(&out, ErrorKind::NotFound, "netprof_test_inner");
    let out = netprof(&["funcgraph", "-m", "no_such_module", "f*", "--duration", "1"]);
    assert_error(&out, ErrorKind::NotFound, "no_such_module");
    let out = netprof(&["funcgraph", "*", "--duration", "1"]);
    assert_error(&out, ErrorKind::BadArgument, "narrow the pattern");
    let out = netprof(&[
        "funcgraph",
        "-m",
        "netprof_test",
        "netprof_test_*",
        "--max-paths",
        "1048576",
        "--duration",
        "1",
    ]);
    assert_error(&out, ErrorKind::BadArgument, "--max-paths");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_netprof"))
        .args([
            "funcgraph",
            "-m",
            "netprof_test",
            "netprof_test_*",
            "--duration",
            "1",
        ])
        .current_dir("/tmp")
        .output()
        .unwrap();
    assert_error(&out, ErrorKind::NoPermission, "no permission");
    if !has_fprobe() {
        // One link pair per function: said, and the same paths.
        let out = netprof(&[
            "funcgraph",
            "-m",
            "netprof_test",
            "netprof_test_outer",
            "netprof_test_middle",
            "--",
            "sh",
            "-c",
            "echo 3 > /proc/netprof_test",
        ]);
        assert!(
            stderr(&out).contains("through a kprobe link pair each"),
            "{}",
            stderr(&out)
        );
    }
}

/// `netprof funcgraph ARGS -a` while `count` flood pings cross the HSR
/// ring; what it prints.
fn funcgraph_over_hsr(args: &[&str], count: &str) -> String {
    let mut all = vec!["funcgraph"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-a", "--"]);
    all.extend_from_slice(&hsr_flood(count));
    netprof_ok(&all)
}

/// `funcgraph -m hsr 'hsr_*' --json` over `count` flood pings.
fn hsr_funcgraph(count: &str) -> Value {
    serde_json::from_str(&funcgraph_over_hsr(
        &["-m", "hsr", "hsr_*", "--json"],
        count,
    ))
    .unwrap()
}

pub fn hsr_funcgraph_paths(work: &Path) {
    let v = with_hsr_ring(0, || hsr_funcgraph("200"));
    let label = |p: &Value| -> Vec<String> {
        p["path"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function"].as_str().unwrap().to_string())
            .collect()
    };
    // Each ping goes out through hsr_dev_xmit, down to hsr_forward_skb, on
    // both slaves; each reply comes in through the receive handler.
    let calls_ending = |top: &str, leaf: &str| -> u64 {
        v["paths"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| {
                let l = label(p);
                l.first().map(String::as_str) == Some(top)
                    && l.last().map(String::as_str) == Some(leaf)
            })
            .map(|p| u(p, "count"))
            .sum()
    };
    let sent = calls_ending("hsr_dev_xmit", "hsr_forward_skb");
    let received = calls_ending("hsr_handle_frame", "hsr_forward_skb");
    assert!(
        sent >= 200 && received >= 200,
        "sent {sent}, received {received}: {v}"
    );
    assert!(sent < 2000, "about one forward per frame sent: {sent}");
    // hsr_forward_skb has traced children on that path.
    let children = v["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            let l = label(p);
            l.len() >= 3
                && l.first().map(String::as_str) == Some("hsr_dev_xmit")
                && l[..l.len() - 1].iter().any(|f| f == "hsr_forward_skb")
        })
        .count();
    assert!(children > 0, "{v}");
    eprintln!(
        "guest: funcgraph -m hsr over 200 flood pings: {} paths, hsr_dev_xmit..hsr_forward_skb {sent} calls, \
         hsr_handle_frame..hsr_forward_skb {received}",
        v["paths"].as_array().unwrap().len()
    );

    // Under the receive handler only, vmlinux functions among the
    // module's: one command prints the tree and draws the flamegraph.
    let svg = work.join("hsr.svg");
    let args = [
        "--under",
        "hsr_handle_frame",
        "hsr_*",
        "netif_rx",
        "__dev_queue_xmit",
        "skb_clone",
        "--flame",
        svg.to_str().unwrap(),
    ];
    let tree = with_hsr_ring(0, || funcgraph_over_hsr(&args, "200"));
    let rows: Vec<&str> = tree
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim_start().starts_with("calls"))
        .collect();
    let roots: Vec<&&str> = rows.iter().filter(|l| !l.contains('─')).collect();
    assert!(
        !roots.is_empty()
            && roots
                .iter()
                .all(|l| l.ends_with("  hsr_handle_frame [hsr]")),
        "{tree}"
    );
    assert!(
        rows.iter().any(|l| l.ends_with("─ hsr_forward_skb [hsr]")),
        "{tree}"
    );
    let vmlinux = ["netif_rx", "__dev_queue_xmit", "skb_clone"];
    assert!(
        rows.iter()
            .any(|l| vmlinux.iter().any(|f| l.ends_with(&format!("─ {f}")))),
        "a vmlinux function under the handler: {tree}"
    );
    let drawn = std::fs::read_to_string(&svg).unwrap();
    assert!(
        drawn.contains("hsr_forward_skb [hsr]"),
        "the flamegraph names the forwarding"
    );
    eprintln!(
        "guest: funcgraph --under hsr_handle_frame: {} paths, e.g. {}",
        rows.len(),
        rows.iter()
            .find(|l| vmlinux.iter().any(|f| l.ends_with(f)))
            .unwrap()
            .trim()
    );

    // The slow node table (net-perf's case): the paths a thousand extra
    // nodes slowed are the ones that walk the node list.
    let normal = work.join("normal.json");
    let slow = work.join("slow.json");
    let mut recorded = Vec::new();
    for (file, extra_nodes) in [(&normal, 0), (&slow, 1000)] {
        let v = with_hsr_ring(extra_nodes, || hsr_funcgraph("500"));
        std::fs::write(file, v.to_string()).unwrap();
        recorded.push(v);
    }
    let (normal, slow) = (normal.to_str().unwrap(), slow.to_str().unwrap());
    let table = netprof_ok(&["diff", normal, slow]);
    // The emulated guest's speed can change between the two recordings
    // (one CI run had every path twice as fast in the second), so each
    // path's growth is measured against the typical path's: mean own time
    // per call after over before, divided by the median of that ratio over
    // all paths. Means, not medians: a lookup that is slow for some frames
    // and fast for others makes the median jump between modes, and a rank
    // test sees no shift when the fast half got faster with the guest.
    let mean_self = |v: &Value| -> BTreeMap<String, (f64, u64)> {
        v["paths"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| u(p, "count") >= 100)
            .map(|p| {
                let mean = u(p, "self_ns") as f64 / u(p, "count") as f64;
                (label(p).join(";"), (mean, u(p, "count")))
            })
            .collect()
    };
    let (before, after) = (mean_self(&recorded[0]), mean_self(&recorded[1]));
    let mut growth: Vec<(String, f64)> = before
        .iter()
        .filter_map(|(path, (b, _))| after.get(path).map(|(a, _)| (path.clone(), a / b)))
        .collect();
    assert!(
        growth.len() >= 10,
        "paths on both sides: {growth:?}\n{table}"
    );
    let mut ratios: Vec<f64> = growth.iter().map(|(_, r)| *r).collect();
    ratios.sort_by(f64::total_cmp);
    let guest_speed = ratios[ratios.len() / 2];
    for (_, r) in growth.iter_mut() {
        *r /= guest_speed;
    }
    growth.sort_by(|x, y| y.1.total_cmp(&x.1));
    // hsr_get_node finds a frame's source node and hsr_addr_subst_dest
    // its destination, each by walking the list; nothing else does.
    let walks_the_table =
        |path: &str| path.ends_with("hsr_get_node") || path.ends_with("hsr_addr_subst_dest");
    let (top, top_growth) = &growth[0];
    assert!(
        walks_the_table(top) && *top_growth > 3.0,
        "slowed most, against the guest's speed change {guest_speed:.2}x: {growth:?}\n{table}"
    );
    let received_lookup = "hsr_handle_frame;hsr_forward_skb;hsr_get_node";
    let lookup_growth = growth
        .iter()
        .find(|(p, _)| p == received_lookup)
        .map(|(_, r)| *r)
        .unwrap_or_else(|| panic!("no {received_lookup} on both sides: {growth:?}"));
    assert!(lookup_growth > 3.0, "{growth:?}\n{table}");
    // Every path that grew 2.5 times as much as the typical one walks the
    // table (the others' ratios spread over 0.7-1.6 in unloaded runs).
    let others: Vec<&(String, f64)> = growth
        .iter()
        .filter(|(p, r)| *r > 2.5 && !walks_the_table(p))
        .collect();
    assert!(others.is_empty(), "{others:?} grew too\n{table}");
    // diff reads the two results and lists the lookup's path among them.
    let d: Value = serde_json::from_str(&netprof_ok(&["diff", normal, slow, "--json"])).unwrap();
    assert!(
        d["paths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| label(p).join(";") == received_lookup),
        "{table}"
    );
    eprintln!(
        "guest: funcgraph, normal -> slow node table: {top} own time {top_growth:.1}x, \
         {received_lookup} {lookup_growth:.1}x, against the guest's speed change {guest_speed:.2}x"
    );
}
