//! Recordings compared function by function. Each function has a self share
//! (samples where it is the leaf) and a total share (samples with it
//! anywhere on the stack), as fractions of all samples of its side.
//!
//! Noise: with one recording a side, a share is a binomial proportion and
//! the two sides are compared with a two-proportion z-test. With two or more
//! recordings on both sides, each recording gives one share and the sides
//! are compared with Welch's t-test, which counts the run-to-run variation
//! that a single pair cannot see. Across the many functions of one
//! comparison, Benjamini-Hochberg keeps the expected share of false
//! discoveries at [`super::FDR`]; a change that passes is marked
//! significant, the others are noise. Only shares of at least
//! [`FAMILY_MIN_SHARE`] on one side take part in the procedure.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use serde::Serialize;

use super::FDR;
use crate::analysis::stats::{benjamini_hochberg, two_proportions, welch, Comparison};
use crate::error::{Error, IoContext, Result};
use crate::model::off_cpu::StateSelection;
use crate::model::profile::{Filter, Profile};
use crate::model::symbolize::{symbolize, Frame, FrameKind};
use crate::model::view::{View, ViewFilter};

/// Shares below this on both sides are not tested (never marked).
pub const FAMILY_MIN_SHARE: f64 = 0.005;

/// A function as diff matches it across recordings: its name, and its
/// kernel module (or `bpf`); vmlinux and user functions have none.
pub type FunctionKey = (String, Option<String>);

fn key_of(frame: &Frame) -> FunctionKey {
    let module = match frame.kind {
        FrameKind::Module | FrameKind::Bpf => frame.module.clone(),
        FrameKind::Kernel | FrameKind::User => None,
    };
    (frame.name.clone(), module)
}

/// Which samples of each recording a comparison counts: report's filters.
#[derive(Clone, Debug, Default)]
pub struct Selection<'a> {
    pub filter: Filter,
    pub module: Option<&'a str>,
    /// The event compared, by name (default: each file's first).
    pub event: Option<&'a str>,
    /// Off-CPU time only in these states.
    pub states: Option<&'a StateSelection>,
    pub no_idle: bool,
}

/// Sample counts of one recording, by function.
#[derive(Clone, Debug, Default)]
pub struct RunCounts {
    /// The event counted: the recording's first event with samples.
    pub event: String,
    /// Its other events with samples, left out.
    pub other_events: Vec<String>,
    pub samples: u64,
    pub self_counts: BTreeMap<FunctionKey, u64>,
    pub total_counts: BTreeMap<FunctionKey, u64>,
    /// Folded stacks (`comm;root;...;leaf`, count) for the flamegraph.
    pub folded: Vec<(String, u64)>,
    /// The kernel functions (and module functions) the recording's kernel
    /// had, by [`function_hash`]; `None` when the recording holds no
    /// kernel symbols.
    pub kernel_functions: Option<HashSet<u64>>,
}

/// A function key's hash, to tell cheaply whether a kernel had it.
fn function_hash(name: &str, module: Option<&str>) -> u64 {
    ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one((name, module))
}

impl RunCounts {
    /// Counts a view's samples per function.
    pub fn of_view(view: &View) -> RunCounts {
        let keys: Vec<FunctionKey> = view.symbols.frames.iter().map(key_of).collect();
        let mut run = RunCounts {
            folded: view.folded(),
            ..RunCounts::default()
        };
        let mut seen: BTreeSet<&FunctionKey> = BTreeSet::new();
        for row in &view.rows {
            let stack = &view.symbols.stacks[row.stack as usize];
            run.samples += row.count;
            if let Some(&leaf) = stack.last() {
                *run.self_counts
                    .entry(keys[leaf as usize].clone())
                    .or_default() += row.count;
            }
            // A function counts once per sample, however often it recurs.
            seen.clear();
            for &f in stack {
                let key = &keys[f as usize];
                if seen.insert(key) {
                    *run.total_counts.entry(key.clone()).or_default() += row.count;
                }
            }
        }
        run
    }

