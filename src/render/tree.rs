//! The text call graph, like `perf report --children --stdio -g graph,P,ORDER`:
//! entries sorted by their inclusive ("children") share, each with its self
//! share, and under each entry a tree of call paths with absolute percentages.
//!
//! `-g caller` shows, under an entry, what it calls (paths from the entry
//! towards the sampled leaf); `-g callee` shows who calls it (paths from the
//! entry towards the root). Entries and branches below the percent limit are
//! left out.

use ahash::AHashMap as HashMap;
use std::fmt::Write;

use crate::model::symbolize::{Frame, FrameKind};
use crate::model::view::View;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Caller,
    Callee,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Symbol,
    Dso,
    Comm,
}

pub struct TreeOptions {
    pub percent_limit: f64,
    pub order: Order,
    pub sort: SortKey,
}

/// What an entry stands for: a frame, a module or file, or a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Frame(u32),
    Dso(u32),
    Comm(u32),
}

struct Node {
    frame: u32,
    count: u64,
    children: Vec<usize>,
}

/// How entries are keyed: the frame's function, module or file, or the
/// sample's command.
struct Keys<'a> {
    sort: SortKey,
    view: &'a View<'a>,
    /// Module or file of each frame, interned, for --sort dso.
    frame_dso: Vec<u32>,
    dso_names: Vec<String>,
}

impl<'a> Keys<'a> {
    fn new(view: &'a View<'a>, sort: SortKey) -> Keys<'a> {
        let mut dso_names: Vec<String> = Vec::new();
        let mut dso_ids: HashMap<String, u32> = HashMap::new();
        let frame_dso = view
            .symbols
            .frames
            .iter()
            .map(|f| {
                let name = match (f.kind, &f.module) {
                    (FrameKind::Kernel, _) => "[kernel.kallsyms]".to_string(),
                    (FrameKind::Module | FrameKind::Bpf, Some(m)) => format!("[{m}]"),
                    (_, Some(path)) => path.rsplit('/').next().unwrap_or(path).to_string(),
                    (_, None) => "[unknown]".to_string(),
                };
                let next = dso_names.len() as u32;
                *dso_ids.entry(name.clone()).or_insert_with(|| {
                    dso_names.push(name);
                    next
                })
            })
            .collect();
        Keys {
            sort,
            view,
            frame_dso,
            dso_names,
        }
    }

    fn of(&self, frame: u32, comm: u32) -> Key {
        match self.sort {
            SortKey::Symbol => Key::Frame(frame),
            SortKey::Dso => Key::Dso(self.frame_dso[frame as usize]),
            SortKey::Comm => Key::Comm(comm),
        }
    }

    fn label(&self, k: Key) -> String {
        match k {
            Key::Frame(f) => {
                let fr = &self.view.symbols.frames[f as usize];
                let mark = if fr.kind == FrameKind::User {
                    "[.]"
                } else {
                    "[k]"
                };
                format!("{mark} {}", fr.label())
            }
            Key::Dso(d) => self.dso_names[d as usize].clone(),
            Key::Comm(c) => self.view.profile.comms[c as usize].clone(),
        }
    }
}

/// One entry of the report: its key, children (inclusive) and self counts.
struct Entry {
    key: Key,
    children: u64,
    self_count: u64,
}

/// A named stack with its command (when entries are commands) and count.
struct Path<'v> {
    comm: u32,
    frames: &'v [u32],
    count: u64,
}

/// The view's distinct named stacks ([`View::named_paths`]), in a fixed
/// order; the command stays apart only when it is the entry.
fn distinct_paths<'v>(view: &'v View, sort: SortKey) -> Vec<Path<'v>> {
    let mut paths: Vec<Path> = view
        .named_paths(sort == SortKey::Comm)
        .into_iter()
        .map(|((comm, frames), count)| Path {
            comm,
            frames,
            count,
        })
        .collect();
    // Trees list equal branches in the order met: keep it the same each run.
    paths.sort_unstable_by(|a, b| (a.comm, a.frames).cmp(&(b.comm, b.frames)));
    paths
}

