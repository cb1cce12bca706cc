//! Latency results (`netprof latency --json`) compared function by function:
//! each function's histograms are pooled per side (runs, CPUs, processes),
//! and the sides compared by median and IQR, with the Mann-Whitney U test on
//! the histograms (values in one bucket are ties) and Benjamini-Hochberg
//! across functions.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::{read_result, JsonResult, FDR};
use crate::analysis::stats::{benjamini_hochberg, mann_whitney};
use crate::error::{Error, Result};
use crate::model::latency::{quantile, Bucket, LatencyReport, SCHEMA};

/// One function's latency, before and after.
#[derive(Clone, Debug, Serialize)]
pub struct LatencyChange {
    pub function: String,
    pub module: Option<String>,
    pub before_calls: u64,
    pub after_calls: u64,
    pub before_median_ns: f64,
    pub after_median_ns: f64,
    /// (after - before) / before.
    pub median_change: f64,
    pub before_iqr_ns: f64,
    pub after_iqr_ns: f64,
    pub iqr_change_ns: f64,
    pub p_value: f64,
    pub significant: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct LatencyDiff {
    pub schema: &'static str,
    pub method: &'static str,
    pub before_runs: usize,
    pub after_runs: usize,
    pub functions: Vec<LatencyChange>,
}

impl JsonResult for LatencyReport {
    const SCHEMA: &'static str = SCHEMA;
    const WRITER: &'static str = "netprof latency --json";

    fn schema(&self) -> &str {
        &self.schema
    }

    fn has_calls(&self) -> bool {
        self.functions.iter().any(|f| f.count > 0)
    }
}

/// Reads a `netprof latency --json` result.
pub fn read(path: &Path) -> Result<LatencyReport> {
    read_result(path)
}

/// Bucket bounds [low, high) in ns -> calls.
pub type Histogram = BTreeMap<(u64, u64), u64>;

/// One function's (or path's) calls on one side, every run pooled.
pub struct Pooled {
    pub histogram: Histogram,
    min_ns: u64,
    max_ns: u64,
}

impl Pooled {
    pub(super) fn new() -> Pooled {
        Pooled {
            histogram: BTreeMap::new(),
            min_ns: u64::MAX,
            max_ns: 0,
        }
    }

    /// Adds one run's histogram of `what`'s calls (at least one), with
    /// their exact extremes when known. Counts no real measurement reaches (their sum
    /// overflows) mean a corrupt result.
    pub(super) fn add(
        &mut self,
        histogram: &[Bucket],
        extremes: Option<(u64, u64)>,
        what: &str,
    ) -> Result<()> {
        let overflow = || {
            Error::corrupt_input(format!(
                "a result counts more calls of {what} than can be added up; it is corrupt, measure again"
            ))
        };
        for b in histogram {
            let count = self.histogram.entry((b.low_ns, b.high_ns)).or_default();
            *count = count.checked_add(b.count).ok_or_else(overflow)?;
        }
        self.histogram
            .values()
            .try_fold(0u64, |sum, &n| sum.checked_add(n))
            .ok_or_else(overflow)?;
        if let Some((min, max)) = extremes {
            self.min_ns = self.min_ns.min(min);
            self.max_ns = self.max_ns.max(max);
        } else {
            self.min_ns = 0;
            self.max_ns = u64::MAX - 1;
        }
        Ok(())
    }

    pub(super) fn calls(&self) -> u64 {
        self.histogram.values().sum()
    }

    pub(super) fn quantile(&self, p: f64) -> f64 {
        let buckets: Vec<Bucket> = self
            .histogram
            .iter()
            .map(|(&(low_ns, high_ns), &count)| Bucket {
                low_ns,
                high_ns,
                count,
            })
            .collect();
        quantile(&buckets, self.calls(), p, self.min_ns, self.max_ns)
    }
}

/// Each function's histogram by (name, module), pooled over the runs (and
/// CPUs or processes).
pub fn pooled(side: &[LatencyReport]) -> Result<BTreeMap<(String, Option<String>), Pooled>> {
    let mut out: BTreeMap<_, Pooled> = BTreeMap::new();
    for report in side {
        for f in &report.functions {
            let pooled = out
                .entry((f.function.clone(), f.module.clone()))
                .or_insert_with(Pooled::new);
            if f.count > 0 {
                pooled.add(&f.histogram, Some((f.min_ns, f.max_ns)), &f.function)?;
            }
        }
    }
    Ok(out)
}

/// Compares the latency results of two sides (one or more runs each).
pub fn diff_latencies(before: &[LatencyReport], after: &[LatencyReport]) -> Result<LatencyDiff> {
    let (b, a) = (pooled(before)?, pooled(after)?);
    let mut functions: Vec<LatencyChange> = Vec::new();
    for (key, before_calls) in &b {
        let Some(after_calls) = a.get(key) else {
            continue;
        };
        let (nb, na) = (before_calls.calls(), after_calls.calls());
        if nb == 0 || na == 0 {
            continue;
        }
        let (med_b, med_a) = (before_calls.quantile(0.5), after_calls.quantile(0.5));
        let iqr_b = before_calls.quantile(0.75) - before_calls.quantile(0.25);
        let iqr_a = after_calls.quantile(0.75) - after_calls.quantile(0.25);
        functions.push(LatencyChange {
            function: key.0.clone(),
            module: key.1.clone(),
            before_calls: nb,
            after_calls: na,
            before_median_ns: med_b,
            after_median_ns: med_a,
            median_change: if med_b > 0.0 {
                (med_a - med_b) / med_b
            } else {
                0.0
            },
            before_iqr_ns: iqr_b,
            after_iqr_ns: iqr_a,
            iqr_change_ns: iqr_a - iqr_b,
            p_value: mann_whitney(&before_calls.histogram, &after_calls.histogram),
            significant: false,
        });
    }
    let p_values: Vec<f64> = functions.iter().map(|f| f.p_value).collect();
    for (f, significant) in functions.iter_mut().zip(benjamini_hochberg(&p_values, FDR)) {
        f.significant = significant;
    }
    // What is beyond noise first, then by the size of the median's change.
    functions.sort_by(|x, y| {
        y.significant
            .cmp(&x.significant)
            .then(y.median_change.abs().total_cmp(&x.median_change.abs()))
    });
    Ok(LatencyDiff {
        schema: "netprof-latency-diff/1",
        method:
            "Mann-Whitney U on the histograms (a bucket's values are ties), Benjamini-Hochberg 5%",
        before_runs: before.len(),
        after_runs: after.len(),
        functions,
    })
}
