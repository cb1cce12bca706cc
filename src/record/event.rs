//! Events as users write them (`-e cpu-clock`, `-e cycles`,
//! `-e sched:sched_switch`, `-e kprobe:[MOD:]FUNC[%return]`,
//! `-e netprof:FUNC`), in two steps: [`EventRequest::parse`] checks the
//! syntax and touches nothing (the command line calls it), and [`resolve`]
//! finds what the kernel needs to open each one (tracepoint ids, function
//! addresses), reading tracefs and kallsyms.

use std::str::FromStr;

use perf_event_open::event::hw::Hardware;
use perf_event_open::event::sw::Software;

use crate::bpf::kprobe_links::Attach;
use crate::error::{Error, Result};
use crate::perfdata::{TYPE_HARDWARE, TYPE_SOFTWARE, TYPE_TRACEPOINT};
use crate::probe::kprobe::KprobeEvent;
use crate::probe::persistent::GROUP;
use crate::probe::resolve::{glob, is_glob, Limit, Resolver, MAX_BPF_FUNCTIONS, MAX_FUNCTIONS};
use crate::probe::uprobe::UprobeEvent;
use crate::probe::Function;
use crate::suggest::{close_names, did_you_mean};
use crate::sys::tracefs::Tracefs;

/// Software events by the names perf gives them, with perf_event_attr's
/// config for each (PERF_COUNT_SW_*).
const SOFTWARE: &[(&str, Software, u64)] = &[
    ("cpu-clock", Software::CpuClock, 0),
    ("task-clock", Software::TaskClock, 1),
    ("page-faults", Software::PageFault, 2),
    ("faults", Software::PageFault, 2),
    ("context-switches", Software::CtxSwitch, 3),
    ("cs", Software::CtxSwitch, 3),
    ("cpu-migrations", Software::CpuMigration, 4),
    ("migrations", Software::CpuMigration, 4),
    ("minor-faults", Software::MinorPageFault, 5),
    ("major-faults", Software::MajorPageFault, 6),
];

/// Hardware events by perf's names, with their config (PERF_COUNT_HW_*).
const HARDWARE: &[(&str, Hardware, u64)] = &[
    ("cycles", Hardware::CpuCycle, 0),
    ("cpu-cycles", Hardware::CpuCycle, 0),
    ("instructions", Hardware::Instr, 1),
    ("cache-references", Hardware::CacheAccess, 2),
    ("cache-misses", Hardware::CacheMiss, 3),
    ("branches", Hardware::BranchInstr, 4),
    ("branch-instructions", Hardware::BranchInstr, 4),
    ("branch-misses", Hardware::BranchMiss, 5),
    ("bus-cycles", Hardware::BusCycle, 6),
    ("ref-cycles", Hardware::RefCpuCycle, 9),
];

/// PERF_COUNT_SW_BPF_OUTPUT: the event multi-kprobe hits are written to.
pub const SW_BPF_OUTPUT: u64 = 10;
/// PERF_COUNT_SW_DUMMY: counts nothing; carries side-band records.
pub const SW_DUMMY: u64 = 9;

/// One `-e` argument, checked for syntax only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventRequest {
    /// Index into [`SOFTWARE`].
    Software(usize),
    /// Index into [`HARDWARE`].
    Hardware(usize),
    /// A tracepoint, or a persistent probe of netprof's (`netprof:FUNC`).
    Tracepoint { system: String, event: String },
    /// A probe that lives as long as the recording; `function` may be a glob.
    Kprobe {
        module: Option<String>,
        function: String,
        is_return: bool,
    },
    /// A probe on a function of a program or library: at its entry or
    /// return, in every process that runs it.
    Uprobe {
        binary: String,
        function: String,
        is_return: bool,
    },
}

/// A tracefs subsystem or event name, or a glob of them: what tracefs
/// itself allows, so that a name can never step out of its directory.
fn valid_tracefs_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*' | '?'))
}

/// More tracepoints than this from one glob cost a ring buffer each on
/// every CPU: narrow the pattern.
pub const MAX_TRACEPOINTS: usize = 128;

