//! `netprof record`: sample call stacks with perf events into a perf.data file.
//!
//! One event per CPU (system-wide, or following a command or the given
//! processes and their children), each with its own ring buffer, drained into
//! the file as the kernel wrote the records. Before sampling starts, netprof
//! writes what the kernel does not report by itself: names and executable
//! maps of processes that already run, and the kernel's map. After sampling
//! it adds the kallsyms snapshot so that the file names its kernel, module and
//! BPF frames anywhere, later.

use std::io::{IsTerminal, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use perf_event_open::config::{Cpu, Proc, Target, WakeUp, WakeUpOn};
use perf_event_open::count::Counter;
use perf_event_open::sample::Sampler;

mod child;
mod counted;

use child::HeldChild;
use counted::KernelCounts;

use crate::event::{self, EventSpec};
use crate::kallsyms::KernelSymbols;
use crate::perfdata::attr::{EventAttr, Rate};
use crate::perfdata::writer::{self, EventDesc, Mapping, PerfDataWriter, RecordBuilder};
use crate::perfdata::*;

/// 2^8 pages (1 MiB) per ring: at 10 kHz with deep callchains a CPU writes
/// about 4 MB/s, and the ring is drained at least every 50 ms.
const RING_PAGES_EXP: u8 = 8;
const RING_BYTES: u32 = 4096 << RING_PAGES_EXP;
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// With `--bpf` the rings carry only process names and maps: waking up
/// less often saves the recorder most of its remaining CPU.
const SIDE_BAND_POLL_INTERVAL: Duration = Duration::from_millis(250);
const STATUS_INTERVAL: Duration = Duration::from_millis(250);
/// How often `record --bpf` empties the kernel's count maps.
const COUNT_DRAIN_INTERVAL: Duration = Duration::from_secs(1);
/// How often `record --bpf` writes the counts gathered since the last time:
/// a busy datapath's stacks vary from tick to tick, and only a longer
/// window merges enough of them to beat writing every sample.
const COUNT_WRITE_INTERVAL: Duration = Duration::from_secs(10);
const PERF_RECORD_LOST_SAMPLES: u32 = 13;

#[derive(Clone, Debug)]
pub struct RecordOptions {
    pub events: Vec<String>,
    pub all_cpus: bool,
    pub pids: Vec<u32>,
    pub cpus: Option<Vec<u32>>,
    pub command: Vec<String>,
    pub frequency: u64,
    pub callgraph: bool,
    pub output: PathBuf,
    pub duration: Option<f64>,
    pub quiet: bool,
    /// Count stacks in the kernel (BPF) instead of copying each sample.
    pub bpf: bool,
    /// Room in the kernel's maps per drain interval (default: from the
    /// sampling rate and CPU count).
    pub bpf_map_entries: Option<u32>,
}

#[derive(Debug, Default)]
pub struct RecordSummary {
    /// Executable files mapped by sampled tasks, for their build ids.
    pub mapped_files: std::collections::BTreeSet<String>,
    pub samples: u64,
    pub lost: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub command_status: Option<i32>,
    /// `record --bpf`: samples the kernel could not count (maps full).
    pub bpf_dropped: crate::bpfcount::Dropped,
}

/// Where the events are opened.
enum Scope {
    /// Every task on these CPUs.
    SystemWide(Vec<u32>),
    /// These tasks (and the children they create after the start) on every CPU.
    Tasks(Vec<u32>),
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn record(opts: &RecordOptions) -> Result<RecordSummary> {
    let system_wide =
        opts.all_cpus || opts.cpus.is_some() || (opts.pids.is_empty() && opts.command.is_empty());
    let specs: Vec<EventSpec> = if opts.events.is_empty() {
        vec![event::parse("cpu-clock")?]
    } else {
        let mut specs = Vec::new();
        for e in &opts.events {
            // With --bpf, a glob becomes one kprobe per function, each
            // with the counting program.
            specs.extend(event::parse_all(e, system_wide && !opts.bpf)?);
        }
        specs
    };
    if opts.frequency == 0 {
        bail!("-F 0: the sampling frequency must be at least 1 Hz");
    }
    let online = online_cpus()?;
    if let Some(cpus) = &opts.cpus {
        if let Some(bad) = cpus.iter().find(|c| !online.contains(c)) {
            bail!(
                "CPU {bad} is not online (online: {}); pick CPUs from that list with -C",
                format_cpus(&online)
            );
        }
    }
    for pid in &opts.pids {
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            bail!("process {pid} does not exist; check the pid with `ps -p {pid}`");
        }
    }

    // A command starts held at a gate, so that its events exist before it execs.
    let mut child = if opts.command.is_empty() {
        None
    } else {
        Some(HeldChild::spawn(&opts.command)?)
    };
    let scope = if system_wide {
        Scope::SystemWide(opts.cpus.clone().unwrap_or_else(|| online.clone()))
    } else {
        let mut tids = Vec::new();
        for &pid in &opts.pids {
            tids.extend(threads_of(pid));
        }
        tids.extend(child.as_ref().map(|c| c.pid as u32));
        Scope::Tasks(tids)
    };

    if opts.bpf && !system_wide && specs.iter().any(counted::fires_everywhere) {
        bail!(
            "record --bpf counts tracepoints and kprobes system-wide only (their BPF programs run for every \
             task); add -a, or record this command without --bpf"
        );
    }

    // All events share one sample layout; tracepoint fields ride along in
    // every sample when any event has them (counted samples have none).
    let raw = !opts.bpf
        && specs
            .iter()
            .any(|s| s.format.is_some() || s.multi_kprobe.is_some());
    let mut kernel_counts = KernelCounts::new(opts.callgraph);
    let mut unattached_counters = Vec::new();
    let count_options = crate::bpfcount::CountOptions {
        max_frames: if opts.callgraph {
            crate::bpfcount::MAX_FRAMES
        } else {
            1
        },
        cpus: opts.cpus.clone(),
        counts_entries: opts
            .bpf_map_entries
            .unwrap_or_else(|| default_map_entries(opts.frequency, online.len())),
        // A stack takes 1 KiB of kernel memory: 8 to 32 MiB by default.
        stacks_entries: opts.bpf_map_entries.unwrap_or_else(|| {
            (default_map_entries(opts.frequency, online.len()) / 2).clamp(1 << 13, 1 << 15)
        }),
    };
    let mut events = Vec::new();
    let mut samplers = Vec::new();
    let mut counters = Vec::new();
    // Descriptors of the events with a ring buffer, to poll: poll reports
    // the others as hung up.
    let mut ring_fds = Vec::new();
    // Multi-kprobes attached; they detach when dropped, after the last drain.
    let mut multi_probes = Vec::new();
    if opts.bpf {
        // Loaded before any event is opened: a kernel that refuses the
        // program is told apart from one that refuses the events.
        for spec in &specs {
            let kind = counted::attach_kind(spec);
            unattached_counters.push(crate::bpfcount::StackCounter::load(&count_options, kind)?);
        }
        unattached_counters.reverse();
    }
    for spec in &specs {
        let attr = EventAttr {
            type_: spec.type_,
            config: spec.config,
            rate: if spec.samples_every_hit() {
                Rate::Period(1)
            } else {
                Rate::Frequency(opts.frequency)
            },
            callchain: opts.callgraph,
            raw,
            inherit: !system_wide,
            // A command's events start when it execs, not while netprof holds it.
            enable_on_exec: child.is_some() && !system_wide,
            exclude_user: false,
            exclude_kernel: false,
        };
        // A counted event takes its stacks in the BPF program; asking the
        // kernel for call chains too would unwind twice per sample, and
        // bpf_get_stack() then returns the kernel's chain with its context
        // marker as a frame.
        let open_attr = EventAttr {
            callchain: attr.callchain && !opts.bpf,
            ..attr.clone()
        };
        let mut crate_opts = open_attr.opts();
        crate_opts.wake_up = WakeUp {
            on: WakeUpOn::Bytes(RING_BYTES / 2),
            on_aux_bytes: 0,
        };
        let mut ids = Vec::new();
        let mut outputs = Vec::new();
        let mut targets: Vec<(i64, i64)> = match &scope {
            Scope::SystemWide(cpus) => cpus.iter().map(|&c| (-1, c as i64)).collect(),
            Scope::Tasks(tids) => tids
                .iter()
                .flat_map(|&t| online.iter().map(move |&c| (t as i64, c as i64)))
                .collect(),
        };
        if opts.bpf && counted::fires_everywhere(spec) {
            targets.truncate(1);
        }
        for (tid, cpu) in targets {
            let target: Target = if tid < 0 {
                (Proc::ALL, Cpu(cpu as u32)).into()
            } else {
                (Proc(tid as u32), Cpu(cpu as u32)).into()
            };
            let counter = open_counter(spec, target, &crate_opts)
                .map_err(|e| open_error(e, spec, tid, cpu))?;
            ids.push(counter.id().context("cannot read the event id")?);
            outputs.push((cpu as u32, counter.file().as_raw_fd()));
            if opts.bpf {
                // The counting program takes the samples; no ring buffer.
                counters.push(counter);
                continue;
            }
            let sampler = counter.sampler(RING_PAGES_EXP).map_err(|e| {
                anyhow::anyhow!(
                    "cannot map the ring buffer of {} ({e}); raise kernel.perf_event_mlock_kb or run as root",
                    spec.name
                )
            })?;
            if sampler.parser().sample_type != attr.sample_type() || !sampler.parser().sample_id_all
            {
                bail!("internal error: the kernel event's sample layout differs from the file header's");
            }
            ring_fds.push(counter.file().as_raw_fd());
            samplers.push(sampler);
            counters.push(counter);
        }
        if let Some(multi) = &spec.multi_kprobe {
            let start = Instant::now();
            multi_probes.push(crate::multiprobe::attach(
                &multi.functions,
                multi.is_return,
                &outputs,
            )?);
            if !opts.quiet {
                eprintln!(
                    "netprof: {} functions probed at once through a multi-kprobe BPF link in {} ms",
                    multi.functions.len(),
                    start.elapsed().as_millis()
                );
            }
        }
        if opts.bpf {
            let counter = unattached_counters
                .pop()
                .expect("one counting program per event");
            let fds: Vec<i32> = outputs.iter().map(|&(_, fd)| fd).collect();
            kernel_counts.add(counter, &count_options, &fds, ids[0])?;
        }
        // Each counted sample carries its count as its period.
        let file_attr = EventAttr {
            rate: if opts.bpf { Rate::Period(1) } else { attr.rate },
            ..attr
        };
        events.push(EventDesc {
            attr: file_attr,
            name: spec.name.clone(),
            ids,
        });
    }
    if opts.bpf {
        let (desc, side_counters, side_samplers) = open_side_band(&scope, &online, opts)?;
        events.push(desc);
        ring_fds.extend(side_counters.iter().map(|c| c.file().as_raw_fd()));
        counters.extend(side_counters);
        samplers.extend(side_samplers);
    }

    let kallsyms_text = KernelSymbols::snapshot_text().unwrap_or_default();
    // Only the kernel's start is needed here: a scan, not a full parse.
    let kernel_text = crate::kallsyms::address_in(&kallsyms_text, "_text");
    if kernel_text.is_none() {
        eprintln!(
            "netprof: warning: /proc/kallsyms shows no addresses (kernel.kptr_restrict?); kernel frames \
             will be hex. Run as root or `sysctl kernel.kptr_restrict=0`"
        );
    }

    let mut writer = PerfDataWriter::create(&opts.output)?;
    let synth_id = events[0].ids[0];
    if let Some(text) = kernel_text {
        writer.write_record(&RecordBuilder::kernel_mmap(
            "[kernel.kallsyms]_text",
            text,
            u64::MAX,
            text,
            synth_id,
        ))?;
    }
    let existing: Vec<u32> = match &scope {
        Scope::SystemWide(_) => all_pids(),
        Scope::Tasks(_) => opts.pids.clone(),
    };
    let mut summary = RecordSummary::default();
    synthesize_processes(&mut writer, &existing, synth_id, &mut summary.mapped_files)?;
    writer.finish_round()?;

    install_stop_handlers();
    let start = Instant::now();
    // A followed command's events are enabled by its exec instead.
    let enabled_by_exec = child.is_some() && !system_wide;
    for c in &counters {
        if !enabled_by_exec {
            c.enable().context("cannot start the event")?;
        }
    }
    if let Some(c) = child.as_mut() {
        c.release()?;
    }

    let show_status = !opts.quiet && std::io::stderr().is_terminal();
    let deadline = opts.duration.map(|d| start + Duration::from_secs_f64(d));
    let mut last_status = Instant::now();
    let mut last_time = 0;
    let mut last_count_drain = Instant::now();
    let mut last_count_write = Instant::now();
    loop {
        wait_for_data(
            &ring_fds,
            if opts.bpf {
                SIDE_BAND_POLL_INTERVAL
            } else {
                POLL_INTERVAL
            },
        );
        drain(&samplers, &mut writer, &mut summary, &mut last_time)?;
        if opts.bpf && last_count_drain.elapsed() >= COUNT_DRAIN_INTERVAL {
            last_count_drain = Instant::now();
            summary.samples += kernel_counts.collect()?;
        }
        if opts.bpf && last_count_write.elapsed() >= COUNT_WRITE_INTERVAL {
            last_count_write = Instant::now();
            kernel_counts.write(&mut writer, last_time)?;
        }
        if show_status && last_status.elapsed() >= STATUS_INTERVAL {
            last_status = Instant::now();
            eprint!(
                "\r\x1b[K[ netprof record: {:.1}s  {} samples  {} lost ]",
                start.elapsed().as_secs_f64(),
                summary.samples,
                summary.lost
            );
            let _ = std::io::stderr().flush();
        }
        if STOP.load(Ordering::SeqCst) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if let Some(c) = child.as_mut() {
            if let Some(status) = c.try_wait() {
                summary.command_status = Some(status);
                break;
            }
        }
    }
    for c in &counters {
        let _ = c.disable();
    }
    drain(&samplers, &mut writer, &mut summary, &mut last_time)?;
    if opts.bpf {
        // Twice: the first drain flips to the generation the second empties.
        for _ in 0..2 {
            summary.samples += kernel_counts.collect()?;
        }
        kernel_counts.write(&mut writer, last_time)?;
        summary.bpf_dropped = kernel_counts.dropped()?;
    }
    if !multi_probes.is_empty() {
        let start = Instant::now();
        drop(multi_probes);
        if !opts.quiet {
            eprintln!(
                "netprof: multi-kprobe detached in {} ms",
                start.elapsed().as_millis()
            );
        }
    }
    if let Some(mut c) = child {
        summary.command_status = Some(c.stop());
    }
    summary.elapsed = start.elapsed();
    if show_status {
        eprint!("\r\x1b[K");
    }
    summary.bytes = writer.data_size();

    let mut features = file_features(&events, kallsyms_text, &summary.mapped_files);
    let formats: Vec<(&str, &str)> = specs
        .iter()
        .filter_map(|s| Some((s.name.as_str(), s.format.as_deref()?)))
        .collect();
    if !formats.is_empty() {
        features.push((
            FEATURE_NETPROF_TP_FORMATS,
            writer::tp_formats_feature(&formats),
        ));
        let events_dir = event::tracefs_events()?;
        let read = |f: &str| std::fs::read_to_string(events_dir.join(f)).unwrap_or_default();
        let tracing =
            writer::tracing_data_feature(&read("header_page"), &read("header_event"), &formats);
        features.push((HEADER_TRACING_DATA, tracing));
    }
    writer.finish(&events, &features)?;
    Ok(summary)
}

/// Room in each kernel map for one drain interval: every CPU sampling at the
/// given rate with a distinct stack each time, twice over, within bounds.
fn default_map_entries(frequency: u64, cpus: usize) -> u32 {
    let per_interval = frequency.saturating_mul(cpus as u64).saturating_mul(2);
    per_interval.clamp(4096, 1 << 18) as u32
}

/// `record --bpf`: a dummy event per CPU (or task) that samples nothing and
/// carries the process names, forks, exits and maps into the file.
fn open_side_band(
    scope: &Scope,
    online: &[u32],
    opts: &RecordOptions,
) -> Result<(EventDesc, Vec<Counter>, Vec<Sampler>)> {
    let system_wide = matches!(scope, Scope::SystemWide(_));
    let attr = EventAttr {
        type_: event::TYPE_SOFTWARE,
        config: event::SW_DUMMY,
        rate: Rate::Period(1),
        callchain: opts.callgraph,
        raw: false,
        inherit: !system_wide,
        enable_on_exec: !opts.command.is_empty() && !system_wide,
        exclude_user: false,
        exclude_kernel: false,
    };
    let mut crate_opts = attr.opts();
    crate_opts.wake_up = WakeUp {
        on: WakeUpOn::Bytes(RING_BYTES / 2),
        on_aux_bytes: 0,
    };
    let targets: Vec<Target> = match scope {
        Scope::SystemWide(cpus) => cpus.iter().map(|&c| (Proc::ALL, Cpu(c)).into()).collect(),
        Scope::Tasks(tids) => tids
            .iter()
            .flat_map(|&t| online.iter().map(move |&c| (Proc(t), Cpu(c)).into()))
            .collect(),
    };
    let (mut ids, mut counters, mut samplers) = (Vec::new(), Vec::new(), Vec::new());
    for target in targets {
        let counter = Counter::new(
            perf_event_open::event::sw::Software::Dummy,
            target,
            &crate_opts,
        )
        .context("cannot open the side-band event that follows process names and maps")?;
        let sampler = counter.sampler(RING_PAGES_EXP).context(
            "cannot map the side-band ring buffer; raise kernel.perf_event_mlock_kb or run as root",
        )?;
        ids.push(counter.id().context("cannot read the event id")?);
        counters.push(counter);
        samplers.push(sampler);
    }
    let desc = EventDesc {
        attr,
        name: "dummy".into(),
        ids,
    };
    Ok((desc, counters, samplers))
}

/// Opens one event through the crate's typed event descriptions.
fn open_counter(
    spec: &EventSpec,
    target: Target,
    opts: &perf_event_open::config::Opts,
) -> std::io::Result<Counter> {
    use perf_event_open::event::{dp::DynamicPmu, hw::Hardware, sw::Software, tp::Tracepoint};
    if let Some(address) = spec.kprobe_address {
        // config1 (the function name pointer) 0 means: probe config2, an address.
        let pmu = DynamicPmu {
            ty: spec.type_,
            config: spec.config,
            config1: 0,
            config2: address,
            config3: 0,
        };
        return Counter::new(pmu, target, opts);
    }
    match (spec.type_, spec.config) {
        (event::TYPE_TRACEPOINT, id) => Counter::new(Tracepoint { id }, target, opts),
        (event::TYPE_SOFTWARE, config) => {
            let sw = match config {
                event::SW_BPF_OUTPUT => Software::BpfOutput,
                0 => Software::CpuClock,
                1 => Software::TaskClock,
                2 => Software::PageFault,
                3 => Software::CtxSwitch,
                4 => Software::CpuMigration,
                5 => Software::MinorPageFault,
                _ => Software::MajorPageFault,
            };
            Counter::new(sw, target, opts)
        }
        (_, config) => {
            let hw = match config {
                0 => Hardware::CpuCycle,
                1 => Hardware::Instr,
                2 => Hardware::CacheAccess,
                3 => Hardware::CacheMiss,
                4 => Hardware::BranchInstr,
                5 => Hardware::BranchMiss,
                6 => Hardware::BusCycle,
                _ => Hardware::RefCpuCycle,
            };
            Counter::new(hw, target, opts)
        }
    }
}

fn open_error(e: std::io::Error, spec: &EventSpec, tid: i64, cpu: i64) -> anyhow::Error {
    let name = &spec.name;
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV) if spec.type_ == event::TYPE_HARDWARE => anyhow::anyhow!(
            "event '{name}' needs a hardware PMU and this machine has none (PMUs here: {}); use -e cpu-clock",
            event::pmus().join(", ")
        ),
        Some(libc::EACCES | libc::EPERM) => {
            let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").unwrap_or_default();
            anyhow::anyhow!(
                "no permission to open event '{name}' (kernel.perf_event_paranoid = {}); run as root or \
                 `sysctl kernel.perf_event_paranoid=-1`",
                paranoid.trim()
            )
        }
        Some(libc::ESRCH) => anyhow::anyhow!("task {tid} exited before its events could be opened; try again"),
        Some(libc::EMFILE) => {
            anyhow::anyhow!("too many open files for one event per CPU and task; raise `ulimit -n`")
        }
        Some(libc::EINVAL | libc::ENOENT | libc::EADDRNOTAVAIL | libc::EILSEQ) if spec.kprobe_address.is_some() => {
            anyhow::anyhow!(
                "the kernel refuses a probe on '{name}' ({e}): the function is notrace, on the kprobe \
                 blacklist, or inlined; probe its caller or a callee instead (netprof probe --list shows what can be probed)"
            )
        }
        _ if tid >= 0 => anyhow::anyhow!("cannot open event '{name}' for task {tid} on CPU {cpu}: {e}"),
        _ => anyhow::anyhow!("cannot open event '{name}' on CPU {cpu}: {e}"),
    }
}

