//! Call paths and their wall time: what `netprof funcgraph` measures and
//! `--json` writes (schema netprof-funcgraph/1), and what `netprof diff`
//! reads back.
//!
//! A path is the chain of traced functions from a thread's outermost traced
//! call down to one function (untraced functions in between do not show).
//! Per path the kernel counts calls, total time (entry to return, waiting
//! included), self time (total minus the traced children's), and keeps a
//! histogram of each (the buckets of [`super::latency`]).

use serde::{Deserialize, Serialize};

use super::latency::{nonempty_buckets, quantile, Bucket};

pub const SCHEMA: &str = "netprof-funcgraph/1";

/// Largest errno the kernel returns as a negative value (MAX_ERRNO).
const MAX_ERRNO: i64 = 4095;

/// One function on a path.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frame {
    pub function: String,
    pub module: Option<String>,
}

impl Frame {
    /// `name [module]`, or the name alone for vmlinux.
    pub fn label(&self) -> String {
        match &self.module {
            Some(m) => format!("{} [{m}]", self.function),
            None => self.function.clone(),
        }
    }
}

/// One call path's calls.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PathTimes {
    /// Outermost first; the path's function is the last.
    pub path: Vec<Frame>,
    pub count: u64,
    /// Calls that returned a negative errno.
    pub errors: u64,
    pub total_ns: u64,
    pub self_ns: u64,
    /// Of one call's total time.
    pub min_ns: u64,
    pub max_ns: u64,
    pub median_ns: f64,
    pub p99_ns: f64,
    pub self_median_ns: f64,
    pub self_p99_ns: f64,
    /// Calls by total time per call: non-empty buckets, [low, high) in ns.
    pub histogram: Vec<Bucket>,
    /// Calls by self time per call.
    pub self_histogram: Vec<Bucket>,
}

/// What the kernel counted of one path, as read from its map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathCounts {
    pub count: u64,
    pub errors: u64,
    pub total_ns: u64,
    pub self_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub total_buckets: Vec<u64>,
    pub self_buckets: Vec<u64>,
}

impl PathTimes {
    pub fn new(path: Vec<Frame>, c: &PathCounts) -> PathTimes {
        let histogram = nonempty_buckets(&c.total_buckets);
        let self_histogram = nonempty_buckets(&c.self_buckets);
        // Self time has no exact extremes: its quantiles stay in buckets.
        let total_q = |p: f64| quantile(&histogram, c.count, p, c.min_ns, c.max_ns);
        let self_q = |p: f64| quantile(&self_histogram, c.count, p, 0, u64::MAX - 1);
        PathTimes {
            path,
            count: c.count,
            errors: c.errors,
            total_ns: c.total_ns,
            self_ns: c.self_ns,
            min_ns: c.min_ns,
            max_ns: c.max_ns,
            median_ns: total_q(0.5),
            p99_ns: total_q(0.99),
            self_median_ns: self_q(0.5),
            self_p99_ns: self_q(0.99),
            histogram,
            self_histogram,
        }
    }

    /// The frames' labels joined by `;`, as folded stacks write a path.
    pub fn folded_key(&self) -> String {
        path_label(&self.path)
    }
}

/// `a;b [m];c` of a path's frames.
pub fn path_label(path: &[Frame]) -> String {
    let labels: Vec<String> = path.iter().map(Frame::label).collect();
    labels.join(";")
}

