//! `report --html` and `diff --html`: one self-contained page (style,
//! script and data inline, nothing fetched) that draws the recording's
//! flamegraphs on a canvas, lists its functions with their callers and
//! callees, shows each thread's samples over time and the recording's facts;
//! for a comparison, the differential flamegraph and the change table (or,
//! for latency results, both sides' histograms).
//!
//! The data is one JSON object (schema netprof-html/1, built here); the
//! page's script (`page.js`) does all the drawing, so the file stays a few
//! bytes per call-tree node however large the recording.

mod call_tree;
mod diff;
mod timeline;

use std::io::Write;
use std::path::Path;

use ahash::AHashMap as HashMap;
use serde::Serialize;

pub use call_tree::{CallTree, FlatTree, FrameTable, Kind, MERGED_NAME};
pub use diff::{latency_page, profiles_page};

use crate::model::off_cpu::{self, OffCpuState, OFF_CPU_EVENT};
use crate::model::profile::{KernelNames, Profile};
use crate::model::symbolize::FrameKind;
use crate::model::view::View;

/// The most call-tree nodes a page holds, all flamegraphs together: about
/// 12 bytes each, so a page stays under 10 MB.
const MAX_PAGE_NODES: usize = 600_000;

const TEMPLATE: &str = include_str!("page.html");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// Everything the page shows.
#[derive(Serialize)]
pub struct Page {
    schema: &'static str,
    /// `report`, `diff` or `latency-diff`.
    kind: &'static str,
    title: String,
    /// (what, value) lines of the facts table.
    facts: Vec<(String, String)>,
    frames: FrameTable,
    /// One flamegraph per event (for a comparison, one with two columns).
    profiles: Vec<EventFlame>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeline: Option<timeline::Timeline>,
    /// The comparison's result (netprof-diff/1 or netprof-latency-diff/1).
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<serde_json::Value>,
    /// Latency comparisons: each function's histograms, before and after.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    histograms: Vec<diff::HistogramPair>,
}

/// One event's flamegraph.
#[derive(Serialize)]
struct EventFlame {
    name: String,
    /// What a count is: `samples`, `hits` or `ns`.
    unit: &'static str,
    tree: FlatTree,
}

/// Writes the page: the template with its style, script and data in place.
pub fn write(page: &Page, out: &mut impl Write) -> std::io::Result<()> {
    // `</` never appears inside the inline JSON, so no string in it can
    // close its <script> element (JSON allows `\/` for `/`).
    let data = serde_json::to_string(page)
        .expect("page data serializes")
        .replace("</", "<\\/");
    let title = html_escape(&page.title);
    let mut rest = TEMPLATE;
    for (marker, text) in [
        ("{{title}}", title.as_str()),
        ("{{style}}", STYLE),
        ("{{data}}", data.as_str()),
        ("{{script}}", SCRIPT),
    ] {
        let (before, after) = rest
            .split_once(marker)
            .expect("page.html has every marker, in order");
        out.write_all(before.as_bytes())?;
        out.write_all(text.as_bytes())?;
        rest = after;
    }
    out.write_all(rest.as_bytes())
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What one count of an event is.
fn unit_of(event: &str) -> &'static str {
    if off_cpu::counts_nanoseconds(event) {
        "ns"
    } else if event.contains(':') {
        // Tracepoints and probes (`sched:sched_switch`, `kprobe:m:f`).
        "hits"
    } else {
        "samples"
    }
}