/// Copies the rings into the file; `last_time` follows the newest
/// timestamp, which stamps the counted samples of `record --bpf`.
fn drain(
    samplers: &[Sampler],
    writer: &mut PerfDataWriter,
    summary: &mut RecordSummary,
    last_time: &mut u64,
) -> Result<()> {
    for sampler in samplers {
        let mut records = sampler
            .iter()
            .context("internal error: ring buffer already being read")?
            .into_cow();
        while let Some(record) = records.lending_next() {
            let bytes = record.as_raw().as_bytes();
            let type_ = u32::from_le_bytes(bytes[..4].try_into().expect("record header"));
            if type_ != PERF_RECORD_SAMPLE && bytes.len() >= 32 {
                // The sample_id trailer: pid/tid, time, id, cpu.
                *last_time = (*last_time).max(read_u64(bytes, bytes.len() - 24));
            }
            match type_ {
                PERF_RECORD_SAMPLE => summary.samples += 1,
                PERF_RECORD_MMAP2 => {
                    if let Some(path) = executable_mmap2_path(bytes) {
                        summary.mapped_files.insert(path);
                    }
                }
                PERF_RECORD_LOST => summary.lost += read_u64(bytes, 16),
                PERF_RECORD_LOST_SAMPLES => summary.lost += read_u64(bytes, 8),
                _ => {}
            }
            writer.write_record(bytes)?;
        }
    }
    writer.finish_round()
}

