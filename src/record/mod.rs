//! `netprof record`: sample call stacks with perf events into a perf.data file.
//!
//! One event per CPU (system-wide, or following a command or the given
//! processes and their children), each with its own ring buffer, drained into
//! the file as the kernel wrote the records. Before sampling starts, netprof
//! writes what the kernel does not report by itself: names and executable
//! maps of processes that already run, and the kernel's map. After sampling
//! it adds the kallsyms snapshot so that the file names its kernel, module and
//! BPF frames anywhere, later. With `--bpf` the kernel counts the stacks
//! instead ([`counted`]).

mod counted;
mod drain;
pub mod event;
mod open;
mod session;
mod synthesize;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::command::{self, CommandOutput, HeldChild};
use drain::FollowedTasks;
use event::{EventRequest, EventSpec, GlobProbes};
use open::Scope;
use session::Session;

use crate::bpf::kprobe_links::Attach;
use crate::bpf::stack_count::Dropped;
use crate::error::{Error, Result};
use crate::perfdata::writer::{self, FeatureBody, PerfDataWriter, RecordBuilder};
use crate::perfdata::{FEATURE_NETPROF_KALLSYMS, FEATURE_NETPROF_TP_FORMATS, HEADER_TRACING_DATA};
use crate::sys::cpus::{self, CpuList};
use crate::sys::tracefs::Tracefs;
use crate::sys::{kallsyms_cache, processes};

/// How often the rings are drained while sampling.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// With `--bpf` the rings carry only process names and maps: waking up
/// less often saves the recorder most of its remaining CPU.
const SIDE_BAND_POLL_INTERVAL: Duration = Duration::from_millis(250);
const STATUS_INTERVAL: Duration = Duration::from_millis(250);
/// How often a `-p` recording checks that its processes still run, and a
/// system-wide one which CPUs are online.
const LIVENESS_INTERVAL: Duration = Duration::from_millis(250);
/// How often `record --bpf` empties the kernel's count maps and writes the
/// counts gathered since the last time (more often when a map fills): a
/// busy datapath's stacks vary from tick to tick, and only a longer window
/// merges enough of them to beat writing every sample.
const COUNT_WRITE_INTERVAL: Duration = Duration::from_secs(10);

/// What to record, as the command line gave it (values already checked).
#[derive(Clone, Debug)]
pub struct RecordOptions {
    /// The events (cpu-clock when empty).
    pub events: Vec<EventRequest>,
    /// Sample every CPU (the default without a command or processes).
    pub all_cpus: bool,
    /// Follow these processes and their threads.
    pub pids: Vec<u32>,
    /// Sample only these CPUs (system-wide).
    pub cpus: Option<CpuList>,
    /// Run this command and follow it until it exits.
    pub command: Vec<String>,
    /// Samples per second of frequency-driven events.
    pub frequency: u64,
    /// Record kernel and user call chains.
    pub callgraph: bool,
    pub output: PathBuf,
    /// Stop after this long (else at the command's exit or `stop`).
    pub duration: Option<Duration>,
    /// Count stacks in the kernel (BPF) instead of copying each sample.
    pub bpf: bool,
    /// Room in the kernel's maps per drain interval (default: from the
    /// sampling rate and CPU count).
    pub bpf_map_entries: Option<u32>,
    /// Attach kprobe globs through one link per function even where the
    /// kernel has multi-kprobe links.
    pub no_multi_kprobe: bool,
    /// Also count the time threads spend off the CPU, by stack and state.
    pub off_cpu: Option<OffCpuRequest>,
}

pub use crate::bpf::stack_count::OffCpuRequest;

/// What a recording reports while it runs.
pub trait Progress {
    /// A one-line note: how probes were attached, a warning.
    fn note(&mut self, text: &str);
    /// About four times a second while sampling, if [`Self::shows_status`].
    fn status(&mut self, elapsed: Duration, samples: u64, lost: u64);
    /// Whether the status is shown: counting what the kernel holds costs
    /// a map read per counter, which nobody reads with the line off.
    fn shows_status(&self) -> bool;
}