/// The page of a recording: one flamegraph per view (event), the
/// recording's samples over time per thread (when they were kept), and its facts.
pub fn report_page(views: &[View], input: &Path) -> Page {
    // The caller refuses a recording without samples before it gets here.
    let first = views.first().expect("a report page has a view");
    let profile = first.profile;
    let mut frames = FrameTable::new();
    let mut page_frame: Vec<Option<u32>> = vec![None; first.symbols.frames.len()];
    let mut comm_frame: Vec<Option<u32>> = vec![None; profile.comms.len()];
    let mut profiles = Vec::new();
    let mut merged_nodes = 0;
    for view in views {
        // Rows differ by thread and CPU too; the tree only by command and
        // stack, so each distinct path is walked once.
        let mut paths: HashMap<(u32, u32), u64> = HashMap::new();
        for row in &view.rows {
            *paths.entry((row.comm, row.stack)).or_default() += row.count;
        }
        // In a fixed order, so that the same recording gives the same page.
        let mut paths: Vec<((u32, u32), u64)> = paths.into_iter().collect();
        paths.sort_unstable();
        let mut tree = CallTree::new(1);
        for ((row_comm, row_stack), count) in paths {
            let comm = *comm_frame[row_comm as usize].get_or_insert_with(|| {
                frames.intern(&profile.comms[row_comm as usize], None, Kind::Comm)
            });
            let stack = &view.symbols.stacks[row_stack as usize];
            let path = std::iter::once(comm).chain(stack.iter().map(|&f| {
                *page_frame[f as usize].get_or_insert_with(|| {
                    let frame = &view.symbols.frames[f as usize];
                    let kind = match frame.kind {
                        FrameKind::Kernel => Kind::Kernel,
                        FrameKind::Module => Kind::Module,
                        FrameKind::Bpf => Kind::Bpf,
                        FrameKind::User => Kind::User,
                    };
                    frames.intern(&frame.name, frame.module.as_deref(), kind)
                })
            }));
            tree.add(path, 0, count);
        }
        let name = view.event_name();
        let (flat, merged) = tree.flatten(&mut frames, MAX_PAGE_NODES / views.len());
        merged_nodes += merged;
        profiles.push(EventFlame {
            unit: unit_of(&name),
            name,
            tree: flat,
        });
    }
    let shown: Vec<Option<u16>> = views.iter().map(|v| v.event).collect();
    let timeline = timeline::build(profile, |event| {
        shown.iter().position(|&e| e == Some(event))
    });
    let duration = timeline.as_ref().map(|t| t.end_ns - t.start_ns);
    Page {
        schema: "netprof-html/1",
        kind: "report",
        title: format!("netprof report: {}", input.display()),
        facts: report_facts(profile, input, duration, merged_nodes),
        frames,
        profiles,
        timeline,
        changes: None,
        histograms: Vec::new(),
    }
}

/// The recording's facts: how, where and what it recorded.
fn report_facts(
    profile: &Profile,
    input: &Path,
    duration_ns: Option<u64>,
    merged_nodes: usize,
) -> Vec<(String, String)> {
    let facts = &profile.facts;
    let mut lines = vec![("Recording".to_string(), input.display().to_string())];
    let known = |value: &Option<String>| value.clone().unwrap_or_else(|| "not recorded".into());
    lines.push(("Command".into(), known(&facts.command_line)));
    lines.push(("Kernel".into(), known(&facts.os_release)));
    lines.push(("Host".into(), known(&facts.hostname)));
    if let Some(ns) = duration_ns {
        lines.push((
            "Duration".into(),
            format!("{:.3} s (first to last sample)", ns as f64 / 1e9),
        ));
    }
    let events: Vec<String> = profile
        .sampled_events()
        .iter()
        .map(|&e| {
            let name = &profile.events[e as usize];
            match off_cpu::counts_nanoseconds(name) {
                true => format!(
                    "{name}: {:.3} s",
                    profile.file_samples[e as usize] as f64 / 1e9
                ),
                false => format!(
                    "{name}: {} {}",
                    profile.file_samples[e as usize],
                    unit_of(name)
                ),
            }
        })
        .collect();
    lines.push(("Events".into(), events.join("; ")));
    if profile
        .events
        .iter()
        .any(|e| e == OFF_CPU_EVENT || OffCpuState::of_event(e).is_some())
    {
        lines.push((
            "Off-CPU time".into(),
            "every state as one offcpu-time event; netprof report --state picks some".into(),
        ));
    }
    lines.push(("Lost samples".into(), profile.lost_samples.to_string()));
    lines.push((
        "Kernel names".into(),
        match profile.kernel_names {
            KernelNames::Snapshot => "the recording's kallsyms snapshot",
            KernelNames::LiveKallsyms => "this machine's /proc/kallsyms (a file written by perf)",
            KernelNames::Unavailable => "none (kernel frames are addresses)",
        }
        .into(),
    ));
    let cut: Vec<String> = profile
        .truncated_user
        .iter()
        .zip(&profile.events)
        .filter(|(&cut, _)| cut > 0)
        .map(|(&cut, event)| match off_cpu::counts_nanoseconds(event) {
            true => format!("{:.6} s of {event}", cut as f64 / 1e9),
            false => format!("{cut} samples of {event}"),
        })
        .collect();
    if !cut.is_empty() {
        lines.push((
            "User call chains cut".into(),
            format!("{} (code built without frame pointers)", cut.join(", ")),
        ));
    }
    if merged_nodes > 0 {
        lines.push(merged_fact(merged_nodes));
    }
    lines.push(written_by());
    lines
}

/// The facts line saying how many call paths were merged to keep the page small.
fn merged_fact(merged_nodes: usize) -> (String, String) {
    (
        "Smallest call paths".into(),
        format!(
            "{merged_nodes} merged into {MERGED_NAME} under their caller, to keep the page small (totals are exact)"
        ),
    )
}

/// The facts line naming the netprof that wrote the page.
fn written_by() -> (String, String) {
    (
        "Written by".into(),
        format!("netprof {}", env!("CARGO_PKG_VERSION")),
    )
}
