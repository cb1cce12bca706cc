//! `netprof bpf`: the BPF programs loaded in the kernel, where each is
//! attached, and what each run costs.
//!
//! Cost comes from the kernel's own BPF statistics (run count and run time
//! per program). They are switched on with the BPF_ENABLE_STATS command,
//! which returns a file descriptor: statistics stay on while netprof holds
//! it and go off when it is closed — at the end, on Ctrl-C, or when the
//! process is killed — and the `kernel.bpf_stats_enabled` sysctl, which
//! another tool may have set, is neither read nor changed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use libbpf_rs::libbpf_sys;
use libbpf_rs::query::{LinkInfoIter, LinkTypeInfo, MapInfoIter, PerfEventType, ProgInfoIter};
use serde::Serialize;

/// One loaded program.
#[derive(Clone, Debug, Serialize)]
pub struct Program {
    pub id: u32,
    /// Kernel name of the program type: xdp, sched_cls, kprobe, sk_skb, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    /// Hex of the program's 8-byte tag.
    pub tag: String,
    /// How stack frames name it: `bpf_prog_<tag>_<name>` in module [bpf].
    pub symbol: String,
    /// Where it is attached, as far as the kernel tells (links, XDP on the
    /// interfaces of this network namespace, sockmaps).
    pub attached: Vec<String>,
    /// Measured cost, with `--duration`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
}

/// A program's runs over the measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Cost {
    pub runs: u64,
    pub runs_per_second: f64,
    /// Time per run over the whole measurement.
    pub mean_ns: f64,
    /// Time per run in each interval with runs: median and quartiles.
    pub median_ns: f64,
    pub p25_ns: f64,
    pub p75_ns: f64,
    /// Intervals with runs (the median's sample size).
    pub intervals: usize,
}

#[derive(Clone, Copy)]
struct RunStats {
    runs: u64,
    ns: u64,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// The loaded programs, optionally only `ids`, with where they are attached.
pub fn list(ids: &[u32]) -> Result<Vec<Program>> {
    check_permission()?;
    let attachments = attachments();
    let mut programs: Vec<Program> = ProgInfoIter::default()
        .filter(|p| ids.is_empty() || ids.contains(&p.id))
        .map(|p| {
            let name = p.name.to_string_lossy().into_owned();
            let tag: String = p.tag.0.iter().map(|b| format!("{b:02x}")).collect();
            Program {
                id: p.id,
                kind: snake_case(&format!("{:?}", p.ty)),
                symbol: format!("bpf_prog_{tag}_{name}"),
                name,
                tag,
                attached: attachments
                    .get(&p.id)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default(),
                cost: None,
            }
        })
        .collect();
    programs.sort_by_key(|p| p.id);
    if let Some(missing) = ids.iter().find(|id| !programs.iter().any(|p| p.id == **id)) {
        bail!("no BPF program with id {missing} is loaded; `netprof bpf` lists the loaded ones");
    }
    Ok(programs)
}

/// Measures each program's runs for `duration`, sampling the statistics
/// every `interval`; Ctrl-C ends the measurement early with what it has.
pub fn measure(programs: &mut [Program], duration: Duration, interval: Duration) -> Result<()> {
    let _stats_on = enable_stats()?;
    STOP.store(false, Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, request_stop as *const () as libc::sighandler_t) };
    }
    let wanted: BTreeSet<u32> = programs.iter().map(|p| p.id).collect();
    let start = Instant::now();
    let mut previous = run_stats(&wanted);
    // Per program, (runs, ns) of each interval.
    let mut intervals: HashMap<u32, Vec<RunStats>> = HashMap::new();
    while start.elapsed() < duration && !STOP.load(Ordering::SeqCst) {
        let left = duration.saturating_sub(start.elapsed());
        std::thread::sleep(interval.min(left));
        let now = run_stats(&wanted);
        for (id, s) in &now {
            // A program loaded during the measurement starts from zero.
            let before = previous
                .get(id)
                .copied()
                .unwrap_or(RunStats { runs: 0, ns: 0 });
            intervals.entry(*id).or_default().push(RunStats {
                runs: s.runs.saturating_sub(before.runs),
                ns: s.ns.saturating_sub(before.ns),
            });
        }
        previous = now;
    }
    let elapsed = start.elapsed().as_secs_f64().max(1e-9);
    for p in programs.iter_mut() {
        p.cost = Some(cost(intervals.get(&p.id).map_or(&[][..], |v| v), elapsed));
    }
    Ok(())
}

