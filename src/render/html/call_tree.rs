//! The call tree a page draws its flamegraphs from: stacks merged by
//! their path from the root, every frame interned once for the whole page.
//! A tree has one or more columns of counts (two for a comparison: before
//! and after) and travels to the page in pre-order as three flat arrays,
//! which the page's script turns back into a tree in one pass.

use ahash::AHashMap as HashMap;
use serde::Serialize;

/// What a frame is, for colours and the module filter of the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The command a stack belongs to: the flamegraph's first level.
    Comm,
    Kernel,
    Module,
    Bpf,
    User,
    /// A kernel or user function: folded stacks (what comparisons read)
    /// name both alike.
    Function,
    /// Call paths too small to draw, merged under their caller (see
    /// [`CallTree::flatten`]).
    Merged,
}

/// The name of the node that stands for a caller's merged small paths.
pub const MERGED_NAME: &str = "[smaller paths]";

/// Every frame the page shows, each once: names and modules as indexes.
#[derive(Default, Serialize)]
pub struct FrameTable {
    /// Module (or user file) names; index 0 is "no module" (vmlinux).
    pub modules: Vec<String>,
    pub name: Vec<String>,
    pub module: Vec<u32>,
    pub kind: Vec<Kind>,
    #[serde(skip)]
    ids: HashMap<(String, u32, Kind), u32>,
    #[serde(skip)]
    module_ids: HashMap<String, u32>,
}

impl FrameTable {
    pub fn new() -> FrameTable {
        FrameTable {
            modules: vec![String::new()],
            ..FrameTable::default()
        }
    }

    /// The id of a frame, added on first sight.
    pub fn intern(&mut self, name: &str, module: Option<&str>, kind: Kind) -> u32 {
        let module = match module {
            None => 0,
            Some(m) => match self.module_ids.get(m) {
                Some(&id) => id,
                None => {
                    let id = self.modules.len() as u32;
                    self.modules.push(m.to_string());
                    self.module_ids.insert(m.to_string(), id);
                    id
                }
            },
        };
        let key = (name.to_string(), module, kind);
        if let Some(&id) = self.ids.get(&key) {
            return id;
        }
        let id = self.name.len() as u32;
        self.name.push(key.0.clone());
        self.module.push(module);
        self.kind.push(kind);
        self.ids.insert(key, id);
        id
    }

    /// The id of a frame as folded stacks label it: `func`, or
    /// `func [module]` (`[bpf]` for BPF programs).
    pub fn intern_label(&mut self, label: &str) -> u32 {
        match label
            .strip_suffix(']')
            .and_then(|rest| rest.rsplit_once(" ["))
        {
            Some((name, "bpf")) => self.intern(name, Some("bpf"), Kind::Bpf),
            Some((name, module)) => self.intern(name, Some(module), Kind::Module),
            None => self.intern(label, None, Kind::Function),
        }
    }
}

/// Stacks merged into a tree; node 0 is the root above every command.
pub struct CallTree {
    columns: usize,
    /// (parent, frame) of each node but the root.
    nodes: Vec<(u32, u32)>,
    child_of: HashMap<(u32, u32), u32>,
    /// Counts of samples whose leaf is the node, `columns` per node.
    self_counts: Vec<u64>,
}

/// A tree as the page reads it: nodes in pre-order (children sorted by
/// name), each with its frame, its depth (the root's children are at 0)
/// and its self count in each column.
#[derive(Serialize)]
pub struct FlatTree {
    pub frame: Vec<u32>,
    pub depth: Vec<u16>,
    #[serde(rename = "self")]
    pub self_counts: Vec<Vec<u64>>,
}

impl CallTree {
    pub fn new(columns: usize) -> CallTree {
        CallTree {
            columns,
            nodes: vec![(u32::MAX, u32::MAX)],
            child_of: HashMap::new(),
            self_counts: vec![0; columns],
        }
    }

