//! The tables of `netprof diff`: recordings (shares before and after, the
//! change with its confidence interval, `*` beyond noise) and latency
//! results (medians, IQRs, p-values) and funcgraph results (per path, self
//! and total time per call).

use std::io::Write;

use super::module_suffix;
use super::units::human_ns;
use crate::analysis::diff::funcgraph::{FuncGraphDiff, TimeChange};
use crate::analysis::diff::latency::LatencyDiff;
use crate::analysis::diff::profiles::{FunctionChange, ProfileDiff, ShareChange};
use crate::model::funcgraph::path_label;

/// Rows a table shows unless asked for all: a screenful.
pub const SCREENFUL: usize = 40;

/// How much of a comparison's table to show.
#[derive(Clone, Copy, Debug)]
pub struct TableOptions {
    /// Leave out functions whose shares changed by less, in points.
    pub percent_limit: f64,
    /// Every row, not a screenful.
    pub all: bool,
}

/// The table of a comparison of recordings: the changes beyond noise
/// first, then the largest of the others, a screenful unless `all`.
pub fn render_profile_table(
    diff: &ProfileDiff,
    options: TableOptions,
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "# netprof diff: before {} run(s), {} samples; after {} run(s), {} samples",
        diff.before_runs, diff.before_samples, diff.after_runs, diff.after_samples
    )?;
    writeln!(
        out,
        "# shares of all samples of each side; change in percentage points ± 95% CI; \
         * = more than noise ({})",
        diff.method
    )?;
    writeln!(
        out,
        "# {:>16} {:>19}  {:>16} {:>19}  function",
        "self change", "self before→after", "total change", "total before→after"
    )?;
    let pct = |v: f64| 100.0 * v;
    let percent_limit = options.percent_limit;
    let large = |f: &&FunctionChange| {
        pct(f.self_share.delta.abs()) >= percent_limit || pct(f.total.delta.abs()) >= percent_limit
    };
    let marked = |f: &&FunctionChange| f.self_share.significant || f.total.significant;
    // The functions come sorted by the size of their change.
    let rows: Vec<&FunctionChange> = diff
        .functions
        .iter()
        .filter(large)
        .filter(marked)
        .chain(diff.functions.iter().filter(large).filter(|f| !marked(f)))
        .collect();
    let shown = if options.all {
        rows.len()
    } else {
        rows.len().min(SCREENFUL)
    };
    for f in &rows[..shown] {
        let change = |c: &ShareChange| {
            format!(
                "{:+.2}±{:.2}{}",
                pct(c.delta),
                pct(c.ci95),
                if c.significant { "*" } else { " " }
            )
        };
        let shares = |c: &ShareChange| format!("{:.2}% → {:.2}%", pct(c.before), pct(c.after));
        let module = module_suffix(f.module.as_deref());
        let only = match f.only_in {
            Some("before") => "  (only in BEFORE's kernel)",
            Some(_) => "  (only in AFTER's kernel)",
            None => "",
        };
        writeln!(
            out,
            "  {:>16} {:>19}  {:>16} {:>19}  {}{module}{only}",
            change(&f.self_share),
            shares(&f.self_share),
            change(&f.total),
            shares(&f.total),
            f.function
        )?;
    }
    if rows.is_empty() {
        writeln!(
            out,
            "  (no function changed by {percent_limit} percentage points or more)"
        )?;
    } else if shown < rows.len() {
        let hidden = &rows[shown..];
        let beyond_noise = match hidden.iter().filter(|f| marked(f)).count() {
            0 => "none".to_string(),
            n if n == hidden.len() => "all".to_string(),
            n => n.to_string(),
        };
        writeln!(
            out,
            "# {} more rows changed by {percent_limit} points or more, {beyond_noise} beyond noise; \
             --all shows every row",
            hidden.len()
        )?;
    }
    Ok(())
}

