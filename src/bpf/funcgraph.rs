//! `netprof funcgraph`'s collector: the call paths of traced functions and
//! the wall time of each, kept by a shadow stack per thread and aggregated
//! per path in the kernel (bpf/funcgraph.bpf.c), so that a function called
//! a million times a second costs no copying to user space.
//!
//! Probes go through [`super::entry_return`]. With calls kept (--slowest,
//! --errors), the kernel sends whole call trees of outermost calls through a
//! ring buffer, only those at least as slow as the slowest N kept so far:
//! netprof raises that bar in the program's data as it keeps calls.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::sync::atomic::AtomicBool;

use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};

use super::entry_return::{self, EntryPoints, MeasureOptions, OpenPrograms, Programs};
use super::follow_pids;
use super::kprobe_links::Progress;
use super::skeleton::{self, Role};
use crate::error::{Error, Result};
use crate::model::funcgraph::{
    FuncGraphReport, KeptCall, LoggedCall, PathCounts, PathTimes, Unpaired, SCHEMA,
};
use crate::model::latency::BUCKETS;
use crate::probe::Function;
use crate::sys::limits::check_kernel_memory;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/funcgraph.skel.rs"));
}

use generated::{FuncgraphSkel, FuncgraphSkelBuilder};

const ROLE: Role = Role {
    command: "funcgraph",
    fallback: "",
};

/// Traced functions one thread can be inside at once (MAX_DEPTH).
pub const MAX_DEPTH: u32 = 32;
/// Calls one kept call tree holds (MAX_LOG).
const MAX_LOG: usize = 256;

/// Bytes of one path's statistics (struct path_stats): six counters, the
/// path's length and functions, two histograms.
const PATH_BYTES: u64 = 8 * 7 + 4 * MAX_DEPTH as u64 + 16 * BUCKETS as u64;
/// Where the path's length, functions and histograms lie in it.
const PATH_DEPTH_AT: usize = 48;
const PATH_FUNCS_AT: usize = 56;
const PATH_BUCKETS_AT: usize = PATH_FUNCS_AT + 4 * MAX_DEPTH as usize;
/// Bytes of one thread's log header and one logged call (struct call_log).
const LOG_HEADER: usize = 40;
const RECORD_BYTES: usize = 32;
/// The ring buffer that carries kept calls, when calls are kept.
const KEPT_BUFFER: u32 = 4 << 20;

/// Which outermost calls to keep whole.
#[derive(Clone, Copy, Debug)]
pub struct Keep {
    /// This many of the slowest.
    pub slowest: usize,
    /// Only calls under which a call returned a negative errno.
    pub errors_only: bool,
}

#[derive(Clone, Debug)]
pub struct FuncGraphOptions {
    /// Whose calls, for how long, attached how.
    pub measure: MeasureOptions,
    /// Calls deeper than this many traced functions are not timed.
    pub max_depth: u32,
    /// Room for this many distinct paths.
    pub max_paths: u32,
    /// Tracing starts only in these functions (indices into the list);
    /// anywhere when empty.
    pub roots: Vec<usize>,
    /// Outermost calls to keep whole, if any.
    pub keep: Option<Keep>,
}

