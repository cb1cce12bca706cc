//! The statistics netprof's comparisons rest on, written here because no
//! well-kept crate packages these small tests (statrs gives the
//! distributions): two-proportion z-test, Welch's t-test, the
//! Mann-Whitney U test on histograms, Benjamini-Hochberg, and quantiles.

use std::collections::{BTreeMap, BTreeSet};

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// The outcome of comparing one quantity before and after.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    pub before: f64,
    pub after: f64,
    pub delta: f64,
    /// Half-width of the 95% confidence interval of `delta`.
    pub ci95: f64,
    pub p_value: f64,
}

fn standard_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("the standard normal")
}

/// Two binomial proportions, (hits, trials) before and after.
pub fn two_proportions((x1, n1): (u64, u64), (x2, n2): (u64, u64)) -> Comparison {
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let (p1, p2) = (x1 as f64 / n1f, x2 as f64 / n2f);
    let delta = p2 - p1;
    let pooled = (x1 + x2) as f64 / (n1f + n2f);
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    let p_value = if se_pooled > 0.0 {
        2.0 * standard_normal().sf(delta.abs() / se_pooled)
    } else {
        1.0
    };
    let se = (p1 * (1.0 - p1) / n1f + p2 * (1.0 - p2) / n2f).sqrt();
    Comparison {
        before: p1,
        after: p2,
        delta,
        ci95: 1.959964 * se,
        p_value,
    }
}

/// Welch's t-test on two small samples (two values at least on each side).
pub fn welch(before: &[f64], after: &[f64]) -> Comparison {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let var =
        |v: &[f64], m: f64| v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    let (m1, m2) = (mean(before), mean(after));
    let (v1, v2) = (
        var(before, m1) / before.len() as f64,
        var(after, m2) / after.len() as f64,
    );
    let delta = m2 - m1;
    let se = (v1 + v2).sqrt();
    let (p_value, ci95) = if se > 0.0 {
        let df = (v1 + v2).powi(2)
            / (v1.powi(2) / (before.len() - 1) as f64 + v2.powi(2) / (after.len() - 1) as f64);
        let t = StudentsT::new(0.0, 1.0, df).expect("positive degrees of freedom");
        (2.0 * t.sf(delta.abs() / se), t.inverse_cdf(0.975) * se)
    } else if delta == 0.0 {
        (1.0, 0.0)
    } else {
        // No spread at all on either side, yet different: as certain as it gets.
        (0.0, 0.0)
    };
    Comparison {
        before: m1,
        after: m2,
        delta,
        ci95,
        p_value,
    }
}

/// Benjamini-Hochberg at false discovery rate `fdr`: which of the tests
/// (given by their p-values) are discoveries.
pub fn benjamini_hochberg(p_values: &[f64], fdr: f64) -> Vec<bool> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut cutoff = None;
    for (rank, &i) in order.iter().enumerate() {
        if p_values[i] <= (rank + 1) as f64 / m as f64 * fdr {
            cutoff = Some(rank);
        }
    }
    let mut significant = vec![false; m];
    if let Some(last) = cutoff {
        for &i in &order[..=last] {
            significant[i] = true;
        }
    }
    significant
}

/// Two-sided p-value of the Mann-Whitney U test between two histograms
/// (bucket -> count) whose buckets are comparable, by the normal
/// approximation with tie correction: values in one bucket are ties.
pub fn mann_whitney<K: Ord>(before: &BTreeMap<K, u64>, after: &BTreeMap<K, u64>) -> f64 {
    let buckets: BTreeSet<&K> = before.keys().chain(after.keys()).collect();
    let (n1, n2) = (
        before.values().sum::<u64>() as f64,
        after.values().sum::<u64>() as f64,
    );
    let n = n1 + n2;
    let (mut rank_sum_before, mut below, mut ties) = (0.0, 0.0, 0.0);
    for b in buckets {
        let c1 = before.get(b).copied().unwrap_or(0) as f64;
        let c2 = after.get(b).copied().unwrap_or(0) as f64;
        let t = c1 + c2;
        rank_sum_before += c1 * (below + (t + 1.0) / 2.0);
        ties += t * t * t - t;
        below += t;
    }
    let u = rank_sum_before - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    let z = ((u - mean).abs() - 0.5).max(0.0) / var.sqrt();
    2.0 * standard_normal().sf(z)
}

/// The q-quantile of sorted values, interpolating linearly between the
/// closest ranks; 0 for no values.
pub fn quantile_of_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n => {
            let pos = q * (n - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_needs_the_change_to_exceed_run_to_run_spread() {
        let noisy = welch(&[0.10, 0.20, 0.15], &[0.12, 0.22, 0.17]);
        assert!(noisy.p_value > 0.2, "{noisy:?}");
        let clear = welch(&[0.10, 0.11, 0.10], &[0.20, 0.21, 0.20]);
        assert!(clear.p_value < 0.001, "{clear:?}");
        assert!(clear.ci95 > 0.0 && clear.ci95 < 0.1);
    }

    #[test]
    fn two_proportions_tell_a_shift_from_noise() {
        let shift = two_proportions((1000, 10_000), (3000, 12_000));
        assert!((shift.delta - 0.15).abs() < 1e-12 && shift.p_value < 1e-9);
        let noise = two_proportions((20, 10_000), (25, 12_000));
        assert!(noise.p_value > 0.5, "{noise:?}");
    }

    #[test]
    fn mann_whitney_on_histograms() {
        let h = |pairs: &[((u64, u64), u64)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
        let same = h(&[((100, 110), 30), ((110, 120), 30)]);
        assert!(mann_whitney(&same, &same) > 0.9);
        let later = h(&[((200, 220), 30), ((220, 240), 30)]);
        assert!(mann_whitney(&same, &later) < 1e-9);
    }

    #[test]
    fn benjamini_hochberg_keeps_the_strong_and_drops_the_weak() {
        // Ranks 1..4 face 0.0125, 0.025, 0.0375, 0.05: 0.04 misses its bar.
        assert_eq!(
            benjamini_hochberg(&[0.001, 0.04, 0.9, 0.011], 0.05),
            vec![true, false, false, true]
        );
        // Step-up: 0.035 clears rank 3, which carries 0.03 with it.
        assert_eq!(
            benjamini_hochberg(&[0.001, 0.03, 0.035, 0.9], 0.05),
            vec![true, true, true, false]
        );
        assert_eq!(benjamini_hochberg(&[0.2, 0.5], 0.05), vec![false, false]);
        assert!(benjamini_hochberg(&[], 0.05).is_empty());
    }

    #[test]
    fn quantiles_of_sorted_values() {
        let v = [100.0, 200.0, 300.0, 400.0, 500.0];
        assert_eq!(quantile_of_sorted(&v, 0.5), 300.0);
        assert_eq!(quantile_of_sorted(&v, 0.25), 200.0);
        assert_eq!(quantile_of_sorted(&[], 0.5), 0.0);
    }
}