impl EventRequest {
    pub fn parse(text: &str) -> Result<EventRequest> {
        if let Some(i) = SOFTWARE.iter().position(|(n, ..)| *n == text) {
            return Ok(EventRequest::Software(i));
        }
        if let Some(i) = HARDWARE.iter().position(|(n, ..)| *n == text) {
            return Ok(EventRequest::Hardware(i));
        }
        if let Some(target) = text.strip_prefix("kprobe:") {
            let (rest, is_return) = match target.strip_suffix("%return") {
                Some(f) => (f, true),
                None => (target, false),
            };
            let (module, function) = match rest.split_once(':') {
                Some((m, f)) => (Some(m.to_string()), f.to_string()),
                None => (None, rest.to_string()),
            };
            if function.is_empty() || module.as_deref() == Some("") {
                return Err(Error::bad_argument(format!(
                    "'{text}' names no function; write kprobe:FUNC, kprobe:MODULE:FUNC or kprobe:FUNC%return"
                )));
            }
            return Ok(EventRequest::Kprobe {
                module,
                function,
                is_return,
            });
        }
        if let Some(target) = text.strip_prefix("uprobe:") {
            let (rest, is_return) = match target.strip_suffix("%return") {
                Some(f) => (f, true),
                None => (target, false),
            };
            return match rest.rsplit_once(':') {
                Some((binary, function)) if !binary.is_empty() && !function.is_empty() => {
                    Ok(EventRequest::Uprobe {
                        binary: binary.to_string(),
                        function: function.to_string(),
                        is_return,
                    })
                }
                _ => Err(Error::bad_argument(format!(
                    "'{text}' names no function; write uprobe:BINARY:FUNC or uprobe:BINARY:FUNC%return"
                ))),
            };
        }
        if let Some((system, event)) = text.split_once(':') {
            if !valid_tracefs_name(system) || !valid_tracefs_name(event) {
                return Err(Error::bad_argument(format!(
                    "'{text}' is not a tracepoint name; write subsystem:name with letters, digits and _ (see /sys/kernel/tracing/events)"
                )));
            }
            return Ok(EventRequest::Tracepoint {
                system: system.to_string(),
                event: event.to_string(),
            });
        }
        let known = SOFTWARE
            .iter()
            .map(|e| e.0)
            .chain(HARDWARE.iter().map(|e| e.0));
        Err(Error::not_found(format!(
            "unknown event '{text}'{}; events are cpu-clock, task-clock, hardware events such as \
             cycles, or tracepoints as subsystem:name (see /sys/kernel/tracing/events)",
            did_you_mean(&close_names(text, known))
        )))
    }
}

impl FromStr for EventRequest {
    type Err = Error;

    fn from_str(s: &str) -> Result<EventRequest> {
        EventRequest::parse(s)
    }
}

/// What the kernel opens for an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Software(Software, u64),
    Hardware(Hardware, u64),
    Tracepoint {
        id: u64,
    },
    Kprobe(KprobeEvent),
    Uprobe(UprobeEvent),
    /// A glob of functions under one BPF program (one multi-kprobe link,
    /// or one link per function), whose hits it writes to a bpf-output
    /// event.
    MultiKprobe {
        functions: Vec<Function>,
        is_return: bool,
        how: Attach,
    },
}

/// An event ready to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSpec {
    /// The name as perf prints it.
    pub name: String,
    pub source: Source,
    /// For tracepoints (and persistent probes): tracefs's format description
    /// of the fields each hit carries.
    pub format: Option<String>,
}

impl EventSpec {
    fn new(name: impl Into<String>, source: Source) -> EventSpec {
        EventSpec {
            name: name.into(),
            source,
            format: None,
        }
    }

    /// The default event: cpu-clock.
    pub fn cpu_clock() -> EventSpec {
        let (name, sw, config) = SOFTWARE[0];
        EventSpec::new(name, Source::Software(sw, config))
    }

    /// Tracepoints and probes sample every hit; counting events sample at a
    /// frequency.
    pub fn samples_every_hit(&self) -> bool {
        matches!(
            self.source,
            Source::Tracepoint { .. }
                | Source::Kprobe(_)
                | Source::Uprobe(_)
                | Source::MultiKprobe { .. }
        )
    }

    /// Whether its BPF program runs for every hit on every CPU, whichever
    /// perf event it was attached to (tracepoints and kprobes keep their BPF
    /// programs per tracepoint, not per perf event).
    pub fn fires_everywhere(&self) -> bool {
        matches!(
            self.source,
            Source::Tracepoint { .. } | Source::Kprobe(_) | Source::Uprobe(_)
        )
    }

    /// perf_event_attr's type and config, for the recording's header.
    pub fn type_and_config(&self) -> Result<(u32, u64)> {
        Ok(match &self.source {
            Source::Software(_, config) => (TYPE_SOFTWARE, *config),
            Source::Hardware(_, config) => (TYPE_HARDWARE, *config),
            Source::Tracepoint { id } => (TYPE_TRACEPOINT, *id),
            Source::Kprobe(k) => {
                let pmu = k.pmu_event()?;
                (pmu.ty, pmu.config)
            }
            Source::Uprobe(u) => {
                let pmu = u.pmu_event()?;
                (pmu.ty, pmu.config)
            }
            Source::MultiKprobe { .. } => (TYPE_SOFTWARE, SW_BPF_OUTPUT),
        })
    }
}

