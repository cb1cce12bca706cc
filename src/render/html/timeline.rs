//! The page's per-thread timeline: each thread's samples and probe hits
//! (and, from sched_switch, its time on a CPU) in fixed time bins, sparse, so that a long recording of many
//! threads stays small and the page can zoom down to one bin.

use ahash::AHashMap as HashMap;
use serde::Serialize;

use crate::model::off_cpu;
use crate::model::profile::Profile;

/// The most bins a recording is cut into; a bin is never shorter than
/// [`MIN_BIN_NS`].
const MAX_BINS: u64 = 20_000;
const MIN_BIN_NS: u64 = 100_000;
/// Threads beyond these many (the busiest are kept) are left out.
pub const MAX_THREADS: usize = 300;

#[derive(Serialize)]
pub struct Timeline {
    /// The first and last samples' times.
    pub start_ns: u64,
    pub end_ns: u64,
    pub bin_ns: u64,
    pub bins: u64,
    pub threads: Vec<ThreadRow>,
    /// Threads left out (beyond [`MAX_THREADS`]).
    pub threads_left_out: usize,
}

#[derive(Serialize)]
pub struct ThreadRow {
    pub pid: i32,
    pub tid: i32,
    pub comm: String,
    pub series: Vec<Series>,
    /// Nanoseconds on a CPU per bin, as (bins since the previous pair's
    /// bin, ns) pairs, from the recording's sched_switch hits (empty
    /// without them).
    pub running: Vec<u64>,
}

/// One profile's weight in one thread over time.
#[derive(Serialize)]
pub struct Series {
    /// Index of the page's profile (event) it belongs to.
    pub profile: usize,
    /// Pairs of (bins since the previous pair's bin, weight).
    pub bins: Vec<u64>,
}

/// The tracepoint whose hits say which thread each CPU runs from then on.
const SWITCH_EVENT: &str = "sched:sched_switch";

/// Pairs of (bins since the previous pair's bin, weight) from bin -> weight.
fn sparse(bins: &HashMap<u64, u64>) -> Vec<u64> {
    let mut sorted: Vec<(u64, u64)> = bins.iter().map(|(&b, &w)| (b, w)).collect();
    sorted.sort_unstable();
    let mut previous = 0;
    let mut pairs = Vec::with_capacity(sorted.len() * 2);
    for (bin, weight) in sorted {
        pairs.extend([bin - previous, weight]);
        previous = bin;
    }
    pairs
}

/// Each thread's time on a CPU per bin, from sched_switch hits: a CPU runs
/// a switch's next task until its next switch, or until the recording's
/// last timestamp `end`. The time before a CPU's first switch is unknown
/// and left out; so is everything when the recording is not system-wide.
fn running_time(
    profile: &Profile,
    start: u64,
    end: u64,
    bin_ns: u64,
) -> HashMap<i32, HashMap<u64, u64>> {
    let running: HashMap<i32, HashMap<u64, u64>> = HashMap::new();
    let Some(event) = profile.events.iter().position(|e| e == SWITCH_EVENT) else {
        return running;
    };
    let Some(format) = &profile.formats[event] else {
        return running;
    };
    let switches: Vec<(u64, u32, i32, i32)> = profile
        .samples
        .iter()
        .filter(|s| s.event as usize == event && s.time >= start)
        .filter_map(|s| {
            let fields = format.decode(&s.raw);
            let pid = |field: &str| -> Option<i32> {
                fields
                    .iter()
                    .find(|(name, _)| name == field)?
                    .1
                    .parse()
                    .ok()
            };
            Some((s.time, s.cpu, pid("prev_pid")?, pid("next_pid")?))
        })
        .collect();
    // A recording of some tasks sees only their switches away (the
    // tracepoint fires in the task leaving): who runs next is then unknown.
    // Only a system-wide one sees the idle task leave a CPU.
    if !switches.iter().any(|&(_, _, prev, _)| prev == 0) {
        return running;
    }
    running_between_switches(switches, start, end, bin_ns)
}

