//! Reports on synthetic recordings whose every sample is known: the counts,
//! names, filters and layouts must come out exactly.

mod common;

use common::*;

/// 60 samples of `nc` in HSR's receive path, 30 of `dd` reading /dev/zero,
/// 10 of `dd` in an XDP program: all through known kernel functions.
fn fixture(dir: &std::path::Path) -> std::path::PathBuf {
    let mut s = Synth::new();
    s.comm(100, "nc").comm(200, "dd");
    s.samples(
        60,
        100,
        0,
        &[
            k("hsr_forward_skb"),
            k("hsr_handle_frame"),
            k("__netif_receive_skb"),
            k("net_rx_action"),
        ],
        &[],
    );
    s.samples(
        30,
        200,
        1,
        &[
            k("read_zero"),
            k("vfs_read"),
            k("ksys_read"),
            k("do_syscall_64"),
            k("entry_SYSCALL_64"),
        ],
        &[],
    );
    s.samples(
        10,
        200,
        1,
        &[
            k("bpf_prog_6deef7357e7b4530_xdp_count"),
            k("__netif_receive_skb"),
            k("net_rx_action"),
        ],
        &[],
    );
    s.write_in(dir, "fixture.data")
}

#[test]
fn folded_stacks_name_vmlinux_module_and_bpf_frames_with_exact_counts() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    let out = netprof(&["report", "-i", file.to_str().unwrap(), "--folded"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            "dd;entry_SYSCALL_64;do_syscall_64;ksys_read;vfs_read;read_zero 30",
            "dd;net_rx_action;__netif_receive_skb;bpf_prog_6deef7357e7b4530_xdp_count [bpf] 10",
            "nc;net_rx_action;__netif_receive_skb;hsr_handle_frame [hsr];hsr_forward_skb [hsr] 60",
        ]
    );
}

#[test]
fn module_filter_keeps_only_stacks_through_the_module() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    let out = netprof(&[
        "report",
        "-i",
        file.to_str().unwrap(),
        "--folded",
        "--module",
        "hsr",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("nc;") && text.trim_end().ends_with(" 60"),
        "{text}"
    );

    let out = netprof(&["report", "-i", file.to_str().unwrap(), "--module", "e1000"]);
    assert_error(
        &out,
        NotFound,
        "no sampled stack passes through module 'e1000' (modules in this recording: hsr)",
    );
}

#[test]
fn comm_pid_and_cpu_filters() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    let f = file.to_str().unwrap();
    let total = |args: &[&str]| -> u64 {
        let mut a = vec!["report", "-i", f, "--folded"];
        a.extend_from_slice(args);
        let out = netprof(&a);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(total(&[]), 100);
    assert_eq!(total(&["--comm", "dd"]), 40);
    assert_eq!(total(&["--pid", "100"]), 60);
    assert_eq!(total(&["--cpu", "1"]), 40);
    assert_eq!(total(&["--comm", "dd,nc"]), 100);
}