fn cost(intervals: &[RunStats], elapsed: f64) -> Cost {
    let runs: u64 = intervals.iter().map(|s| s.runs).sum();
    let ns: u64 = intervals.iter().map(|s| s.ns).sum();
    let mut per_run: Vec<f64> = intervals
        .iter()
        .filter(|s| s.runs > 0)
        .map(|s| s.ns as f64 / s.runs as f64)
        .collect();
    per_run.sort_by(f64::total_cmp);
    Cost {
        runs,
        runs_per_second: runs as f64 / elapsed,
        mean_ns: if runs > 0 {
            ns as f64 / runs as f64
        } else {
            0.0
        },
        median_ns: quantile(&per_run, 0.5),
        p25_ns: quantile(&per_run, 0.25),
        p75_ns: quantile(&per_run, 0.75),
        intervals: per_run.len(),
    }
}

/// Linear interpolation between the closest ranks of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => {
            let pos = q * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

fn run_stats(wanted: &BTreeSet<u32>) -> HashMap<u32, RunStats> {
    ProgInfoIter::default()
        .filter(|p| wanted.contains(&p.id))
        .map(|p| {
            (
                p.id,
                RunStats {
                    runs: p.run_cnt,
                    ns: p.run_time_ns,
                },
            )
        })
        .collect()
}

fn check_permission() -> Result<()> {
    let mut next = 0u32;
    // SAFETY: plain syscall wrapper writing one u32.
    let rc = unsafe { libbpf_sys::bpf_prog_get_next_id(0, &mut next) };
    if rc < 0 && rc != -libc::ENOENT {
        let e = std::io::Error::from_raw_os_error(-rc);
        bail!("cannot list BPF programs ({e}); it needs root (CAP_SYS_ADMIN)");
    }
    Ok(())
}

