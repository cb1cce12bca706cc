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
use std::ffi::CStr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use libbpf_rs::libbpf_sys;
use libbpf_rs::query::{LinkInfoIter, LinkTypeInfo, MapInfoIter, ProgInfoIter};
use serde::Serialize;

use super::{perf_events, tc};
use crate::error::{Error, Result};

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
    /// interfaces of this network namespace, tc cls_bpf filters, sockmaps,
    /// perf events: kprobes, tracepoints, uprobes).
    pub attached: Vec<String>,
}

/// A program's runs and run time, as the kernel's statistics count them
/// (over one interval of a measurement, or since they were switched on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    pub runs: u64,
    pub ns: u64,
}

/// Per program id, its runs in each interval of a measurement.
pub type Intervals = HashMap<u32, Vec<RunStats>>;

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
                kind: program_type_name(p.ty),
                symbol: format!("bpf_prog_{tag}_{name}"),
                name,
                tag,
                attached: attachments
                    .get(&p.id)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default(),
            }
        })
        .collect();
    programs.sort_by_key(|p| p.id);
    if let Some(missing) = ids.iter().find(|id| !programs.iter().any(|p| p.id == **id)) {
        return Err(Error::not_found(format!(
            "no BPF program with id {missing} is loaded; `netprof bpf` lists the loaded ones"
        )));
    }
    Ok(programs)
}

/// How long a measurement runs: it ends at the first of these.
pub struct Until<'a> {
    pub duration: Option<Duration>,
    /// Set by the caller's signal handler.
    pub stop: &'a AtomicBool,
}

/// Measures the runs of the programs `ids` (every program, those loaded
/// meanwhile included, when empty) until `until` or `finished` says so,
/// reading the kernel's statistics every `interval`; `on_start` runs once
/// they are on (a command netprof runs starts then). Returns each
/// program's runs per interval and the time measured.
pub fn measure(
    ids: &[u32],
    until: Until,
    interval: Duration,
    on_start: impl FnOnce() -> Result<()>,
    mut finished: impl FnMut() -> bool,
) -> Result<(Intervals, Duration)> {
    let _stats_on = enable_stats()?;
    let wanted: BTreeSet<u32> = ids.iter().copied().collect();
    let start = Instant::now();
    let mut previous = run_stats(&wanted);
    on_start()?;
    let mut intervals = Intervals::new();
    let over = |start: Instant| until.duration.is_some_and(|d| start.elapsed() >= d);
    while !over(start) && !until.stop.load(Ordering::SeqCst) && !finished() {
        let left = until
            .duration
            .map_or(interval, |d| d.saturating_sub(start.elapsed()));
        std::thread::sleep(interval.min(left));
        let now = run_stats(&wanted);
        for (id, s) in &now {
            // A program loaded during the measurement starts from zero.
            let before = previous.get(id).copied().unwrap_or_default();
            intervals.entry(*id).or_default().push(RunStats {
                runs: s.runs.saturating_sub(before.runs),
                ns: s.ns.saturating_sub(before.ns),
            });
        }
        previous = now;
    }
    Ok((intervals, start.elapsed()))
}

/// Run statistics of the `wanted` programs (all when empty).
fn run_stats(wanted: &BTreeSet<u32>) -> HashMap<u32, RunStats> {
    ProgInfoIter::default()
        .filter(|p| wanted.is_empty() || wanted.contains(&p.id))
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
        return Err(Error::io(
            "cannot list BPF programs (it needs root: CAP_SYS_ADMIN)",
            &e,
        ));
    }
    Ok(())
}

