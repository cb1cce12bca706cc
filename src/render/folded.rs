//! `--folded`: one line per distinct stack, `comm;root;...;leaf count`, as
//! inferno and flamegraph.pl read them.

use std::io::Write;

use crate::model::view::View;

pub fn write(view: &View, out: &mut impl Write) -> std::io::Result<()> {
    for (stack, count) in view.folded() {
        writeln!(out, "{stack} {count}")?;
    }
    Ok(())
}
