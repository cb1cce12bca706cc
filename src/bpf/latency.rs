//! `netprof latency`'s collector: how long each call of kernel or module
//! functions takes, measured by an entry and a return probe and aggregated
//! into histograms in the kernel (bpf/latency.bpf.c), so that a function
//! called a million times a second costs no copying to user space.
//!
//! Probes go through [`super::entry_return`]: a multi-kprobe link pair
//! where the kernel has fprobe, else a link pair per function. The links
//! and the program belong to this process's descriptors: nothing stays
//! attached after netprof ends, however it ends.

use std::sync::atomic::AtomicBool;

use libbpf_rs::{MapCore, MapFlags};

use super::entry_return::{self, EntryPoints, MeasureOptions, OpenPrograms, Programs};
use super::follow_pids;
use super::kprobe_links;
use super::skeleton::{self, Role};
use crate::error::{Error, Result};
use crate::model::latency::{CallTimes, FunctionLatency, LatencyReport, BUCKETS, SCHEMA};
use crate::probe::Function;
use crate::sys::limits::check_kernel_memory;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/latency.skel.rs"));
}

use generated::{LatencySkel, LatencySkelBuilder};

const ROLE: Role = Role {
    command: "latency",
    fallback: "",
};

/// How the histograms are split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breakdown {
    None,
    PerCpu,
    PerProcess,
}

#[derive(Clone, Debug)]
pub struct LatencyOptions {
    /// Whose calls, for how long, attached how.
    pub measure: MeasureOptions,
    pub breakdown: Breakdown,
}

/// Probes `functions`, waits for the duration, until `stop` is set, or
/// until `finished` says so, and returns their latency histograms.
/// Attaching a link pair per function reports its `progress` now and then,
/// and again when removing many probes; `on_start` runs once the probes are attached, with how they were
/// attached (a command netprof runs starts then).
pub fn measure(
    functions: &[Function],
    opts: &LatencyOptions,
    stop: &AtomicBool,
    mut progress: impl FnMut(kprobe_links::Progress),
    on_start: impl FnOnce(&str) -> Result<()>,
    finished: impl FnMut() -> bool,
) -> Result<LatencyReport> {
    let way = EntryPoints::choose(opts.measure.attach);
    let skeleton = load(opts, way, functions.len())?;
    let programs = Programs {
        session: &skeleton.progs.latency_session,
        entry_multi: &skeleton.progs.latency_entry_multi,
        return_multi: &skeleton.progs.latency_return_multi,
        entry: &skeleton.progs.latency_entry,
        return_: &skeleton.progs.latency_return,
        follow_fork: opts
            .measure
            .follow_children
            .then_some(&skeleton.progs.follow_fork),
    };
    let cookies: Vec<u64> = (0..functions.len() as u64).collect();
    let probes = entry_return::attach(
        &programs,
        way,
        functions,
        &cookies,
        stop,
        "timed",
        &mut progress,
    )?;
    on_start(probes.kind)?;
    let measured =
        entry_return::measure_until(opts.measure.duration, stop, finished, std::thread::sleep);
    let mut report = LatencyReport {
        schema: SCHEMA.into(),
        duration_s: measured.as_secs_f64(),
        probes: probes.kind.into(),
        dropped: 0,
        missed_returns: probes.missed_returns(),
        not_probed: probes.refused.clone(),
        functions: Vec::new(),
    };
    // Detach before reading: the histograms no longer move.
    probes.remove(progress);
    read_histograms(&skeleton, functions, opts.breakdown, &mut report)?;
    Ok(report)
}

/// Bytes of one function's histogram on one CPU (struct hist).
const HIST_BYTES: u64 = 8 * (4 + BUCKETS as u64);

/// Loads the program with the entry points this kernel can attach (one
/// session program where it runs them), and room for `functions`
/// histograms.
fn load(opts: &LatencyOptions, way: EntryPoints, functions: usize) -> Result<LatencySkel<'static>> {
    let mut open = skeleton::open(LatencySkelBuilder::default(), &ROLE)?;
    if opts.breakdown != Breakdown::PerProcess {
        // One histogram per function, allocated up front (see the map's
        // comment in bpf/latency.bpf.c).
        let cpus = libbpf_rs::num_possible_cpus().unwrap_or(1) as u64;
        check_kernel_memory(functions as u64 * cpus * HIST_BYTES, |needed, available| {
            Error::failed(format!(
                "timing {functions} functions on {cpus} CPUs needs {needed} MiB of kernel memory for \
                 their histograms, more than half of the {available} MiB available; time fewer functions"
            ))
        })?;
        let hists = &mut open.maps.hists;
        hists
            .set_map_flags(0)
            .and_then(|()| hists.set_max_entries(functions.max(1) as u32))
            .map_err(|e| Error::failed(format!("cannot size the latency histograms ({e})")))?;
    }
    let progs = &mut open.progs;
    OpenPrograms {
        session: &mut progs.latency_session,
        entry_multi: &mut progs.latency_entry_multi,
        return_multi: &mut progs.latency_return_multi,
        entry: &mut progs.latency_entry,
        return_: &mut progs.latency_return,
        follow_fork: &mut progs.follow_fork,
    }
    .load_only(way, opts.measure.follow_children);
    let child_pid_offset = if opts.measure.follow_children {
        follow_pids::fork_child_offset()?
    } else {
        0
    };
    let rodata =
        open.maps.rodata_data.as_deref_mut().ok_or_else(|| {
            Error::failed("internal error: the BPF program has no read-only data")
        })?;
    rodata.filter_pids = !opts.measure.pids.is_empty() as u8;
    rodata.child_pid_offset = child_pid_offset;
    rodata.breakdown = match opts.breakdown {
        Breakdown::None => 0,
        Breakdown::PerCpu => 1,
        Breakdown::PerProcess => 2,
    };
    let skeleton = skeleton::load(open, &ROLE)?;
    follow_pids::fill(&skeleton.maps.pids, &opts.measure.pids)?;
    Ok(skeleton)
}