/// The file of an MMAP2 record that maps code (its filename follows 64
/// bytes of fields after the header).
fn executable_mmap2_path(record: &[u8]) -> Option<String> {
    const PROT_OFFSET: usize = 8 + 56;
    const NAME_OFFSET: usize = 8 + 64;
    let prot = u32::from_le_bytes(record.get(PROT_OFFSET..PROT_OFFSET + 4)?.try_into().ok()?);
    if prot & libc::PROT_EXEC as u32 == 0 {
        return None;
    }
    let name = record.get(NAME_OFFSET..)?;
    let name = &name[..name.iter().position(|&b| b == 0)?];
    Some(String::from_utf8_lossy(name).into_owned())
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .unwrap_or(0)
}

fn wait_for_data(fds: &[i32], timeout: Duration) {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: pollfds is a valid array of the given length. EINTR only ends the wait early.
    unsafe {
        libc::poll(
            pollfds.as_mut_ptr(),
            pollfds.len() as libc::nfds_t,
            timeout.as_millis() as i32,
        )
    };
}

fn install_stop_handlers() {
    STOP.store(false, Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, request_stop as *const () as libc::sighandler_t) };
    }
}

/// Names and executable maps of processes that exist before sampling starts.
fn synthesize_processes(
    writer: &mut PerfDataWriter,
    pids: &[u32],
    id: u64,
    mapped_files: &mut std::collections::BTreeSet<String>,
) -> Result<()> {
    for &pid in pids {
        let Ok(process) = procfs::process::Process::new(pid as i32) else {
            continue;
        };
        if let Ok(tasks) = process.tasks() {
            for task in tasks.flatten() {
                if let Ok(stat) = task.stat() {
                    writer.write_record(&RecordBuilder::comm(
                        pid,
                        task.tid as u32,
                        stat.comm.as_bytes(),
                        id,
                    ))?;
                }
            }
        }
        let Ok(maps) = process.maps() else { continue };
        for m in maps {
            let procfs::process::MMapPath::Path(path) = &m.pathname else {
                continue;
            };
            if !m.perms.contains(procfs::process::MMPermissions::EXECUTE) {
                continue;
            }
            let mapping = Mapping {
                pid,
                start: m.address.0,
                end: m.address.1,
                pgoff: m.offset,
                path: path.to_string_lossy().into_owned(),
            };
            writer.write_record(&RecordBuilder::mmap2(&mapping, id))?;
            mapped_files.insert(mapping.path);
        }
    }
    Ok(())
}

