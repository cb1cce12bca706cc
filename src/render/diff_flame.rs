//! The differential flamegraph of `netprof diff --flame` (inferno).

use crate::error::{IoContext, Result};

pub fn write_differential_svg(
    lines: &[String],
    title: &str,
    out: impl std::io::Write,
) -> Result<()> {
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.subtitle = Some(
        "Width: after. Red grew, blue shrank (before scaled to after's total samples)".to_string(),
    );
    options.count_name = "samples".to_string();
    inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out)
        .io_context(|| "cannot write the differential flamegraph")
}