#[test]
fn call_graph_entries_have_children_and_self_shares() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    let out = netprof(&["report", "-i", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let entry = |name: &str| -> (f64, f64) {
        let line = text
            .lines()
            .find(|l| l.ends_with(&format!("[k] {name}")) && l.contains('%'))
            .unwrap_or_else(|| panic!("no entry {name} in\n{text}"));
        let nums: Vec<f64> = line
            .split_whitespace()
            .take(2)
            .map(|p| p.trim_end_matches('%').parse().unwrap())
            .collect();
        (nums[0], nums[1])
    };
    assert_eq!(entry("net_rx_action"), (70.0, 0.0));
    assert_eq!(entry("hsr_forward_skb [hsr]"), (60.0, 60.0));
    assert_eq!(entry("read_zero"), (30.0, 30.0));
    // Caller order: under net_rx_action, its callees with their shares.
    let block: String = text
        .split("\n\n")
        .find(|b| b.contains("[k] net_rx_action"))
        .unwrap()
        .to_string();
    assert!(
        block.contains("--60.00%--hsr_handle_frame [hsr]"),
        "{block}"
    );
    assert!(
        block.contains("--10.00%--bpf_prog_6deef7357e7b4530_xdp_count [bpf]"),
        "{block}"
    );
    // The highest entry comes first.
    let first = text.lines().find(|l| l.contains("[k]")).unwrap();
    assert!(
        first.contains("__netif_receive_skb") || first.contains("net_rx_action"),
        "{first}"
    );
}

#[test]
fn callee_order_shows_who_calls_an_entry() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    let out = netprof(&["report", "-i", file.to_str().unwrap(), "-g", "callee"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let block: String = text
        .split("\n\n")
        .find(|b| b.contains("[k] __netif_receive_skb"))
        .unwrap()
        .to_string();
    // Who calls __netif_receive_skb: net_rx_action, in all 70 samples.
    assert!(
        block.contains("---__netif_receive_skb\n               net_rx_action"),
        "{block}"
    );
}

#[test]
fn percent_limit_hides_small_entries() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    let out = netprof(&[
        "report",
        "-i",
        file.to_str().unwrap(),
        "--percent-limit",
        "50",
    ]);
    let text = stdout(&out);
    assert!(text.contains("hsr_forward_skb"), "{text}");
    assert!(
        !text.contains("read_zero"),
        "30% entry shown with limit 50: {text}"
    );
}

/// Whether the text report has an entry line with this children share whose
/// label ends with `label`.
fn has_entry(text: &str, share: &str, label: &str) -> bool {
    text.lines()
        .any(|l| l.trim_start().starts_with(share) && l.trim_end().ends_with(label))
}

#[test]
fn sort_by_comm_and_dso() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    let sorted = |key: &str| {
        stdout(&netprof(&[
            "report",
            "-i",
            file.to_str().unwrap(),
            "--sort",
            key,
        ]))
    };
    let text = sorted("comm");
    assert!(has_entry(&text, "60.00%", "nc"), "{text}");
    assert!(has_entry(&text, "40.00%", "dd"), "{text}");
    let text = sorted("dso");
    assert!(has_entry(&text, "60.00%", "[hsr]"), "{text}");
    assert!(has_entry(&text, "10.00%", "[bpf]"), "{text}");
}

#[test]
fn json_follows_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    let out = netprof(&["report", "-i", file.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], "netprof-report/1");
    assert_eq!(v["total_samples"], 100);
    assert_eq!(v["kernel_names"], "snapshot");
    let frames = v["frames"].as_array().unwrap();
    let hsr = frames
        .iter()
        .position(|f| f["name"] == "hsr_forward_skb")
        .unwrap();
    assert_eq!(frames[hsr]["module"], "hsr");
    assert_eq!(frames[hsr]["kind"], "module");
    let stacks = v["stacks"].as_array().unwrap();
    let nc = stacks.iter().find(|s| s["comm"] == "nc").unwrap();
    assert_eq!(nc["count"], 60);
    assert_eq!(nc["event"], "cpu-clock");
    assert_eq!(
        nc["frames"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_u64()
            .unwrap() as usize,
        hsr,
        "leaf last"
    );
}