fn file_features(
    events: &[EventDesc],
    kallsyms_text: String,
    mapped_files: &std::collections::BTreeSet<String>,
) -> Vec<(u32, Vec<u8>)> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let args: Vec<String> = std::env::args().collect();
    let ncpus = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let mut features = vec![
        (
            HEADER_HOSTNAME,
            writer::string_feature(&read("/proc/sys/kernel/hostname")),
        ),
        (
            HEADER_OSRELEASE,
            writer::string_feature(&read("/proc/sys/kernel/osrelease")),
        ),
        (
            HEADER_VERSION,
            writer::string_feature(concat!("netprof ", env!("CARGO_PKG_VERSION"))),
        ),
        (HEADER_ARCH, writer::string_feature(std::env::consts::ARCH)),
        (HEADER_NRCPUS, writer::nrcpus_feature(ncpus, ncpus)),
        (HEADER_CMDLINE, writer::cmdline_feature(&args)),
        (HEADER_EVENT_DESC, writer::event_desc_feature(events)),
        (
            HEADER_BUILD_ID,
            writer::build_id_feature(&build_ids(mapped_files)),
        ),
    ];
    if !kallsyms_text.is_empty() {
        features.push((FEATURE_NETPROF_KALLSYMS, kallsyms_text.into_bytes()));
    }
    features
}