fn enable_stats() -> Result<OwnedFd> {
    // SAFETY: plain syscall wrapper; a non-negative return is a new descriptor we own.
    let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
    if fd < 0 {
        let e = std::io::Error::from_raw_os_error(-fd);
        return Err(Error::io(
            "cannot switch on the kernel's BPF statistics (it needs root, CAP_SYS_ADMIN, and Linux 5.8)",
            &e,
        ));
    }
    // SAFETY: fd is a fresh descriptor returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Where each program is attached, by program id.
fn attachments() -> HashMap<u32, BTreeSet<String>> {
    let interfaces = interfaces();
    let mut found: HashMap<u32, BTreeSet<String>> = HashMap::new();
    let places = xdp_attachments(&interfaces)
        .into_iter()
        .chain(LinkInfoIter::default().filter_map(|link| {
            let place = describe_link(&link.info, &interfaces)?;
            Some((link.prog_id, place))
        }))
        .chain(sockmap_attachments())
        .chain(tc_attachments(&interfaces))
        .chain(perf_events::attachments());
    for (id, place) in places {
        found.entry(id).or_default().insert(place);
    }
    found
}

/// XDP on this namespace's interfaces, attached by link or by netlink, with
/// its mode (through libbpf-sys: libbpf-rs has no wrapper for the query).
fn xdp_attachments(interfaces: &BTreeMap<u32, String>) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for (&ifindex, name) in interfaces {
        // SAFETY: opts is zeroed with its size set, as libbpf requires.
        let mut opts: libbpf_sys::bpf_xdp_query_opts = unsafe { std::mem::zeroed() };
        opts.sz = std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as _;
        // SAFETY: opts lives across the call.
        if unsafe { libbpf_sys::bpf_xdp_query(ifindex as i32, 0, &mut opts) } != 0 {
            continue;
        }
        for (id, mode) in [
            (opts.drv_prog_id, "driver"),
            (opts.skb_prog_id, "generic"),
            (opts.hw_prog_id, "offload"),
        ] {
            if id != 0 {
                found.push((id, format!("xdp ({mode}) on {name}")));
            }
        }
    }
    found
}

/// cls_bpf filters on this namespace's interfaces (tc programs attached
/// without a link).
fn tc_attachments(interfaces: &BTreeMap<u32, String>) -> Vec<(u32, String)> {
    tc::filters(interfaces.keys().copied())
        .into_iter()
        .map(|(ifindex, filter)| (filter.program, filter.describe(&interfaces[&ifindex])))
        .collect()
}

/// Where a BPF link attaches its program; `None` for XDP links on this
/// namespace's interfaces, which [`xdp_attachments`] lists with their mode.
fn describe_link(info: &LinkTypeInfo, interfaces: &BTreeMap<u32, String>) -> Option<String> {
    let interface = |ifindex: u32| {
        interfaces
            .get(&ifindex)
            .cloned()
            .unwrap_or_else(|| format!("ifindex {ifindex} (another network namespace)"))
    };
    let place = match info {
        // Listed by xdp_attachments with its mode, unless in another namespace.
        LinkTypeInfo::Xdp(x) if interfaces.contains_key(&x.ifindex) => return None,
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
        // Listed from the perf events themselves, on every kernel.
        LinkTypeInfo::PerfEvent(_) => return None,
        LinkTypeInfo::Iter(i) => format!("iterator {}", i.target_name.to_string_lossy()),
        LinkTypeInfo::StructOps(s) => format!("struct_ops map {}", s.map_id),
        LinkTypeInfo::Unknown => "link".into(),
    };
    Some(place)
}

/// sk_skb and sk_msg programs attached to sockmaps without a link (through
/// libbpf-sys: libbpf-rs has no wrapper for the query).
fn sockmap_attachments() -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for map in MapInfoIter::default() {
        if !matches!(
            map.ty,
            libbpf_rs::MapType::Sockmap | libbpf_rs::MapType::Sockhash
        ) {
            continue;
        }
        let Ok(handle) = libbpf_rs::MapHandle::from_map_id(map.id) else {
            continue;
        };
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
                    std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&handle)),
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

/// A program type as the kernel and bpftool spell it: `sched_cls`, `xdp`.
fn program_type_name(t: libbpf_rs::ProgramType) -> String {
    // SAFETY: libbpf returns a static string, or NULL for unknown types.
    let name = unsafe { libbpf_sys::libbpf_bpf_prog_type_str(t as u32) };
    static_name(name)
}

/// An attach type as the kernel and bpftool spell it: `tcx_ingress`.
fn attach_type(t: &libbpf_rs::ProgramAttachType) -> String {
    // SAFETY: libbpf returns a static string, or NULL for unknown types.
    let name = unsafe { libbpf_sys::libbpf_bpf_attach_type_str(t.clone() as u32) };
    static_name(name)
}

fn static_name(name: *const std::os::raw::c_char) -> String {
    if name.is_null() {
        return "unknown".into();
    }
    // SAFETY: a non-NULL result points to a NUL-terminated static string.
    unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_follow_the_kernel() {
        assert_eq!(
            program_type_name(libbpf_rs::ProgramType::SchedCls),
            "sched_cls"
        );
        assert_eq!(
            program_type_name(libbpf_rs::ProgramType::CgroupSockAddr),
            "cgroup_sock_addr"
        );
        assert_eq!(program_type_name(libbpf_rs::ProgramType::Xdp), "xdp");
        assert_eq!(
            attach_type(&libbpf_rs::ProgramAttachType::TcxIngress),
            "tcx_ingress"
        );
    }
}
