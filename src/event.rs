//! Event names as users write them (`-e cpu-clock`, `-e cycles`,
//! `-e sched:sched_switch`) and what the kernel needs to open them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::suggest::close_names;

// perf_event_attr.type values (include/uapi/linux/perf_event.h).
pub const TYPE_HARDWARE: u32 = 0;
pub const TYPE_SOFTWARE: u32 = 1;
pub const TYPE_TRACEPOINT: u32 = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    /// The name as perf prints it.
    pub name: String,
    pub type_: u32,
    pub config: u64,
    /// For kprobes: the address of the function the kernel attaches to.
    pub kprobe_address: Option<u64>,
    /// For tracepoints (and persistent probes): tracefs's format description
    /// of the fields each hit carries.
    pub format: Option<String>,
    /// For a glob of kprobes through one multi-kprobe BPF link: the functions.
    /// The event itself is then a bpf-output event the program writes to.
    pub multi_kprobe: Option<MultiKprobe>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultiKprobe {
    pub functions: Vec<String>,
    pub is_return: bool,
}

/// PERF_COUNT_SW_BPF_OUTPUT: the software event BPF programs write samples to.
pub const SW_BPF_OUTPUT: u64 = 10;
/// PERF_COUNT_SW_DUMMY: an event that counts nothing, for its side-band records.
pub const SW_DUMMY: u64 = 9;

impl EventSpec {
    fn new(name: impl Into<String>, type_: u32, config: u64) -> Self {
        EventSpec {
            name: name.into(),
            type_,
            config,
            kprobe_address: None,
            format: None,
            multi_kprobe: None,
        }
    }

    /// Tracepoints and probes sample every hit; counting events sample at a
    /// frequency.
    pub fn samples_every_hit(&self) -> bool {
        self.type_ == TYPE_TRACEPOINT
            || self.kprobe_address.is_some()
            || self.multi_kprobe.is_some()
    }
}

const SOFTWARE: &[(&str, u64)] = &[
    ("cpu-clock", 0),
    ("task-clock", 1),
    ("page-faults", 2),
    ("faults", 2),
    ("context-switches", 3),
    ("cs", 3),
    ("cpu-migrations", 4),
    ("migrations", 4),
    ("minor-faults", 5),
    ("major-faults", 6),
];

const HARDWARE: &[(&str, u64)] = &[
    ("cycles", 0),
    ("cpu-cycles", 0),
    ("instructions", 1),
    ("cache-references", 2),
    ("cache-misses", 3),
    ("branches", 4),
    ("branch-instructions", 4),
    ("branch-misses", 5),
    ("bus-cycles", 6),
    ("ref-cycles", 9),
];

/// Parses one `-e` argument.
pub fn parse(name: &str) -> Result<EventSpec> {
    if let Some(&(_, config)) = SOFTWARE.iter().find(|(n, _)| *n == name) {
        return Ok(EventSpec::new(name, TYPE_SOFTWARE, config));
    }
    if let Some(&(_, config)) = HARDWARE.iter().find(|(n, _)| *n == name) {
        return Ok(EventSpec::new(name, TYPE_HARDWARE, config));
    }
    if let Some((system, event)) = name.split_once(':') {
        if system == "kprobe" {
            return kprobe_event(name, event);
        }
        if system == crate::probe::GROUP && !tracefs_events()?.join(system).join(event).is_dir() {
            bail!(
                "no persistent probe {name}; create it with `netprof probe {event}`, or use \
                 -e kprobe:{event} for a probe that lives only as long as the recording"
            );
        }
        return tracepoint(system, event);
    }
    let known: Vec<&str> = SOFTWARE.iter().chain(HARDWARE).map(|(n, _)| *n).collect();
    let hint = close_names(name, known.iter().copied());
    bail!(
        "unknown event '{name}'{}; events are cpu-clock, task-clock, hardware events such as \
         cycles, or tracepoints as subsystem:name (see /sys/kernel/tracing/events)",
        did_you_mean(&hint)
    )
}

/// `kprobe:[MODULE:]FUNC` or `kprobe:FUNC%return`: a probe through the kernel's kprobe
/// PMU. The kernel removes it when its file descriptor closes, so a recording
/// never leaves it behind, whatever ends it, and two recordings never share it.
///
/// The probe is placed by address, not by name: the kernel reads a name
/// through a pointer into the opener's memory, also when a followed task
/// forks and the event is inherited, where that pointer means nothing (the
/// fork then fails).
fn kprobe_event(name: &str, target: &str) -> Result<EventSpec> {
    let probe = KprobeTarget::parse(target);
    let pmu = crate::kprobe::KprobePmu::find()?;
    let function = crate::kprobe::resolve_function(probe.function, probe.module)?;
    if function.address == 0 {
        bail!("no permission to see kernel addresses (/proc/kallsyms shows zeros under kernel.kptr_restrict); run as root");
    }
    Ok(probe.spec(&pmu, name.to_string(), function.address))
}

/// `[MODULE:]FUNCTION[%return]`, FUNCTION possibly a glob.
struct KprobeTarget<'a> {
    /// `kprobe:MODULE:FUNC` picks a module's function when several have the name.
    module: Option<&'a str>,
    function: &'a str,
    is_return: bool,
}

impl<'a> KprobeTarget<'a> {
    fn parse(target: &'a str) -> Self {
        let (rest, is_return) = match target.strip_suffix("%return") {
            Some(f) => (f, true),
            None => (target, false),
        };
        match rest.split_once(':') {
            Some((module, function)) => KprobeTarget {
                module: Some(module),
                function,
                is_return,
            },
            None => KprobeTarget {
                module: None,
                function: rest,
                is_return,
            },
        }
    }

