//! `netprof diff`: where a change made the kernel faster or slower, and
//! whether the change is more than noise.
//!
//! Recordings are compared function by function, matched by name and module
//! (not address), so recordings from two kernel builds or module versions
//! compare. Each function has a self share (samples where it is the leaf)
//! and a total share (samples with it anywhere on the stack), as fractions
//! of all samples of its side.
//!
//! Noise: with one recording a side, a share is a binomial proportion and
//! the two sides are compared with a two-proportion z-test. With two or more
//! recordings on both sides, each recording gives one share and the sides
//! are compared with Welch's t-test, which counts the run-to-run variation
//! that a single pair cannot see. Latency results (`netprof latency --json`)
//! are compared with the Mann-Whitney U test on their histograms (values in
//! one bucket are ties). Across the many functions of one comparison,
//! Benjamini-Hochberg keeps the expected share of false discoveries at 5%;
//! a change that passes is marked significant, the others are noise. Only
//! shares of at least 0.5% on one side take part in the procedure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::latency::{Bucket, LatencyReport};
use crate::profile::{Filter, Profile};
use crate::report::View;

/// False discovery rate of the significance marks.
pub const FDR: f64 = 0.05;

/// Shares below this on both sides are not tested (never marked).
pub const FAMILY_MIN_SHARE: f64 = 0.005;

/// What an input file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    Recording,
    Latency,
}

/// The files of one side: given one by one, or every file of a directory.
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot read directory {}", path.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            inside.sort();
            if inside.is_empty() {
                bail!("directory {} holds no recordings", path.display());
            }
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Recording (perf.data) or latency result (netprof-latency JSON).
pub fn input_kind(path: &Path) -> Result<InputKind> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let n = file.read(&mut head)?;
    if &head[..n] == b"PERFILE2" {
        return Ok(InputKind::Recording);
    }
    if head[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(InputKind::Latency);
    }
    bail!(
        "{} is neither a recording (perf.data) nor a `netprof latency --json` result",
        path.display()
    )
}

/// One side's kind; all its files must agree.
pub fn side_kind(files: &[PathBuf]) -> Result<InputKind> {
    let first = input_kind(&files[0])?;
    for f in &files[1..] {
        if input_kind(f)? != first {
            bail!(
                "{} and {} are of different kinds (a recording and a latency result); compare like with like",
                files[0].display(),
                f.display()
            );
        }
    }
    Ok(first)
}

/// Sample counts of one recording, by function label (`name [module]`).
#[derive(Clone, Debug, Default)]
pub struct RunCounts {
    pub samples: u64,
    pub self_counts: BTreeMap<String, u64>,
    pub total_counts: BTreeMap<String, u64>,
    /// Folded stacks (`comm;root;...;leaf`, count) for the flamegraph.
    pub folded: Vec<(String, u64)>,
}

pub fn read_run(path: &Path) -> Result<RunCounts> {
    let profile = Profile::read(path, &Filter::default())
        .with_context(|| format!("cannot read {}", path.display()))?;
    let view = View::build(&profile, None)?;
    let folded = view.folded();
    let mut run = RunCounts::default();
    for (line, count) in &folded {
        run.samples += count;
        // The first element is the command, not a function.
        let frames: Vec<&str> = line.split(';').skip(1).collect();
        if let Some(leaf) = frames.last() {
            *run.self_counts.entry(leaf.to_string()).or_default() += count;
        }
        let unique: BTreeSet<&str> = frames.iter().copied().collect();
        for f in unique {
            *run.total_counts.entry(f.to_string()).or_default() += count;
        }
    }
    if run.samples == 0 {
        bail!(
            "{} holds no samples; record longer or check the events",
            path.display()
        );
    }
    run.folded = folded;
    Ok(run)
}

