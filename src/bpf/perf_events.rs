//! Where BPF programs sit on perf events (kprobes, tracepoints, uprobes),
//! found as bpftool finds them: every process's perf event descriptors,
//! each asked with BPF_TASK_FD_QUERY. This works on every kernel netprof
//! supports (the BPF link info of perf-event links says where only from
//! Linux 6.6), and finds the programs attached without a link
//! (PERF_EVENT_IOC_SET_BPF, as `record --bpf` does) too.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;

use libbpf_rs::libbpf_sys;

use crate::model::kernel_symbols::KernelSymbols;

/// Each program's places: `kprobe tcp_sendmsg`, or one line per kind for
/// many (`kprobe on 692 functions`), by program id.
pub fn attachments() -> Vec<(u32, String)> {
    let mut places: BTreeMap<(u32, &'static str), BTreeSet<String>> = BTreeMap::new();
    let mut symbols: Option<KernelSymbols> = None;
    for (pid, fd) in perf_event_descriptors() {
        let Some(found) = query(pid, fd) else {
            continue;
        };
        let target = match (found.name.is_empty(), found.kind) {
            (false, _) => found.name,
            (true, "kprobe" | "kretprobe") => {
                let symbols = symbols.get_or_insert_with(|| {
                    KernelSymbols::parse(crate::sys::kallsyms::read().unwrap_or_default())
                });
                symbols
                    .lookup(found.address)
                    .map_or_else(|| format!("{:#x}", found.address), |s| s.name.to_string())
            }
            (true, _) => format!("{:#x}", found.address),
        };
        places
            .entry((found.program, found.kind))
            .or_default()
            .insert(target);
    }
    places
        .into_iter()
        .map(|((program, kind), targets)| {
            let place = match targets.len() {
                1 => format!("{kind} {}", targets.into_iter().next().unwrap_or_default()),
                n if kind.starts_with('u') => format!("{kind} on {n} places"),
                n if kind == "tracepoint" => format!("{kind} on {n} events"),
                n => format!("{kind} on {n} functions"),
            };
            (program, place)
        })
        .collect()
}

/// One perf event's program and probe.
struct Found {
    program: u32,
    kind: &'static str,
    name: String,
    address: u64,
}

/// (pid, fd) of every perf event descriptor of every process.
fn perf_event_descriptors() -> Vec<(i32, i32)> {
    let mut found = Vec::new();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return found;
    };
    for process in processes.flatten() {
        let Some(pid) = process.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let is_perf_event = std::fs::read_link(fd.path())
                .is_ok_and(|target| target.as_os_str() == "anon_inode:[perf_event]");
            if let (true, Some(fd)) = (
                is_perf_event,
                fd.file_name().to_str().and_then(|n| n.parse().ok()),
            ) {
                found.push((pid, fd));
            }
        }
    }
    found
}

/// What the kernel says of process `pid`'s descriptor `fd`, if a BPF
/// program is attached to it.
fn query(pid: i32, fd: i32) -> Option<Found> {
    let mut name = [0u8; 256];
    let mut name_len = name.len() as u32;
    let (mut program, mut fd_type, mut offset, mut address) = (0u32, 0u32, 0u64, 0u64);
    // SAFETY: every out-pointer is valid for the call; name_len says how
    // much room `name` has.
    let rc = unsafe {
        libbpf_sys::bpf_task_fd_query(
            pid,
            fd,
            0,
            name.as_mut_ptr().cast(),
            &mut name_len,
            &mut program,
            &mut fd_type,
            &mut offset,
            &mut address,
        )
    };
    if rc != 0 || program == 0 {
        return None;
    }
    let kind = match fd_type {
        libbpf_sys::BPF_FD_TYPE_KPROBE => "kprobe",
        libbpf_sys::BPF_FD_TYPE_KRETPROBE => "kretprobe",
        libbpf_sys::BPF_FD_TYPE_TRACEPOINT | libbpf_sys::BPF_FD_TYPE_RAW_TRACEPOINT => "tracepoint",
        libbpf_sys::BPF_FD_TYPE_UPROBE => "uprobe",
        libbpf_sys::BPF_FD_TYPE_URETPROBE => "uretprobe",
        _ => "perf event",
    };
    let name = CStr::from_bytes_until_nul(&name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A uprobe is named by its file; the offset tells the place in it.
    let name = match (kind.starts_with('u'), name.is_empty()) {
        (true, false) => format!("{name}+{offset:#x}"),
        _ => name,
    };
    Some(Found {
        program,
        kind,
        name,
        address,
    })
}