/// Build ids of the kernel and of the mapped files that have one.
fn build_ids(mapped_files: &std::collections::BTreeSet<String>) -> Vec<writer::BuildId> {
    let mut ids = Vec::new();
    if let Some(id) = std::fs::read("/sys/kernel/notes")
        .ok()
        .and_then(|n| gnu_build_id_note(&n))
    {
        ids.push(writer::BuildId {
            kernel: true,
            path: "[kernel.kallsyms]".into(),
            id,
        });
    }
    for path in mapped_files.iter().filter(|p| p.starts_with('/')) {
        if let Ok(Some(id)) = blazesym::helper::read_elf_build_id(path) {
            ids.push(writer::BuildId {
                kernel: false,
                path: path.clone(),
                id: id.into_owned(),
            });
        }
    }
    ids
}

/// The NT_GNU_BUILD_ID descriptor in a sequence of ELF notes.
fn gnu_build_id_note(mut notes: &[u8]) -> Option<Vec<u8>> {
    let word =
        |b: &[u8], i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?) as usize);
    while notes.len() >= 12 {
        let (namesz, descsz, type_) = (word(notes, 0)?, word(notes, 4)?, word(notes, 8)?);
        let name_end = 12 + namesz.div_ceil(4) * 4;
        let desc_end = name_end + descsz.div_ceil(4) * 4;
        if type_ == 3 && notes.get(12..12 + namesz)? == b"GNU\0" {
            return Some(notes.get(name_end..name_end + descsz)?.to_vec());
        }
        notes = notes.get(desc_end..)?;
    }
    None
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn threads_of(pid: u32) -> Vec<u32> {
    let tids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if tids.is_empty() {
        vec![pid]
    } else {
        tids
    }
}

