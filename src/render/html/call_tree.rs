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
}

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

    /// The tree in pre-order, siblings sorted by name as flamegraphs draw them.
    pub fn flatten(&self, frames: &FrameTable) -> FlatTree {
        let mut children: Vec<Vec<u32>> = vec![Vec::new(); self.nodes.len()];
        for (node, &(parent, _)) in self.nodes.iter().enumerate().skip(1) {
            children[parent as usize].push(node as u32);
        }
        let name_of = |node: &u32| &frames.name[self.nodes[*node as usize].1 as usize];
        for list in &mut children {
            list.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        }
        let mut flat = FlatTree {
            frame: Vec::with_capacity(self.nodes.len()),
            depth: Vec::with_capacity(self.nodes.len()),
            self_counts: vec![Vec::with_capacity(self.nodes.len()); self.columns],
        };
        let mut stack: Vec<(u32, u16)> = children[0].iter().rev().map(|&n| (n, 0)).collect();
        while let Some((node, depth)) = stack.pop() {
            flat.frame.push(self.nodes[node as usize].1);
            flat.depth.push(depth);
            for (column, counts) in flat.self_counts.iter_mut().enumerate() {
                counts.push(self.self_counts[node as usize * self.columns + column]);
            }
            stack.extend(
                children[node as usize]
                    .iter()
                    .rev()
                    .map(|&n| (n, depth + 1)),
            );
        }
        flat
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
        let flat = tree.flatten(&frames);
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
}