/// Traces `functions`, waits for the duration, until `stop` is set, or until
/// `finished` says so, and returns their call paths. `on_start` runs once
/// the probes are attached, with how (a command netprof runs starts then).
pub fn measure(
    functions: &[Function],
    opts: &FuncGraphOptions,
    stop: &AtomicBool,
    mut progress: impl FnMut(Progress),
    on_start: impl FnOnce(&str) -> Result<()>,
    finished: impl FnMut() -> bool,
) -> Result<FuncGraphReport> {
    let way = EntryPoints::choose(opts.measure.attach);
    let mut skeleton = load(opts, way)?;
    let cookies: Vec<u64> = (0..functions.len())
        .map(|i| i as u64 | ((opts.roots.contains(&i) as u64) << 32))
        .collect();
    let programs = Programs {
        session: &skeleton.progs.funcgraph_session,
        entry_multi: &skeleton.progs.funcgraph_entry_multi,
        return_multi: &skeleton.progs.funcgraph_return_multi,
        entry: &skeleton.progs.funcgraph_entry,
        return_: &skeleton.progs.funcgraph_return,
        follow_fork: opts
            .measure
            .follow_children
            .then_some(&skeleton.progs.follow_fork),
    };
    let probes = entry_return::attach(
        &programs,
        way,
        functions,
        &cookies,
        stop,
        "traced",
        &mut progress,
    )?;
    on_start(probes.kind)?;
    let kept = RefCell::new(Vec::new());
    let mut best = Slowest::new(opts.keep.map_or(0, |k| k.slowest));
    let ring = match opts.keep {
        Some(_) => {
            let mut builder = RingBufferBuilder::new();
            builder
                .add(&skeleton.maps.kept, |bytes: &[u8]| {
                    kept.borrow_mut().push(bytes.to_vec());
                    0
                })
                .map_err(|e| Error::failed(format!("cannot read kept calls ({e})")))?;
            Some(
                builder
                    .build()
                    .map_err(|e| Error::failed(format!("cannot read kept calls ({e})")))?,
            )
        }
        None => None,
    };
    let measured = entry_return::measure_until(opts.measure.duration, stop, finished, |wait| {
        match &ring {
            // Interrupted by a signal: measure_until's test decides.
            Some(ring) => drop(ring.poll(wait)),
            None => std::thread::sleep(wait),
        }
        for bytes in kept.borrow_mut().drain(..) {
            best.offer(parse_log(&bytes, functions));
        }
        if let (Some(bar), Some(bss)) = (best.bar(), skeleton.maps.bss_data.as_deref_mut()) {
            bss.keep_threshold_ns = bar;
        }
    });
    let missed_returns = probes.missed_returns();
    let kind = probes.kind;
    let not_probed = probes.refused.clone();
    // Detach before reading: the paths no longer move.
    probes.remove(progress);
    if let Some(ring) = &ring {
        drop(ring.consume());
    }
    drop(ring);
    for bytes in kept.into_inner() {
        best.offer(parse_log(&bytes, functions));
    }
    let roots = opts.roots.iter().map(|&i| functions[i].label()).collect();
    let paths = read_paths(&skeleton, functions)?;
    Ok(FuncGraphReport {
        schema: SCHEMA.into(),
        duration_s: measured.as_secs_f64(),
        probes: kind.into(),
        functions: functions.len(),
        under: roots,
        max_depth: opts.max_depth,
        unpaired: Unpaired {
            still_running: open_calls(&skeleton),
            recursive: recursive_calls(&paths),
            ..read_counters(&skeleton)?
        },
        missed_returns,
        not_probed,
        paths,
        kept_calls: best.into_sorted(),
    })
}