pub fn online_cpus() -> Result<Vec<u32>> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")
        .context("cannot read the online CPUs")?;
    parse_cpu_list(text.trim())
}

/// Parses a CPU list such as `0,2-3` (the format of -C and of sysfs).
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let bad = || anyhow::anyhow!("bad CPU list '{s}'; write it like 0,2-3");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.trim().parse().map_err(|_| bad())?),
        }
    }
    if cpus.is_empty() {
        bail!("empty CPU list; write it like 0,2-3");
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

fn format_cpus(cpus: &[u32]) -> String {
    cpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_id_note_is_found_among_notes() {
        let mut notes = Vec::new();
        // A Xen note first, then the GNU build id.
        notes.extend_from_slice(&4u32.to_le_bytes());
        notes.extend_from_slice(&4u32.to_le_bytes());
        notes.extend_from_slice(&1u32.to_le_bytes());
        notes.extend_from_slice(b"Xen\0");
        notes.extend_from_slice(&[9, 9, 9, 9]);
        notes.extend_from_slice(&4u32.to_le_bytes());
        notes.extend_from_slice(&20u32.to_le_bytes());
        notes.extend_from_slice(&3u32.to_le_bytes());
        notes.extend_from_slice(b"GNU\0");
        notes.extend((1..=20).collect::<Vec<u8>>());
        assert_eq!(gnu_build_id_note(&notes), Some((1..=20).collect()));
        assert_eq!(gnu_build_id_note(&notes[..20]), None);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0,2-3").unwrap(), vec![0, 2, 3]);
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }
}
