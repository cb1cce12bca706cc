//! Probes on functions of programs and libraries (`-e uprobe:BINARY:FUNC`)
//! through the kernel's uprobe PMU, so that user-space probe hits sit in the
//! same recording as kernel events. Like kprobe-PMU probes, they belong to
//! the recording's file descriptors and go with them.
//!
//! The kernel reads the binary's path through a pointer at open time, and
//! again in every child a followed task forks, where the pointer means
//! nothing: uprobes are recorded system-wide only.

use std::ffi::CStr;
use std::ops::ControlFlow;
use std::path::PathBuf;

use blazesym::inspect::source::{Elf, Source};
use blazesym::inspect::Inspector;
use blazesym::SymType;
use perf_event_open::event::dp::{DynamicPmu, Uprobe, Uretprobe};

use crate::error::{Error, ErrorKind, Result};
use crate::suggest::{close_names, did_you_mean};

/// A probe at a function's entry (or return) in one binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UprobeEvent {
    /// The binary, as the kernel reads it when the probe is opened (kept
    /// for the rest of the process: events are opened again when a CPU
    /// comes back online).
    pub path: &'static CStr,
    /// The function's offset in the file.
    pub offset: u64,
    pub is_return: bool,
}

impl UprobeEvent {
    /// Finds `function` in `binary` (a path, or a program found in PATH).
    pub fn resolve(binary: &str, function: &str, is_return: bool) -> Result<UprobeEvent> {
        let path = find_binary(binary)?;
        let inspector = Inspector::new();
        // The ELF symbol tables: uprobes go on functions a binary exports
        // or keeps in .symtab; DWARF adds nothing to find them.
        let mut elf = Elf::new(&path);
        elf.debug_syms = false;
        let source = Source::Elf(elf);
        let found = inspector.lookup(&source, &[function]).map_err(|e| {
            Error::corrupt_input(format!(
                "cannot read the symbols of {} ({e})",
                path.display()
            ))
        })?;
        let offset = found
            .first()
            .into_iter()
            .flatten()
            .find(|s| s.sym_type == SymType::Function)
            .and_then(|s| s.file_offset);
        let Some(offset) = offset else {
            let mut names = Vec::new();
            let _ = inspector.for_each(&source, |s| {
                if s.sym_type == SymType::Function {
                    names.push(s.name.to_string());
                }
                ControlFlow::Continue(())
            });
            let hint = close_names(function, names.iter().map(String::as_str));
            return Err(Error::not_found(format!(
                "no function '{function}' in {}{}; list its symbols with `nm -D {}`",
                path.display(),
                did_you_mean(&hint),
                path.display()
            )));
        };
        let text = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
            Error::bad_argument(format!("{} has a NUL byte in its name", path.display()))
        })?;
        Ok(UprobeEvent {
            path: Box::leak(text.into_boxed_c_str()),
            offset,
            is_return,
        })
    }

    /// The perf event that places this probe; its type and config also go
    /// into the recording's header.
    pub fn pmu_event(&self) -> Result<DynamicPmu> {
        let event = if self.is_return {
            Uretprobe {
                path: self.path,
                offset: self.offset,
            }
            .try_into_dp()
        } else {
            Uprobe {
                path: self.path,
                offset: self.offset,
            }
            .try_into_dp()
        };
        event.map_err(|e| match ErrorKind::of_io(&e) {
            ErrorKind::NotFound => Error::unsupported(
                "this kernel has no uprobes (CONFIG_UPROBE_EVENTS is off): functions of programs cannot be probed here",
            ),
            _ => Error::io("cannot read the uprobe PMU's description in sysfs", &e),
        })
    }
}

/// A binary by path, or a program by name through PATH; a regular file.
fn find_binary(binary: &str) -> Result<PathBuf> {
    let candidates: Vec<PathBuf> = if binary.contains('/') {
        vec![PathBuf::from(binary)]
    } else {
        std::env::var_os("PATH")
            .map(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(binary))
                    .collect()
            })
            .unwrap_or_default()
    };
    candidates
        .into_iter()
        .find(|p| crate::infile::is_regular(p))
        .and_then(|p| p.canonicalize().ok())
        .ok_or_else(|| {
            Error::not_found(format!(
                "no program or library '{binary}'; give its path, e.g. uprobe:/usr/lib/x86_64-linux-gnu/libc.so.6:malloc"
            ))
        })
}
