//! The differential flamegraphs of `netprof diff --flame` (inferno), in two
//! views: frames as wide as AFTER, so what grew stands out in red, and as
//! wide as BEFORE, so what shrank is wide (and blue) instead of a sliver.
//! Every frame's tooltip gives before, after and the change, in samples and
//! in points.

use std::io::Write;

use crate::error::{IoContext, Result};

/// Which side gives the frames their widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Widths {
    After,
    Before,
}

/// Draws `lines` (folded stacks with before and after counts, before scaled
/// to after's total, as [`crate::analysis::diff::profiles::differential_folded`]
/// makes them). `before_scale` turns a scaled before count back into
/// samples (before's total over after's).
pub fn write_differential_svg(
    lines: &[String],
    widths: Widths,
    before_scale: f64,
    out: &mut impl Write,
) -> Result<()> {
    let mut options = inferno::flamegraph::Options::default();
    options.count_name = "samples".to_string();
    let swapped: Vec<String>;
    let lines: Vec<&str> = match widths {
        Widths::After => {
            options.title = "netprof diff: widths from AFTER".to_string();
            options.subtitle =
                Some("Red grew, blue shrank; hover for before, after and the change".into());
            lines.iter().map(String::as_str).collect()
        }
        Widths::Before => {
            options.title = "netprof diff: widths from BEFORE".to_string();
            options.subtitle = Some(
                "What shrank is wide and blue, red grew; hover for before, after and the change"
                    .into(),
            );
            // inferno takes widths from the second count: swap them, and
            // negate the colours so that red still means grew.
            options.negate_differentials = true;
            swapped = lines.iter().filter_map(|l| swap_counts(l)).collect();
            swapped.iter().map(String::as_str).collect()
        }
    };
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, lines, &mut svg)
        .io_context(|| "cannot draw the differential flamegraph")?;
    let svg = String::from_utf8_lossy(&svg);
    out.write_all(retitle(&svg, widths, before_scale).as_bytes())
        .io_context(|| "cannot write the differential flamegraph")
}

/// `stack before after` -> `stack after before`.
fn swap_counts(line: &str) -> Option<String> {
    let (rest, after) = line.rsplit_once(' ')?;
    let (stack, before) = rest.rsplit_once(' ')?;
    Some(format!("{stack} {after} {before}"))
}

/// One frame's figures, from inferno's tooltip `NAME (N samples, P%; D%)`.
struct Tooltip<'a> {
    name: &'a str,
    samples: f64,
    pct: f64,
    delta_pct: Option<f64>,
}

fn parse_tooltip(title: &str) -> Option<Tooltip<'_>> {
    let (name, figures) = title.rsplit_once(" (")?;
    let figures = figures.strip_suffix(')')?;
    let (counts, delta) = match figures.split_once("; ") {
        Some((c, d)) => (c, Some(d.trim_end_matches('%').parse().ok()?)),
        None => (figures, None),
    };
    let (samples, pct) = counts.split_once(", ")?;
    let samples = samples.split(' ').next()?.replace(',', "").parse().ok()?;
    let pct = pct.trim_end_matches('%').parse().ok()?;
    Some(Tooltip {
        name,
        samples,
        pct,
        delta_pct: delta,
    })
}

/// Rewrites every frame's `<title>` with before, after and the change.
fn retitle(svg: &str, widths: Widths, before_scale: f64) -> String {
    // The whole graph's frame (`all`) holds the total.
    let total = svg.split("<title>all (").nth(1).and_then(|t| {
        parse_tooltip(&format!("all ({}", t.split("</title>").next()?)).map(|t| t.samples)
    });
    let mut out = String::with_capacity(svg.len() + svg.len() / 4);
    let mut rest = svg;
    while let Some(start) = rest.find("<title>") {
        let body = start + "<title>".len();
        let Some(len) = rest[body..].find("</title>") else {
            break;
        };
        out.push_str(&rest[..body]);
        let title = &rest[body..body + len];
        match parse_tooltip(title) {
            Some(t) => match (t.delta_pct, total) {
                (Some(delta_pct), Some(total)) => {
                    out.push_str(&describe(&t, delta_pct, total, widths, before_scale))
                }
                _ => out.push_str(title),
            },
            None => out.push_str(title),
        }
        rest = &rest[body + len..];
    }
    out.push_str(rest);
    out
}

fn describe(t: &Tooltip, delta_pct: f64, total: f64, widths: Widths, before_scale: f64) -> String {
    let delta_samples = delta_pct / 100.0 * total;
    // The shown side is the width's; the other follows from the change
    // (after minus before, in points of the total).
    let (before_pct, after_pct, before_scaled, after) = match widths {
        Widths::After => (
            t.pct - delta_pct,
            t.pct,
            t.samples - delta_samples,
            t.samples,
        ),
        Widths::Before => (
            t.pct,
            t.pct + delta_pct,
            t.samples,
            t.samples + delta_samples,
        ),
    };
    let before = before_scaled * before_scale;
    format!(
        "{}: before {:.0} samples ({before_pct:.2}%), after {:.0} samples ({after_pct:.2}%), change {:+.2} points",
        t.name,
        before.max(0.0),
        after.max(0.0),
        delta_pct
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tooltips_give_both_sides_in_either_view() {
        let svg = "<title>f(int) (300 samples, 30.00%; +20.00%)</title>x<title>all (1,000 samples, 100%)</title>";
        let after = retitle(svg, Widths::After, 2.0);
        assert!(after.contains("<title>f(int): before 200 samples (10.00%), after 300 samples (30.00%), change +20.00 points</title>"), "{after}");
        // In the before view inferno shows before's width and, negated, the same change.
        let svg = "<title>all (1,000 samples, 100%)</title><title>g (300 samples, 30.00%; -25.00%)</title>";
        let before = retitle(svg, Widths::Before, 1.0);
        assert!(
            before.contains(
                "g: before 300 samples (30.00%), after 50 samples (5.00%), change -25.00 points"
            ),
            "{before}"
        );
        assert_eq!(swap_counts("a;b 10 20").unwrap(), "a;b 20 10");
    }
}
