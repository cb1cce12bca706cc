//! The page's per-thread timeline: each thread's samples, probe hits and
//! off-CPU time in fixed time bins, sparse, so that a long recording of many
//! threads stays small and the page can zoom down to one bin.

use ahash::AHashMap as HashMap;
use serde::Serialize;

use crate::model::profile::Profile;

/// The most bins a recording is cut into; a bin is never shorter than
/// [`MIN_BIN_NS`].
const MAX_BINS: u64 = 20_000;
const MIN_BIN_NS: u64 = 100_000;
/// Threads beyond these many (the busiest are kept) are left out.
pub const MAX_THREADS: usize = 300;

#[derive(Serialize)]
pub struct Timeline {
    pub start_ns: u64,
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
}

/// One profile's weight in one thread over time.
#[derive(Serialize)]
pub struct Series {
    /// Index of the page's profile (event) it belongs to.
    pub profile: usize,
    /// Pairs of (bins since the previous pair's bin, weight).
    pub bins: Vec<u64>,
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
    for s in timed() {
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
                    let bins = weights.get(&(tid, p))?;
                    let mut sorted: Vec<(u64, u64)> = bins.iter().map(|(&b, &w)| (b, w)).collect();
                    sorted.sort_unstable();
                    let mut previous = 0;
                    let mut pairs = Vec::with_capacity(sorted.len() * 2);
                    for (bin, weight) in sorted {
                        pairs.extend([bin - previous, weight]);
                        previous = bin;
                    }
                    Some(Series {
                        profile: p,
                        bins: pairs,
                    })
                })
                .collect(),
        })
        .collect();
    Some(Timeline {
        start_ns: start,
        bin_ns,
        bins: (end - start) / bin_ns + 1,
        threads: rows,
        threads_left_out,
    })
}
