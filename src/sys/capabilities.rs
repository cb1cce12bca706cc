//! `netprof check`: what this kernel can do for netprof, each item with why
//! it matters, so a user learns in one command what will work here.

use std::path::Path;

use super::tracefs::Tracefs;

#[derive(serde::Serialize)]
pub struct Capability {
    pub name: &'static str,
    pub available: bool,
    /// What was found (a value or where it was looked for).
    pub detail: String,
    pub why: &'static str,
    /// What netprof does where the capability is missing.
    pub without: &'static str,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// What this kernel offers, item by item (tracefs is mounted if it is not,
/// as `record` would).
pub fn capabilities() -> Vec<Capability> {
    let tracefs = Tracefs::get();
    let tracing = tracefs.as_ref().ok().map(|t| t.root().to_path_buf());
    // Why there is none: unmounted, or not readable by this user.
    let no_tracing = match &tracefs {
        Err(e) if e.kind() == crate::error::ErrorKind::NoPermission => {
            "tracefs is not readable by this user (run as root)"
        }
        _ => "tracefs not mounted",
    };
    let mut all = probing(tracing.as_deref());
    all.extend(sampling_and_permissions(tracing.as_deref(), no_tracing));
    all
}

fn yes_no(b: bool, yes: &str, no: &str) -> String {
    if b { yes } else { no }.to_string()
}

/// Probes, modules, BTF and ftrace: what `probe`, `latency` and kprobe
/// events rest on.
fn probing(tracing: Option<&Path>) -> Vec<Capability> {
    let kernel_config = super::kconfig::enabled;
    let tracer_list =
        tracing.and_then(|t| std::fs::read_to_string(t.join("available_tracers")).ok());
    let kprobe_pmu = Path::new("/sys/bus/event_source/devices/kprobe/type").exists();
    let kprobe_events = tracing.is_some_and(|t| t.join("kprobe_events").exists());
    let retprobe = Path::new("/sys/bus/event_source/devices/kprobe/format/retprobe").exists();
    let btf = Path::new("/sys/kernel/btf/vmlinux").exists();
    let modules = Path::new("/proc/modules").exists();
    // A tracer may be listed yet refused (EPERM on its files); it works only
    // if its function list can be read.
    let ftrace_usable =
        tracing.is_some_and(|t| std::fs::File::open(t.join("available_filter_functions")).is_ok());
    let function_tracer = ftrace_usable
        && tracer_list
            .as_deref()
            .is_some_and(|t| t.split_whitespace().any(|x| x == "function"));
    let function_graph = tracer_list
        .as_deref()
        .is_some_and(|t| t.split_whitespace().any(|x| x == "function_graph"));
    // fentry/fexit need BTF and the ftrace direct-call trampolines.
    let fentry = btf
        && function_tracer
        && kernel_config("CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS").unwrap_or(true);
    let fprobe = kernel_config("CONFIG_FPROBE");
    let session = super::kconfig::has_kprobe_session();
    vec![
        Capability {
            name: "kprobes",
            available: kprobe_pmu || kprobe_events,
            detail: yes_no(kprobe_pmu, "kprobe PMU present", "no kprobe PMU (CONFIG_KPROBES off?)"),
            why: "netprof probe and record -e kprobe:FUNC attach to any function of vmlinux or a module",
            without: "probe commands say so; sampling, tracepoints, uprobes and netprof bpf still work",
        },
        Capability {
            name: "return probes",
            available: retprobe,
            detail: yes_no(retprobe, "kprobe PMU has the retprobe format", "no retprobe format"),
            why: "FUNC%return: stacks and latency at function exit",
            without: "entry probes only; latency cannot time calls",
        },
        Capability {
            name: "persistent probes (kprobe_events)",
            available: kprobe_events,
            detail: yes_no(kprobe_events, "tracefs kprobe_events present", "no kprobe_events in tracefs"),
            why: "netprof probe FUNC keeps a probe for later -e netprof:FUNC, as perf probe does",
            without: "-e kprobe:FUNC still probes for one recording (kprobe PMU)",
        },
        Capability {
            name: "multi-kprobe (fprobe)",
            available: fprobe.unwrap_or(false),
            detail: fprobe.map_or("kernel config not readable".into(), |b| yes_no(b, "CONFIG_FPROBE=y", "CONFIG_FPROBE off")),
            why: "attaching a glob of hundreds of functions at once",
            without: "one BPF link per function, with a progress line: slower to attach and to remove",
        },
        Capability {
            name: "kprobe sessions",
            available: fprobe.unwrap_or(false) && session,
            detail: match (fprobe.unwrap_or(false), session) {
                (false, _) => "needs multi-kprobe (fprobe)".into(),
                (true, true) => "the session kfuncs are in the kernel's BTF".into(),
                (true, false) => "no session kfuncs (before 6.10)".into(),
            },
            why: "latency and funcgraph time calls with one probe at entry and return on each function",
            without: "an entry and a return probe on each function (two multi-kprobe links, or a link pair each without fprobe): slower calls",
        },
        Capability {
            name: "loadable modules",
            available: modules,
            detail: yes_no(modules, "/proc/modules present", "CONFIG_MODULES off"),
            why: "profiling module code such as homa.ko or hsr.ko",
            without: "vmlinux functions only",
        },
        Capability {
            name: "BTF",
            available: btf,
            detail: yes_no(btf, "/sys/kernel/btf/vmlinux", "no /sys/kernel/btf/vmlinux"),
            why: "function arguments by name",
            without: "arguments by position only ($arg2:u32)",
        },
        Capability {
            name: "fentry/fexit",
            available: fentry,
            detail: yes_no(fentry, "BTF and ftrace direct calls", "needs BTF and the function tracer"),
            why: "BPF trampolines at function entry and exit, cheaper than kprobes",
            without: "nothing changes: netprof's latency times calls with kprobes",
        },
        Capability {
            name: "function tracer",
            available: function_tracer,
            detail: if !ftrace_usable {
                "refused by this kernel (its function list cannot be read)".into()
            } else {
                yes_no(function_graph, "function and function_graph tracers", "function tracer only")
            },
            why: "the list of traceable functions globs are checked against; function_graph",
            without: "globs take every kallsyms function not blacklisted; some may then be refused",
        },
    ]
}

/// Sampling events, tracepoints, and the settings that decide who may use
/// them and see kernel addresses.
fn sampling_and_permissions(tracing: Option<&Path>, no_tracing: &str) -> Vec<Capability> {
    let pmus = super::perf::pmus();
    let lockdown = read("/sys/kernel/security/lockdown").map(|l| {
        l.split_whitespace()
            .find(|w| w.starts_with('['))
            .unwrap_or("?")
            .trim_matches(['[', ']'])
            .to_string()
    });
    let paranoid = super::perf::paranoid();
    let kptr = read("/proc/sys/kernel/kptr_restrict");
    // What this user sees, whatever the setting says (perf_event_paranoid
    // and CAP_SYSLOG decide too).
    let addresses_shown = super::kallsyms::read()
        .ok()
        .and_then(|t| super::kallsyms::address_in(&t, "_text"))
        .is_some();
    let bpf_stats = read("/proc/sys/kernel/bpf_stats_enabled");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let is_root = unsafe { libc::geteuid() } == 0;
    vec![
        Capability {
            name: "hardware PMU",
            available: pmus.iter().any(|p| p == "cpu" || p.starts_with("cpu_")),
            detail: format!("PMUs: {}", pmus.join(", ")),
            why: "cycles, instructions, cache-misses",
            without: "sample with cpu-clock (the default)",
        },
        Capability {
            name: "tracepoints",
            available: tracing.is_some(),
            detail: tracing.map_or(no_tracing.into(), |t| t.display().to_string()),
            why: "stacks on every hit of net:*, sched:*, ... events",
            without: "no -e subsystem:name events; sampling still works",
        },
        Capability {
            name: "lockdown",
            available: lockdown.as_deref().is_none_or(|l| l != "confidentiality"),
            detail: lockdown
                .clone()
                .unwrap_or_else(|| "securityfs not mounted (unknown)".into()),
            why: "confidentiality lockdown forbids kprobes and reading kernel memory",
            without: "probes and BPF are refused; user-space sampling still works",
        },
        Capability {
            name: "perf_event_paranoid",
            available: is_root
                || paranoid
                    .as_deref()
                    .and_then(|p| p.parse::<i32>().ok())
                    .is_some_and(|p| p <= 0),
            detail: format!(
                "{}{}",
                paranoid.as_deref().unwrap_or("?"),
                if is_root { " (running as root)" } else { "" }
            ),
            why: "above 0, system-wide and kernel sampling need root or CAP_PERFMON",
            without: "run as root (or with CAP_PERFMON); -p on your own processes still works",
        },
        Capability {
            name: "kptr_restrict",
            available: addresses_shown,
            detail: match (kptr, addresses_shown) {
                (Some(k), true) => format!("{k}; kernel addresses visible to this user"),
                (Some(k), false) => {
                    format!("{k}, but this user sees zeroed kernel addresses (run as root)")
                }
                (None, shown) => format!(
                    "?; kernel addresses {}visible",
                    if shown { "" } else { "not " }
                ),
            },
            why: "kernel addresses in /proc/kallsyms; hidden addresses leave kernel frames unnamed",
            without: "kernel frames stay unnamed; run as root",
        },
        Capability {
            name: "BPF statistics",
            available: bpf_stats.is_some(),
            detail: bpf_stats.map_or("kernel.bpf_stats_enabled missing".into(), |v| {
                format!("kernel.bpf_stats_enabled = {v}")
            }),
            why: "netprof bpf measures each BPF program's run count and time",
            without: "netprof bpf lists programs without their cost",
        },
    ]
}