#[derive(Debug, Default)]
pub struct RecordSummary {
    /// Executable files mapped by sampled tasks, for their build ids.
    pub mapped_files: BTreeSet<String>,
    pub samples: u64,
    pub lost: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub command_status: Option<i32>,
    /// `record --bpf` and `--off-cpu`: samples or blocks the kernel could
    /// not count (maps full), and short blocks left out.
    pub bpf_dropped: Dropped,
    /// `--off-cpu`: the time threads were away, in all.
    pub off_cpu: Duration,
    /// The disk filled up: the recording stopped there, and the file holds
    /// everything until then.
    pub disk_full: bool,
}

/// Records until the command exits, the followed processes are gone, the
/// duration passes, or `stop` is set (the caller's signal handler sets it),
/// and writes the file.
pub fn record(
    opts: &RecordOptions,
    stop: &AtomicBool,
    progress: &mut dyn Progress,
) -> Result<RecordSummary> {
    let online = cpus::online()?;
    let system_wide =
        opts.all_cpus || opts.cpus.is_some() || (opts.pids.is_empty() && opts.command.is_empty());
    let specs = event_specs(opts, system_wide)?;
    check_targets(opts, &online)?;
    if !system_wide
        && specs
            .iter()
            .any(|s| matches!(s.source, event::Source::Uprobe(_)))
    {
        return Err(Error::bad_argument(
            "uprobes are recorded system-wide (-a): the kernel cannot pass them on to the processes \
             a followed command starts; add -a",
        ));
    }
    if opts.bpf && !system_wide && specs.iter().any(EventSpec::fires_everywhere) {
        return Err(Error::bad_argument(
            "record --bpf counts tracepoints and kprobes system-wide only (their BPF programs run for every \
             task); add -a, or record this command without --bpf",
        ));
    }
    // The output first: a path that cannot be written fails before anything
    // runs or attaches.
    let mut writer = PerfDataWriter::create(&opts.output)?;
    // A command starts held at a gate, so that its events exist before it execs.
    let mut child = match opts.command.is_empty() {
        true => None,
        false => Some(HeldChild::spawn(
            &opts.command,
            match writer.is_stdout() {
                true => CommandOutput::ToStderr,
                false => CommandOutput::Shared,
            },
        )?),
    };
    let scope = match system_wide {
        true => Scope::SystemWide(opts.cpus.clone().unwrap_or_else(|| online.clone())),
        false => {
            let mut tids: Vec<u32> = opts
                .pids
                .iter()
                .flat_map(|&p| processes::threads(p))
                .collect();
            tids.extend(child.as_ref().map(|c| c.pid as u32));
            Scope::Tasks {
                tids,
                online: online.clone(),
            }
        }
    };
    // The kernel's symbols before the session loads its own BPF programs:
    // those would change the table at every run, and the copy kept between
    // runs would never serve (see kallsyms_cache). Samples never stand in
    // them but for off-CPU stacks, which are cut before them (see
    // KernelCounts::cut_tracing_frames).
    let kernel_symbols = kallsyms_cache::code_symbols()
        .unwrap_or_else(|_| kallsyms_cache::CodeSymbols::Text(String::new()));
    let mut session = Session::open(&specs, &scope, opts, child.is_some(), stop, progress)?;
    let mut summary = RecordSummary::default();
    write_start(
        opts,
        &session,
        &kernel_symbols,
        &mut writer,
        &mut summary,
        progress,
    )?;
    if let Some(counts) = session.kernel_counts.as_mut() {
        counts.cut_tracing_frames();
    }

    let start = Instant::now();
    // A followed command's events are enabled by its exec instead.
    if child.is_none() || system_wide {
        session.enable()?;
    }
    if let Some(c) = child.as_mut() {
        c.release()?;
    }
    let followed = match (&scope, &child) {
        (Scope::Tasks { tids, .. }, None) => Some(FollowedTasks::new(tids)),
        _ => None,
    };
    let deadline = opts.duration.map(|d| start + d);
    let mut sampling = Sampling {
        session: &mut session,
        writer: &mut writer,
        summary: &mut summary,
        last_time: 0,
        followed,
    };
    sampling.run(&mut child, stop, deadline, start, progress)?;
    sampling.finish(progress)?;
    if let Some(mut c) = child {
        let (status, killed) = c.stop();
        summary.command_status = Some(status);
        if killed {
            progress.note(&format!(
                "warning: the command did not end on SIGTERM; killed it after {} s",
                command::GRACE.as_secs()
            ));
        }
    }
    summary.elapsed = start.elapsed();
    if let Some(counts) = session.kernel_counts.as_mut() {
        let declared = counts.take_off_cpu_events();
        session.events.extend(declared);
    }
    let features = all_features(&specs, &session, kernel_symbols, &summary.mapped_files)?;
    summary.bytes = writer.finish(&session.events, &features)?;
    Ok(summary)
}