/// Loads the program with the entry points this kernel can attach (one
/// session program where it runs them) and its maps sized for the
/// options.
fn load(opts: &FuncGraphOptions, way: EntryPoints) -> Result<FuncgraphSkel<'static>> {
    let mut open = skeleton::open(FuncgraphSkelBuilder::default(), &ROLE)?;
    let paths = opts.max_paths;
    check_kernel_memory(paths as u64 * PATH_BYTES, |needed, available| {
        Error::bad_argument(format!(
            "room for {paths} paths needs {needed} MiB of kernel memory, more than half of the \
             {available} MiB available; give a smaller --max-paths"
        ))
    })?;
    let sized = |map: &mut libbpf_rs::OpenMapMut, entries: u32| {
        map.set_max_entries(entries)
            .map_err(|e| Error::failed(format!("cannot size the funcgraph maps ({e})")))
    };
    sized(&mut open.maps.paths, opts.max_paths)?;
    // The logs and their buffer take room only when calls are kept.
    if opts.keep.is_none() {
        sized(&mut open.maps.logs, 1)?;
        sized(&mut open.maps.kept, page_size())?;
    } else {
        sized(&mut open.maps.kept, KEPT_BUFFER)?;
    }
    let progs = &mut open.progs;
    OpenPrograms {
        session: &mut progs.funcgraph_session,
        entry_multi: &mut progs.funcgraph_entry_multi,
        return_multi: &mut progs.funcgraph_return_multi,
        entry: &mut progs.funcgraph_entry,
        return_: &mut progs.funcgraph_return,
        follow_fork: &mut progs.follow_fork,
    }
    .load_only(way, opts.measure.follow_children);
    let child_pid_offset = match opts.measure.follow_children {
        true => follow_pids::fork_child_offset()?,
        false => 0,
    };
    let rodata =
        open.maps.rodata_data.as_deref_mut().ok_or_else(|| {
            Error::failed("internal error: the BPF program has no read-only data")
        })?;
    rodata.filter_pids = !opts.measure.pids.is_empty() as u8;
    rodata.child_pid_offset = child_pid_offset;
    rodata.max_depth = opts.max_depth.clamp(1, MAX_DEPTH);
    rodata.under_roots = !opts.roots.is_empty() as u8;
    rodata.keep_calls = opts.keep.is_some() as u8;
    rodata.errors_only = opts.keep.is_some_and(|k| k.errors_only) as u8;
    let skeleton = skeleton::load(open, &ROLE)?;
    follow_pids::fill(&skeleton.maps.pids, &opts.measure.pids)?;
    Ok(skeleton)
}

fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as u32
    } else {
        4096
    }
}

/// The slowest kept calls so far, at most `capacity` of them (at most a
/// thousand: a scan for the fastest costs less than keeping a heap).
struct Slowest {
    capacity: usize,
    /// In the order they came.
    calls: Vec<KeptCall>,
}

impl Slowest {
    fn new(capacity: usize) -> Slowest {
        Slowest {
            capacity,
            calls: Vec::new(),
        }
    }

    /// Where the fastest kept call is (of equals, the first that came: the
    /// one to go).
    fn fastest(&self) -> Option<usize> {
        (0..self.calls.len()).min_by_key(|&i| (self.calls[i].duration_ns, i))
    }

    fn offer(&mut self, call: Option<KeptCall>) {
        let Some(call) = call else { return };
        self.calls.push(call);
        if self.calls.len() > self.capacity {
            if let Some(at) = self.fastest() {
                self.calls.remove(at);
            }
        }
    }

    /// How slow a call must be to be kept, once there are enough.
    fn bar(&self) -> Option<u64> {
        match self.capacity > 0 && self.calls.len() >= self.capacity {
            true => self.fastest().map(|at| self.calls[at].duration_ns),
            false => None,
        }
    }

