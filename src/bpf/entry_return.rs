//! An entry and a return program on many functions at once, the probes
//! `latency` and `funcgraph` time calls with: through one multi-kprobe link
//! pair where the kernel has fprobe, else (or when asked) one kprobe link
//! pair per function ([`super::kprobe_links`]), each function's hits
//! carrying its cookie.
//!
//! Return probes go in before entry probes and come out after them, so
//! that no call is seen entering but never leaving while probes come and
//! go.

use std::os::fd::AsFd;
use std::sync::atomic::AtomicBool;

use libbpf_rs::{KprobeMultiOpts, Link, ProgramMut};

use super::kprobe_links::{self, Attach, Progress, Target};
use crate::error::{Error, Result};
use crate::probe::Function;

/// A program's two pairs of entry points; only the pair used is loaded.
pub struct Programs<'p, 'obj> {
    pub entry_multi: &'p ProgramMut<'obj>,
    pub return_multi: &'p ProgramMut<'obj>,
    pub entry: &'p ProgramMut<'obj>,
    pub return_: &'p ProgramMut<'obj>,
}

/// The probes in place; [`Probes::remove`] (or dropping them) removes them.
pub struct Probes {
    entries: Placed,
    returns: Placed,
    /// Functions the kernel would not probe (with a link pair per function).
    pub refused: Vec<String>,
    /// How they were attached: kprobe.multi or kprobe.
    pub kind: &'static str,
}

enum Placed {
    Multi(Link),
    PerFunction(kprobe_links::Links),
}

impl Probes {
    /// Returns the kernel skipped for want of kretprobe instances
    /// (multi-kprobe links report them; 0 where the kernel does not say).
    pub fn missed_returns(&self) -> u64 {
        let Placed::Multi(link) = &self.returns else {
            return 0;
        };
        match libbpf_rs::query::LinkInfo::from_fd(link.as_fd()) {
            Ok(info) => match info.info {
                libbpf_rs::query::LinkTypeInfo::KprobeMulti(k) => k.missed,
                _ => 0,
            },
            Err(_) => 0,
        }
    }

    /// Removes the entry probes, then the return probes, saying so when
    /// there are many to remove one by one (slow on some kernels).
    pub fn remove(self, mut progress: impl FnMut(Progress)) {
        let Probes {
            entries, returns, ..
        } = self;
        let one_by_one = |p: &Placed| match p {
            Placed::PerFunction(links) => links.len(),
            Placed::Multi(_) => 0,
        };
        let count = one_by_one(&entries) + one_by_one(&returns);
        if count > kprobe_links::SLOW_TO_REMOVE {
            progress(Progress::Removing(count));
        }
        drop(entries);
        drop(returns);
    }
}

/// Probes the entry and the return of every function; `cookies[i]` is what
/// `functions[i]`'s hits carry. With a link pair per function, reports its
/// `progress` and leaves out (and names) functions the kernel refuses;
/// Ctrl-C (`stop`) gives up those not yet reached.
pub fn attach(
    programs: &Programs<'_, '_>,
    functions: &[Function],
    cookies: &[u64],
    attach: Attach,
    stop: &AtomicBool,
    mut progress: impl FnMut(Progress),
) -> Result<Probes> {
    if attach == Attach::Multi {
        let names: Vec<String> = functions.iter().map(|f| f.name.clone()).collect();
        let multi = |program: &ProgramMut, retprobe: bool| {
            program
                .attach_kprobe_multi_with_opts(KprobeMultiOpts {
                    symbols: names.clone(),
                    cookies: cookies.to_vec(),
                    retprobe,
                    ..Default::default()
                })
                .map_err(|e| refused(e, names.len()))
        };
        let returns = multi(programs.return_multi, true)?;
        let entries = multi(programs.entry_multi, false)?;
        return Ok(Probes {
            entries: Placed::Multi(entries),
            returns: Placed::Multi(returns),
            refused: Vec::new(),
            kind: "kprobe.multi",
        });
    }
    let targets: Vec<Target> = functions
        .iter()
        .zip(cookies)
        .map(|(f, &cookie)| Target {
            name: &f.name,
            address: f.address,
            cookie,
        })
        .collect();
    let total = 2 * targets.len();
    progress(Progress::OneByOne(targets.len()));
    let returns = kprobe_links::attach(programs.return_, &targets, true, stop, |done, _| {
        progress(Progress::Placed { done, total })
    })?;
    let mut refused = returns.refused;
    // Entries only where a return probe is in place.
    let entry_targets: Vec<Target> = targets
        .into_iter()
        .filter(|t| !refused.iter().any(|r| r == t.name))
        .collect();
    let done_before = returns.links.len();
    let entries = kprobe_links::attach(programs.entry, &entry_targets, false, stop, |done, _| {
        progress(Progress::Placed {
            done: done_before + done,
            total,
        })
    })?;
    refused.extend(entries.refused);
    Ok(Probes {
        entries: Placed::PerFunction(entries.links),
        returns: Placed::PerFunction(returns.links),
        refused,
        kind: "kprobe",
    })
}

fn refused(e: libbpf_rs::Error, functions: usize) -> Error {
    Error::kernel_refused(format!(
        "the kernel refuses multi-kprobes on {functions} functions ({e}): a function is notrace, on \
         the kprobe blacklist, or inlined; `netprof probe --list` shows what can be probed"
    ))
}