fn enable_stats() -> Result<OwnedFd> {
    // SAFETY: plain syscall wrapper; a non-negative return is a new descriptor we own.
    let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
    if fd < 0 {
        let e = std::io::Error::from_raw_os_error(-fd);
        bail!("cannot switch on the kernel's BPF statistics ({e}); it needs root (CAP_SYS_ADMIN) and Linux 5.8");
    }
    // SAFETY: fd is a fresh descriptor returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Where each program is attached, by program id.
fn attachments() -> HashMap<u32, BTreeSet<String>> {
    let mut found: HashMap<u32, BTreeSet<String>> = HashMap::new();
    let interfaces = interfaces();
    // XDP on this namespace's interfaces, attached by link or by netlink.
    for (&ifindex, name) in &interfaces {
        // SAFETY: opts is zeroed with its size set, as libbpf requires.
        let mut opts: libbpf_sys::bpf_xdp_query_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _;
        // SAFETY: opts lives across the call.
        if unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) } == 0 {
            for (id, mode) in [
                (opts.drv_prog_id, "driver"),
                (opts.skb_prog_id, "generic"),
                (opts.hw_prog_id, "offload"),
            ] {
                if id != 0 {
                    found
                        .entry(id)
                        .or_default()
                        .insert(format!("xdp ({mode}) on {name}"));
                }
            }
        }
    }
    let interface = |ifindex: u32| {
        interfaces
            .get(&ifindex)
            .cloned()
            .unwrap_or_else(|| format!("ifindex {ifindex} (another network namespace)"))
    };
    for link in LinkInfoIter::default() {
        let place = match link.info {
            // Already found above with its mode, unless in another namespace.
            LinkTypeInfo::Xdp(x) if interfaces.contains_key(&x.ifindex) => continue,
            LinkTypeInfo::Xdp(x) => format!("xdp on {}", interface(x.ifindex)),
            LinkTypeInfo::Tcx(t) => format!(
                "tc {} on {}",
                attach_type(&t.attach_type),
                interface(t.ifindex)
            ),
            LinkTypeInfo::Netkit(n) => format!(
                "netkit {} on {}",
                attach_type(&n.attach_type),
                interface(n.ifindex)
            ),
            LinkTypeInfo::Cgroup(c) => format!(
                "cgroup {} (cgroup id {})",
                attach_type(&c.attach_type),
                c.cgroup_id
            ),
            LinkTypeInfo::NetNs(n) => format!(
                "netns {} (netns inode {})",
                attach_type(&n.attach_type),
                n.ino
            ),
            LinkTypeInfo::SockMap(s) => {
                format!("{} on map {}", attach_type(&s.attach_type), s.map_id)
            }
            LinkTypeInfo::Netfilter(n) => format!(
                "netfilter family {} hook {} priority {}",
                n.protocol_family, n.hooknum, n.priority
            ),
            LinkTypeInfo::RawTracepoint(r) => format!("raw_tracepoint {}", r.name),
            LinkTypeInfo::Tracing(t) => format!(
                "{} (btf id {})",
                attach_type(&t.attach_type),
                t.target_btf_id
            ),
            LinkTypeInfo::KprobeMulti(k) => format!(
                "{} on {} functions",
                if k.flags & 1 != 0 {
                    "kretprobe.multi"
                } else {
                    "kprobe.multi"
                },
                k.count
            ),
            LinkTypeInfo::UprobeMulti(u) => format!("uprobe.multi on {} offsets", u.count),
            LinkTypeInfo::PerfEvent(p) => match p.event_type {
                PerfEventType::Tracepoint { name, .. } => {
                    format!("tracepoint {}", name.unwrap_or_default().to_string_lossy())
                }
                PerfEventType::Kprobe {
                    func_name,
                    is_retprobe,
                    ..
                } => format!(
                    "{} {}",
                    if is_retprobe { "kretprobe" } else { "kprobe" },
                    func_name.unwrap_or_default().to_string_lossy()
                ),
                PerfEventType::Uprobe {
                    file_name, offset, ..
                } => {
                    format!(
                        "uprobe {}+{offset:#x}",
                        file_name.unwrap_or_default().to_string_lossy()
                    )
                }
                PerfEventType::Event {
                    event_type, config, ..
                } => {
                    format!("perf event type {event_type} config {config}")
                }
                PerfEventType::Unknown(_) => "perf event".into(),
            },
            LinkTypeInfo::Iter(i) => format!("iterator {}", i.target_name.to_string_lossy()),
            LinkTypeInfo::StructOps(s) => format!("struct_ops map {}", s.map_id),
            LinkTypeInfo::Unknown => "link".into(),
        };
        found.entry(link.prog_id).or_default().insert(place);
    }
    for (id, place) in sockmap_attachments() {
        found.entry(id).or_default().insert(place);
    }
    found
}

