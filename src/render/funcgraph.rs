//! `netprof funcgraph`'s outputs: the tree of call paths (like ftrace's
//! function_graph, one line per path instead of one per call), folded
//! stacks weighted by wall time, its flamegraph, and the kept calls' trees.

use std::io::Write;

use inferno::flamegraph::{self, Options};

use super::units::human_ns;
use crate::error::{Error, IoContext, Result};
use crate::model::funcgraph::{FuncGraphReport, KeptCall, PathTimes};

pub struct TreeOptions {
    /// Paths whose total is below this share of all time (percent) are
    /// folded into one line under their parent.
    pub percent_limit: f64,
}

/// A node of the tree: a path (its own figures, when the kernel counted
/// its calls: a call still running at the end has none) and its children.
struct Node<'a> {
    label: String,
    times: Option<&'a PathTimes>,
    children: Vec<Node<'a>>,
}

impl Node<'_> {
    /// Its calls' total, or its children's when it has no figures.
    fn total(&self) -> u64 {
        match self.times {
            Some(t) => t.total_ns,
            None => self.children.iter().map(Node::total).sum(),
        }
    }

    fn sort(&mut self) {
        self.children
            .sort_by(|a, b| b.total().cmp(&a.total()).then(a.label.cmp(&b.label)));
        self.children.iter_mut().for_each(Node::sort);
    }
}

/// The paths as a tree: roots are the outermost functions.
fn tree(paths: &[PathTimes]) -> Node<'_> {
    let mut root = Node {
        label: String::new(),
        times: None,
        children: Vec::new(),
    };
    for p in paths {
        let mut node = &mut root;
        for frame in &p.path {
            let label = frame.label();
            let at = match node.children.iter().position(|c| c.label == label) {
                Some(at) => at,
                None => {
                    node.children.push(Node {
                        label,
                        times: None,
                        children: Vec::new(),
                    });
                    node.children.len() - 1
                }
            };
            node = &mut node.children[at];
        }
        node.times = Some(p);
    }
    root.sort();
    root
}

/// The text report: a header, the tree with calls, total, self, median and
/// p99 per path, the kept calls, and what could not be timed.
pub fn render_text(
    report: &FuncGraphReport,
    opts: &TreeOptions,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let calls: u64 = report.paths.iter().map(|p| p.count).sum();
    let under = match report.under.is_empty() {
        true => String::new(),
        false => format!(", under {}", report.under.join(", ")),
    };
    writeln!(
        out,
        "# {} paths through {} traced functions{under}, {calls} calls in {:.1}s ({})",
        report.paths.len(),
        report.functions,
        report.duration_s,
        report.probes
    )?;
    writeln!(
        out,
        "# wall time, waiting included; total: all calls; self: total minus traced children; \
         median, p99: one call"
    )?;
    let root = tree(&report.paths);
    if root.children.is_empty() {
        writeln!(
            out,
            "# no traced function returned while netprof was tracing"
        )?;
    } else {
        let errors = report.paths.iter().any(|p| p.errors > 0);
        let error_head = if errors { "    errors" } else { "" };
        writeln!(
            out,
            "{:>10} {:>10} {:>10} {:>10} {:>10}{error_head}  path",
            "calls", "total", "self", "median", "p99"
        )?;
        let grand_total = root.total().max(1);
        let limit = (opts.percent_limit / 100.0 * grand_total as f64) as u64;
        let rows = Rows {
            limit,
            errors,
            out: &mut *out,
        };
        rows.write(&root, "")?;
    }
    for (i, call) in report.kept_calls.iter().enumerate() {
        render_kept_call(i + 1, call, out)?;
    }
    render_unpaired(report, out)
}

struct Rows<'w, W: Write> {
    limit: u64,
    errors: bool,
    out: &'w mut W,
}

impl<W: Write> Rows<'_, W> {
    /// `node`'s children, each with its subtree, those below the limit
    /// folded into one line.
    fn write(mut self, node: &Node, indent: &str) -> std::io::Result<Self> {
        let (shown, folded): (Vec<&Node>, Vec<&Node>) =
            node.children.iter().partition(|c| c.total() >= self.limit);
        let last = shown.len() + (!folded.is_empty()) as usize;
        let is_root = indent.is_empty() && node.label.is_empty();
        for (i, child) in shown.iter().enumerate() {
            let (branch, next) = match (is_root, i + 1 == last) {
                (true, _) => ("", String::new()),
                (false, true) => ("└─ ", format!("{indent}   ")),
                (false, false) => ("├─ ", format!("{indent}│  ")),
            };
            let figures = match child.times {
                Some(t) => {
                    let errors = match self.errors {
                        true => format!(" {:>9}", t.errors),
                        false => String::new(),
                    };
                    format!(
                        "{:>10} {:>10} {:>10} {:>10} {:>10}{errors}",
                        t.count,
                        human_ns(t.total_ns as f64),
                        human_ns(t.self_ns as f64),
                        human_ns(t.median_ns),
                        human_ns(t.p99_ns)
                    )
                }
                // Its calls were still running when tracing ended.
                None => format!(
                    "{:>10} {:>10} {:>10} {:>10} {:>10}{}",
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    if self.errors { "         -" } else { "" }
                ),
            };
            writeln!(self.out, "{figures}  {indent}{branch}{}", child.label)?;
            self = self.write(child, &next)?;
        }
        if !folded.is_empty() {
            let total: u64 = folded.iter().map(|n| n.total()).sum();
            let branch = if is_root { "" } else { "└─ " };
            writeln!(
                self.out,
                "{:>10} {:>10} {:>10} {:>10} {:>10}{}  {indent}{branch}({} smaller paths)",
                "",
                human_ns(total as f64),
                "",
                "",
                "",
                if self.errors { "          " } else { "" },
                folded.len()
            )?;
        }
        Ok(self)
    }
}