/// A change in one share, before -> after, with its noise figures.
#[derive(Clone, Debug, Serialize)]
pub struct ShareChange {
    pub before: f64,
    pub after: f64,
    pub delta: f64,
    /// Half-width of the 95% confidence interval of `delta`.
    pub ci95: f64,
    pub p_value: f64,
    pub significant: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct FunctionChange {
    pub function: String,
    pub module: Option<String>,
    #[serde(rename = "self")]
    pub self_share: ShareChange,
    pub total: ShareChange,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProfileDiff {
    pub schema: &'static str,
    pub method: &'static str,
    pub before_runs: usize,
    pub after_runs: usize,
    pub before_samples: u64,
    pub after_samples: u64,
    /// Sorted by the size of the change: |self delta|, then |total delta|.
    pub functions: Vec<FunctionChange>,
}

pub fn diff_profiles(before: &[RunCounts], after: &[RunCounts]) -> ProfileDiff {
    let repeated = before.len() >= 2 && after.len() >= 2;
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for run in before.iter().chain(after) {
        names.extend(run.total_counts.keys().map(String::as_str));
    }
    let change = |name: &str, pick: fn(&RunCounts) -> &BTreeMap<String, u64>| {
        let count = |r: &RunCounts| pick(r).get(name).copied().unwrap_or(0);
        if repeated {
            let shares = |side: &[RunCounts]| -> Vec<f64> {
                side.iter()
                    .map(|r| count(r) as f64 / r.samples as f64)
                    .collect()
            };
            welch(&shares(before), &shares(after))
        } else {
            let sum = |side: &[RunCounts]| -> (u64, u64) {
                (
                    side.iter().map(count).sum(),
                    side.iter().map(|r| r.samples).sum(),
                )
            };
            two_proportions(sum(before), sum(after))
        }
    };
    let mut functions: Vec<FunctionChange> = names
        .into_iter()
        .map(|name| {
            let (function, module) = split_label(name);
            FunctionChange {
                function,
                module,
                self_share: change(name, |r| &r.self_counts),
                total: change(name, |r| &r.total_counts),
            }
        })
        .collect();
    // The family tested together: shares of at least FAMILY_MIN_SHARE on
    // one side. Hundreds of functions that are rare on both sides would
    // otherwise raise the bar for every change without being able to
    // clear it themselves.
    let mut p_values: Vec<&mut ShareChange> = functions
        .iter_mut()
        .flat_map(|f| [&mut f.self_share, &mut f.total])
        .filter(|c| c.before.max(c.after) >= FAMILY_MIN_SHARE)
        .collect();
    mark_significant(&mut p_values);
    functions.sort_by(|a, b| {
        b.self_share
            .delta
            .abs()
            .total_cmp(&a.self_share.delta.abs())
            .then(b.total.delta.abs().total_cmp(&a.total.delta.abs()))
            .then(a.function.cmp(&b.function))
    });
    ProfileDiff {
        schema: "netprof-diff/1",
        method: if repeated {
            "Welch t-test over runs, Benjamini-Hochberg 5%"
        } else {
            "two-proportion z-test, Benjamini-Hochberg 5%"
        },
        before_runs: before.len(),
        after_runs: after.len(),
        before_samples: before.iter().map(|r| r.samples).sum(),
        after_samples: after.iter().map(|r| r.samples).sum(),
        functions,
    }
}

/// `name [module]` -> (name, module).
fn split_label(label: &str) -> (String, Option<String>) {
    match label.strip_suffix(']').and_then(|l| l.rsplit_once(" [")) {
        Some((name, module)) => (name.to_string(), Some(module.to_string())),
        None => (label.to_string(), None),
    }
}

/// Two binomial proportions: (hits, trials) before and after.
fn two_proportions((x1, n1): (u64, u64), (x2, n2): (u64, u64)) -> ShareChange {
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
    ShareChange {
        before: p1,
        after: p2,
        delta,
        ci95: 1.959964 * se,
        p_value,
        significant: false,
    }
}

/// Welch's t-test on two small samples of shares.
fn welch(before: &[f64], after: &[f64]) -> ShareChange {
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
    ShareChange {
        before: m1,
        after: m2,
        delta,
        ci95,
        p_value,
        significant: false,
    }
}

fn standard_normal() -> Normal {
    Normal::new(0.0, 1.0).expect("the standard normal")
}

/// Benjamini-Hochberg at [`FDR`]: marks the changes it keeps as significant.
fn mark_significant(changes: &mut [&mut ShareChange]) {
    let m = changes.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| changes[a].p_value.total_cmp(&changes[b].p_value));
    let mut cutoff = None;
    for (rank, &i) in order.iter().enumerate() {
        if changes[i].p_value <= (rank + 1) as f64 / m as f64 * FDR {
            cutoff = Some(rank);
        }
    }
    if let Some(last) = cutoff {
        for &i in &order[..=last] {
            changes[i].significant = true;
        }
    }
}

/// Folded lines with two counts (before, after), the first side scaled to
/// the second's total, as inferno's differential flamegraph reads them.
pub fn differential_folded(before: &[RunCounts], after: &[RunCounts]) -> Result<Vec<String>> {
    let merge = |side: &[RunCounts]| -> String {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for run in side {
            for (line, n) in &run.folded {
                *counts.entry(line).or_default() += n;
            }
        }
        counts.iter().map(|(l, n)| format!("{l} {n}\n")).collect()
    };
    let (b, a) = (merge(before), merge(after));
    let mut out = Vec::new();
    inferno::differential::from_readers(
        inferno::differential::Options {
            normalize: true,
            strip_hex: false,
        },
        b.as_bytes(),
        a.as_bytes(),
        &mut out,
    )
    .context("cannot pair the stacks of both sides")?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_string)
        .collect())
}