/// Entries and returns that did not pair up, and what could not be kept.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Unpaired {
    /// Returns with no entry seen: calls begun while the probes were being
    /// placed or removed (or whose entry the kernel did not report); not
    /// timed.
    pub no_entry: u64,
    /// Calls still running when tracing stopped; not timed.
    #[serde(default)]
    pub still_running: u64,
    /// Entries whose return never came (the kernel missed it); not timed.
    pub no_return: u64,
    /// Calls deeper than the depth limit; not timed.
    pub too_deep: u64,
    /// Calls of a function already on the thread's path; timed, on a path
    /// with the function twice.
    pub recursive: u64,
    /// Calls not timed: the map of threads inside traced calls was full.
    pub no_thread_room: u64,
    /// Calls timed but not counted: the map of paths was full.
    pub no_path_room: u64,
    /// Calls left out of kept call trees (a tree holds at most 256).
    pub log_truncated: u64,
    /// Outermost calls not considered for keeping: too many threads at once.
    pub no_log_room: u64,
    /// Kept calls lost on the way to netprof (its buffer was full).
    pub log_lost: u64,
}

/// One traced call inside a kept call, in the order calls began.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TracedCall {
    pub function: String,
    pub module: Option<String>,
    /// 0: the outermost call.
    pub depth: u32,
    /// From the outermost call's start.
    pub start_ns: u64,
    pub duration_ns: u64,
    /// The return register, as a signed number.
    pub ret: i64,
    /// The negative errno it returned, if it looks like one.
    pub errno: Option<i32>,
    /// The first call to return an errno: the deepest of its chain, where
    /// the error started.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error_origin: bool,
}

/// One outermost call kept whole (--slowest, --errors).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KeptCall {
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub duration_ns: u64,
    /// Calls under it left out: more than a tree holds.
    pub truncated: u32,
    pub calls: Vec<TracedCall>,
}

/// A call as the kernel logged it: when it began and how long it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedCall {
    pub frame: Frame,
    pub depth: u32,
    pub start_ns: u64,
    pub duration_ns: u64,
    pub ret: u64,
}

impl KeptCall {
    /// The tree of one outermost call from its calls in the order they
    /// returned: sorted into the order they began (a parent before its
    /// children), times from the outermost call's start, and the error's
    /// first error's origin marked.
    pub fn new(
        pid: u32,
        tid: u32,
        comm: String,
        truncated: u32,
        mut logged: Vec<LoggedCall>,
    ) -> Self {
        logged.sort_by_key(|c| (c.start_ns, c.depth));
        let origin_time = logged.first().map_or(0, |c| c.start_ns);
        let duration_ns = logged
            .iter()
            .find(|c| c.depth == 0)
            .map_or(0, |c| c.duration_ns);
        // Parents return after their children: the first call to return an
        // errno is where an error started, whatever its callers made of it.
        let origin = logged
            .iter()
            .enumerate()
            .filter(|(_, c)| errno_of(c.ret).is_some())
            .min_by_key(|(_, c)| (c.start_ns + c.duration_ns, std::cmp::Reverse(c.depth)))
            .map(|(i, _)| i);
        let calls = logged
            .into_iter()
            .enumerate()
            .map(|(i, c)| TracedCall {
                function: c.frame.function,
                module: c.frame.module,
                depth: c.depth,
                start_ns: c.start_ns - origin_time,
                duration_ns: c.duration_ns,
                ret: c.ret as i64,
                errno: errno_of(c.ret),
                error_origin: origin == Some(i),
            })
            .collect();
        KeptCall {
            pid,
            tid,
            comm,
            duration_ns,
            truncated,
            calls,
        }
    }

    /// The first error returned under it, if any.
    pub fn first_error(&self) -> Option<&TracedCall> {
        self.calls.iter().find(|c| c.error_origin)
    }
}

/// A negative errno in a return register: a long in [-4095, -1], or an int
/// there with the register's upper half zero (as the compiler leaves an
/// int). Kept in step with is_errno() in bpf/funcgraph.bpf.c.
pub fn errno_of(ret: u64) -> Option<i32> {
    let long = ret as i64;
    if (-MAX_ERRNO..0).contains(&long) {
        return Some(long as i32);
    }
    let int = ret as u32 as i32 as i64;
    (ret >> 32 == 0 && (-MAX_ERRNO..0).contains(&int)).then_some(int as i32)
}