/// A return value: decimal, with the errno's meaning when it is one.
fn return_value(ret: i64, errno: Option<i32>) -> String {
    match errno {
        Some(e) => {
            let text = std::io::Error::from_raw_os_error(-e).to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            format!("{e} ({text})")
        }
        None if (-1_000_000..1_000_000).contains(&ret) => ret.to_string(),
        None => format!("{:#x}", ret as u64),
    }
}

fn render_kept_call(rank: usize, call: &KeptCall, out: &mut impl Write) -> std::io::Result<()> {
    let outermost = call.calls.iter().find(|c| c.depth == 0);
    writeln!(
        out,
        "\n# call {rank}: {} in {} ({}, pid {}, tid {}){}",
        human_ns(call.duration_ns as f64),
        outermost.map_or("?".to_string(), |c| match &c.module {
            Some(m) => format!("{} [{m}]", c.function),
            None => c.function.clone(),
        }),
        call.comm,
        call.pid,
        call.tid,
        match call.truncated {
            0 => String::new(),
            n => format!("; {n} calls under it not kept"),
        }
    )?;
    if let Some(first) = call.first_error() {
        writeln!(
            out,
            "# first error: {} returned {}",
            first.function,
            return_value(first.ret, first.errno)
        )?;
    }
    writeln!(
        out,
        "{:>10} {:>10}  call = return value",
        "start", "duration"
    )?;
    for c in &call.calls {
        let module = c
            .module
            .as_ref()
            .map(|m| format!(" [{m}]"))
            .unwrap_or_default();
        let origin = if c.error_origin {
            "   <- the error starts here"
        } else {
            ""
        };
        writeln!(
            out,
            "{:>10} {:>10}  {}{}{module} = {}{origin}",
            format!("+{}", human_ns(c.start_ns as f64)),
            human_ns(c.duration_ns as f64),
            "  ".repeat(c.depth as usize),
            c.function,
            return_value(c.ret, c.errno)
        )?;
    }
    Ok(())
}

/// What did not pair up or could not be kept, each on a line of its own.
fn render_unpaired(report: &FuncGraphReport, out: &mut impl Write) -> std::io::Result<()> {
    let u = &report.unpaired;
    let lines = [
        (
            u.no_entry,
            "returns with no entry seen (calls begun while probes were placed or removed); not timed",
        ),
        (
            u.still_running,
            "calls still running when tracing stopped; not timed",
        ),
        (
            u.no_return,
            "entries whose return never came (the kernel missed it); not timed",
        ),
        (
            u.too_deep,
            "calls deeper than the depth limit (--depth); not timed",
        ),
        (
            u.recursive,
            "recursive calls (timed, on paths with the function twice)",
        ),
        (
            u.no_thread_room,
            "calls not timed: too many threads inside traced calls at once",
        ),
        (
            u.no_path_room,
            "calls timed but not counted: more distinct paths than --max-paths",
        ),
        (
            u.log_truncated,
            "calls left out of kept call trees (256 calls a tree)",
        ),
        (
            u.no_log_room,
            "outermost calls not considered for keeping: too many threads at once",
        ),
        (
            u.log_lost,
            "kept calls lost on the way to netprof (its buffer was full)",
        ),
        (
            report.missed_returns,
            "returns the kernel missed (kretprobe instances exhausted)",
        ),
    ];
    for (count, what) in lines {
        if count > 0 {
            writeln!(out, "# {count} {what}")?;
        }
    }
    Ok(())
}

/// Folded stacks: each path with its self time in ns, so that a flamegraph
/// draws each function as wide as its total wall time (children within).
pub fn folded_lines(report: &FuncGraphReport) -> Vec<String> {
    report
        .paths
        .iter()
        .filter(|p| p.self_ns > 0)
        .map(|p| format!("{} {}", p.folded_key(), p.self_ns))
        .collect()
}

/// A flamegraph of wall time.
pub fn write_svg(report: &FuncGraphReport, title: Option<&str>, out: impl Write) -> Result<()> {
    let lines = folded_lines(report);
    if lines.is_empty() {
        return Err(Error::not_found(
            "nothing to draw: no traced function returned while netprof was tracing",
        ));
    }
    let mut options = Options::default();
    options.title = title.unwrap_or("netprof funcgraph: wall time").to_string();
    options.subtitle = Some(format!(
        "{} paths of {} traced functions over {:.1}s; width: wall time, waiting included",
        report.paths.len(),
        report.functions,
        report.duration_s
    ));
    options.count_name = "ns".to_string();
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
        .io_context(|| "cannot write the flamegraph")
}