/// How the functions of a kprobe glob are probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobProbes {
    /// Under one BPF program writing to per-CPU buffers (system-wide only):
    /// a whole module's functions, attached as `Attach` says.
    Bpf(Attach),
    /// A kprobe-PMU probe per function, per followed task and CPU: the way
    /// to follow tasks, and to count with `--bpf`; at most
    /// [`MAX_FUNCTIONS`].
    PerfEvents,
}

/// Finds what the kernel needs for each request; kprobe globs are probed
/// as `globs` says.
pub fn resolve(requests: &[EventRequest], globs: GlobProbes) -> Result<Vec<EventSpec>> {
    let mut resolver: Option<Resolver> = None;
    let mut specs = Vec::new();
    for request in requests {
        match request {
            EventRequest::Software(i) => {
                let (name, sw, config) = SOFTWARE[*i];
                specs.push(EventSpec::new(name, Source::Software(sw, config)));
            }
            EventRequest::Hardware(i) => {
                let (name, hw, config) = &HARDWARE[*i];
                specs.push(EventSpec::new(*name, Source::Hardware(hw.clone(), *config)));
            }
            EventRequest::Tracepoint { system, event } => specs.extend(tracepoints(system, event)?),
            EventRequest::Uprobe {
                binary,
                function,
                is_return,
            } => {
                let probe = UprobeEvent::resolve(binary, function, *is_return)?;
                let suffix = if *is_return { "%return" } else { "" };
                specs.push(EventSpec::new(
                    format!("uprobe:{binary}:{function}{suffix}"),
                    Source::Uprobe(probe),
                ));
            }
            EventRequest::Kprobe {
                module,
                function,
                is_return,
            } => {
                let resolver = match &mut resolver {
                    Some(r) => r,
                    None => resolver.insert(Resolver::load()?),
                };
                specs.extend(kprobes(
                    resolver,
                    module.as_deref(),
                    function,
                    *is_return,
                    globs,
                )?);
            }
        }
    }
    Ok(specs)
}

fn kprobes(
    resolver: &Resolver,
    module: Option<&str>,
    function: &str,
    is_return: bool,
    globs: GlobProbes,
) -> Result<Vec<EventSpec>> {
    let suffix = if is_return { "%return" } else { "" };
    if !is_glob(function) {
        let f = resolver.exact(function, module)?;
        let name = match module {
            Some(m) => format!("kprobe:{m}:{function}{suffix}"),
            None => format!("kprobe:{function}{suffix}"),
        };
        return Ok(vec![EventSpec::new(
            name,
            Source::Kprobe(KprobeEvent {
                address: f.address,
                is_return,
            }),
        )]);
    }
    let limit = match globs {
        GlobProbes::Bpf(_) => Limit {
            max: MAX_BPF_FUNCTIONS,
            remedy: "",
        },
        GlobProbes::PerfEvents => Limit {
            max: MAX_FUNCTIONS,
            remedy:
                " (record system-wide with -a and without --bpf, where a BPF program takes up to \
                      thousands, or add them with `netprof probe --force`)",
        },
    };
    let functions = resolver.resolve(&[function], module, Some(limit))?;
    // One event, whichever way it is probed: the function hit is the
    // stack's leaf.
    let name = match module {
        Some(m) => format!("kprobe:{m}:{function}{suffix}"),
        None => format!("kprobe:{function}{suffix}"),
    };
    // The BPF program writes to per-CPU buffers and cannot follow tasks, so
    // a followed command or process gets one probe per function.
    if let GlobProbes::Bpf(how) = globs {
        return Ok(vec![EventSpec::new(
            name,
            Source::MultiKprobe {
                functions,
                is_return,
                how,
            },
        )]);
    }
    Ok(functions
        .into_iter()
        .map(|f| {
            EventSpec::new(
                name.clone(),
                Source::Kprobe(KprobeEvent {
                    address: f.address,
                    is_return,
                }),
            )
        })
        .collect())
}

/// The tracepoints `system:event` names, either a glob.
fn tracepoints(system: &str, event: &str) -> Result<Vec<EventSpec>> {
    if !is_glob(system) && !is_glob(event) {
        return Ok(vec![tracepoint(system, event)?]);
    }
    let events_dir = Tracefs::get()?.events();
    let (systems, events) = (glob(system)?, glob(event)?);
    let mut names: Vec<(String, String)> = Vec::new();
    for s in Tracefs::subdirectories(&events_dir)
        .into_iter()
        .filter(|s| systems.matches(s))
    {
        for e in Tracefs::subdirectories(&events_dir.join(&s))
            .into_iter()
            .filter(|e| events.matches(e))
        {
            names.push((s.clone(), e));
        }
    }
    names.sort();
    if names.is_empty() {
        return Err(Error::not_found(format!(
            "no tracepoint matches '{system}:{event}'; list them with `ls {}`",
            events_dir.display()
        )));
    }
    if names.len() > MAX_TRACEPOINTS {
        return Err(Error::bad_argument(format!(
            "'{system}:{event}' matches {} tracepoints; each costs a ring buffer on every CPU, \
             narrow the pattern to at most {MAX_TRACEPOINTS}",
            names.len()
        )));
    }
    names.iter().map(|(s, e)| tracepoint(s, e)).collect()
}

