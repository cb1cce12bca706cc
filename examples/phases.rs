//! Where `netprof report` spends its time, phase by phase, on a given file:
//!   cargo run --release --example phases -- FILE
use std::time::Instant;

use netprof::model::profile::{Filter, Profile};
use netprof::model::symbolize::symbolize;
use netprof::model::view::View;
use netprof::render::flame;

fn main() -> netprof::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "netprof.data".into());
    let t = Instant::now();
    let profile = Profile::read(path.as_ref(), &Filter::default())?;
    let read = t.elapsed();
    let symbols = symbolize(&profile);
    let view = View::build(&profile, &symbols, Default::default())?;
    let named = t.elapsed();
    let folded = view.folded();
    let fold = t.elapsed();
    flame::write_svg(
        &view,
        &flame::FlameOptions {
            title: None,
            icicle: false,
        },
        std::io::sink(),
    )?;
    let svg = t.elapsed();
    println!(
        "{} samples, {} distinct stacks, {} frames: read {:?}, symbolize {:?}, fold {:?} ({} lines), svg {:?}",
        profile.total_samples,
        profile.stacks.len(),
        view.symbols.frames.len(),
        read,
        named - read,
        fold - named,
        folded.len(),
        svg - fold
    );
    Ok(())
}
