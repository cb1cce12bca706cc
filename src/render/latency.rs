//! `netprof latency`'s text: per function, count, min, median, IQR, p90,
//! p99, max and mean, then the histogram by powers of two.

use std::io::Write;

use super::module_suffix;
use super::units::human_ns;
use crate::model::latency::LatencyReport;

/// The text report: per function called, the figures, then the histogram
/// by powers of two (the quantiles use the finer buckets); the functions
/// matched but never called are counted in one line.
pub fn render_text(report: &LatencyReport, out: &mut impl Write) -> std::io::Result<()> {
    for f in report.functions.iter().filter(|f| f.count > 0) {
        let module = module_suffix(f.module.as_deref());
        let group = match (f.cpu, f.pid) {
            (Some(cpu), _) => format!("  on CPU {cpu}"),
            (_, Some(pid)) => format!("  in process {pid}"),
            _ => String::new(),
        };
        writeln!(out, "{}{module}{group}", f.function)?;
        let h = |v: f64| human_ns(v);
        writeln!(
            out,
            "  calls {}  min {}  median {}  IQR {} ({} - {})  p90 {}  p99 {}  max {}  mean {}",
            f.count,
            h(f.min_ns as f64),
            h(f.median_ns),
            h(f.iqr_ns),
            h(f.p25_ns),
            h(f.p75_ns),
            h(f.p90_ns),
            h(f.p99_ns),
            h(f.max_ns as f64),
            h(f.mean_ns)
        )?;
        let mut rows: Vec<(u64, u64, u64)> = Vec::new();
        for b in &f.histogram {
            let low = if b.low_ns == 0 {
                0
            } else {
                1u64 << b.low_ns.ilog2()
            };
            match rows.last_mut() {
                Some(row) if row.0 == low => row.2 += b.count,
                _ => rows.push((low, (low * 2).max(1), b.count)),
            }
        }
        let peak = rows.iter().map(|r| r.2).max().unwrap_or(1);
        for (low, high, count) in rows {
            let bar = "#".repeat(((count * 40).div_ceil(peak)) as usize);
            writeln!(
                out,
                "  {:>9} - {:<9} {:>10} |{bar:<40}|",
                h(low as f64),
                h(high as f64),
                count
            )?;
        }
        writeln!(out)?;
    }
    let not_called = report.functions.iter().filter(|f| f.count == 0).count();
    match (not_called, report.functions.len()) {
        (0, _) => {}
        (n, all) if n == all => writeln!(out, "# none of the {n} matched functions was called")?,
        (1, _) => writeln!(out, "# 1 matched function was not called")?,
        (n, _) => writeln!(out, "# {n} matched functions were not called")?,
    }
    if report.dropped > 0 || report.missed_returns > 0 {
        writeln!(
            out,
            "# {} calls not measured (kernel maps full), {} returns missed by the kernel",
            report.dropped, report.missed_returns
        )?;
    }
    Ok(())
}
