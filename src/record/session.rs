//! The events of one recording, opened on every CPU or task of its scope:
//! their perf events and ring buffers, the multi-kprobe links that write to
//! them, and with `--bpf` the counting programs attached to them. Everything
//! here closes with the session: nothing outlives the recording.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use std::collections::BTreeSet;

use perf_event_open::config::{Opts, WakeUp, WakeUpOn};
use perf_event_open::count::Counter;
use perf_event_open::sample::Sampler;

use super::counted::{attach_kind, KernelCounts};
use super::event::{EventRequest, EventSpec, Source, SW_BPF_OUTPUT, SW_DUMMY};
use super::open::{self, Instance, Scope};
use super::{OffCpuRequest, Progress, RecordOptions};
use crate::bpf::kprobe_links::{self, Attach};
use crate::bpf::kprobe_multi::{self, MultiProbe};
use crate::bpf::stack_count::{ring_bytes, CountOptions, OffCpuOptions, StackCounter, MAX_FRAMES};
use crate::error::{Error, Result};
use crate::perfdata::attr::{EventAttr, Rate};
use crate::perfdata::writer::EventDesc;
use crate::perfdata::TYPE_SOFTWARE;
use crate::sys::cpus::{CpuList, OnlineCpus};
use procfs::Current;

/// Slots for the threads `--off-cpu` follows while they are away, by
/// thread id modulo this (4 MiB of kernel memory): thread ids are handed
/// out in turn, so two away at once in one slot are rare, and counted.
const BLOCKED_THREADS: u32 = 1 << 16;

/// 2^8 pages (1 MiB) per ring: at 10 kHz with deep callchains a CPU writes
/// about 4 MB/s, and the ring is drained at least every 50 ms.
const RING_PAGES_EXP: u8 = 8;
const RING_BYTES: u32 = 4096 << RING_PAGES_EXP;

pub struct Session {
    /// What the file's header says of each event, in order; the side-band
    /// event of `--bpf` last.
    pub events: Vec<EventDesc>,
    /// Every perf event, to enable and disable.
    counters: Vec<Counter>,
    /// Descriptors of the events with a ring buffer, to poll (poll reports
    /// the others as hung up).
    rings: Vec<RawFd>,
    pub samplers: Vec<Sampler>,
    /// Detached when dropped, after the last drain.
    multi_probes: Vec<MultiProbe>,
    /// `--bpf`: the kernel's stack counts, one counter per event;
    /// `--off-cpu`: the scheduler's counter.
    pub kernel_counts: Option<KernelCounts>,
    /// Whether samples come through the rings (not `--bpf`).
    pub samples_in_rings: bool,
    system_wide: bool,
    /// How to open each event on one more CPU, in the order of `events`.
    reopen: Vec<Reopen>,
    /// System-wide: the CPUs sampled, and which of them are online now.
    cpus: Option<CpuList>,
    online: BTreeSet<u32>,
    /// Where the online CPUs are read from (None: hotplug is not followed).
    online_cpus: Option<OnlineCpus>,
}

/// How to open one more instance of an event, for a CPU that comes back
/// online (the kernel drops a CPU's events when it goes offline).
#[derive(Clone)]
struct Reopen {
    /// None for the side-band event of `--bpf`.
    spec: Option<EventSpec>,
    attr: EventAttr,
    opts: Opts,
    /// One instance per CPU; a counted tracepoint or kprobe has one in all.
    per_cpu: bool,
    ring: bool,
    counted: bool,
    /// The multi-kprobe link writing to this event, by index.
    multi: Option<usize>,
}

/// How one recording opens its events.
struct Plan<'a> {
    scope: &'a Scope,
    opts: &'a RecordOptions,
    /// A followed command's events start when it execs.
    enable_on_exec: bool,
    /// Tracepoint fields ride along in every sample when any event has them
    /// (all events share one sample layout; counted samples have none).
    raw: bool,
    /// Set on Ctrl-C: probes still to place one by one are given up.
    stop: &'a AtomicBool,
}