    /// Slowest first.
    fn into_sorted(mut self) -> Vec<KeptCall> {
        // Stable: equal durations keep the order they came in.
        self.calls.sort_by_key(|c| Reverse(c.duration_ns));
        self.calls
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .map_or(0, |b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
}

/// One outermost call's log as the kernel sent it (struct call_log, cut
/// after its last record).
fn parse_log(bytes: &[u8], functions: &[Function]) -> Option<KeptCall> {
    if bytes.len() < LOG_HEADER {
        return None;
    }
    let (tid, pid) = (u32_at(bytes, 0), u32_at(bytes, 4));
    let calls = (u32_at(bytes, 8) as usize).min(MAX_LOG);
    let truncated = u32_at(bytes, 12);
    let comm_bytes = &bytes[24..40];
    let comm_end = comm_bytes.iter().position(|&b| b == 0).unwrap_or(16);
    let comm = String::from_utf8_lossy(&comm_bytes[..comm_end]).into_owned();
    let logged = (0..calls)
        .map(|i| LOG_HEADER + i * RECORD_BYTES)
        .take_while(|at| at + RECORD_BYTES <= bytes.len())
        .filter_map(|at| {
            let function = functions.get((u32_at(bytes, at) as usize).checked_sub(1)?)?;
            Some(LoggedCall {
                frame: frame_of(function),
                depth: u32_at(bytes, at + 4),
                start_ns: u64_at(bytes, at + 8),
                duration_ns: u64_at(bytes, at + 16),
                ret: u64_at(bytes, at + 24),
            })
        })
        .collect();
    Some(KeptCall::new(pid, tid, comm, truncated, logged))
}

fn frame_of(function: &Function) -> crate::model::funcgraph::Frame {
    crate::model::funcgraph::Frame {
        function: function.name.clone(),
        module: function.module.clone(),
    }
}

/// Every path the kernel counted, largest total first.
fn read_paths(skeleton: &FuncgraphSkel, functions: &[Function]) -> Result<Vec<PathTimes>> {
    let map_error =
        |e: libbpf_rs::Error| Error::failed(format!("cannot read the funcgraph paths ({e})"));
    let mut paths = Vec::new();
    for key in skeleton.maps.paths.keys() {
        let Some(value) = skeleton
            .maps
            .paths
            .lookup(&key, MapFlags::ANY)
            .map_err(map_error)?
        else {
            continue;
        };
        let depth = (u32_at(&value, PATH_DEPTH_AT) as usize).min(MAX_DEPTH as usize);
        let path: Option<Vec<_>> = value[PATH_FUNCS_AT..PATH_BUCKETS_AT]
            .chunks_exact(4)
            .take(depth)
            .map(|w| u32::from_ne_bytes(w.try_into().expect("4 bytes")) as usize)
            .map(|f| functions.get(f.checked_sub(1)?).map(frame_of))
            .collect();
        let Some(path) = path.filter(|p| !p.is_empty()) else {
            continue;
        };
        let buckets = |from: usize| -> Vec<u64> {
            (0..BUCKETS).map(|i| u64_at(&value, from + 8 * i)).collect()
        };
        let counts = PathCounts {
            count: u64_at(&value, 0),
            total_ns: u64_at(&value, 8),
            self_ns: u64_at(&value, 16),
            min_ns: u64_at(&value, 24),
            max_ns: u64_at(&value, 32),
            errors: u64_at(&value, 40),
            total_buckets: buckets(PATH_BUCKETS_AT),
            self_buckets: buckets(PATH_BUCKETS_AT + 8 * BUCKETS),
        };
        if counts.count > 0 {
            paths.push(PathTimes::new(path, &counts));
        }
    }
    paths.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.path.cmp(&b.path)));
    Ok(paths)
}

/// Calls of a function already on their thread's path: those of the paths
/// whose last function is also higher up.
fn recursive_calls(paths: &[PathTimes]) -> u64 {
    paths
        .iter()
        .filter(|p| match p.path.split_last() {
            Some((last, above)) => above.contains(last),
            None => false,
        })
        .map(|p| p.count)
        .sum()
}

/// Calls entered whose return was never seen: the threads' shadow stacks
/// once the probes are gone (each entry's first word is its depth).
fn open_calls(skeleton: &FuncgraphSkel) -> u64 {
    let shadows = &skeleton.maps.shadows;
    shadows
        .keys()
        .filter_map(|key| shadows.lookup(&key, MapFlags::ANY).ok().flatten())
        .map(|value| u32_at(&value, 0) as u64)
        .sum()
}