#[test]
fn flamegraph_svg_has_every_frame_and_distinct_colours() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    let svg = dir.path().join("out.svg");
    let out = netprof(&[
        "report",
        "-i",
        file.to_str().unwrap(),
        "--flame",
        svg.to_str().unwrap(),
        "--title",
        "HSR run",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.contains("HSR run"));
    assert!(text.contains("hsr_forward_skb [hsr]"));
    assert!(text.contains("bpf_prog_6deef7357e7b4530_xdp_count [bpf]"));
    // Kernel, module and BPF frames in their own colours.
    for rgb in ["rgb(235,140,60)", "rgb(170,110,220)", "rgb(90,190,90)"] {
        assert!(text.contains(rgb), "{rgb} missing");
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&svg).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // --icicle draws the same frames top-down.
    let icicle = dir.path().join("icicle.svg");
    let out = netprof(&[
        "report",
        "-i",
        file.to_str().unwrap(),
        "--flame",
        icicle.to_str().unwrap(),
        "--icicle",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let down = std::fs::read_to_string(&icicle).unwrap();
    assert!(down.contains("hsr_forward_skb [hsr]"));
    assert!(down.contains("var inverted = true;"), "not drawn top-down");
    assert!(text.contains("var inverted = false;"));
}

#[test]
fn unknown_addresses_never_get_a_wrong_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Synth::new();
    s.comm(300, "app");
    // A kernel address far from any symbol, a user address in no mapping, and
    // one in a mapped file that does not exist here.
    s.mmap(300, 0x400000, 0x500000, "/nonexistent/libgone.so");
    s.samples(5, 300, 0, &[0xffffffffa0000000], &[0x400123, 0x7777]);
    let file = s.write_in(dir.path(), "hex.data");
    let text = stdout(&netprof(&[
        "report",
        "-i",
        file.to_str().unwrap(),
        "--folded",
    ]));
    // The user address in no mapping is where the unwinding went astray:
    // the chain ends there in [unknown], as perf shows it. The frame in a
    // file that is gone is named by file and offset (stable across runs,
    // unlike the address), the kernel address stays hex.
    assert_eq!(
        text.trim_end(),
        "app;[unknown];libgone.so+0x123;0xffffffffa0000000 5"
    );
    assert_cut_chains(&file, 5, "; 5 samples had");
}

/// The report's JSON counts `cut` (in the event's unit) whose user chain
/// was cut, and its header says so, beginning with `says`.
fn assert_cut_chains(file: &std::path::Path, cut: u64, says: &str) {
    let json = netprof(&["report", "-i", file.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["truncated_user_samples"], cut, "{v}");
    let header = stdout(&netprof(&["report", "-i", file.to_str().unwrap()]));
    let first = header.lines().next().unwrap();
    assert!(
        first.contains(&format!("{says} their user call chain cut at [unknown]")),
        "{header}"
    );
}

#[test]
fn user_frames_are_named_after_the_mapping_of_their_time() {
    // The process maps one library, then another over the same range: each
    // sample is named from what was mapped when it was taken.
    let dir = tempfile::tempdir().unwrap();
    let mut s = Synth::new();
    s.comm(300, "app")
        .mmap(300, 0x400000, 0x500000, "/nonexistent/liba.so")
        .samples(2, 300, 0, &[], &[0x400123]);
    s.mmap_later(300, 0x400000, 0x500000, 0x1000, "/nonexistent/libb.so")
        .samples(3, 300, 0, &[], &[0x400123]);
    let file = s.write_in(dir.path(), "remapped.data");
    let folded = stdout(&netprof(&[
        "report",
        "-i",
        file.to_str().unwrap(),
        "--folded",
    ]));
    let mut lines: Vec<&str> = folded.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        ["app;liba.so+0x123 2", "app;libb.so+0x1123 3"],
        "{folded}"
    );
}

#[test]
fn processes_running_the_same_code_elsewhere_share_one_stack() {
    // Two processes load one library at other addresses (ASLR): the same
    // call path in each is one stack, counted once and named once; a path
    // through other offsets stays apart.
    let dir = tempfile::tempdir().unwrap();
    let lib = "/nonexistent/libshared.so";
    let mut s = Synth::new();
    s.comm(300, "one").comm(301, "two");
    s.mmap(300, 0x7f0000000000, 0x7f0000100000, lib)
        .mmap(301, 0x7f5500000000, 0x7f5500100000, lib);
    s.samples(
        2,
        300,
        0,
        &[k("vfs_read")],
        &[0x7f0000000100, 0x7f0000000200],
    );
    s.samples(
        3,
        301,
        1,
        &[k("vfs_read")],
        &[0x7f5500000100, 0x7f5500000200],
    );
    s.samples(
        4,
        301,
        1,
        &[k("vfs_read")],
        &[0x7f5500000100, 0x7f5500000300],
    );
    let file = s.write_in(dir.path(), "aslr.data");
    let bytes = std::fs::read(&file).unwrap();
    let filter = netprof::model::profile::Filter::default();
    let profile = netprof::model::profile::Profile::from_bytes(&bytes, &filter).unwrap();
    assert_eq!(profile.stacks.len(), 2, "{:?}", profile.stacks);
    let counts: Vec<(i32, u32, u64)> = profile
        .groups
        .iter()
        .map(|g| (g.pid, g.stack, g.count))
        .collect();
    let shared = counts.iter().find(|c| c.0 == 300).unwrap().1;
    assert!(counts.contains(&(301, shared, 3)), "{counts:?}");
    assert!(counts
        .iter()
        .any(|&(pid, stack, n)| pid == 301 && stack != shared && n == 4));
    let folded = stdout(&netprof(&[
        "report",
        "-i",
        file.to_str().unwrap(),
        "--folded",
    ]));
    assert!(
        folded.contains("one;libshared.so+0x1ff;libshared.so+0x100;vfs_read 2"),
        "{folded}"
    );
    assert!(
        folded.contains("two;libshared.so+0x2ff;libshared.so+0x100;vfs_read 4"),
        "{folded}"
    );
}

#[test]
fn impossible_user_frames_end_the_chain_whatever_follows() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Synth::new();
    s.comm(300, "app")
        .mmap(300, 0x400000, 0x500000, "/bin/true");
    // Leaf first: two frames in the binary, then garbage an unwinder read
    // off the stack (a non-canonical value, then one in no mapping), then
    // what looks like code again: all of it after the first is dropped.
    s.samples(
        3,
        300,
        0,
        &[],
        &[0x401000, 0x402000, 0x6623f330ed79c6c5, 0x7777, 0x403000],
    );
    s.samples(2, 300, 0, &[], &[0x401000, 0x402000, 0x4b154ecef74cce78]);
    let file = s.write_in(dir.path(), "garbage.data");
    let folded = stdout(&netprof(&[
        "report",
        "-i",
        file.to_str().unwrap(),
        "--folded",
    ]));
    let lines: Vec<&str> = folded.lines().collect();
    assert_eq!(lines.len(), 1, "both stacks are one once cut: {folded}");
    assert!(
        lines[0].starts_with("app;[unknown];") && lines[0].ends_with(" 5"),
        "{folded}"
    );
    assert!(
        !folded.contains("0x6623") && !folded.contains("0x4b15"),
        "{folded}"
    );
}

