//! The tables of `netprof diff`: recordings (shares before and after, the
//! change with its confidence interval, `*` beyond noise) and latency
//! results (medians, IQRs, p-values).

use std::io::Write;

use super::module_suffix;
use super::units::human_ns;
use crate::analysis::diff::latency::LatencyDiff;
use crate::analysis::diff::profiles::{ProfileDiff, ShareChange};

pub fn render_profile_table(
    diff: &ProfileDiff,
    percent_limit: f64,
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
    let mut shown = 0;
    for f in &diff.functions {
        if pct(f.self_share.delta.abs()) < percent_limit && pct(f.total.delta.abs()) < percent_limit
        {
            continue;
        }
        shown += 1;
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
        writeln!(
            out,
            "  {:>16} {:>19}  {:>16} {:>19}  {}{module}",
            change(&f.self_share),
            shares(&f.self_share),
            change(&f.total),
            shares(&f.total),
            f.function
        )?;
    }
    if shown == 0 {
        writeln!(
            out,
            "  (no function changed by {percent_limit} percentage points or more)"
        )?;
    }
    Ok(())
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
            "  {:>+8.1}%{} {:>25} {:>25} {:>15} {:>9.2e}  {}{module}",
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
            f.p_value,
            f.function
        )?;
    }
    if diff.functions.is_empty() {
        writeln!(out, "  (no function timed on both sides)")?;
    }
    Ok(())
}