/// Writes what the kernel does not report by itself: the kernel's map, and
/// the names and executable maps of processes that already run.
/// `kernel_symbols` is the snapshot stored at the end.
fn write_start(
    opts: &RecordOptions,
    session: &Session,
    kernel_symbols: &kallsyms_cache::CodeSymbols,
    writer: &mut PerfDataWriter,
    summary: &mut RecordSummary,
    progress: &mut dyn Progress,
) -> Result<()> {
    // Room for the end of the file, held back from the start: the kernel
    // symbols, and a margin for the other features.
    writer.reserve(kernel_symbols.len() + (1 << 20))?;
    let kernel_text = kernel_symbols.kernel_text();
    if kernel_text.is_none() {
        progress.note(
            "warning: /proc/kallsyms shows no addresses (kernel.kptr_restrict?); kernel frames \
             will be hex. Run as root or `sysctl kernel.kptr_restrict=0`",
        );
    }
    let synth_id = session.events[0].ids[0];
    if let Some(text) = kernel_text {
        writer.write_record(&RecordBuilder::kernel_mmap(
            "[kernel.kallsyms]_text",
            text,
            u64::MAX,
            text,
            synth_id,
        ))?;
    }
    let existing = match session.is_system_wide() {
        true => processes::all(),
        false => opts.pids.clone(),
    };
    synthesize::processes(writer, &existing, synth_id, &mut summary.mapped_files)?;
    writer.finish_round()?;
    Ok(())
}

/// The events to open; a kprobe glob recorded system-wide goes under one
/// BPF program.
fn event_specs(opts: &RecordOptions, system_wide: bool) -> Result<Vec<EventSpec>> {
    if opts.events.is_empty() {
        return Ok(vec![EventSpec::cpu_clock()]);
    }
    // Following tasks, or with --bpf (whose counting program goes on each
    // probe's perf event), a glob becomes one kprobe-PMU probe per function.
    let globs = match system_wide && !opts.bpf {
        true => GlobProbes::Bpf(Attach::choose(opts.no_multi_kprobe)),
        false => GlobProbes::PerfEvents,
    };
    event::resolve(&opts.events, globs)
}

/// The CPUs and processes named must exist now.
fn check_targets(opts: &RecordOptions, online: &CpuList) -> Result<()> {
    if let Some(bad) = opts.cpus.as_ref().and_then(|c| c.first_outside(online)) {
        return Err(Error::not_found(format!(
            "CPU {bad} is not online (online: {online}); pick CPUs from that list with -C"
        )));
    }
    for &pid in &opts.pids {
        processes::check_followable(pid)?;
    }
    Ok(())
}

/// The sampling loop and its end.
struct Sampling<'a> {
    session: &'a mut Session,
    writer: &'a mut PerfDataWriter,
    summary: &'a mut RecordSummary,
    /// The newest timestamp seen, which stamps counted samples.
    last_time: u64,
    /// With -p: the tasks followed, so the recording ends when they do.
    followed: Option<FollowedTasks>,
}