fn tracepoint(system: &str, event: &str) -> Result<EventSpec> {
    let tracefs = Tracefs::get()?;
    let events = tracefs.events();
    let dir = events.join(system).join(event);
    if system == GROUP && !dir.is_dir() {
        return Err(Error::not_found(format!(
            "no persistent probe {system}:{event}; create it with `netprof probe {event}`, or use \
             -e kprobe:{event} for a probe that lives only as long as the recording"
        )));
    }
    if let Some(id) = std::fs::read_to_string(dir.join("id"))
        .ok()
        .and_then(|id| id.trim().parse().ok())
    {
        let mut spec = EventSpec::new(format!("{system}:{event}"), Source::Tracepoint { id });
        spec.format = std::fs::read_to_string(dir.join("format")).ok();
        return Ok(spec);
    }
    let system_dir = events.join(system);
    if !system_dir.is_dir() {
        let systems = Tracefs::subdirectories(&events);
        let hint = close_names(system, systems.iter().map(String::as_str));
        return Err(Error::not_found(format!(
            "unknown tracepoint subsystem '{system}'{}; list them with `ls {}`",
            did_you_mean(&hint),
            events.display()
        )));
    }
    let names = Tracefs::subdirectories(&system_dir);
    let hint: Vec<String> = close_names(event, names.iter().map(String::as_str))
        .into_iter()
        .map(|n| format!("{system}:{n}"))
        .collect();
    Err(Error::not_found(format!(
        "unknown tracepoint '{system}:{event}'{}; list them with `ls {}`",
        did_you_mean(&hint),
        system_dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn software_and_hardware_names() {
        let spec = &resolve(
            &[EventRequest::parse("cpu-clock").unwrap()],
            GlobProbes::PerfEvents,
        )
        .unwrap()[0];
        assert_eq!(spec, &EventSpec::cpu_clock());
        assert_eq!(spec.type_and_config().unwrap(), (TYPE_SOFTWARE, 0));
        let spec = &resolve(
            &[EventRequest::parse("cache-misses").unwrap()],
            GlobProbes::PerfEvents,
        )
        .unwrap()[0];
        assert_eq!(spec.type_and_config().unwrap(), (TYPE_HARDWARE, 3));
        assert!(!spec.samples_every_hit());
    }

    #[test]
    fn unknown_event_suggests_close_names() {
        let err = EventRequest::parse("cpu-clok").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.message().contains("did you mean cpu-clock"), "{err}");
    }

    #[test]
    fn kprobe_targets_parse_without_touching_the_kernel() {
        assert_eq!(
            EventRequest::parse("kprobe:hsr:hsr_*%return").unwrap(),
            EventRequest::Kprobe {
                module: Some("hsr".into()),
                function: "hsr_*".into(),
                is_return: true
            }
        );
        assert!(EventRequest::parse("kprobe:").is_err());
        assert!(EventRequest::parse("kprobe::f").is_err());
    }

    #[test]
    fn tracepoint_names_cannot_leave_tracefs() {
        for bad in ["../../../../tmp/x:evil/x", "sched:../x", ".:x", "a/b:c"] {
            let err = EventRequest::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::BadArgument, "{bad}: {err}");
        }
        assert!(EventRequest::parse("sched:sched_switch").is_ok());
        assert!(EventRequest::parse("sched:*").is_ok());
        assert!(EventRequest::parse("net:net_dev_*").is_ok());
    }

    #[test]
    fn uprobe_targets_parse() {
        assert_eq!(
            EventRequest::parse("uprobe:/usr/bin/bash:readline%return").unwrap(),
            EventRequest::Uprobe {
                binary: "/usr/bin/bash".into(),
                function: "readline".into(),
                is_return: true
            }
        );
        assert!(EventRequest::parse("uprobe:bash").is_err());
        assert!(EventRequest::parse("uprobe::f").is_err());
    }

    #[test]
    fn tracepoint_globs_expand_in_tracefs() {
        let specs = resolve(
            &[EventRequest::parse("sched:sched_wak*").unwrap()],
            GlobProbes::PerfEvents,
        )
        .unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert!(
            names.contains(&"sched:sched_waking") && names.contains(&"sched:sched_wakeup"),
            "{names:?}"
        );
        assert!(specs
            .iter()
            .all(|s| matches!(s.source, Source::Tracepoint { .. })));
        let err = resolve(
            &[EventRequest::parse("sched:zz*").unwrap()],
            GlobProbes::PerfEvents,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }
}
