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

/// Each side's number of samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Totals {
    pub before: u64,
    pub after: u64,
}

impl Totals {
    /// What one sample of each side (before, after) weighs so that both
    /// sides add up to the same whole number (the totals' least common
    /// multiple): inferno then compares shares, and no count is rounded.
    fn weights(self) -> (u64, u64) {
        let (before, after) = (self.before.max(1), self.after.max(1));
        let common = gcd(before, after);
        (after / common, before / common)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Draws `lines` (folded stacks with each side's own sample counts, `stack
/// before after`) with the frames as wide as `widths` says.
pub fn write_differential_svg(
    lines: &[String],
    widths: Widths,
    totals: Totals,
    out: &mut impl Write,
) -> Result<()> {
    let mut options = inferno::flamegraph::Options::default();
    options.count_name = "samples".to_string();
    match widths {
        Widths::After => {
            options.title = "netprof diff: widths from AFTER".to_string();
            options.subtitle =
                Some("Red grew, blue shrank; hover for before, after and the change".into());
        }
        Widths::Before => {
            options.title = "netprof diff: widths from BEFORE".to_string();
            options.subtitle = Some(
                "What shrank is wide and blue, red grew; hover for before, after and the change"
                    .into(),
            );
            // inferno takes widths from the second count, which is before's
            // here: negated, the colours still mean after minus before.
            options.negate_differentials = true;
        }
    }
    let weighted: Vec<String> = lines
        .iter()
        .filter_map(|l| weigh(l, widths, totals))
        .collect();
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, weighted.iter().map(String::as_str), &mut svg)
        .io_context(|| "cannot draw the differential flamegraph")?;
    let svg = String::from_utf8_lossy(&svg);
    out.write_all(retitle(&svg, widths, totals).as_bytes())
        .io_context(|| "cannot write the differential flamegraph")
}

/// `stack before after` weighed for inferno, the side giving the widths
/// second.
fn weigh(line: &str, widths: Widths, totals: Totals) -> Option<String> {
    let (rest, after) = line.rsplit_once(' ')?;
    let (stack, before) = rest.rsplit_once(' ')?;
    let (before, after): (u64, u64) = (before.parse().ok()?, after.parse().ok()?);
    let (before_weight, after_weight) = totals.weights();
    let (before, after) = (before * before_weight, after * after_weight);
    Some(match widths {
        Widths::After => format!("{stack} {before} {after}"),
        Widths::Before => format!("{stack} {after} {before}"),
    })
}

/// One frame's figures, from inferno's tooltip `NAME (N samples, P%; D%)`:
/// its weighed count and the change in points of the total.
struct Tooltip<'a> {
    name: &'a str,
    weighed: f64,
    delta_pct: f64,
}

fn parse_tooltip(title: &str) -> Option<Tooltip<'_>> {
    let (name, figures) = title.rsplit_once(" (")?;
    let (counts, delta) = figures.strip_suffix(')')?.split_once("; ")?;
    let weighed = counts.split(' ').next()?.replace(',', "").parse().ok()?;
    Some(Tooltip {
        name,
        weighed,
        delta_pct: delta.trim_end_matches('%').parse().ok()?,
    })
}

/// Rewrites every frame's `<title>` with before, after and the change.
fn retitle(svg: &str, widths: Widths, totals: Totals) -> String {
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
            Some(t) => out.push_str(&describe(&t, widths, totals)),
            None => out.push_str(title),
        }
        rest = &rest[body + len..];
    }
    out.push_str(rest);
    out
}

/// The drawn side's count is exact (its weighed count over its weight); the
/// other side's follows from the change inferno prints to 0.01 point.
fn describe(t: &Tooltip, widths: Widths, totals: Totals) -> String {
    let (before_weight, after_weight) = totals.weights();
    let (before_total, after_total) = (totals.before.max(1) as f64, totals.after.max(1) as f64);
    let (before, after) = match widths {
        Widths::After => {
            let after = t.weighed / after_weight as f64;
            let before_pct = after / after_total * 100.0 - t.delta_pct;
            (before_pct / 100.0 * before_total, after)
        }
        Widths::Before => {
            let before = t.weighed / before_weight as f64;
            let after_pct = before / before_total * 100.0 + t.delta_pct;
            (before, after_pct / 100.0 * after_total)
        }
    };
    let (before, after) = (before.max(0.0).round(), after.max(0.0).round());
    let (before_pct, after_pct) = (before / before_total * 100.0, after / after_total * 100.0);
    format!(
        "{}: before {} samples ({before_pct:.2}%), after {} samples ({after_pct:.2}%), change {:+.2} points",
        t.name,
        thousands(before as u64),
        thousands(after as u64),
        after_pct - before_pct
    )
}

/// `1100` -> `1,100`, as inferno writes counts.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sides_weigh_the_same_in_whole_numbers() {
        let totals = Totals {
            before: 3100,
            after: 2040,
        };
        // lcm(3100, 2040) = 316200: 102 per sample before, 155 after.
        assert_eq!(totals.weights(), (102, 155));
        assert_eq!(
            weigh("a;b 1100 40", Widths::After, totals).unwrap(),
            "a;b 112200 6200"
        );
        assert_eq!(
            weigh("a;b 1100 40", Widths::Before, totals).unwrap(),
            "a;b 6200 112200"
        );
    }

    #[test]
    fn tooltips_give_both_sides_in_either_view() {
        let totals = Totals {
            before: 3100,
            after: 2040,
        };
        // hsr_get_node: 1100 of 3100 before (35.48%), 40 of 2040 after (1.96%).
        let after_view = "<title>hsr_get_node (6,200 samples, 1.96%; -33.52%)</title>";
        let expected = "hsr_get_node: before 1,100 samples (35.48%), after 40 samples (1.96%), change -33.52 points";
        assert!(
            retitle(after_view, Widths::After, totals).contains(expected),
            "{}",
            retitle(after_view, Widths::After, totals)
        );
        let before_view = "<title>hsr_get_node (112,200 samples, 35.48%; -33.52%)</title>";
        assert!(retitle(before_view, Widths::Before, totals).contains(expected));
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
