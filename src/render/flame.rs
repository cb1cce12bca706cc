//! Flamegraphs through inferno, with kernel, module, BPF and user frames in
//! colours of their own so a datapath's share stands out at a glance.

use std::io::Write;

use inferno::flamegraph::color::{Color, PaletteMap};
use inferno::flamegraph::{self, Direction, Options};

use crate::error::{Error, IoContext, Result};
use crate::model::symbolize::FrameKind;
use crate::model::view::{sort_and_merge, View};

pub struct FlameOptions {
    pub title: Option<String>,
    pub icicle: bool,
}

const KERNEL: Color = Color {
    r: 235,
    g: 140,
    b: 60,
};
const MODULE: Color = Color {
    r: 170,
    g: 110,
    b: 220,
};
const BPF: Color = Color {
    r: 90,
    g: 190,
    b: 90,
};
const USER: Color = Color {
    r: 90,
    g: 160,
    b: 225,
};
const UNNAMED: Color = Color {
    r: 170,
    g: 170,
    b: 170,
};
const COMMAND: Color = Color {
    r: 200,
    g: 200,
    b: 200,
};

pub fn write_svg(view: &View, opts: &FlameOptions, out: impl Write) -> Result<()> {
    if view.rows.is_empty() || view.total == 0 {
        return Err(Error::not_found(
            "no samples to draw (the filters left none, or the recording is empty)",
        ));
    }
    let (comms, labels) = view.folded_names();
    let mut palette = PaletteMap::default();
    for (frame, label) in view.symbols.frames.iter().zip(&labels) {
        let color = match (frame.kind, frame.resolved) {
            (_, false) => UNNAMED,
            (FrameKind::Kernel, _) => KERNEL,
            (FrameKind::Module, _) => MODULE,
            (FrameKind::Bpf, _) => BPF,
            (FrameKind::User, _) => USER,
        };
        palette.insert(label.clone(), color);
    }
    // inferno's root frame ("all") has an empty name.
    palette.insert("", COMMAND);
    for comm in &comms {
        palette.insert(comm.clone(), COMMAND);
    }
    let mut options = Options::default();
    options.title = opts.title.clone().unwrap_or_else(|| "netprof".to_string());
    // Short enough to fit the default width; the full summary is in the
    // text report.
    options.subtitle = Some(format!(
        "{} samples of {}, {} lost. Kernel orange, module purple, BPF green, user blue, unnamed grey",
        view.total,
        view.event_name(),
        view.profile.lost_samples
    ));
    options.count_name = "samples".to_string();
    options.palette_map = Some(&mut palette);
    // The lines below are sorted already, the way inferno would.
    options.no_sort = true;
    if opts.icicle {
        options.direction = Direction::Inverted;
    }
    // inferno draws no frame narrower than min_width pixels, nor anything
    // above it: such frames fold into their parents before inferno sees
    // them, so that it parses and merges only what it draws, and only
    // those lines are written out. image_width without inferno's side
    // margins makes the threshold a little lower than inferno's: nothing
    // it would draw is left out.
    let image_width = options.image_width.unwrap_or(DEFAULT_IMAGE_WIDTH) as f64;
    let min_count = (options.min_width * view.total as f64 / image_width).floor() as u64;
    let lines = drawable_lines(view, &comms, &labels, min_count);
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
        .io_context(|| "cannot write the flamegraph")
}

/// inferno's default width, in pixels, when its options give none.
const DEFAULT_IMAGE_WIDTH: usize = 1200;

/// The view's stacks as sorted folded lines (`comm;root;...;leaf count`),
/// frames too narrow to draw folded into their parents.
fn drawable_lines(view: &View, comms: &[String], labels: &[String], min_count: u64) -> Vec<String> {
    // A path is its command and frames as ranks of their labels: frames
    // with one label are one frame to inferno, and sorting ranks sorts as
    // the labels would, without comparing text.
    let comm_rank = ranks(comms);
    let frame_rank = ranks(labels);
    let mut paths: Vec<(Vec<u32>, u64)> = view
        .named_paths(true)
        .into_iter()
        .map(|((comm, frames), count)| {
            let mut path = Vec::with_capacity(frames.len() + 1);
            path.push(comm_rank[comm as usize]);
            path.extend(frames.iter().map(|&f| frame_rank[f as usize]));
            (path, count)
        })
        .collect();
    paths.sort_unstable();
    // Back from ranks to text, for the few lines kept.
    let mut comm_of_rank = vec![0; comms.len()];
    for (comm, &rank) in comm_rank.iter().enumerate() {
        comm_of_rank[rank as usize] = comm;
    }
    let mut label_of_rank = vec![0; labels.len()];
    for (frame, &rank) in frame_rank.iter().enumerate() {
        label_of_rank[rank as usize] = frame;
    }
    let mut lines: Vec<String> = cut_narrow(&paths, min_count)
        .into_iter()
        .map(|(path, count)| {
            let mut line = comms[comm_of_rank[path[0] as usize]].clone();
            for &rank in &path[1..] {
                line.push(';');
                line.push_str(&labels[label_of_rank[rank as usize]]);
            }
            line.push(' ');
            line.push_str(&count.to_string());
            line
        })
        .collect();
    // Ranks sort frame by frame; inferno checks the lines' text order,
    // which differs only where a label's characters sort before the
    // separator (`a.b` before `a;c`): most often the lines are in it already.
    if !lines.is_sorted() {
        lines.sort_unstable();
    }
    lines
}

