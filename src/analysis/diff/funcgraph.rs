//! Call-path results (`netprof funcgraph --json`) compared path by path:
//! which path a change made slower or faster, in total and in self time
//! per call, and whether the change is more than noise.
//!
//! With one result on a side, each path's histograms of total and of self
//! time per call are compared with the Mann-Whitney U test (a bucket's
//! values are ties). With two or more results on both sides, each run gives
//! one median per path, and the sides are compared with Welch's t-test,
//! which also sees how much runs differ from one another. Either way
//! Benjamini-Hochberg runs across all the paths' tests, and a change
//! smaller than the histograms' resolution (a bucket is up to 1/16 of its
//! value wide) is never marked.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::latency::Pooled;
use super::{read_result, JsonResult, FDR};
use crate::analysis::stats::{benjamini_hochberg, mann_whitney, welch};
use crate::error::Result;
use crate::model::funcgraph::{Frame, FuncGraphReport, SCHEMA};

/// Relative changes of a median below this are within the histograms'
/// resolution.
const RESOLUTION: f64 = 1.0 / 16.0;

/// One figure of a path (total or self time per call), before and after.
#[derive(Clone, Debug, Serialize)]
pub struct TimeChange {
    pub before_median_ns: f64,
    pub after_median_ns: f64,
    pub change_ns: f64,
    /// (after - before) / before.
    pub relative: f64,
    pub p_value: f64,
    pub significant: bool,
}

/// One path, before and after.
#[derive(Clone, Debug, Serialize)]
pub struct PathChange {
    pub path: Vec<Frame>,
    pub before_calls: u64,
    pub after_calls: u64,
    pub total: TimeChange,
    #[serde(rename = "self")]
    pub self_time: TimeChange,
}