/// The kernel's counters of what did not pair up or could not be kept
/// (enum counter in the program), summed over the CPUs.
fn read_counters(skeleton: &FuncgraphSkel) -> Result<Unpaired> {
    let mut values = [0u64; 8];
    for (index, value) in values.iter_mut().enumerate() {
        let per_cpu = skeleton
            .maps
            .counters
            .lookup_percpu(&(index as u32).to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| Error::failed(format!("cannot read the funcgraph counters ({e})")))?;
        *value = per_cpu
            .unwrap_or_default()
            .iter()
            .map(|v| u64_at(v, 0))
            .sum();
    }
    let [no_thread_room, no_path_room, no_entry, no_return, too_deep, log_truncated, no_log_room, log_lost] =
        values;
    Ok(Unpaired {
        no_entry,
        still_running: 0,
        no_return,
        too_deep,
        recursive: 0,
        no_thread_room,
        no_path_room,
        log_truncated,
        no_log_room,
        log_lost,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(name: &str) -> Function {
        Function {
            name: name.into(),
            module: None,
            address: 0,
        }
    }

    fn log_bytes(records: &[(u32, u32, u64, u64, u64)]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [7u32, 8, records.len() as u32, 0, 0, 0] {
            bytes.extend(word.to_ne_bytes());
        }
        bytes.extend(b"ping\0\0\0\0\0\0\0\0\0\0\0\0");
        for &(func, depth, start, duration, ret) in records {
            bytes.extend(func.to_ne_bytes());
            bytes.extend(depth.to_ne_bytes());
            for word in [start, duration, ret] {
                bytes.extend(word.to_ne_bytes());
            }
        }
        bytes
    }

    #[test]
    fn a_log_from_the_kernel_becomes_a_call_tree() {
        let functions = [function("outer"), function("inner")];
        let bytes = log_bytes(&[(2, 1, 110, 5, 0), (1, 0, 100, 50, 3)]);
        let call = parse_log(&bytes, &functions).unwrap();
        assert_eq!((call.pid, call.tid, call.comm.as_str()), (8, 7, "ping"));
        let tree: Vec<(&str, u32, u64)> = call
            .calls
            .iter()
            .map(|c| (c.function.as_str(), c.depth, c.start_ns))
            .collect();
        assert_eq!(tree, vec![("outer", 0, 0), ("inner", 1, 10)]);
        // A cut log keeps the records it has; a bad function index is
        // left out.
        let short = &bytes[..bytes.len() - 4];
        assert_eq!(parse_log(short, &functions).unwrap().calls.len(), 1);
        let unknown = log_bytes(&[(9, 0, 1, 1, 0)]);
        assert!(parse_log(&unknown, &functions).unwrap().calls.is_empty());
        assert!(parse_log(&bytes[..10], &functions).is_none());
    }

    #[test]
    fn recursive_calls_are_those_below_their_own_function() {
        let path = |names: &[&str], count: u64| {
            let counts = PathCounts {
                count,
                total_buckets: vec![0; BUCKETS],
                self_buckets: vec![0; BUCKETS],
                ..PathCounts::default()
            };
            PathTimes::new(
                names.iter().map(|n| frame_of(&function(n))).collect(),
                &counts,
            )
        };
        let paths = [
            path(&["r"], 3),
            path(&["r", "r"], 3),
            path(&["r", "r", "inner"], 3),
            path(&["r", "x", "r"], 2),
        ];
        assert_eq!(recursive_calls(&paths), 5);
    }

    #[test]
    fn the_slowest_are_kept_and_raise_the_bar() {
        let call = |ns: u64| {
            let logged = vec![LoggedCall {
                frame: frame_of(&function("f")),
                depth: 0,
                start_ns: 0,
                duration_ns: ns,
                ret: 0,
            }];
            Some(KeptCall::new(1, 1, "x".into(), 0, logged))
        };
        let mut slowest = Slowest::new(2);
        slowest.offer(call(5));
        assert_eq!(slowest.bar(), None);
        for ns in [9, 1, 7] {
            slowest.offer(call(ns));
        }
        assert_eq!(slowest.bar(), Some(7));
        let kept: Vec<u64> = slowest
            .into_sorted()
            .iter()
            .map(|c| c.duration_ns)
            .collect();
        assert_eq!(kept, vec![9, 7]);
    }
}