impl Session {
    pub fn open(
        specs: &[EventSpec],
        scope: &Scope,
        opts: &RecordOptions,
        has_command: bool,
        stop: &AtomicBool,
        progress: &mut dyn Progress,
    ) -> Result<Session> {
        let plan = Plan {
            scope,
            opts,
            enable_on_exec: has_command && !scope.is_system_wide(),
            raw: !opts.bpf
                && specs
                    .iter()
                    .any(|s| s.format.is_some() || matches!(s.source, Source::MultiKprobe { .. })),
            stop,
        };
        let count_options = count_options(opts, scope);
        if opts.bpf {
            let available = procfs::Meminfo::current()
                .ok()
                .and_then(|m| m.mem_available);
            check_map_memory(&count_options, available)?;
        }
        // Programs load before any event opens: a kernel that refuses the
        // program is told apart from one that refuses the events. The
        // off-CPU one counts from now on.
        let off_cpu = opts
            .off_cpu
            .as_ref()
            .map(|r| {
                start_off_cpu(
                    r,
                    followed_processes(scope, opts, has_command),
                    &count_options,
                )
            })
            .transpose()?;
        let programs: Vec<Option<StackCounter>> = specs
            .iter()
            .map(|s| {
                opts.bpf
                    .then(|| StackCounter::load(&count_options, attach_kind(s)))
                    .transpose()
            })
            .collect::<Result<_>>()?;
        let mut session = Session {
            events: Vec::new(),
            counters: Vec::new(),
            rings: Vec::new(),
            samplers: Vec::new(),
            multi_probes: Vec::new(),
            kernel_counts: (opts.bpf || opts.off_cpu.is_some())
                .then(|| KernelCounts::new(opts.callgraph, plan.raw)),
            samples_in_rings: !opts.bpf,
            system_wide: scope.is_system_wide(),
            reopen: Vec::new(),
            cpus: match scope {
                Scope::SystemWide(cpus) => Some(cpus.clone()),
                Scope::Tasks { .. } => None,
            },
            online: match scope {
                Scope::SystemWide(cpus) => cpus.as_slice().iter().copied().collect(),
                Scope::Tasks { .. } => BTreeSet::new(),
            },
            online_cpus: match scope {
                Scope::SystemWide(_) => OnlineCpus::open().ok(),
                Scope::Tasks { .. } => None,
            },
        };
        for (spec, program) in specs.iter().zip(programs) {
            session.open_event(spec, &plan, program, &count_options, progress)?;
        }
        if opts.bpf {
            session.open_side_band(&plan)?;
        }
        if let (Some(counter), Some(counts)) = (off_cpu, session.kernel_counts.as_mut()) {
            counts.add_off_cpu(counter, off_cpu_attr(&plan));
        }
        Ok(session)
    }

    fn open_event(
        &mut self,
        spec: &EventSpec,
        plan: &Plan,
        program: Option<StackCounter>,
        count_options: &CountOptions,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let (type_, config) = spec.type_and_config()?;
        let attr = EventAttr {
            type_,
            config,
            rate: if spec.samples_every_hit() {
                Rate::Period(1)
            } else {
                Rate::Frequency(plan.opts.frequency)
            },
            callchain: plan.opts.callgraph,
            raw: plan.raw,
            inherit: !plan.scope.is_system_wide(),
            enable_on_exec: plan.enable_on_exec,
            exclude_user: false,
            exclude_kernel: false,
        };
        // A counted event takes its stacks in the BPF program; asking the
        // kernel for call chains too would unwind twice per sample, and
        // bpf_get_stack() then returns the kernel's chain with its context
        // marker as a frame.
        let counted = program.is_some();
        let crate_opts = ring_opts(&EventAttr {
            callchain: attr.callchain && !counted,
            ..attr.clone()
        });
        let mut instances = plan.scope.instances();
        // A counted tracepoint or kprobe runs its program for every hit on
        // every CPU whatever event it is attached to: one is enough, and the
        // program filters CPUs.
        if counted && spec.fires_everywhere() {
            instances.truncate(1);
        }
        let mut counters = Vec::new();
        let mut ids = Vec::new();
        for instance in &instances {
            let counter = open::open(spec, *instance, &crate_opts)?;
            ids.push(
                counter
                    .id()
                    .map_err(|e| Error::io("cannot read the event id", &e))?,
            );
            counters.push(counter);
        }
        if !counted {
            for counter in &counters {
                self.add_ring(counter, &attr, &spec.name)?;
            }
        }
        let multi =
            matches!(spec.source, Source::MultiKprobe { .. }).then_some(self.multi_probes.len());
        if let Source::MultiKprobe {
            functions,
            is_return,
            how,
        } = &spec.source
        {
            let outputs: Vec<_> = instances
                .iter()
                .zip(&counters)
                .map(|(i, c)| (i.cpu, c.file().as_fd()))
                .collect();
            let start = Instant::now();
            let said = |done: usize, total: usize| {
                progress.note(&format!("attaching probes one by one: {done} of {total}"))
            };
            let probe =
                kprobe_multi::attach(functions, *is_return, *how, &outputs, plan.stop, said)?;
            let way = match how {
                Attach::Multi => "at once through a multi-kprobe BPF link",
                Attach::PerFunction => "through one BPF link each",
            };
            let probed = probe.functions_probed();
            progress.note(&format!(
                "{probed} functions probed {way} in {} ms",
                start.elapsed().as_millis()
            ));
            if let Some(note) = kprobe_links::refused_note(&probe.refused) {
                progress.note(&note);
            }
            let given_up = functions.len() - probed - probe.refused.len();
            if given_up > 0 {
                progress.note(&format!(
                    "interrupted while attaching: {given_up} functions not probed"
                ));
            }
            self.multi_probes.push(probe);
        }
        if let (Some(program), Some(counts)) = (program, self.kernel_counts.as_mut()) {
            counts.add(program, count_options, &counters, ids[0])?;
        }
        self.counters.extend(counters);
        self.reopen.push(Reopen {
            spec: Some(spec.clone()),
            attr: attr.clone(),
            opts: crate_opts,
            per_cpu: !(counted && spec.fires_everywhere()),
            ring: !counted,
            counted,
            multi,
        });
        // Each counted sample carries its count as its period.
        let rate = if counted { Rate::Period(1) } else { attr.rate };
        self.events.push(EventDesc {
            attr: EventAttr { rate, ..attr },
            name: spec.name.clone(),
            ids,
        });
        Ok(())
    }