/// The entries at or above the percent limit, largest children share first.
/// An entry counts once per sample even if it appears several times in the
/// stack (recursion).
fn entries(view: &View, paths: &[Path], keys: &Keys, opts: &TreeOptions) -> Vec<Entry> {
    let total = view.total.max(1) as f64;
    let mut self_count: HashMap<Key, u64> = HashMap::new();
    let mut children_count: HashMap<Key, u64> = HashMap::new();
    let mut seen: Vec<Key> = Vec::new();
    for path in paths {
        let stack = path.frames;
        let Some(&leaf) = stack.last() else { continue };
        *self_count.entry(keys.of(leaf, path.comm)).or_insert(0) += path.count;
        seen.clear();
        for &f in stack {
            let k = keys.of(f, path.comm);
            if !seen.contains(&k) {
                seen.push(k);
                *children_count.entry(k).or_insert(0) += path.count;
            }
        }
    }
    let mut entries: Vec<Entry> = children_count
        .iter()
        .map(|(&key, &children)| Entry {
            key,
            children,
            self_count: self_count.get(&key).copied().unwrap_or(0),
        })
        .filter(|e| 100.0 * e.children as f64 / total >= opts.percent_limit)
        .collect();
    entries.sort_by(|a, b| {
        b.children
            .cmp(&a.children)
            .then(b.self_count.cmp(&a.self_count))
            .then_with(|| keys.label(a.key).cmp(&keys.label(b.key)))
    });
    entries
}

/// One call tree per entry shown, built in a single pass over the rows.
fn trees(paths: &[Path], keys: &Keys, entries: &[Entry], order: Order) -> Vec<Tree> {
    let shown: HashMap<Key, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.key, i))
        .collect();
    let mut trees: Vec<Tree> = entries.iter().map(|_| Tree::default()).collect();
    let mut seen: Vec<Key> = Vec::new();
    let mut branch: Vec<u32> = Vec::new();
    for path in paths {
        let stack = path.frames;
        seen.clear();
        for (i, &f) in stack.iter().enumerate() {
            let k = keys.of(f, path.comm);
            let Some(&tree) = shown.get(&k) else { continue };
            if seen.contains(&k) {
                continue;
            }
            seen.push(k);
            // Symbol entries start their paths at themselves; command and
            // module entries show the whole stack from the first frame.
            let whole_stack = matches!(k, Key::Comm(_));
            branch.clear();
            match order {
                Order::Caller => {
                    branch.extend_from_slice(&stack[if whole_stack { 0 } else { i }..])
                }
                Order::Callee => {
                    let end = if whole_stack { stack.len() - 1 } else { i };
                    branch.extend(stack[..=end].iter().rev());
                }
            }
            trees[tree].insert(&branch, path.count);
        }
    }
    trees
}

pub fn render(view: &View, opts: &TreeOptions) -> String {
    let keys = Keys::new(view, opts.sort);
    let paths = distinct_paths(view, opts.sort);
    let entries = entries(view, &paths, &keys, opts);
    let trees = trees(&paths, &keys, &entries, opts.order);
    let total = view.total.max(1) as f64;
    let pct = |n: u64| 100.0 * n as f64 / total;

    let mut out = String::new();
    let _ = writeln!(out, "# netprof report: {}", view.summary_line());
    let _ = writeln!(
        out,
        "# call graph: {}, percent limit {}%",
        if opts.order == Order::Caller {
            "caller (what each entry calls)"
        } else {
            "callee (who calls each entry)"
        },
        opts.percent_limit
    );
    let _ = writeln!(out, "#");
    let _ = writeln!(
        out,
        "# Children      Self  {}",
        match opts.sort {
            SortKey::Symbol => "Symbol",
            SortKey::Dso => "Shared Object",
            SortKey::Comm => "Command",
        }
    );
    let _ = writeln!(out, "#");
    for (entry, tree) in entries.iter().zip(&trees) {
        let _ = writeln!(
            out,
            "{:>9.2}% {:>8.2}%  {}",
            pct(entry.children),
            pct(entry.self_count),
            keys.label(entry.key)
        );
        if !tree.roots.is_empty() {
            let _ = writeln!(out, "            |");
            let drawer = Drawer {
                nodes: &tree.nodes,
                frames: &view.symbols.frames,
                total,
                limit: opts.percent_limit,
            };
            drawer.children(&mut out, &tree.roots, "            ", true);
        }
        let _ = writeln!(out);
    }
    out
}