    fn spec(&self, pmu: &crate::kprobe::KprobePmu, name: String, address: u64) -> EventSpec {
        EventSpec {
            name,
            type_: pmu.type_,
            config: if self.is_return {
                1 << pmu.retprobe_bit
            } else {
                0
            },
            kprobe_address: Some(address),
            format: None,
            multi_kprobe: None,
        }
    }
}

/// Parses one `-e` argument that may stand for several events: a kprobe glob
/// (`kprobe:hsr_*`, `kprobe:hsr:*`) becomes one multi-kprobe when sampling
/// system-wide on a kernel that has them, else one probe per function.
pub fn parse_all(name: &str, system_wide: bool) -> Result<Vec<EventSpec>> {
    match name.strip_prefix("kprobe:") {
        Some(target) if target.contains(['*', '?']) => kprobe_glob(name, target, system_wide),
        _ => Ok(vec![parse(name)?]),
    }
}

fn kprobe_glob(name: &str, target: &str, system_wide: bool) -> Result<Vec<EventSpec>> {
    let probe = KprobeTarget::parse(target);
    let pmu = crate::kprobe::KprobePmu::find()?;
    // Only functions the kernel lets us probe: one refusal would end the run.
    let functions = crate::probe::probeable(probe.module, Some(probe.function))?;
    if functions.is_empty() {
        bail!(
            "no probe-able kernel function matches '{target}'; list them with `netprof probe --list '{}'`",
            probe.function
        );
    }
    if functions.len() > crate::probe::MAX_PROBES_WITHOUT_FORCE {
        bail!(
            "'{target}' matches {} functions; that many probes slow every call, narrow the pattern (or add them with `netprof probe --force`)",
            functions.len()
        );
    }
    // The BPF program writes to per-CPU buffers and cannot follow tasks, so
    // a followed command or process gets one probe per function.
    if system_wide && crate::multiprobe::available() {
        let mut spec = EventSpec::new(name, TYPE_SOFTWARE, SW_BPF_OUTPUT);
        spec.multi_kprobe = Some(MultiKprobe {
            functions: functions.into_iter().map(|f| f.name).collect(),
            is_return: probe.is_return,
        });
        return Ok(vec![spec]);
    }
    let suffix = if probe.is_return { "%return" } else { "" };
    Ok(functions
        .into_iter()
        .map(|f| probe.spec(&pmu, format!("kprobe:{}{suffix}", f.name), f.address))
        .collect())
}

pub fn did_you_mean(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", names.join(", "))
    }
}

/// The tracefs events directory, mounting tracefs if nothing has yet (as perf
/// does through libtraceevent): a fresh system often has it unmounted.
pub fn tracefs_events() -> Result<PathBuf> {
    let candidates = [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ];
    if let Some(p) = candidates.iter().map(Path::new).find(|p| p.is_dir()) {
        return Ok(p.to_path_buf());
    }
    if let Err(e) = std::fs::read_dir("/sys/kernel/tracing") {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            bail!("no permission to read tracefs (/sys/kernel/tracing); run as root");
        }
    }
    let target = c"/sys/kernel/tracing";
    // SAFETY: all pointers are valid NUL-terminated strings.
    let rc = unsafe {
        libc::mount(
            c"tracefs".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 && Path::new(candidates[0]).is_dir() {
        return Ok(PathBuf::from(candidates[0]));
    }
    bail!(
        "tracefs is not mounted and could not be mounted ({}); run as root or \
         `mount -t tracefs nodev /sys/kernel/tracing`",
        std::io::Error::last_os_error()
    )
}

fn tracepoint(system: &str, event: &str) -> Result<EventSpec> {
    let events = tracefs_events()?;
    let id_path = events.join(system).join(event).join("id");
    if let Ok(id) = std::fs::read_to_string(&id_path) {
        if let Ok(id) = id.trim().parse() {
            let mut spec = EventSpec::new(format!("{system}:{event}"), TYPE_TRACEPOINT, id);
            let format = events.join(system).join(event).join("format");
            spec.format = std::fs::read_to_string(format).ok();
            return Ok(spec);
        }
    }
    let system_dir = events.join(system);
    if !system_dir.is_dir() {
        let systems = list_dir(&events);
        let hint = close_names(system, systems.iter().map(String::as_str));
        bail!(
            "unknown tracepoint subsystem '{system}'{}; list them with `ls {}`",
            did_you_mean(&hint),
            events.display()
        );
    }
    let names = list_dir(&system_dir);
    let hint: Vec<String> = close_names(event, names.iter().map(String::as_str))
        .into_iter()
        .map(|n| format!("{system}:{n}"))
        .collect();
    bail!(
        "unknown tracepoint '{system}:{event}'{}; list them with `ls {}`",
        did_you_mean(&hint),
        system_dir.display()
    )
}

fn list_dir(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The PMUs this machine has, for error messages (`cpu` is the hardware one).
pub fn pmus() -> Vec<String> {
    let mut v = list_dir(Path::new("/sys/bus/event_source/devices"));
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_and_hardware_names() {
        assert_eq!(
            parse("cpu-clock").unwrap(),
            EventSpec::new("cpu-clock", 1, 0)
        );
        assert_eq!(parse("cache-misses").unwrap().type_, TYPE_HARDWARE);
    }

    #[test]
    fn unknown_event_suggests_close_names() {
        let err = parse("cpu-clok").unwrap_err().to_string();
        assert!(err.contains("did you mean cpu-clock"), "{err}");
    }
}
