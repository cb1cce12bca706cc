//! Opening an event on every CPU or task of a recording through
//! perf-event-open, and saying in one line why the kernel refused.

use perf_event_open::config::{Cpu, Opts, Proc, Target};
use perf_event_open::count::Counter;
use perf_event_open::event::sw::Software;
use perf_event_open::event::tp::Tracepoint;

use super::event::{EventSpec, Source};
use crate::error::{Error, Result};
use crate::sys::cpus::CpuList;

/// Where the events are opened.
#[derive(Clone, Debug)]
pub enum Scope {
    /// Every task on these CPUs.
    SystemWide(CpuList),
    /// These tasks (and the children they create after the start) on every
    /// online CPU.
    Tasks { tids: Vec<u32>, online: CpuList },
}

/// One instance of an event: a task (or all) on a CPU.
#[derive(Clone, Copy, Debug)]
pub struct Instance {
    pub task: Option<u32>,
    pub cpu: u32,
}

impl Scope {
    pub fn is_system_wide(&self) -> bool {
        matches!(self, Scope::SystemWide(_))
    }

    /// Every (task, CPU) an event is opened for.
    pub fn instances(&self) -> Vec<Instance> {
        match self {
            Scope::SystemWide(cpus) => cpus
                .as_slice()
                .iter()
                .map(|&cpu| Instance { task: None, cpu })
                .collect(),
            Scope::Tasks { tids, online } => tids
                .iter()
                .flat_map(|&t| {
                    online
                        .as_slice()
                        .iter()
                        .map(move |&cpu| Instance { task: Some(t), cpu })
                })
                .collect(),
        }
    }
}

fn target(instance: Instance) -> Target {
    let cpu = Cpu(instance.cpu);
    match instance.task {
        Some(tid) => (Proc(tid), cpu).into(),
        None => (Proc::ALL, cpu).into(),
    }
}

/// Opens `spec` for one instance with the crate's options.
pub fn open(spec: &EventSpec, instance: Instance, opts: &Opts) -> Result<Counter> {
    let target = target(instance);
    let opened = match &spec.source {
        Source::Software(sw, _) => Counter::new(*sw, target, opts),
        Source::Hardware(hw, _) => Counter::new(hw.clone(), target, opts),
        Source::Tracepoint { id } => Counter::new(Tracepoint { id: *id }, target, opts),
        Source::Kprobe(k) => Counter::new(k.pmu_event()?, target, opts),
        Source::Uprobe(u) => Counter::new(u.pmu_event()?, target, opts),
        Source::MultiKprobe { .. } => Counter::new(Software::BpfOutput, target, opts),
    };
    opened.map_err(|e| open_error(&e, spec, instance))
}

/// The side-band event of `record --bpf`: counts nothing, carries process
/// names and maps.
pub fn open_dummy(instance: Instance, opts: &Opts) -> Result<Counter> {
    Counter::new(Software::Dummy, target(instance), opts).map_err(|e| {
        Error::io(
            "cannot open the side-band event that follows process names and maps",
            &e,
        )
    })
}

fn open_error(e: &std::io::Error, spec: &EventSpec, instance: Instance) -> Error {
    let name = &spec.name;
    let errno = e.raw_os_error().unwrap_or(0);
    let is_kprobe = matches!(spec.source, Source::Kprobe(_) | Source::Uprobe(_));
    match errno {
        libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV
            if matches!(spec.source, Source::Hardware(..)) =>
        {
            Error::unsupported(format!(
                "event '{name}' needs a hardware PMU and this machine has none (PMUs here: {}); use -e cpu-clock",
                crate::sys::perf::pmus().join(", ")
            ))
        }
        libc::EACCES | libc::EPERM => Error::no_permission(format!(
            "no permission to open event '{name}' (kernel.perf_event_paranoid = {}); run as root or \
             `sysctl kernel.perf_event_paranoid=-1`",
            crate::sys::perf::paranoid().unwrap_or_default()
        )),
        libc::ESRCH => Error::not_found(format!(
            "task {} exited before its events could be opened; try again",
            instance.task.unwrap_or(0)
        )),
        libc::EMFILE => Error::failed(
            "too many open files for one event per CPU and task; raise `ulimit -n`",
        ),
        libc::EINVAL | libc::ENOENT | libc::EADDRNOTAVAIL | libc::EILSEQ if is_kprobe => {
            Error::kernel_refused(format!(
                "the kernel refuses a probe on '{name}' ({e}): the function is notrace, on the kprobe \
                 blacklist, or inlined; probe its caller or a callee instead (netprof probe --list shows what can be probed)"
            ))
        }
        _ => match instance.task {
            Some(tid) => Error::io(
                format!("cannot open event '{name}' for task {tid} on CPU {}", instance.cpu),
                e,
            ),
            None => Error::io(format!("cannot open event '{name}' on CPU {}", instance.cpu), e),
        },
    }
}
