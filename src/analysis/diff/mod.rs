//! `netprof diff`: where a change made the kernel faster or slower, and
//! whether the change is more than noise.
//!
//! Recordings are compared function by function, matched by name and module
//! (not address), so recordings from two kernel builds or module versions
//! compare ([`profiles`]). Latency results (`netprof latency --json`) are
//! compared function by function on their histograms ([`latency`]), and
//! call-path results (`netprof funcgraph --json`) path by path
//! ([`funcgraph`]). This module tells the inputs apart.

pub mod funcgraph;
pub mod latency;
pub mod profiles;

use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// A result netprof writes with --json and diff reads back.
pub(super) trait JsonResult: serde::de::DeserializeOwned {
    /// The schema this netprof reads.
    const SCHEMA: &'static str;
    /// The command that writes it: `netprof latency --json`.
    const WRITER: &'static str;
    fn schema(&self) -> &str;
    /// Whether it holds any timed call.
    fn has_calls(&self) -> bool;
}

/// Reads a result, refusing another schema or one without a timed call.
pub(super) fn read_result<T: JsonResult>(path: &Path) -> Result<T> {
    use std::io::Read;
    let mut text = String::new();
    crate::infile::open_regular(path)?
        .read_to_string(&mut text)
        .io_context(|| format!("cannot read {}", path.display()))?;
    let result: T = serde_json::from_str(&text).map_err(|e| {
        Error::corrupt_input(format!(
            "{} is not a `{}` result ({e})",
            path.display(),
            T::WRITER
        ))
    })?;
    if result.schema() != T::SCHEMA {
        return Err(Error::corrupt_input(format!(
            "{} has schema '{}'; this netprof reads {}",
            path.display(),
            result.schema(),
            T::SCHEMA
        )));
    }
    if !result.has_calls() {
        return Err(Error::corrupt_input(format!(
            "{} holds no timed calls; run the workload while `{}` runs",
            path.display(),
            T::WRITER
        )));
    }
    Ok(result)
}

/// False discovery rate of the significance marks.
pub const FDR: f64 = 0.05;

/// What an input file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    Recording,
    Latency,
    FuncGraph,
}

/// The files of one side: given one by one, or every file of a directory.
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .io_context(|| format!("cannot read directory {}", path.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            inside.sort();
            if inside.is_empty() {
                return Err(Error::not_found(format!(
                    "directory {} holds no recordings",
                    path.display()
                )));
            }
            files.extend(inside);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// Recording (perf.data), latency result (netprof-latency JSON) or
/// call-path result (netprof-funcgraph JSON, told by its schema).
pub fn input_kind(path: &Path) -> Result<InputKind> {
    use std::io::Read;
    let mut head = [0u8; 8];
    let mut file = crate::infile::open_regular(path)?;
    let n = file
        .read(&mut head)
        .io_context(|| format!("cannot read {}", path.display()))?;
    if &head[..n] == b"PERFILE2" {
        return Ok(InputKind::Recording);
    }
    if head[..n].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        let mut text = head[..n].to_vec();
        file.read_to_end(&mut text)
            .io_context(|| format!("cannot read {}", path.display()))?;
        return Ok(json_kind(&text));
    }
    Err(Error::corrupt_input(format!(
        "{} is neither a recording (perf.data) nor a `netprof latency --json` or `netprof \
         funcgraph --json` result",
        path.display()
    )))
}

/// A JSON result's kind by its schema; latency unless it says funcgraph
/// (reading it as a latency result then names what is wrong with it).
fn json_kind(text: &[u8]) -> InputKind {
    #[derive(serde::Deserialize)]
    struct Schema {
        schema: String,
    }
    let schema = serde_json::from_slice::<Schema>(text).ok();
    match schema {
        Some(s) if s.schema.starts_with("netprof-funcgraph/") => InputKind::FuncGraph,
        _ => InputKind::Latency,
    }
}

/// One side's kind; all its files must agree.
pub fn side_kind(files: &[PathBuf]) -> Result<InputKind> {
    let first = input_kind(&files[0])?;
    for f in &files[1..] {
        if input_kind(f)? != first {
            return Err(Error::bad_argument(format!(
                "{} and {} are of different kinds (recording, latency or funcgraph result); compare like with like",
                files[0].display(),
                f.display()
            )));
        }
    }
    Ok(first)
}
