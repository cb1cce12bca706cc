//! What a BPF program's run costs, from the kernel's run statistics over a
//! measurement: runs per second, and ns per run as the median and quartiles
//! over the intervals that had runs (robust to a burst in one interval).

use serde::Serialize;

use super::stats::quantile_of_sorted;
use crate::bpf::programs::RunStats;

/// A program's runs over the measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Cost {
    pub runs: u64,
    pub runs_per_second: f64,
    /// Time per run over the whole measurement.
    pub mean_ns: f64,
    /// Time per run in each interval with runs: median and quartiles.
    pub median_ns: f64,
    pub p25_ns: f64,
    pub p75_ns: f64,
    /// Intervals with runs (the median's sample size).
    pub intervals: usize,
}

impl Cost {
    /// The cost from one program's intervals over `elapsed` seconds.
    pub fn of(intervals: &[RunStats], elapsed: f64) -> Cost {
        let runs: u64 = intervals.iter().map(|s| s.runs).sum();
        let ns: u64 = intervals.iter().map(|s| s.ns).sum();
        let mut per_run: Vec<f64> = intervals
            .iter()
            .filter(|s| s.runs > 0)
            .map(|s| s.ns as f64 / s.runs as f64)
            .collect();
        per_run.sort_by(f64::total_cmp);
        Cost {
            runs,
            runs_per_second: runs as f64 / elapsed.max(1e-9),
            mean_ns: if runs > 0 {
                ns as f64 / runs as f64
            } else {
                0.0
            },
            median_ns: quantile_of_sorted(&per_run, 0.5),
            p25_ns: quantile_of_sorted(&per_run, 0.25),
            p75_ns: quantile_of_sorted(&per_run, 0.75),
            intervals: per_run.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_quartiles_of_intervals_with_runs() {
        let s = |runs, ns| RunStats { runs, ns };
        let intervals = [
            s(10, 1000),
            s(0, 0),
            s(10, 2000),
            s(10, 3000),
            s(10, 4000),
            s(10, 5000),
        ];
        let c = Cost::of(&intervals, 2.0);
        assert_eq!(c.runs, 50);
        assert_eq!(c.runs_per_second, 25.0);
        assert_eq!(c.intervals, 5);
        assert_eq!(c.median_ns, 300.0);
        assert_eq!((c.p25_ns, c.p75_ns), (200.0, 400.0));
        assert_eq!(c.mean_ns, 300.0);
        let none = Cost::of(&[], 1.0);
        assert_eq!((none.runs, none.intervals, none.median_ns), (0, 0, 0.0));
    }
}