/// A p-value for people: `< 1e-6`, `2.1e-4`, `0.19`.
pub fn p_value(p: f64) -> String {
    match p {
        p if p < 1e-6 => "< 1e-6".to_string(),
        p if p < 1e-3 => format!("{p:.1e}"),
        p => format!("{p:.2}"),
    }
}

pub fn render_latency_table(diff: &LatencyDiff, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "# netprof diff (latency): before {} run(s), after {} run(s); * = more than noise ({})",
        diff.before_runs, diff.after_runs, diff.method
    )?;
    writeln!(
        out,
        "# {:>9} {:>25} {:>25} {:>15} {:>9}  function",
        "median", "median before→after", "IQR before→after", "calls", "p"
    )?;
    for f in &diff.functions {
        let module = module_suffix(f.module.as_deref());
        writeln!(
            out,
            "  {:>+8.1}%{} {:>25} {:>25} {:>15} {:>9}  {}{module}",
            100.0 * f.median_change,
            if f.significant { "*" } else { " " },
            format!(
                "{} → {}",
                human_ns(f.before_median_ns),
                human_ns(f.after_median_ns)
            ),
            format!(
                "{} → {}",
                human_ns(f.before_iqr_ns),
                human_ns(f.after_iqr_ns)
            ),
            format!("{} → {}", f.before_calls, f.after_calls),
            p_value(f.p_value),
            f.function
        )?;
    }
    if diff.functions.is_empty() {
        writeln!(out, "  (no function timed on both sides)")?;
    }
    Ok(())
}

/// The table of a comparison of funcgraph results: per path, the median
/// self and total time per call before and after, the change, `*` beyond
/// noise; beyond noise first, a screenful unless `all`.
pub fn render_funcgraph_table(
    diff: &FuncGraphDiff,
    options: TableOptions,
    out: &mut impl Write,
) -> std::io::Result<()> {
    writeln!(
        out,
        "# netprof diff (funcgraph): before {} run(s), after {} run(s); per call, median \
         before→after; * = more than noise ({})",
        diff.before_runs, diff.after_runs, diff.method
    )?;
    writeln!(
        out,
        "# {:>12} {:>23} {:>12} {:>23} {:>15}  path",
        "self change", "self before→after", "total change", "total before→after", "calls"
    )?;
    let shown = match options.all {
        true => diff.paths.len(),
        false => diff.paths.len().min(SCREENFUL),
    };
    let change = |c: &TimeChange| {
        let sign = if c.change_ns < 0.0 { "-" } else { "+" };
        format!(
            "{sign}{}{}",
            human_ns(c.change_ns.abs()),
            if c.significant { "*" } else { " " }
        )
    };
    let medians = |c: &TimeChange| {
        format!(
            "{} → {}",
            human_ns(c.before_median_ns),
            human_ns(c.after_median_ns)
        )
    };
    for p in &diff.paths[..shown] {
        writeln!(
            out,
            "  {:>12} {:>23} {:>12} {:>23} {:>15}  {}",
            change(&p.self_time),
            medians(&p.self_time),
            change(&p.total),
            medians(&p.total),
            format!("{} → {}", p.before_calls, p.after_calls),
            path_label(&p.path)
        )?;
    }
    if diff.paths.is_empty() {
        writeln!(out, "  (no path timed on both sides)")?;
    } else if shown < diff.paths.len() {
        let hidden = &diff.paths[shown..];
        writeln!(
            out,
            "# {} more paths, {} beyond noise; --all shows every row",
            hidden.len(),
            hidden.iter().filter(|p| p.significant()).count()
        )?;
    }
    for (side, paths) in [("BEFORE", &diff.only_before), ("AFTER", &diff.only_after)] {
        for path in paths {
            writeln!(out, "# only in {side}: {}", path_label(path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_values_read_as_people_write_them() {
        assert_eq!(p_value(3.5e-16), "< 1e-6");
        assert_eq!(p_value(2.14e-4), "2.1e-4");
        assert_eq!(p_value(0.19), "0.19");
        assert_eq!(p_value(1.0), "1.00");
    }
}