/// The binning of [`running_time`], from its switches: (time, CPU,
/// prev_pid, next_pid) in any order.
fn running_between_switches(
    mut switches: Vec<(u64, u32, i32, i32)>,
    start: u64,
    end: u64,
    bin_ns: u64,
) -> HashMap<i32, HashMap<u64, u64>> {
    let mut running: HashMap<i32, HashMap<u64, u64>> = HashMap::new();
    let mut add = |tid: i32, mut from: u64, to: u64| {
        // The idle task (0) is not a thread anyone asks about.
        if tid == 0 {
            return;
        }
        let bins = running.entry(tid).or_default();
        while from < to {
            let bin = (from - start) / bin_ns;
            let until = (start + (bin + 1) * bin_ns).min(to);
            *bins.entry(bin).or_default() += until - from;
            from = until;
        }
    };
    switches.sort_unstable();
    // CPU -> (thread it runs, since when).
    let mut on_cpu: HashMap<u32, (i32, u64)> = HashMap::new();
    for (time, cpu, _, next) in switches {
        if let Some((tid, since)) = on_cpu.insert(cpu, (next, time)) {
            add(tid, since, time);
        }
    }
    // What runs at the end ran until then: a command's last thread may
    // leave its CPU for good only after the recording stopped (its parent,
    // woken by its exit, ends the recording first), and it ran all along.
    for (tid, since) in on_cpu.into_values() {
        add(tid, since, end);
    }
    running
}

/// Bins the profile's kept samples per thread; `profile_of(event)` says
/// which of the page's profiles an event's samples belong to (None: not
/// shown). None when the recording has no timed samples.
pub fn build(profile: &Profile, profile_of: impl Fn(u16) -> Option<usize>) -> Option<Timeline> {
    let timed = || profile.samples.iter().filter(|s| s.time > 0);
    let start = timed().map(|s| s.time).min()?;
    let end = timed().map(|s| s.time).max()?;
    let bin_ns = ((end - start) / MAX_BINS + 1).max(MIN_BIN_NS);
    // (tid, profile) -> bin -> weight; and the last comm seen per tid.
    let mut weights: HashMap<(i32, usize), HashMap<u64, u64>> = HashMap::new();
    let mut threads: HashMap<i32, (i32, u32, u64)> = HashMap::new();
    let running = running_time(profile, start, end, bin_ns);
    for s in timed() {
        // Counts made in the kernel (off-CPU time, record --bpf) reach the
        // file when they are drained, not when they happened: no time of
        // their own to draw.
        if s.count != 1 || off_cpu::counts_nanoseconds(&profile.events[s.event as usize]) {
            continue;
        }
        let Some(p) = profile_of(s.event) else {
            continue;
        };
        *weights
            .entry((s.tid, p))
            .or_default()
            .entry((s.time - start) / bin_ns)
            .or_default() += s.count;
        let thread = threads.entry(s.tid).or_insert((s.pid, s.comm, 0));
        thread.1 = s.comm;
        thread.2 += 1;
    }
    let mut order: Vec<(i32, (i32, u32, u64))> = threads.into_iter().collect();
    // The busiest threads first; ties by id, for a stable page.
    order.sort_by_key(|&(tid, (_, _, n))| (std::cmp::Reverse(n), tid));
    let threads_left_out = order.len().saturating_sub(MAX_THREADS);
    order.truncate(MAX_THREADS);
    let mut profiles: Vec<usize> = weights.keys().map(|&(_, p)| p).collect();
    profiles.sort_unstable();
    profiles.dedup();
    let rows = order
        .into_iter()
        .map(|(tid, (pid, comm, _))| ThreadRow {
            pid,
            tid,
            comm: profile.comms[comm as usize].clone(),
            series: profiles
                .iter()
                .filter_map(|&p| {
                    Some(Series {
                        profile: p,
                        bins: sparse(weights.get(&(tid, p))?),
                    })
                })
                .collect(),
            running: running.get(&tid).map(sparse).unwrap_or_default(),
        })
        .collect();
    Some(Timeline {
        start_ns: start,
        end_ns: end,
        bin_ns,
        bins: (end - start) / bin_ns + 1,
        threads: rows,
        threads_left_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_runs_from_its_switch_in_to_its_switch_out_or_the_end() {
        // CPU 0: idle, then thread 7 from 100 to 250, then thread 8 until
        // the end (no switch away recorded); CPU 1: thread 9 from 120.
        let switches = vec![(250, 0, 7, 8), (100, 0, 0, 7), (120, 1, 0, 9)];
        let running = running_between_switches(switches, 0, 400, 1000);
        let total = |tid: i32| {
            running
                .get(&tid)
                .map_or(0, |bins| bins.values().sum::<u64>())
        };
        assert_eq!((total(7), total(8), total(9)), (150, 150, 280));
        assert!(!running.contains_key(&0));
        // Bins split a run at their edges.
        let binned = running_between_switches(vec![(50, 0, 0, 7), (250, 0, 7, 0)], 0, 300, 100);
        let bins = &binned[&7];
        assert_eq!((bins[&0], bins[&1], bins[&2]), (50, 100, 50));
    }
}
