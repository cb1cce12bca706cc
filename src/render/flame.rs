//! Flamegraphs through inferno, with kernel, module, BPF and user frames in
//! colours of their own so a datapath's share stands out at a glance.

use std::io::Write;

use inferno::flamegraph::color::{Color, PaletteMap};
use inferno::flamegraph::{self, Direction, Options};

use crate::error::{Error, IoContext, Result};
use crate::model::symbolize::FrameKind;
use crate::model::view::View;

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
    let folded = view.folded();
    if folded.is_empty() {
        return Err(Error::not_found(
            "no samples to draw (the filters left none, or the recording is empty)",
        ));
    }
    let mut palette = PaletteMap::default();
    for frame in &view.symbols.frames {
        let color = match (frame.kind, frame.resolved) {
            (_, false) => UNNAMED,
            (FrameKind::Kernel, _) => KERNEL,
            (FrameKind::Module, _) => MODULE,
            (FrameKind::Bpf, _) => BPF,
            (FrameKind::User, _) => USER,
        };
        palette.insert(frame.label().replace(';', ":"), color);
    }
    // inferno's root frame ("all") has an empty name.
    palette.insert("", COMMAND);
    for comm in &view.profile.comms {
        palette.insert(comm.replace(';', ":"), COMMAND);
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
    // View::folded sorts its lines already, the way inferno would.
    options.no_sort = true;
    if opts.icicle {
        options.direction = Direction::Inverted;
    }
    let lines: Vec<String> = folded
        .iter()
        .map(|(stack, n)| format!("{stack} {n}"))
        .collect();
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
        .io_context(|| "cannot write the flamegraph")
}