pub fn write_differential_svg(
    lines: &[String],
    title: &str,
    out: impl std::io::Write,
) -> Result<()> {
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.subtitle = Some(
        "Width: after. Red grew, blue shrank (before scaled to after's total samples)".to_string(),
    );
    options.count_name = "samples".to_string();
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
        .context("cannot draw the differential flamegraph")
}

pub fn render_profile_table(
    diff: &ProfileDiff,
    percent_limit: f64,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "# netprof diff: before {} run(s), {} samples; after {} run(s), {} samples",
        diff.before_runs, diff.before_samples, diff.after_runs, diff.after_samples
    )?;
    writeln!(
        out,
        "# shares of all samples of each side; change in percentage points ± 95% CI; \
         * = more than noise ({})",
        diff.method
    )?;
    writeln!(
        out,
        "# {:>16} {:>19}  {:>16} {:>19}  function",
        "self change", "self before→after", "total change", "total before→after"
    )?;
    let pct = |v: f64| 100.0 * v;
    let mut shown = 0;
    for f in &diff.functions {
        if pct(f.self_share.delta.abs()) < percent_limit && pct(f.total.delta.abs()) < percent_limit
        {
            continue;
        }
        shown += 1;
        let change = |c: &ShareChange| {
            format!(
                "{:+.2}±{:.2}{}",
                pct(c.delta),
                pct(c.ci95),
                if c.significant { "*" } else { " " }
            )
        };
        let shares = |c: &ShareChange| format!("{:.2}% → {:.2}%", pct(c.before), pct(c.after));
        let module = f
            .module
            .as_ref()
            .map(|m| format!(" [{m}]"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:>16} {:>19}  {:>16} {:>19}  {}{module}",
            change(&f.self_share),
            shares(&f.self_share),
            change(&f.total),
            shares(&f.total),
            f.function
        )?;
    }
    if shown == 0 {
        writeln!(
            out,
            "  (no function changed by {percent_limit} percentage points or more)"
        )?;
    }
    Ok(())
}

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

pub fn read_latency(path: &Path) -> Result<LatencyReport> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let report: LatencyReport = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{} is not a `netprof latency --json` result ({e})",
            path.display()
        )
    })?;
    if report.schema != crate::latency::SCHEMA {
        bail!(
            "{} has schema '{}'; this netprof reads {}",
            path.display(),
            report.schema,
            crate::latency::SCHEMA
        );
    }
    if report.functions.iter().all(|f| f.count == 0) {
        bail!(
            "{} holds no timed calls; run the workload while netprof latency runs",
            path.display()
        );
    }
    Ok(report)
}