    /// Reads a recording and counts, per function, the samples that
    /// `selection` keeps of its event (by default its first event with
    /// samples: the one a recording is about).
    pub fn read(path: &Path, selection: &Selection) -> Result<RunCounts> {
        let mut profile = Profile::read(path, &selection.filter)?;
        let chosen = profile
            .choose_event(selection.event, selection.states)
            .map_err(|e| e.prefixed(format!("{}: ", path.display())))?;
        let symbols = symbolize(&profile);
        let sampled = profile.sampled_events();
        let event = chosen.or_else(|| sampled.first().copied());
        let mut run = match event {
            Some(event) => {
                let filter = ViewFilter {
                    module: selection.module,
                    event: Some(event),
                    no_idle: selection.no_idle,
                };
                RunCounts::of_view(&View::build(&profile, &symbols, filter)?)
            }
            None => RunCounts::default(),
        };
        if let Some(event) = event {
            run.event = profile.events[event as usize].clone();
            run.other_events = sampled
                .iter()
                .filter(|&&e| e != event)
                .map(|&e| profile.events[e as usize].clone())
                .collect();
        }
        if !profile.kernel.is_empty() {
            run.kernel_functions = Some(
                profile
                    .kernel
                    .iter()
                    .filter(|s| s.module != Some("bpf"))
                    .map(|s| function_hash(s.name, s.module))
                    .collect(),
            );
        }
        if run.samples == 0 {
            return Err(Error::corrupt_input(format!(
                "{} holds no samples; record longer or check the events",
                path.display()
            )));
        }
        Ok(run)
    }
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

impl From<Comparison> for ShareChange {
    fn from(c: Comparison) -> ShareChange {
        ShareChange {
            before: c.before,
            after: c.after,
            delta: c.delta,
            ci95: c.ci95,
            p_value: c.p_value,
            significant: false,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FunctionChange {
    pub function: String,
    pub module: Option<String>,
    /// `before` or `after` for a kernel function that the other side's
    /// kernel does not have (renamed, added, removed, inlined).
    pub only_in: Option<&'static str>,
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

/// Which side's kernel alone has the function `key`, if one alone has it
/// (user functions are in neither).
fn only_in(key: &FunctionKey, before: &[RunCounts], after: &[RunCounts]) -> Option<&'static str> {
    let hash = function_hash(&key.0, key.1.as_deref());
    let has = |side: &[RunCounts]| -> Option<bool> {
        let known = side.first()?.kernel_functions.as_ref()?;
        Some(known.contains(&hash))
    };
    match (has(before)?, has(after)?) {
        (true, false) => Some("before"),
        (false, true) => Some("after"),
        _ => None,
    }
}

/// Compares the runs of two sides (one or more recordings each).
pub fn diff_profiles(before: &[RunCounts], after: &[RunCounts]) -> ProfileDiff {
    let repeated = before.len() >= 2 && after.len() >= 2;
    let mut names: BTreeSet<&FunctionKey> = BTreeSet::new();
    for run in before.iter().chain(after) {
        names.extend(run.total_counts.keys());
    }
    let change = |key: &FunctionKey, pick: fn(&RunCounts) -> &BTreeMap<FunctionKey, u64>| {
        let count = |r: &RunCounts| pick(r).get(key).copied().unwrap_or(0);
        let comparison = if repeated {
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
        };
        ShareChange::from(comparison)
    };
    let mut functions: Vec<FunctionChange> = names
        .into_iter()
        .map(|key| FunctionChange {
            function: key.0.clone(),
            module: key.1.clone(),
            only_in: only_in(key, before, after),
            self_share: change(key, |r| &r.self_counts),
            total: change(key, |r| &r.total_counts),
        })
        .collect();
    // The family tested together: shares of at least FAMILY_MIN_SHARE on
    // one side. Hundreds of functions that are rare on both sides would
    // otherwise raise the bar for every change without being able to
    // clear it themselves.
    let mut family: Vec<&mut ShareChange> = functions
        .iter_mut()
        .flat_map(|f| [&mut f.self_share, &mut f.total])
        .filter(|c| c.before.max(c.after) >= FAMILY_MIN_SHARE)
        .collect();
    let p_values: Vec<f64> = family.iter().map(|c| c.p_value).collect();
    for (change, significant) in family.iter_mut().zip(benjamini_hochberg(&p_values, FDR)) {
        change.significant = significant;
    }
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

/// How the two counts of a differential folded line compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counts {
    /// Before scaled to after's total (rounded), as inferno's
    /// `inferno-diff-folded --normalize` writes them.
    Normalized,
    /// Each side's own sample counts.
    Raw,
}

/// Folded lines with two counts (before, after), as inferno's differential
/// flamegraph reads them.
pub fn differential_folded(
    before: &[RunCounts],
    after: &[RunCounts],
    counts: Counts,
) -> Result<Vec<String>> {
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
            normalize: counts == Counts::Normalized,
            strip_hex: false,
        },
        b.as_bytes(),
        a.as_bytes(),
        &mut out,
    )
    .io_context(|| "cannot pair the stacks of both sides")?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(samples: u64, self_counts: &[(&str, Option<&str>, u64)]) -> RunCounts {
        let mut r = RunCounts {
            samples,
            ..Default::default()
        };
        for &(f, m, n) in self_counts {
            let key = (f.to_string(), m.map(str::to_string));
            r.self_counts.insert(key.clone(), n);
            r.total_counts.insert(key, n);
        }
        r
    }

    #[test]
    fn a_large_shift_is_significant_and_first() {
        // a: 10% -> 25%; b and c keep their counts, so their shares shrink less.
        let before = [run(
            10_000,
            &[
                ("a", Some("m"), 1000),
                ("b", None, 2000),
                ("c", None, 7000),
                ("d", None, 20),
            ],
        )];
        let after = [run(
            12_000,
            &[
                ("a", Some("m"), 3000),
                ("b", None, 2000),
                ("c", None, 7000),
                ("d", None, 25),
            ],
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
        let side = [run(5000, &[("a", None, 100), ("b", None, 4900)])];
        let d = diff_profiles(&side, &side);
        assert!(d
            .functions
            .iter()
            .all(|f| !f.self_share.significant && f.self_share.delta == 0.0));
        let runs = [
            run(5000, &[("a", None, 100), ("b", None, 4900)]),
            run(5000, &[("a", None, 120), ("b", None, 4880)]),
        ];
        let d = diff_profiles(&runs, &runs);
        assert!(d
            .functions
            .iter()
            .all(|f| !f.total.significant && f.total.p_value > 0.99));
    }
}
