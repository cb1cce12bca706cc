//! `--samples`: every sample in time order, like `perf script`, with the
//! decoded fields of tracepoint and probe hits (probe arguments) and the
//! named stack, leaf first.

use std::fmt::Write;

use crate::model::view::View;

pub fn render(view: &View) -> String {
    let p = view.profile;
    let mut out = String::new();
    for s in p
        .samples
        .iter()
        .filter(|s| view.event.is_none_or(|e| s.event == e))
    {
        let event = p
            .events
            .get(s.event as usize)
            .map(String::as_str)
            .unwrap_or("?");
        let _ = write!(
            out,
            "{:>16} {:>7}/{:<7} [{:03}] {}.{:06}: {event}:",
            p.comms[s.comm as usize],
            s.pid,
            s.tid,
            s.cpu,
            s.time / 1_000_000_000,
            s.time % 1_000_000_000 / 1000
        );
        if let Some(Some(format)) = p.formats.get(s.event as usize) {
            for (name, value) in format.decode(&s.raw) {
                let _ = write!(out, " {name}={value}");
            }
        }
        out.push('\n');
        for &frame in view.symbols.stacks[s.stack as usize].iter().rev() {
            let _ = writeln!(out, "\t{}", view.symbols.frames[frame as usize].label());
        }
        out.push('\n');
    }
    out
}