    /// Adds `count` to column `column` of the stack `path` (frame ids, root first).
    pub fn add(&mut self, path: impl IntoIterator<Item = u32>, column: usize, count: u64) {
        let mut node = 0u32;
        for frame in path {
            node = match self.child_of.get(&(node, frame)) {
                Some(&child) => child,
                None => {
                    let child = self.nodes.len() as u32;
                    self.nodes.push((node, frame));
                    self.child_of.insert((node, frame), child);
                    self.self_counts
                        .extend(std::iter::repeat_n(0, self.columns));
                    child
                }
            };
        }
        self.self_counts[node as usize * self.columns + column] += count;
    }

    /// The tree in pre-order, siblings sorted by name as flamegraphs draw
    /// them, with at most about `max_nodes` nodes: beyond that, the nodes
    /// with the smallest totals (far under a pixel at any sensible zoom)
    /// are merged, per caller, into one [`MERGED_NAME`] node that keeps
    /// their counts, so every total stays exact. Returns the tree and the
    /// number of nodes merged.
    pub fn flatten(&self, frames: &mut FrameTable, max_nodes: usize) -> (FlatTree, usize) {
        let n = self.nodes.len();
        let cols = self.columns;
        // Totals per node and column (parents precede children), and per
        // node over all columns.
        let mut column_totals = self.self_counts.clone();
        for i in (1..n).rev() {
            let parent = self.nodes[i].0 as usize;
            for c in 0..cols {
                column_totals[parent * cols + c] += column_totals[i * cols + c];
            }
        }
        let totals: Vec<u64> = column_totals.chunks(cols).map(|c| c.iter().sum()).collect();
        // The `max_nodes` largest totals stay. A node's total is never above
        // its parent's, and parents precede children, so deciding in node
        // order keeps whole paths from the root; among nodes tied at the
        // threshold the first met stay, as long as their caller did.
        let mut keep = vec![true; n];
        if n > max_nodes + 1 {
            let mut sorted: Vec<u64> = totals[1..].to_vec();
            let (_, &mut threshold, _) = sorted.select_nth_unstable_by(max_nodes, |a, b| b.cmp(a));
            let mut ties_left = max_nodes - totals[1..].iter().filter(|&&t| t > threshold).count();
            for i in 1..n {
                let parent = self.nodes[i].0 as usize;
                let tie = totals[i] == threshold && ties_left > 0;
                keep[i] = keep[parent] && (totals[i] > threshold || tie);
                if keep[i] && tie {
                    ties_left -= 1;
                }
            }
        }
        let kept = |i: usize| keep[i];
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); n];
        // Per kept caller, the summed counts of its merged callees' subtrees.
        let mut merged: HashMap<u32, Vec<u64>> = HashMap::new();
        let mut merged_nodes = 0;
        for (node, &(parent, _)) in self.nodes.iter().enumerate().skip(1) {
            match (kept(node), kept(parent as usize)) {
                (true, _) => children[parent as usize].push(node as u32),
                (false, true) => {
                    merged_nodes += 1;
                    let sums = merged.entry(parent).or_insert_with(|| vec![0; cols]);
                    for (c, sum) in sums.iter_mut().enumerate() {
                        *sum += column_totals[node * cols + c];
                    }
                }
                (false, false) => merged_nodes += 1,
            }
        }
        let merged_frame =
            (!merged.is_empty()).then(|| frames.intern(MERGED_NAME, None, Kind::Merged));
        let name_of = |node: &u32| &frames.name[self.nodes[*node as usize].1 as usize];
        for list in &mut children {
            list.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        }
        let mut flat = FlatTree {
            frame: Vec::with_capacity(n.min(max_nodes + 1)),
            depth: Vec::with_capacity(n.min(max_nodes + 1)),
            self_counts: vec![Vec::with_capacity(n.min(max_nodes + 1)); cols],
        };
        // Entries: a node, or (u32::MAX) its caller's merged small paths.
        let mut stack: Vec<(u32, u32, u16)> = Vec::new();
        let push_children = |stack: &mut Vec<(u32, u32, u16)>, node: u32, depth: u16| {
            if merged.contains_key(&node) {
                stack.push((u32::MAX, node, depth));
            }
            stack.extend(children[node as usize].iter().rev().map(|&c| (c, 0, depth)));
        };
        push_children(&mut stack, 0, 0);
        while let Some((node, caller, depth)) = stack.pop() {
            if node == u32::MAX {
                flat.frame
                    .push(merged_frame.expect("merged paths have their frame"));
                flat.depth.push(depth);
                for (column, counts) in flat.self_counts.iter_mut().enumerate() {
                    counts.push(merged[&caller][column]);
                }
                continue;
            }
            flat.frame.push(self.nodes[node as usize].1);
            flat.depth.push(depth);
            for (column, counts) in flat.self_counts.iter_mut().enumerate() {
                counts.push(self.self_counts[node as usize * cols + column]);
            }
            push_children(&mut stack, node, depth + 1);
        }
        (flat, merged_nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_merge_by_path_and_flatten_in_preorder_by_name() {
        let mut frames = FrameTable::new();
        let dd = frames.intern("dd", None, Kind::Comm);
        let read = frames.intern("ksys_read", None, Kind::Kernel);
        let zero = frames.intern_label("read_zero");
        let hsr = frames.intern_label("hsr_forward_skb [hsr]");
        let mut tree = CallTree::new(2);
        tree.add([dd, read, zero], 0, 3);
        tree.add([dd, read, zero], 1, 5);
        tree.add([dd, read], 1, 1);
        tree.add([dd, hsr], 0, 2);
        let (flat, merged) = tree.flatten(&mut frames, 100);
        assert_eq!(merged, 0);
        let names: Vec<&str> = flat
            .frame
            .iter()
            .map(|&f| frames.name[f as usize].as_str())
            .collect();
        // hsr_forward_skb sorts before ksys_read.
        assert_eq!(names, ["dd", "hsr_forward_skb", "ksys_read", "read_zero"]);
        assert_eq!(flat.depth, [0, 1, 1, 2]);
        assert_eq!(flat.self_counts[0], [0, 2, 0, 3]);
        assert_eq!(flat.self_counts[1], [0, 0, 1, 5]);
        assert_eq!(frames.modules[frames.module[hsr as usize] as usize], "hsr");
        assert_eq!(frames.kind[hsr as usize], Kind::Module);
        assert_eq!(frames.intern_label("read_zero"), zero);
    }

    #[test]
    fn beyond_the_node_budget_the_smallest_paths_merge_under_their_caller() {
        let mut frames = FrameTable::new();
        let comm = frames.intern("iperf3", None, Kind::Comm);
        let send = frames.intern("tcp_sendmsg", None, Kind::Kernel);
        let mut tree = CallTree::new(1);
        tree.add([comm, send], 0, 1000);
        // 50 rare leaves under tcp_sendmsg, 1..=50 samples each.
        for i in 1..=50u64 {
            let leaf = frames.intern(&format!("leaf{i}"), None, Kind::Kernel);
            tree.add([comm, send, leaf], 0, i);
        }
        let (flat, merged) = tree.flatten(&mut frames, 12);
        // comm, tcp_sendmsg and the 10 largest leaves stay; 40 merge.
        assert_eq!(merged, 40);
        let merged_node = flat
            .frame
            .iter()
            .position(|&f| frames.name[f as usize] == MERGED_NAME)
            .expect("a merged node");
        assert_eq!(flat.depth[merged_node], 2);
        assert_eq!(flat.self_counts[0][merged_node], (1..=40).sum::<u64>());
        let kept: Vec<&str> = flat
            .frame
            .iter()
            .map(|&f| frames.name[f as usize].as_str())
            .collect();
        assert!(kept.contains(&"leaf41") && kept.contains(&"leaf50") && !kept.contains(&"leaf40"));
        // Every sample is still counted once.
        assert_eq!(
            flat.self_counts[0].iter().sum::<u64>(),
            1000 + (1..=50).sum::<u64>()
        );
    }
}