/// Reads every histogram (per function, and per CPU or process with a
/// breakdown) and the drop counters into `report`; functions never called
/// are listed too, with no calls, except those not probed. `functions` is
/// the list the cookies index.
fn read_histograms(
    skeleton: &LatencySkel,
    functions: &[Function],
    breakdown: Breakdown,
    report: &mut LatencyReport,
) -> Result<()> {
    let map_error =
        |e: libbpf_rs::Error| Error::failed(format!("cannot read the latency histograms ({e})"));
    for key in skeleton.maps.hists.keys() {
        let Some(per_cpu) = skeleton
            .maps
            .hists
            .lookup_percpu(&key, MapFlags::ANY)
            .map_err(map_error)?
        else {
            continue;
        };
        let word = |at: usize| u32::from_ne_bytes(key[at..at + 4].try_into().expect("u32"));
        let (index, group) = (word(0) as usize, word(4));
        let Some(function) = functions.get(index) else {
            continue;
        };
        let latency = |values: &[Vec<u8>]| {
            FunctionLatency::new(&function.name, function.module.clone(), &call_times(values))
        };
        match breakdown {
            // Each CPU's copy is that CPU's histogram.
            Breakdown::PerCpu => {
                for (cpu, value) in per_cpu.iter().enumerate() {
                    if read_u64(value, 0) > 0 {
                        let mut one = latency(std::slice::from_ref(value));
                        one.cpu = Some(cpu as u32);
                        report.functions.push(one);
                    }
                }
            }
            Breakdown::PerProcess => {
                let mut one = latency(&per_cpu);
                one.pid = Some(group);
                report.functions.push(one);
            }
            Breakdown::None => report.functions.push(latency(&per_cpu)),
        }
    }
    for reason in 0u32..2 {
        if let Some(per_cpu) = skeleton
            .maps
            .dropped
            .lookup_percpu(&reason.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_error)?
        {
            report.dropped += per_cpu.iter().map(|v| read_u64(v, 0)).sum::<u64>();
        }
    }
    for f in functions {
        if !report.not_probed.contains(&f.name)
            && !report
                .functions
                .iter()
                .any(|l| l.function == f.name && l.module == f.module)
        {
            report.functions.push(FunctionLatency::new(
                &f.name,
                f.module.clone(),
                &CallTimes::default(),
            ));
        }
    }
    report.functions.sort_by(|a, b| {
        (&a.module, &a.function, a.cpu, a.pid).cmp(&(&b.module, &b.function, b.cpu, b.pid))
    });
    Ok(())
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
}

/// One function's calls from the per-CPU copies of the kernel's value:
/// count, sum, min and max, then the buckets (struct hist in the program).
fn call_times(per_cpu: &[Vec<u8>]) -> CallTimes {
    let mut times = CallTimes {
        min_ns: u64::MAX,
        buckets: vec![0; BUCKETS],
        ..CallTimes::default()
    };
    for value in per_cpu {
        let n = read_u64(value, 0);
        if n == 0 {
            continue;
        }
        times.count += n;
        times.sum_ns = times.sum_ns.wrapping_add(read_u64(value, 8));
        times.min_ns = times.min_ns.min(read_u64(value, 16));
        times.max_ns = times.max_ns.max(read_u64(value, 24));
        for (i, b) in times.buckets.iter_mut().enumerate() {
            *b += read_u64(value, 32 + 8 * i);
        }
    }
    if times.count == 0 {
        times.min_ns = 0;
    }
    times
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpus_copies_add_up() {
        let value = |count: u64, min: u64, max: u64, bucket: usize| {
            let mut words = vec![0u64; 4 + BUCKETS];
            words[0] = count;
            words[1] = count * 1000;
            words[2] = min;
            words[3] = max;
            words[4 + bucket] = count;
            words
                .iter()
                .flat_map(|w| w.to_ne_bytes())
                .collect::<Vec<u8>>()
        };
        // 1000 ns falls in bucket (9-3)*16 + ((1000 >> 5) & 15) = 96 + 15.
        let per_cpu = vec![
            value(3, 990, 1010, 111),
            value(1, 1000, 1000, 111),
            value(0, 0, 0, 0),
        ];
        let t = call_times(&per_cpu);
        assert_eq!(
            (t.count, t.sum_ns, t.min_ns, t.max_ns),
            (4, 4000, 990, 1010)
        );
        assert_eq!(t.buckets[111], 4);
        assert_eq!(call_times(&[]).min_ns, 0);
    }
}