    /// Maps a ring buffer for `counter`, whose samples must have the layout
    /// the file's header declares.
    fn add_ring(&mut self, counter: &Counter, attr: &EventAttr, name: &str) -> Result<()> {
        let sampler = counter.sampler(RING_PAGES_EXP).map_err(|e| {
            Error::io(
                format!("cannot map the ring buffer of {name} (raise kernel.perf_event_mlock_kb or run as root)"),
                &e,
            )
        })?;
        if sampler.parser().sample_type != attr.sample_type() || !sampler.parser().sample_id_all {
            return Err(Error::failed(
                "internal error: the kernel event's sample layout differs from the file header's",
            ));
        }
        self.rings.push(counter.file().as_raw_fd());
        self.samplers.push(sampler);
        Ok(())
    }

    /// `record --bpf`: a dummy event per CPU (or task) that samples nothing
    /// and carries the process names, forks, exits and maps into the file.
    fn open_side_band(&mut self, plan: &Plan) -> Result<()> {
        let attr = EventAttr {
            type_: TYPE_SOFTWARE,
            config: SW_DUMMY,
            rate: Rate::Period(1),
            callchain: plan.opts.callgraph,
            raw: false,
            inherit: !plan.scope.is_system_wide(),
            enable_on_exec: plan.enable_on_exec,
            exclude_user: false,
            exclude_kernel: false,
        };
        let crate_opts = ring_opts(&attr);
        let mut ids = Vec::new();
        for instance in plan.scope.instances() {
            let counter = open::open_dummy(instance, &crate_opts)?;
            ids.push(
                counter
                    .id()
                    .map_err(|e| Error::io("cannot read the event id", &e))?,
            );
            self.add_ring(&counter, &attr, "the side-band event")?;
            self.counters.push(counter);
        }
        self.reopen.push(Reopen {
            spec: None,
            attr: attr.clone(),
            opts: crate_opts,
            per_cpu: true,
            ring: true,
            counted: false,
            multi: None,
        });
        self.events.push(EventDesc {
            attr,
            name: "dummy".into(),
            ids,
        });
        Ok(())
    }