/// Bucket bounds [low, high) in ns -> calls.
type Histogram = BTreeMap<(u64, u64), u64>;

/// One function's calls on one side, every run pooled.
struct Pooled {
    histogram: Histogram,
    min_ns: u64,
    max_ns: u64,
}

/// Each function's histogram by (name, module), pooled over the runs (and
/// CPUs or processes).
fn pooled(side: &[LatencyReport]) -> BTreeMap<(String, Option<String>), Pooled> {
    let mut out: BTreeMap<_, Pooled> = BTreeMap::new();
    for report in side {
        for f in &report.functions {
            let entry = out
                .entry((f.function.clone(), f.module.clone()))
                .or_insert_with(|| Pooled {
                    histogram: BTreeMap::new(),
                    min_ns: u64::MAX,
                    max_ns: 0,
                });
            for b in &f.histogram {
                *entry.histogram.entry((b.low_ns, b.high_ns)).or_default() += b.count;
            }
            if f.count > 0 {
                entry.min_ns = entry.min_ns.min(f.min_ns);
                entry.max_ns = entry.max_ns.max(f.max_ns);
            }
        }
    }
    out
}

pub fn diff_latencies(before: &[LatencyReport], after: &[LatencyReport]) -> LatencyDiff {
    let (b, a) = (pooled(before), pooled(after));
    let mut functions: Vec<LatencyChange> = Vec::new();
    for (key, before_calls) in &b {
        let Some(after_calls) = a.get(key) else {
            continue;
        };
        let buckets = |h: &Histogram| -> Vec<Bucket> {
            h.iter()
                .map(|(&(low_ns, high_ns), &count)| Bucket {
                    low_ns,
                    high_ns,
                    count,
                })
                .collect()
        };
        let (bb, ba) = (
            buckets(&before_calls.histogram),
            buckets(&after_calls.histogram),
        );
        let (nb, na) = (
            bb.iter().map(|x| x.count).sum::<u64>(),
            ba.iter().map(|x| x.count).sum::<u64>(),
        );
        if nb == 0 || na == 0 {
            continue;
        }
        let q = |h: &[Bucket], n, p, min, max| crate::latency::quantile(h, n, p, min, max);
        let (med_b, med_a) = (
            q(&bb, nb, 0.5, before_calls.min_ns, before_calls.max_ns),
            q(&ba, na, 0.5, after_calls.min_ns, after_calls.max_ns),
        );
        let iqr_b = q(&bb, nb, 0.75, before_calls.min_ns, before_calls.max_ns)
            - q(&bb, nb, 0.25, before_calls.min_ns, before_calls.max_ns);
        let iqr_a = q(&ba, na, 0.75, after_calls.min_ns, after_calls.max_ns)
            - q(&ba, na, 0.25, after_calls.min_ns, after_calls.max_ns);
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
    // Benjamini-Hochberg over the functions, as for recordings.
    let mut marks: Vec<ShareChange> = functions
        .iter()
        .map(|f| ShareChange {
            before: 0.0,
            after: 0.0,
            delta: 0.0,
            ci95: 0.0,
            p_value: f.p_value,
            significant: false,
        })
        .collect();
    mark_significant(&mut marks.iter_mut().collect::<Vec<_>>());
    for (f, m) in functions.iter_mut().zip(&marks) {
        f.significant = m.significant;
    }
    functions.sort_by(|x, y| y.median_change.abs().total_cmp(&x.median_change.abs()));
    LatencyDiff {
        schema: "netprof-latency-diff/1",
        method:
            "Mann-Whitney U on the histograms (a bucket's values are ties), Benjamini-Hochberg 5%",
        before_runs: before.len(),
        after_runs: after.len(),
        functions,
    }
}

/// Two-sided p-value of the Mann-Whitney U test between two histograms
/// with the same buckets, by the normal approximation with tie correction.
fn mann_whitney(before: &Histogram, after: &Histogram) -> f64 {
    let buckets: BTreeSet<&(u64, u64)> = before.keys().chain(after.keys()).collect();
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

pub fn render_latency_table(
    diff: &LatencyDiff,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    use crate::latency::human_ns;
    writeln!(
        out,
        "# netprof diff (latency): before {} run(s), after {} run(s); * = more than noise ({})",
        diff.before_runs, diff.after_runs, diff.method
    )?;
    writeln!(
        out,
        "# {:>9} {:>25} {:>25} {:>15} {:>9}  function",
        "median", "median before→after", "IQR before→after", "calls", "p"
    )?;
    for f in &diff.functions {
        let module = f
            .module
            .as_ref()
            .map(|m| format!(" [{m}]"))
            .unwrap_or_default();
        writeln!(
            out,
            "  {:>+8.1}%{} {:>25} {:>25} {:>15} {:>9.2e}  {}{module}",
            100.0 * f.median_change,
            if f.significant { "*" } else { " " },
            format!(
                "{} → {}",
                human_ns(f.before_median_ns),
                human_ns(f.after_median_ns)
            ),
            format!(
                "{} → {}",
                human_ns(f.before_iqr_ns),
                human_ns(f.after_iqr_ns)
            ),
            format!("{} → {}", f.before_calls, f.after_calls),
            f.p_value,
            f.function
        )?;
    }
    if diff.functions.is_empty() {
        writeln!(out, "  (no function timed on both sides)")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(samples: u64, self_counts: &[(&str, u64)]) -> RunCounts {
        let mut r = RunCounts {
            samples,
            ..Default::default()
        };
        for &(f, n) in self_counts {
            r.self_counts.insert(f.into(), n);
            r.total_counts.insert(f.into(), n);
        }
        r
    }

    #[test]
    fn a_large_shift_is_significant_and_first() {
        // a: 10% -> 25%; b and c keep their counts, so their shares shrink less.
        let before = [run(
            10_000,
            &[("a [m]", 1000), ("b", 2000), ("c", 7000), ("d", 20)],
        )];
        let after = [run(
            12_000,
            &[("a [m]", 3000), ("b", 2000), ("c", 7000), ("d", 25)],
        )];
        let d = diff_profiles(&before, &after);
        let first = &d.functions[0];
        assert_eq!(
            (first.function.as_str(), first.module.as_deref()),
            ("a", Some("m"))
        );
        assert!((first.self_share.delta - 0.15).abs() < 1e-12);
        assert!(first.self_share.significant);
        // d: 20 of 10000 against 25 of 12000 is well within noise.
        let d_row = d.functions.iter().find(|f| f.function == "d").unwrap();
        assert!(!d_row.self_share.significant, "{d_row:?}");
        assert!(d_row.self_share.p_value > 0.5);
    }

    #[test]
    fn identical_inputs_show_no_significant_change() {
        let side = [run(5000, &[("a", 100), ("b", 4900)])];
        let d = diff_profiles(&side, &side);
        assert!(d
            .functions
            .iter()
            .all(|f| !f.self_share.significant && f.self_share.delta == 0.0));
        let runs = [
            run(5000, &[("a", 100), ("b", 4900)]),
            run(5000, &[("a", 120), ("b", 4880)]),
        ];
        let d = diff_profiles(&runs, &runs);
        assert!(d
            .functions
            .iter()
            .all(|f| !f.total.significant && f.total.p_value > 0.99));
    }

    #[test]
    fn welch_needs_the_change_to_exceed_run_to_run_spread() {
        let noisy = welch(&[0.10, 0.20, 0.15], &[0.12, 0.22, 0.17]);
        assert!(noisy.p_value > 0.2, "{noisy:?}");
        let clear = welch(&[0.10, 0.11, 0.10], &[0.20, 0.21, 0.20]);
        assert!(clear.p_value < 0.001, "{clear:?}");
        assert!(clear.ci95 > 0.0 && clear.ci95 < 0.1);
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
    fn labels_split_into_name_and_module() {
        assert_eq!(
            split_label("hsr_forward_skb [hsr]"),
            ("hsr_forward_skb".into(), Some("hsr".into()))
        );
        assert_eq!(split_label("read_zero"), ("read_zero".into(), None));
    }
}