#[test]
fn module_frames_are_named_from_the_snapshot_after_the_module_is_gone() {
    // The fixture's snapshot holds [hsr]; this machine has no hsr module at
    // all, so a name can only come from the file.
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    let live = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    assert!(
        !live.contains("[hsr]"),
        "test assumes hsr is not loaded here"
    );
    let text = stdout(&netprof(&[
        "report",
        "-i",
        file.to_str().unwrap(),
        "--folded",
        "--module",
        "hsr",
    ]));
    assert!(text.contains("hsr_forward_skb [hsr]"), "{text}");
}

#[inline(never)]
pub fn user_frame_marker_for_netprof_tests() -> u64 {
    std::hint::black_box(42)
}

/// This test binary's executable mapping that holds `addr`: (start, end, pgoff, path).
fn own_mapping(addr: u64) -> (u64, u64, u64, String) {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (range, perms, off) = (f[0], f[1], f[2]);
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        if perms.contains('x') && a <= addr && addr < b {
            return (
                a,
                b,
                u64::from_str_radix(off, 16).unwrap(),
                f[5].to_string(),
            );
        }
    }
    panic!("no mapping for {addr:#x}");
}

#[test]
fn user_frames_are_named_from_the_file_unless_its_build_id_changed() {
    let addr = user_frame_marker_for_netprof_tests as *const () as u64;
    assert_eq!(user_frame_marker_for_netprof_tests(), 42);
    let (start, end, pgoff, path) = own_mapping(addr);
    let real_id = blazesym::helper::read_elf_build_id(&path)
        .unwrap()
        .map(|c| c.into_owned());
    let dir = tempfile::tempdir().unwrap();

    let mut s = Synth::new();
    s.comm(400, "app")
        .mmap_at(400, start, end, pgoff, &path)
        .samples(3, 400, 0, &[], &[addr]);
    if let Some(id) = &real_id {
        s.build_ids.push(netprof::perfdata::writer::BuildId {
            kernel: false,
            path: path.clone(),
            id: id.clone(),
        });
    }
    let file = s.write_in(dir.path(), "same.data");
    let text = stdout(&netprof(&[
        "report",
        "-i",
        file.to_str().unwrap(),
        "--folded",
    ]));
    assert!(
        text.contains("user_frame_marker_for_netprof_tests 3"),
        "{text}"
    );

    let mut s = Synth::new();
    s.comm(400, "app")
        .mmap_at(400, start, end, pgoff, &path)
        .samples(3, 400, 0, &[], &[addr]);
    s.build_ids.push(netprof::perfdata::writer::BuildId {
        kernel: false,
        path: path.clone(),
        id: vec![0xab; 20],
    });
    let file = s.write_in(dir.path(), "changed.data");
    let text = stdout(&netprof(&[
        "report",
        "-i",
        file.to_str().unwrap(),
        "--folded",
    ]));
    assert!(
        !text.contains("user_frame_marker"),
        "named from a file with another build id: {text}"
    );
    // Unnamed, by its file and offset instead.
    let short = path.rsplit('/').next().unwrap();
    assert!(text.contains(&format!("app;{short}+0x")), "{text}");
}