    /// System-wide recordings follow CPU hotplug: a sampled CPU that goes
    /// offline is said to stop, and its events are opened again when it
    /// comes back (the kernel drops them when it goes).
    pub fn follow_hotplug(&mut self, progress: &mut dyn Progress) -> Result<()> {
        let Some(cpus) = self.cpus.clone() else {
            return Ok(());
        };
        let Some(Ok(online)) = self.online_cpus.as_ref().map(OnlineCpus::read) else {
            return Ok(());
        };
        for &cpu in cpus.as_slice() {
            match (self.online.contains(&cpu), online.contains(cpu)) {
                (true, false) => {
                    self.online.remove(&cpu);
                    progress.note(&format!(
                        "warning: CPU {cpu} went offline; its samples stop until it comes back"
                    ));
                }
                (false, true) => {
                    self.open_on_cpu(cpu)?;
                    self.online.insert(cpu);
                    progress.note(&format!("CPU {cpu} came back online; sampling it again"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Opens every per-CPU event on `cpu`, connected as the first ones were.
    fn open_on_cpu(&mut self, cpu: u32) -> Result<()> {
        let instance = Instance { task: None, cpu };
        for (index, reopen) in self.reopen.clone().into_iter().enumerate() {
            if !reopen.per_cpu {
                continue;
            }
            let counter = match &reopen.spec {
                Some(spec) => open::open(spec, instance, &reopen.opts)?,
                None => open::open_dummy(instance, &reopen.opts)?,
            };
            let id = counter
                .id()
                .map_err(|e| Error::io("cannot read the event id", &e))?;
            self.events[index].ids.push(id);
            if reopen.ring {
                let name = self.events[index].name.clone();
                self.add_ring(&counter, &reopen.attr, &name)?;
            }
            if let Some(m) = reopen.multi {
                self.multi_probes[m].set_output(cpu, counter.file().as_fd())?;
            }
            if let (true, Some(counts)) = (reopen.counted, self.kernel_counts.as_mut()) {
                counts.attach_more(index, &counter)?;
            }
            counter
                .enable()
                .map_err(|e| Error::io("cannot start the event", &e))?;
            self.counters.push(counter);
        }
        Ok(())
    }

    pub fn is_system_wide(&self) -> bool {
        self.system_wide
    }

    /// The rings to wait on (poll), which a wait may shorten.
    pub fn ring_fds(&mut self) -> &mut Vec<RawFd> {
        &mut self.rings
    }

    pub fn enable(&self) -> Result<()> {
        for c in &self.counters {
            c.enable()
                .map_err(|e| Error::io("cannot start the event", &e))?;
        }
        Ok(())
    }

    /// Stops every event; the rings keep what they hold for the last drain.
    pub fn disable(&self) {
        for c in &self.counters {
            let _ = c.disable();
        }
    }

    pub fn detach_multi_probes(&mut self, progress: &mut dyn Progress) {
        if self.multi_probes.is_empty() {
            return;
        }
        let one_by_one: usize = self
            .multi_probes
            .iter()
            .map(MultiProbe::probes_one_by_one)
            .sum();
        if one_by_one > kprobe_links::SLOW_TO_REMOVE {
            progress.note(&format!(
                "removing {one_by_one} probes (one at a time on this kernel)"
            ));
        }
        let start = Instant::now();
        self.multi_probes.clear();
        progress.note(&format!(
            "probes detached in {} ms",
            start.elapsed().as_millis()
        ));
    }
}

/// `--off-cpu`: loads the scheduler's counter, which counts from then on
/// (the events it writes to the file are declared as they are met).
fn start_off_cpu(
    request: &OffCpuRequest,
    pids: Vec<u32>,
    count_options: &CountOptions,
) -> Result<StackCounter> {
    let options = OffCpuOptions {
        request: request.clone(),
        pids,
        blocked_entries: BLOCKED_THREADS,
    };
    StackCounter::load_off_cpu(count_options, &options)
}

/// The processes a recording follows (none: system-wide): `-p`'s, and the
/// command's, the last of the scope's tasks. The BPF filter goes by process,
/// so that their threads, however many, and their children are all in.
fn followed_processes(scope: &Scope, opts: &RecordOptions, has_command: bool) -> Vec<u32> {
    match scope {
        Scope::SystemWide(_) => Vec::new(),
        Scope::Tasks { tids, .. } => {
            let command = tids.last().copied().filter(|_| has_command);
            opts.pids.iter().copied().chain(command).collect()
        }
    }
}

/// What the file says of each off-CPU event: each sample's period is the
/// time away, in nanoseconds.
fn off_cpu_attr(plan: &Plan) -> EventAttr {
    EventAttr {
        type_: TYPE_SOFTWARE,
        config: SW_BPF_OUTPUT,
        rate: Rate::Period(1),
        callchain: plan.opts.callgraph,
        raw: plan.raw,
        inherit: !plan.scope.is_system_wide(),
        enable_on_exec: false,
        exclude_user: false,
        exclude_kernel: false,
    }
}

/// The crate's options for `attr`, waking the reader at half a ring.
fn ring_opts(attr: &EventAttr) -> Opts {
    let mut opts = attr.opts();
    opts.wake_up = WakeUp {
        on: WakeUpOn::Bytes(RING_BYTES / 2),
        on_aux_bytes: 0,
    };
    opts
}

/// What the counting programs of `--bpf` count and how much room they have.
fn count_options(opts: &RecordOptions, scope: &Scope) -> CountOptions {
    let cpus = match scope {
        Scope::SystemWide(c) | Scope::Tasks { online: c, .. } => c.len(),
    };
    let default_entries = default_map_entries(&opts.events, opts.frequency, cpus);
    CountOptions {
        max_frames: if opts.callgraph { MAX_FRAMES } else { 1 },
        cpus: opts.cpus.as_ref().map(|c| c.as_slice().to_vec()),
        counts_entries: opts.bpf_map_entries.unwrap_or(default_entries),
        // 8192 to 32768 stacks remembered as sent, with a ring buffer of
        // 2 to 8 MiB to send them by default.
        stacks_entries: opts
            .bpf_map_entries
            .unwrap_or_else(|| (default_entries / 2).clamp(1 << 13, 1 << 15)),
    }
}

/// The kernel memory the maps take, roughly: the ring buffer for new
/// stacks, an LRU entry per stack remembered as sent, and a count entry (in
/// each of the two generations): its key, value and the hash table's entry.
fn map_memory(options: &CountOptions) -> u64 {
    ring_bytes(options.stacks_entries)
        + u64::from(options.stacks_entries) * 100
        + u64::from(options.counts_entries) * 2 * 120
}

/// Refuses maps that would take more than half of the memory available
/// (bytes, where known): the kernel allocates them in full when the
/// program loads.
fn check_map_memory(options: &CountOptions, available: Option<u64>) -> Result<()> {
    let needed = map_memory(options);
    let Some(available) = available else {
        return Ok(());
    };
    if needed > available / 2 {
        return Err(Error::bad_argument(format!(
            "--bpf-map-entries {} needs about {} MiB of kernel memory, more than half of the {} MiB available; \
             give fewer entries",
            options.stacks_entries,
            needed >> 20,
            available >> 20
        )));
    }
    Ok(())
}

/// Count entries for events without a rate (with 1 << 15 stacks remembered:
/// about 42 MiB of kernel memory, 8 for the stacks' ring buffer, 3 for the
/// stacks remembered, 31 for the counts' two generations).
const UNBOUNDED_EVENT_ENTRIES: u32 = 1 << 17;

/// Room in each kernel map for a recording of `events`: every CPU sampling
/// at `frequency` with a distinct stack each time, for two seconds, within
/// bounds (a map is drained once half full, checked four times a second:
/// at this rate, the other half lasts a second). Tracepoints and probes fire as
/// often as the code they watch, not at a chosen rate (sched_switch under
/// a busy network passes 30,000 distinct stacks a second, which maps sized
/// by -F dropped by the thousand), so they get the large default.
fn default_map_entries(events: &[EventRequest], frequency: u64, cpus: usize) -> u32 {
    let unbounded = events.iter().any(|e| {
        matches!(
            e,
            EventRequest::Tracepoint { .. }
                | EventRequest::Kprobe { .. }
                | EventRequest::Uprobe { .. }
        )
    });
    if unbounded {
        return UNBOUNDED_EVENT_ENTRIES;
    }
    let per_interval = frequency.saturating_mul(cpus as u64).saturating_mul(2);
    per_interval.clamp(4096, 1 << 18) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_sized_by_the_rate_and_large_for_events_without_one() {
        let clock = [EventRequest::Software(0)];
        assert_eq!(default_map_entries(&clock, 999, 2), 4096);
        assert_eq!(default_map_entries(&clock, 10_000, 2), 40_000);
        let switch = EventRequest::Tracepoint {
            system: "sched".into(),
            event: "sched_switch".into(),
        };
        assert_eq!(
            default_map_entries(&[clock[0].clone(), switch], 999, 2),
            UNBOUNDED_EVENT_ENTRIES
        );
    }

    #[test]
    fn maps_larger_than_half_the_free_memory_are_refused() {
        let options = CountOptions {
            max_frames: MAX_FRAMES,
            cpus: None,
            counts_entries: 1 << 20,
            stacks_entries: 1 << 20,
        };
        // About 400 MiB of maps.
        assert!(check_map_memory(&options, Some(1 << 30)).is_ok());
        let err = check_map_memory(&options, Some(512 << 20)).unwrap_err();
        assert!(
            err.message()
                .contains("more than half of the 512 MiB available"),
            "{err}"
        );
        assert!(check_map_memory(&options, None).is_ok());
    }
}
