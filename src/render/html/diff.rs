//! The pages of a comparison: two recordings' differential flamegraph and
//! change table, or two latency results' table and histograms.

use std::path::PathBuf;

use serde::Serialize;

use super::{
    merged_fact, unit_of, written_by, CallTree, EventFlame, FrameTable, Kind, Page, MAX_PAGE_NODES,
};
use crate::analysis::diff::latency::{pooled, LatencyDiff};
use crate::analysis::diff::profiles::{ProfileDiff, RunCounts};
use crate::error::Result;
use crate::model::latency::LatencyReport;

/// One function's calls per bucket on both sides: ([low, high) ns, count).
#[derive(Serialize)]
pub struct HistogramPair {
    function: String,
    module: Option<String>,
    before: Vec<(u64, u64, u64)>,
    after: Vec<(u64, u64, u64)>,
}

fn side_names(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn comparison_title(before: &[PathBuf], after: &[PathBuf]) -> String {
    format!(
        "netprof diff: {} -> {}",
        side_names(before),
        side_names(after)
    )
}

/// Recordings compared: one flamegraph with a column per side (before,
/// after) and the change table.
pub fn profiles_page(
    (before, after): (&[RunCounts], &[RunCounts]),
    (before_files, after_files): (&[PathBuf], &[PathBuf]),
    changes: &ProfileDiff,
) -> Page {
    let mut frames = FrameTable::new();
    let mut tree = CallTree::new(2);
    for (column, side) in [before, after].into_iter().enumerate() {
        for run in side {
            for (line, count) in &run.folded {
                let mut labels = line.split(';');
                let comm = labels.next().map(|c| frames.intern(c, None, Kind::Comm));
                let path: Vec<u32> = comm
                    .into_iter()
                    .chain(labels.map(|l| frames.intern_label(l)))
                    .collect();
                tree.add(path, column, *count);
            }
        }
    }
    let event = after.first().map(|r| r.event.clone()).unwrap_or_default();
    let (flat, merged_nodes) = tree.flatten(&mut frames, MAX_PAGE_NODES);
    let samples = |side: &[RunCounts]| side.iter().map(|r| r.samples).sum::<u64>();
    let mut facts = vec![
        ("Before".to_string(), side_names(before_files)),
        ("After".to_string(), side_names(after_files)),
        (
            "Samples".to_string(),
            format!(
                "{} before, {} after, of {event}",
                samples(before),
                samples(after)
            ),
        ),
        ("Method".to_string(), changes.method.to_string()),
    ];
    if merged_nodes > 0 {
        facts.push(merged_fact(merged_nodes));
    }
    facts.push(written_by());
    Page {
        schema: "netprof-html/1",
        kind: "diff",
        title: comparison_title(before_files, after_files),
        facts,
        profiles: vec![EventFlame {
            unit: unit_of(&event),
            name: event,
            tree: flat,
        }],
        frames,
        timeline: None,
        changes: Some(serde_json::to_value(changes).expect("the comparison serializes")),
        histograms: Vec::new(),
    }
}

/// Latency results compared: the change table and, per function, both
/// sides' histograms (every run pooled).
pub fn latency_page(
    (before, after): (&[LatencyReport], &[LatencyReport]),
    (before_files, after_files): (&[PathBuf], &[PathBuf]),
    changes: &LatencyDiff,
) -> Result<Page> {
    let (b, a) = (pooled(before)?, pooled(after)?);
    let buckets = |h: Option<&crate::analysis::diff::latency::Pooled>| -> Vec<(u64, u64, u64)> {
        h.map(|p| {
            p.histogram
                .iter()
                .map(|(&(low, high), &n)| (low, high, n))
                .collect()
        })
        .unwrap_or_default()
    };
    let histograms = changes
        .functions
        .iter()
        .map(|f| {
            let key = (f.function.clone(), f.module.clone());
            HistogramPair {
                function: f.function.clone(),
                module: f.module.clone(),
                before: buckets(b.get(&key)),
                after: buckets(a.get(&key)),
            }
        })
        .collect();
    Ok(Page {
        schema: "netprof-html/1",
        kind: "latency-diff",
        title: comparison_title(before_files, after_files),
        facts: vec![
            ("Before".to_string(), side_names(before_files)),
            ("After".to_string(), side_names(after_files)),
            ("Method".to_string(), changes.method.to_string()),
            written_by(),
        ],
        frames: FrameTable::new(),
        profiles: Vec::new(),
        timeline: None,
        changes: Some(serde_json::to_value(changes).expect("the comparison serializes")),
        histograms,
    })
}