/// A whole measurement, as `--json` writes it (schema netprof-funcgraph/1).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FuncGraphReport {
    pub schema: String,
    pub duration_s: f64,
    /// How the probes were attached: kprobe.multi or kprobe.
    pub probes: String,
    /// Functions traced.
    pub functions: usize,
    /// Tracing starts only under these (--under); empty: anywhere.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub under: Vec<String>,
    pub max_depth: u32,
    pub unpaired: Unpaired,
    /// Returns the kernel could not probe (kretprobe instances exhausted).
    pub missed_returns: u64,
    /// Functions matched but not traced: the kernel would not probe them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_probed: Vec<String>,
    /// Sorted by total time, largest first.
    pub paths: Vec<PathTimes>,
    /// The outermost calls kept whole (--slowest, --errors), slowest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept_calls: Vec<KeptCall>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str) -> Frame {
        Frame {
            function: name.into(),
            module: Some("m".into()),
        }
    }

    #[test]
    fn errnos_of_longs_and_ints() {
        assert_eq!(errno_of((-22i64) as u64), Some(-22));
        assert_eq!(errno_of(0xffff_ffea), Some(-22));
        assert_eq!(errno_of(0), None);
        assert_eq!(errno_of(22), None);
        // A pointer is no errno, nor is an int below -4095.
        assert_eq!(errno_of(0xffff_8880_0000_1000), None);
        assert_eq!(errno_of((-5000i32) as u32 as u64), None);
    }

    #[test]
    fn a_kept_call_is_in_call_order_with_its_error_origin() {
        let call = |name: &str, depth, start, duration, ret: i64| LoggedCall {
            frame: frame(name),
            depth,
            start_ns: start,
            duration_ns: duration,
            ret: ret as u64,
        };
        // In return order: validate, then check (which passed the error
        // up), then log (after it), then parse.
        let logged = vec![
            call("validate", 2, 1020, 10, -22),
            call("check", 1, 1010, 30, -22),
            call("log", 1, 1050, 5, 0),
            call("parse", 0, 1000, 100, -22),
        ];
        let kept = KeptCall::new(1, 2, "sh".into(), 0, logged);
        let order: Vec<(&str, u32, u64)> = kept
            .calls
            .iter()
            .map(|c| (c.function.as_str(), c.depth, c.start_ns))
            .collect();
        assert_eq!(
            order,
            vec![
                ("parse", 0, 0),
                ("check", 1, 10),
                ("validate", 2, 20),
                ("log", 1, 50)
            ]
        );
        assert_eq!(kept.duration_ns, 100);
        assert_eq!(kept.first_error().map(|c| c.errno), Some(Some(-22)));
        let origins: Vec<&str> = kept
            .calls
            .iter()
            .filter(|c| c.error_origin)
            .map(|c| c.function.as_str())
            .collect();
        assert_eq!(origins, vec!["validate"]);
    }

    #[test]
    fn path_figures_from_the_kernels_counts() {
        let mut total_buckets = vec![0; super::super::latency::BUCKETS];
        let mut self_buckets = total_buckets.clone();
        // 1000 ns: bucket 111; 100 ns: bucket (6-3)*16 + ((100 >> 2) & 15) = 57.
        total_buckets[111] = 4;
        self_buckets[57] = 4;
        let counts = PathCounts {
            count: 4,
            errors: 1,
            total_ns: 4000,
            self_ns: 400,
            min_ns: 990,
            max_ns: 1010,
            total_buckets,
            self_buckets,
        };
        let p = PathTimes::new(vec![frame("a"), frame("b")], &counts);
        assert!((990.0..=1010.0).contains(&p.median_ns));
        assert!((96.0..=104.0).contains(&p.self_median_ns));
        assert_eq!(p.folded_key(), "a [m];b [m]");
        assert_eq!((p.histogram.len(), p.self_histogram.len()), (1, 1));
    }
}
