//! Latency histograms: what `netprof latency` measures and `--json` writes
//! (schema netprof-latency/1), and what `netprof diff` reads back.
//!
//! The kernel's histogram (bpf/latency.bpf.c) is log-linear: exact below
//! 32 ns, then 16 buckets per power of two, so that no bucket is wider than
//! 1/16 of its value. Quantiles interpolate inside their bucket and stay
//! within the exact minimum and maximum.

use serde::{Deserialize, Serialize};

/// Buckets of the kernel's histogram (see bpf/latency.bpf.c).
pub const BUCKETS: usize = (39 - 3) * 16 + 16;

pub const SCHEMA: &str = "netprof-latency/1";

/// [low, high) of a histogram bucket, in ns (bucket_of() in the BPF program).
pub fn bucket_bounds(bucket: usize) -> (u64, u64) {
    if bucket < 16 {
        return (bucket as u64, bucket as u64 + 1);
    }
    let exponent = bucket / 16 + 3;
    let width = 1u64 << (exponent - 4);
    let low = (16 + (bucket % 16) as u64) * width;
    (low, low + width)
}

/// One function's calls as the kernel counted them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallTimes {
    pub count: u64,
    pub sum_ns: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    /// Calls per bucket, [`BUCKETS`] of them (or none for no calls).
    pub buckets: Vec<u64>,
}

/// Latencies of one function (in one CPU or process, with a breakdown).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FunctionLatency {
    pub function: String,
    pub module: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pid: Option<u32>,
    pub count: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub mean_ns: f64,
    pub p25_ns: f64,
    pub median_ns: f64,
    pub p75_ns: f64,
    pub iqr_ns: f64,
    pub p90_ns: f64,
    pub p99_ns: f64,
    /// Non-empty buckets: [low, high) in ns.
    pub histogram: Vec<Bucket>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bucket {
    pub low_ns: u64,
    pub high_ns: u64,
    pub count: u64,
}

/// A whole measurement, as `--json` writes it (schema netprof-latency/1).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatencyReport {
    pub schema: String,
    pub duration_s: f64,
    /// How the probes were attached: kprobe.multi or kprobe.
    pub probes: String,
    /// Calls not measured for want of room in the kernel's maps, and
    /// returns the kernel could not probe (kretprobe instances exhausted).
    pub dropped: u64,
    pub missed_returns: u64,
    /// Functions matched but not timed: the kernel would not probe them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_probed: Vec<String>,
    pub functions: Vec<FunctionLatency>,
}

impl FunctionLatency {
    /// The figures of one function's calls.
    pub fn new(function: &str, module: Option<String>, times: &CallTimes) -> FunctionLatency {
        let histogram = nonempty_buckets(&times.buckets);
        let (count, min, max) = (times.count, times.min_ns, times.max_ns);
        let q = |p: f64| quantile(&histogram, count, p, min, max);
        FunctionLatency {
            function: function.to_string(),
            module,
            cpu: None,
            pid: None,
            count,
            min_ns: min,
            max_ns: max,
            mean_ns: if count > 0 {
                times.sum_ns as f64 / count as f64
            } else {
                0.0
            },
            p25_ns: q(0.25),
            median_ns: q(0.5),
            p75_ns: q(0.75),
            iqr_ns: q(0.75) - q(0.25),
            p90_ns: q(0.9),
            p99_ns: q(0.99),
            histogram,
        }
    }
}

/// The kernel's bucket counts as the non-empty buckets with their bounds.
pub fn nonempty_buckets(counts: &[u64]) -> Vec<Bucket> {
    counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, &count)| {
            let (low_ns, high_ns) = bucket_bounds(i);
            Bucket {
                low_ns,
                high_ns,
                count,
            }
        })
        .collect()
}

/// The p-quantile of a histogram of `count` values, interpolating linearly
/// inside the bucket it falls in, and kept within the exact minimum and
/// maximum.
pub fn quantile(histogram: &[Bucket], count: u64, p: f64, min: u64, max: u64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    let rank = p * count as f64;
    let mut below = 0.0;
    for b in histogram {
        let here = b.count as f64;
        if below + here >= rank {
            let low = b.low_ns.max(min) as f64;
            let high = b.high_ns.min(max.saturating_add(1)) as f64;
            let within = ((rank - below) / here).clamp(0.0, 1.0);
            return low + (high - low) * within;
        }
        below += here;
    }
    max as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_line_and_stay_narrow() {
        let mut next = 0;
        for b in 0..BUCKETS {
            let (low, high) = bucket_bounds(b);
            assert_eq!(
                low,
                next,
                "bucket {b} starts where {} ended",
                b.saturating_sub(1)
            );
            assert!(high > low);
            // At most 1/16 of the value wide above the exact range.
            assert!(
                low < 16 || (high - low) * 16 <= low,
                "bucket {b}: {low}..{high}"
            );
            next = high;
        }
        assert_eq!(bucket_bounds(BUCKETS - 1).1, 1 << 40);
    }

    #[test]
    fn quantiles_interpolate_within_buckets_and_respect_min_max() {
        let hist = [
            Bucket {
                low_ns: 100,
                high_ns: 110,
                count: 50,
            },
            Bucket {
                low_ns: 200,
                high_ns: 220,
                count: 50,
            },
        ];
        assert_eq!(quantile(&hist, 100, 0.25, 100, 219), 105.0);
        assert_eq!(quantile(&hist, 100, 0.5, 100, 219), 110.0);
        assert_eq!(quantile(&hist, 100, 0.75, 100, 219), 210.0);
        // The maximum bounds the last bucket.
        assert!(quantile(&hist, 100, 1.0, 100, 204) <= 205.0);
        assert_eq!(quantile(&[], 0, 0.5, 0, 0), 0.0);
    }

    #[test]
    fn a_function_summary_from_its_call_times() {
        let mut buckets = vec![0; BUCKETS];
        // 1000 ns falls in bucket (9-3)*16 + ((1000 >> 5) & 15) = 96 + 15.
        buckets[111] = 4;
        let times = CallTimes {
            count: 4,
            sum_ns: 4000,
            min_ns: 990,
            max_ns: 1010,
            buckets,
        };
        let s = FunctionLatency::new("f", None, &times);
        assert_eq!(
            (s.count, s.min_ns, s.max_ns, s.mean_ns),
            (4, 990, 1010, 1000.0)
        );
        assert_eq!(
            s.histogram,
            vec![Bucket {
                low_ns: 992,
                high_ns: 1024,
                count: 4
            }]
        );
        assert!((990.0..=1010.0).contains(&s.median_ns));
        let none = FunctionLatency::new("g", None, &CallTimes::default());
        assert_eq!(
            (none.count, none.median_ns, none.histogram.len()),
            (0, 0.0, 0)
        );
    }
}