/// Each name's rank among the distinct names, in sorted order (equal names
/// share one).
fn ranks(names: &[String]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..names.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
    let mut rank = vec![0u32; names.len()];
    let mut next = 0;
    for (i, &name) in order.iter().enumerate() {
        if i > 0 && names[name as usize] != names[order[i - 1] as usize] {
            next += 1;
        }
        rank[name as usize] = next;
    }
    rank
}

/// Sorted paths (distinct), each cut above its first element whose total
/// count (its own and that of every path through it) is under `min_count`;
/// the cut part's count goes to what is left, so every element kept keeps
/// its total. A path's first element (the command) is always kept, so the
/// sum stays exact. Paths cut alike merge; the result stays sorted.
fn cut_narrow(paths: &[(Vec<u32>, u64)], min_count: u64) -> Vec<(&[u32], u64)> {
    // Pass 1: every distinct prefix is a node, numbered as the sorted paths
    // open them; each path notes the nodes along it.
    let mut totals: Vec<u64> = Vec::new();
    let mut open: Vec<(u32, u32)> = Vec::new();
    let mut nodes: Vec<u32> = Vec::new();
    for (path, count) in paths {
        for (depth, &element) in path.iter().enumerate() {
            if open.get(depth).is_some_and(|&(e, _)| e == element) {
                totals[open[depth].1 as usize] += count;
            } else {
                open.truncate(depth);
                totals.push(*count);
                open.push((element, (totals.len() - 1) as u32));
            }
            nodes.push(open[depth].1);
        }
        open.truncate(path.len());
    }
    // Pass 2: each path up to its last element wide enough.
    let mut cut: Vec<(&[u32], u64)> = Vec::new();
    let mut start = 0;
    for (path, count) in paths {
        let along = &nodes[start..start + path.len()];
        start += path.len();
        let kept = 1 + along
            .iter()
            .skip(1)
            .take_while(|&&node| totals[node as usize] >= min_count)
            .count();
        let prefix = &path[..kept.min(path.len())];
        match cut.last_mut() {
            Some((last, n)) if *last == prefix => *n += count,
            _ => cut.push((prefix, *count)),
        }
    }
    // A cut path sorts before the paths it was cut from: merge again.
    sort_and_merge(&mut cut);
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_too_narrow_to_draw_fold_into_their_parents() {
        // command 0: a (1) -> b (2) at 50, with b -> 7 (2) and b -> 8 -> 9
        // (3) above it; a -> c (40); z (1); command 5 alone (4).
        let paths: Vec<(Vec<u32>, u64)> = vec![
            (vec![0, 1, 2], 50),
            (vec![0, 1, 2, 7], 2),
            (vec![0, 1, 2, 8, 9], 3),
            (vec![0, 1, 3], 40),
            (vec![0, 4], 1),
            (vec![5], 4),
        ];
        let cut = cut_narrow(&paths, 5);
        let expected: Vec<(&[u32], u64)> =
            vec![(&[0], 1), (&[0, 1, 2], 55), (&[0, 1, 3], 40), (&[5], 4)];
        assert_eq!(cut, expected);
        let total: u64 = paths.iter().map(|p| p.1).sum();
        assert_eq!(cut.iter().map(|c| c.1).sum::<u64>(), total);
        // Nothing under the threshold: every path as it was.
        let all = cut_narrow(&paths, 0);
        assert_eq!(all.len(), paths.len());
        assert_eq!(all[2], (&[0u32, 1, 2, 8, 9][..], 3));
    }

    #[test]
    fn equal_names_share_a_rank_and_ranks_follow_the_names_order() {
        let names: Vec<String> = ["b", "a", "c", "a"].map(String::from).to_vec();
        assert_eq!(ranks(&names), [1, 0, 2, 0]);
    }
}