/// sk_skb and sk_msg programs attached to sockmaps without a link.
fn sockmap_attachments() -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for map in MapInfoIter::default() {
        if !matches!(
            map.ty,
            libbpf_rs::MapType::Sockmap | libbpf_rs::MapType::Sockhash
        ) {
            continue;
        }
        // SAFETY: plain syscall wrapper; a non-negative return is a descriptor we own.
        let fd = unsafe { libbpf_sys::bpf_map_get_fd_by_id(map.id) };
        if fd < 0 {
            continue;
        }
        // SAFETY: fd is a fresh descriptor returned to us.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        for (attach, what) in [
            (libbpf_sys::BPF_SK_SKB_STREAM_PARSER, "sk_skb stream_parser"),
            (
                libbpf_sys::BPF_SK_SKB_STREAM_VERDICT,
                "sk_skb stream_verdict",
            ),
            (libbpf_sys::BPF_SK_SKB_VERDICT, "sk_skb verdict"),
            (libbpf_sys::BPF_SK_MSG_VERDICT, "sk_msg verdict"),
        ] {
            let mut ids = [0u32; 8];
            let mut count = ids.len() as u32;
            // SAFETY: ids has room for `count` ids.
            let rc = unsafe {
                libbpf_sys::bpf_prog_query(
                    std::os::fd::AsRawFd::as_raw_fd(&fd),
                    attach,
                    0,
                    std::ptr::null_mut(),
                    ids.as_mut_ptr(),
                    &mut count,
                )
            };
            if rc == 0 {
                for &id in &ids[..(count as usize).min(ids.len())] {
                    let name = map.name.to_string_lossy();
                    found.push((id, format!("{what} on map {} ({name})", map.id)));
                }
            }
        }
    }
    found
}

/// This network namespace's interfaces by index.
fn interfaces() -> BTreeMap<u32, String> {
    let mut found = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/sys/class/net") else {
        return found;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Ok(index) = std::fs::read_to_string(entry.path().join("ifindex")) {
            if let Ok(index) = index.trim().parse() {
                found.insert(index, name);
            }
        }
    }
    found
}

fn attach_type(t: &libbpf_rs::ProgramAttachType) -> String {
    snake_case(&format!("{t:?}"))
}

/// `SchedCls` -> `sched_cls`, as the kernel and bpftool spell types.
fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The table `netprof bpf` prints.
pub fn render_table(programs: &[Program], out: &mut impl std::io::Write) -> std::io::Result<()> {
    let measured = programs.iter().any(|p| p.cost.is_some());
    write!(
        out,
        "{:>6}  {:<16} {:<16} {:<16}",
        "ID", "TYPE", "NAME", "TAG"
    )?;
    if measured {
        write!(out, " {:>12} {:>24}", "RUNS/S", "NS/RUN median ± IQR")?;
    }
    writeln!(out, "  ATTACHED TO")?;
    for p in programs {
        write!(
            out,
            "{:>6}  {:<16} {:<16} {:<16}",
            p.id, p.kind, p.name, p.tag
        )?;
        if let Some(c) = &p.cost {
            let per_run = if c.intervals > 0 {
                format!("{:.0} ± {:.0}", c.median_ns, c.p75_ns - c.p25_ns)
            } else {
                "-".into()
            };
            write!(out, " {:>12.1} {:>24}", c.runs_per_second, per_run)?;
        }
        let attached = if p.attached.is_empty() {
            "-".to_string()
        } else {
            p.attached.join(", ")
        };
        writeln!(out, "  {attached}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_follow_the_kernel() {
        assert_eq!(snake_case("SchedCls"), "sched_cls");
        assert_eq!(snake_case("CgroupSockAddr"), "cgroup_sock_addr");
        assert_eq!(snake_case("Xdp"), "xdp");
    }

    #[test]
    fn cost_takes_median_and_quartiles_of_intervals_with_runs() {
        let s = |runs, ns| RunStats { runs, ns };
        let intervals = [
            s(10, 1000),
            s(0, 0),
            s(10, 2000),
            s(10, 3000),
            s(10, 4000),
            s(10, 5000),
        ];
        let c = cost(&intervals, 2.0);
        assert_eq!(c.runs, 50);
        assert_eq!(c.runs_per_second, 25.0);
        assert_eq!(c.intervals, 5);
        assert_eq!(c.median_ns, 300.0);
        assert_eq!((c.p25_ns, c.p75_ns), (200.0, 400.0));
        assert_eq!(c.mean_ns, 300.0);
        let none = cost(&[], 1.0);
        assert_eq!((none.runs, none.intervals, none.median_ns), (0, 0, 0.0));
    }
}