impl PathChange {
    pub fn significant(&self) -> bool {
        self.total.significant || self.self_time.significant
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FuncGraphDiff {
    pub schema: &'static str,
    pub method: &'static str,
    pub before_runs: usize,
    pub after_runs: usize,
    /// Beyond noise first, then by the size of the change in self time,
    /// then in total time.
    pub paths: Vec<PathChange>,
    /// Paths with calls on one side only.
    pub only_before: Vec<Vec<Frame>>,
    pub only_after: Vec<Vec<Frame>>,
}

impl JsonResult for FuncGraphReport {
    const SCHEMA: &'static str = SCHEMA;
    const WRITER: &'static str = "netprof funcgraph --json";

    fn schema(&self) -> &str {
        &self.schema
    }

    fn has_calls(&self) -> bool {
        self.paths.iter().any(|p| p.count > 0)
    }
}

/// Reads a `netprof funcgraph --json` result.
pub fn read(path: &Path) -> Result<FuncGraphReport> {
    read_result(path)
}

/// One path on one side: every run pooled, and each run's medians.
struct Side {
    total: Pooled,
    self_time: Pooled,
    run_total_medians: Vec<f64>,
    run_self_medians: Vec<f64>,
}

fn sides(runs: &[FuncGraphReport]) -> Result<BTreeMap<Vec<Frame>, Side>> {
    let mut out: BTreeMap<Vec<Frame>, Side> = BTreeMap::new();
    for run in runs {
        for p in run.paths.iter().filter(|p| p.count > 0) {
            let side = out.entry(p.path.clone()).or_insert_with(|| Side {
                total: Pooled::new(),
                self_time: Pooled::new(),
                run_total_medians: Vec::new(),
                run_self_medians: Vec::new(),
            });
            let what = p.folded_key();
            side.total
                .add(&p.histogram, Some((p.min_ns, p.max_ns)), &what)?;
            side.self_time.add(&p.self_histogram, None, &what)?;
            side.run_total_medians.push(p.median_ns);
            side.run_self_medians.push(p.self_median_ns);
        }
    }
    Ok(out)
}

/// A figure's change; `p_value` from the test the runs allow.
fn change(before: &Pooled, after: &Pooled, runs: Option<(&[f64], &[f64])>) -> TimeChange {
    let (b, a) = (before.quantile(0.5), after.quantile(0.5));
    let p_value = match runs {
        Some((rb, ra)) => welch(rb, ra).p_value,
        None => mann_whitney(&before.histogram, &after.histogram),
    };
    TimeChange {
        before_median_ns: b,
        after_median_ns: a,
        change_ns: a - b,
        relative: if b > 0.0 { (a - b) / b } else { 0.0 },
        p_value,
        significant: false,
    }
}

/// Compares the funcgraph results of two sides (one or more runs each).
pub fn diff_funcgraphs(
    before: &[FuncGraphReport],
    after: &[FuncGraphReport],
) -> Result<FuncGraphDiff> {
    let (b, a) = (sides(before)?, sides(after)?);
    let repeated = before.len() >= 2 && after.len() >= 2;
    let mut paths = Vec::new();
    for (path, sb) in &b {
        let Some(sa) = a.get(path) else { continue };
        // Welch needs two runs with the path on each side.
        let runs = |x: &Side, y: &Side, total: bool| -> Option<(Vec<f64>, Vec<f64>)> {
            let (rx, ry) = match total {
                true => (&x.run_total_medians, &y.run_total_medians),
                false => (&x.run_self_medians, &y.run_self_medians),
            };
            (repeated && rx.len() >= 2 && ry.len() >= 2).then(|| (rx.clone(), ry.clone()))
        };
        let total_runs = runs(sb, sa, true);
        let self_runs = runs(sb, sa, false);
        paths.push(PathChange {
            path: path.clone(),
            before_calls: sb.total.calls(),
            after_calls: sa.total.calls(),
            total: change(
                &sb.total,
                &sa.total,
                total_runs
                    .as_ref()
                    .map(|(x, y)| (x.as_slice(), y.as_slice())),
            ),
            self_time: change(
                &sb.self_time,
                &sa.self_time,
                self_runs
                    .as_ref()
                    .map(|(x, y)| (x.as_slice(), y.as_slice())),
            ),
        });
    }
    let p_values: Vec<f64> = paths
        .iter()
        .flat_map(|p| [p.total.p_value, p.self_time.p_value])
        .collect();
    let marks = benjamini_hochberg(&p_values, FDR);
    for (p, marks) in paths.iter_mut().zip(marks.chunks(2)) {
        for (figure, &mark) in [&mut p.total, &mut p.self_time].into_iter().zip(marks) {
            figure.significant = mark && figure.relative.abs() >= RESOLUTION;
        }
    }
    paths.sort_by(|x, y| {
        y.significant()
            .cmp(&x.significant())
            .then(
                y.self_time
                    .change_ns
                    .abs()
                    .total_cmp(&x.self_time.change_ns.abs()),
            )
            .then(y.total.change_ns.abs().total_cmp(&x.total.change_ns.abs()))
    });
    let only = |x: &BTreeMap<Vec<Frame>, Side>, y: &BTreeMap<Vec<Frame>, Side>| {
        x.keys().filter(|k| !y.contains_key(*k)).cloned().collect()
    };
    Ok(FuncGraphDiff {
        schema: "netprof-funcgraph-diff/1",
        method: match repeated {
            true => {
                "Welch's t on each run's medians, Benjamini-Hochberg 5%, changes of 1/16 or more"
            }
            false => {
                "Mann-Whitney U on the histograms (a bucket's values are ties), Benjamini-Hochberg \
                 5%, changes of 1/16 or more"
            }
        },
        before_runs: before.len(),
        after_runs: after.len(),
        paths,
        only_before: only(&b, &a),
        only_after: only(&a, &b),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::funcgraph::{path_label, PathCounts, PathTimes, Unpaired};
    use crate::model::latency::BUCKETS;

    fn frame(name: &str) -> Frame {
        Frame {
            function: name.into(),
            module: Some("m".into()),
        }
    }

    /// A run with `outer` calling `delay`: `calls` calls each, the delay
    /// taking `delay_bucket`'s time, outer's own time one bucket's.
    fn run(calls: u64, delay_bucket: usize) -> FuncGraphReport {
        let bucket_ns = |b: usize| crate::model::latency::bucket_bounds(b).0;
        let path = |names: &[&str], total: usize, own: usize| {
            let mut total_buckets = vec![0; BUCKETS];
            let mut self_buckets = vec![0; BUCKETS];
            total_buckets[total] = calls;
            self_buckets[own] = calls;
            PathTimes::new(
                names.iter().map(|n| frame(n)).collect(),
                &PathCounts {
                    count: calls,
                    errors: 0,
                    total_ns: calls * bucket_ns(total),
                    self_ns: calls * bucket_ns(own),
                    min_ns: bucket_ns(total),
                    max_ns: bucket_ns(total),
                    total_buckets,
                    self_buckets,
                },
            )
        };
        FuncGraphReport {
            schema: SCHEMA.into(),
            duration_s: 1.0,
            probes: "kprobe.multi".into(),
            functions: 2,
            under: Vec::new(),
            max_depth: 32,
            unpaired: Unpaired::default(),
            missed_returns: 0,
            not_probed: Vec::new(),
            paths: vec![
                path(&["outer"], delay_bucket + 1, 100),
                path(&["outer", "delay"], delay_bucket, delay_bucket),
            ],
            kept_calls: Vec::new(),
        }
    }

    #[test]
    fn the_slowed_path_comes_first_marked_and_the_unchanged_is_not() {
        // 200 us (bucket 260-ish) -> 400 us: one power of two later.
        let d = diff_funcgraphs(&[run(500, 250)], &[run(500, 266)]).unwrap();
        let first = &d.paths[0];
        assert_eq!(path_label(&first.path), "outer [m];delay [m]");
        assert!(first.self_time.significant && first.total.significant);
        assert!(first.self_time.relative > 0.9);
        // outer's own time did not change; its total did.
        let outer = &d.paths[1];
        assert!(!outer.self_time.significant);
        assert!(outer.total.significant);
        let same = diff_funcgraphs(&[run(500, 250)], &[run(500, 250)]).unwrap();
        assert!(same.paths.iter().all(|p| !p.significant()));
    }

    #[test]
    fn repeated_runs_use_the_runs_spread() {
        let before = [run(100, 250), run(100, 251)];
        let after = [run(100, 251), run(100, 250)];
        let d = diff_funcgraphs(&before, &after).unwrap();
        assert!(d.method.starts_with("Welch"));
        assert!(d.paths.iter().all(|p| !p.significant()));
    }

    #[test]
    fn paths_on_one_side_are_named() {
        let mut after = run(10, 250);
        after.paths.remove(1);
        let d = diff_funcgraphs(&[run(10, 250)], &[after]).unwrap();
        assert_eq!(d.only_before.len(), 1);
        assert!(d.only_after.is_empty());
    }
}