impl Sampling<'_> {
    fn run(
        &mut self,
        child: &mut Option<HeldChild>,
        stop: &AtomicBool,
        deadline: Option<Instant>,
        start: Instant,
        progress: &mut dyn Progress,
    ) -> Result<()> {
        let poll = if self.session.samples_in_rings {
            POLL_INTERVAL
        } else {
            SIDE_BAND_POLL_INTERVAL
        };
        let (mut last_status, mut last_count_write, mut last_liveness) =
            (Instant::now(), Instant::now(), Instant::now());
        loop {
            drain::wait_for_data(self.session.ring_fds(), poll);
            self.drain_rings()?;
            if let Some(counts) = self.session.kernel_counts.as_mut() {
                counts.read_new_stacks()?;
                let write = last_count_write.elapsed() >= COUNT_WRITE_INTERVAL;
                if write || counts.filling() {
                    self.summary.samples += counts.collect()?;
                }
                if write {
                    last_count_write = Instant::now();
                    counts.write(self.writer, self.last_time)?;
                }
            }
            if progress.shows_status() && last_status.elapsed() >= STATUS_INTERVAL {
                last_status = Instant::now();
                let counted = match &self.session.kernel_counts {
                    Some(counts) => counts.samples_not_collected()?,
                    None => 0,
                };
                progress.status(
                    start.elapsed(),
                    self.summary.samples + counted,
                    self.summary.lost,
                );
            }
            if stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(());
            }
            if self.writer.disk_full() {
                self.summary.disk_full = true;
                return Ok(());
            }
            if let Some(status) = child.as_mut().and_then(HeldChild::try_wait) {
                self.summary.command_status = Some(status);
                return Ok(());
            }
            if last_liveness.elapsed() >= LIVENESS_INTERVAL {
                last_liveness = Instant::now();
                if self.followed.as_mut().is_some_and(FollowedTasks::all_gone) {
                    progress.note("the followed processes have exited");
                    return Ok(());
                }
                self.session.follow_hotplug(progress)?;
            }
        }
    }

    fn drain_rings(&mut self) -> Result<()> {
        drain::drain(
            &self.session.samplers,
            self.writer,
            self.summary,
            &mut self.last_time,
            self.followed.as_mut(),
        )
    }

    /// Stops the events, takes what is left in the rings and the kernel's
    /// maps, and detaches the probes.
    fn finish(&mut self, progress: &mut dyn Progress) -> Result<()> {
        self.session.disable();
        self.drain_rings()?;
        if let Some(counts) = self.session.kernel_counts.as_mut() {
            self.summary.samples += counts.collect_last()?;
            counts.write(self.writer, self.last_time)?;
            self.summary.off_cpu = Duration::from_nanos(counts.off_cpu_ns);
            self.summary.bpf_dropped = counts.dropped()?;
            // Stored as lost samples, so that reports of the file say so too.
            let dropped = self.summary.bpf_dropped.total();
            if dropped > 0 {
                let id = self.session.events[0].ids[0];
                self.writer
                    .write_record(&RecordBuilder::lost(id, dropped))?;
                self.writer.finish_round()?;
            }
        }
        self.session.detach_multi_probes(progress);
        Ok(())
    }
}

/// Every feature section, with the tracepoint formats where events have them.
fn all_features(
    specs: &[EventSpec],
    session: &Session,
    kernel_symbols: kallsyms_cache::CodeSymbols,
    mapped_files: &BTreeSet<String>,
) -> Result<Vec<(u32, FeatureBody)>> {
    let mut features = synthesize::features(&session.events, mapped_files);
    if !kernel_symbols.is_empty() {
        let body = match kernel_symbols {
            kallsyms_cache::CodeSymbols::Text(text) => FeatureBody::Bytes(text.into_bytes()),
            kallsyms_cache::CodeSymbols::InCopy {
                file, offset, len, ..
            } => FeatureBody::File { file, offset, len },
        };
        features.push((FEATURE_NETPROF_KALLSYMS, body));
    }
    let formats: Vec<(&str, &str)> = specs
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.format.as_deref()?)))
        .collect();
    if !formats.is_empty() {
        features.push((
            FEATURE_NETPROF_TP_FORMATS,
            writer::tp_formats_feature(&formats).into(),
        ));
        let events_dir = Tracefs::get()?.events();
        let read = |f: &str| std::fs::read_to_string(events_dir.join(f)).unwrap_or_default();
        let tracing =
            writer::tracing_data_feature(&read("header_page"), &read("header_event"), &formats);
        features.push((HEADER_TRACING_DATA, tracing.into()));
    }
    Ok(features)
}
