//! `netprof bpf`'s table and JSON: the loaded programs, where each is
//! attached, and with `--duration` what each run costs.

use std::io::Write;

use serde::Serialize;

use crate::analysis::bpf_cost::Cost;
use crate::bpf::programs::Program;

/// A program with its measured cost, as the JSON lists it.
#[derive(Serialize)]
pub struct Row<'a> {
    #[serde(flatten)]
    pub program: &'a Program,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<&'a Cost>,
}

/// The table `netprof bpf` prints; `interval` is how often the cost was
/// sampled, which the cost column's header names.
pub fn render_table(
    rows: &[Row],
    interval: std::time::Duration,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let measured = rows.iter().any(|r| r.cost.is_some());
    write!(
        out,
        "{:>6}  {:<16} {:<16} {:<16}",
        "ID", "TYPE", "NAME", "TAG"
    )?;
    if measured {
        let cost = format!("NS/RUN (median of {} ms means ± IQR)", interval.as_millis());
        write!(out, " {:>12} {cost:>36}", "RUNS/S")?;
    }
    writeln!(out, "  ATTACHED TO")?;
    for Row { program: p, cost } in rows {
        write!(
            out,
            "{:>6}  {:<16} {:<16} {:<16}",
            p.id, p.kind, p.name, p.tag
        )?;
        if let Some(c) = cost {
            let per_run = if c.intervals > 0 {
                format!("{:.0} ± {:.0}", c.median_ns, c.p75_ns - c.p25_ns)
            } else {
                "-".into()
            };
            write!(out, " {:>12.1} {:>36}", c.runs_per_second, per_run)?;
        }
        let attached = if p.attached.is_empty() {
            "-".to_string()
        } else {
            p.attached.join(", ")
        };
        writeln!(out, "  {attached}")?;
    }
    Ok(())
}