#[derive(Default)]
struct Tree {
    nodes: Vec<Node>,
    roots: Vec<usize>,
}

impl Tree {
    fn insert(&mut self, path: &[u32], count: u64) {
        let mut parent: Option<usize> = None;
        for &frame in path {
            let siblings = match parent {
                None => &self.roots,
                Some(p) => &self.nodes[p].children,
            };
            let idx = match siblings
                .iter()
                .copied()
                .find(|&c| self.nodes[c].frame == frame)
            {
                Some(c) => c,
                None => {
                    self.nodes.push(Node {
                        frame,
                        count: 0,
                        children: Vec::new(),
                    });
                    let c = self.nodes.len() - 1;
                    match parent {
                        None => self.roots.push(c),
                        Some(p) => self.nodes[p].children.push(c),
                    }
                    c
                }
            };
            self.nodes[idx].count += count;
            parent = Some(idx);
        }
    }
}

/// Draws one entry's call tree the way perf does: single children continue
/// the column, branches get their percentages.
struct Drawer<'a> {
    nodes: &'a [Node],
    frames: &'a [Frame],
    total: f64,
    /// Branches below this share of all samples, in percent, are left out.
    limit: f64,
}

impl Drawer<'_> {
    fn pct(&self, node: usize) -> f64 {
        100.0 * self.nodes[node].count as f64 / self.total
    }

    fn label(&self, node: usize) -> String {
        self.frames[self.nodes[node].frame as usize].label()
    }

    fn shown(&self, nodes: &[usize]) -> Vec<usize> {
        nodes
            .iter()
            .copied()
            .filter(|&n| self.pct(n) >= self.limit)
            .collect()
    }

    fn children(&self, out: &mut String, nodes: &[usize], prefix: &str, first_level: bool) {
        let mut nodes = self.shown(nodes);
        nodes.sort_by(|&a, &b| self.nodes[b].count.cmp(&self.nodes[a].count));
        if nodes.len() == 1 && first_level {
            // A single root continues the entry's line, as perf draws it.
            let _ = writeln!(out, "{prefix}---{}", self.label(nodes[0]));
            self.chain(out, nodes[0], &format!("{prefix}   "));
            return;
        }
        for (i, &n) in nodes.iter().enumerate() {
            let bar = if i + 1 == nodes.len() { " " } else { "|" };
            let tag = format!("--{:.2}%--", self.pct(n));
            let _ = writeln!(out, "{prefix}|");
            let _ = writeln!(out, "{prefix}{bar}{tag}{}", self.label(n));
            self.chain(out, n, &format!("{prefix}{bar}{}", " ".repeat(tag.len())));
        }
    }

    /// The descendants of `node`, below it.
    fn chain(&self, out: &mut String, mut node: usize, prefix: &str) {
        loop {
            let kids = self.shown(&self.nodes[node].children);
            match kids.len() {
                0 => return,
                1 if self.nodes[kids[0]].count == self.nodes[node].count => {
                    let _ = writeln!(out, "{prefix}{}", self.label(kids[0]));
                    node = kids[0];
                }
                _ => return self.children(out, &kids, prefix, false),
            }
        }
    }
}