#[test]
fn fixed_period_samples_weigh_their_period_and_frequency_samples_one() {
    let dir = tempfile::tempdir().unwrap();
    let stack = [k("read_zero"), k("vfs_read")];
    let total = |s: &Synth, name: &str| {
        let file = s.write_in(dir.path(), name);
        let out = netprof(&["report", "-i", file.to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["total_samples"].as_u64().unwrap()
    };
    // Sampled at a frequency: the period is the kernel's guess, each sample is one.
    let mut s = Synth::new();
    s.comm(200, "dd");
    s.period = 1_000_000;
    s.samples(3, 200, 0, &stack, &[]);
    assert_eq!(total(&s, "freq.data"), 3);
    // A fixed period (record --bpf counts, probe hits): each sample stands for
    // its period; bpf-output samples carry 0 and count one.
    let mut s = Synth::new();
    s.rate = netprof::perfdata::attr::Rate::Period(1);
    s.comm(200, "dd");
    s.period = 7;
    s.samples(3, 200, 0, &stack, &[]);
    s.period = 0;
    s.samples(2, 200, 0, &stack, &[]);
    assert_eq!(total(&s, "counted.data"), 3 * 7 + 2);
}

/// Off-CPU time of a sleeping thread (S) as netprof writes it: a fixed
/// period of 1, each sample's period the nanoseconds away (5 us).
fn sleeper() -> Synth {
    let mut s = Synth::new();
    s.rate = netprof::perfdata::attr::Rate::Period(1);
    s.event = "offcpu-time:S".to_string();
    s.comm(200, "sleeper");
    s.period = 5_000;
    s
}

#[test]
fn off_cpu_time_of_one_state_is_still_reported_as_offcpu_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sleeper();
    s.samples(2, 200, 0, &[k("vfs_read"), k("ksys_read")], &[]);
    let file = s.write_in(dir.path(), "sleeps.data");
    let out = netprof(&["report", "-i", file.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // A run that saw only sleeps (S) names its event as one that also saw
    // preemptions (R) does: what the report shows does not hang on the
    // states a run happened to see.
    assert_eq!(v["event"], "offcpu-time", "{v}");
    assert_eq!(v["total_samples"], 10_000, "{v}");
}

/// Off-CPU samples weigh nanoseconds: what had its user chain cut is told
/// in time, of the off-CPU event alone (it once showed the nanoseconds as
/// a count of samples, under every event's header).
#[test]
fn off_cpu_time_with_cut_user_chains_is_told_in_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = sleeper();
    s.mmap(200, 0x400000, 0x500000, "/nonexistent/sleeper");
    // The user chain leaves the mapped code: cut at [unknown].
    s.samples(2, 200, 0, &[k("vfs_read")], &[0x400123, 0x7777]);
    s.samples(1, 200, 0, &[k("vfs_read")], &[0x400123]);
    let file = s.write_in(dir.path(), "sleeps.data");
    assert_cut_chains(&file, 10_000, "; 0.000010 s of it had");
}

#[test]
fn the_same_file_gives_the_same_json_on_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture(dir.path());
    let json = || {
        let out = netprof(&["report", "-i", file.to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        out.stdout
    };
    // The frame table's order included: it numbers the stacks' frames.
    let first = json();
    for _ in 0..3 {
        assert!(json() == first, "the JSON changed from one run to the next");
    }
}

#[test]
fn samples_over_many_rounds_and_batches_count_exactly() {
    // 45,000 samples in 30 rounds: the records reach the counting thread in
    // a dozen batches, reused, and digested by whichever thread is behind;
    // every sample must count once, whatever the split.
    let dir = tempfile::tempdir().unwrap();
    let mut s = Synth::new();
    s.comm(100, "nc").comm(200, "dd");
    let finished_round = vec![68, 0, 0, 0, 0, 0, 8, 0];
    let receive = [
        k("hsr_forward_skb"),
        k("hsr_handle_frame"),
        k("__netif_receive_skb"),
        k("net_rx_action"),
    ];
    let read = [k("read_zero"), k("vfs_read"), k("ksys_read")];
    for round in 0..30 {
        s.samples(1000, 100, round % 2, &receive, &[]);
        s.samples(500, 200, (round + 1) % 2, &read, &[]);
        s.raw(finished_round.clone());
    }
    let file = s.write_in(dir.path(), "many.data");
    let folded = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["report", "-i", file.to_str().unwrap(), "--folded"];
        args.extend_from_slice(extra);
        let out = netprof(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).lines().map(str::to_string).collect()
    };
    assert_eq!(
        folded(&[]),
        [
            "dd;ksys_read;vfs_read;read_zero 15000",
            "nc;net_rx_action;__netif_receive_skb;hsr_handle_frame [hsr];hsr_forward_skb [hsr] 30000",
        ]
    );
    // Per CPU, as the samples alternated.
    assert_eq!(
        folded(&["--cpu", "1"]),
        [
            "dd;ksys_read;vfs_read;read_zero 7500",
            "nc;net_rx_action;__netif_receive_skb;hsr_handle_frame [hsr];hsr_forward_skb [hsr] 15000",
        ]
    );
}
