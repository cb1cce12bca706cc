//! One BPF link per function: how a program reaches many kernel functions
//! where there are no multi-kprobe links (kernels without fprobe, such as
//! Debian 12's 6.1), or when asked (`--no-multi-kprobe`).
//!
//! Each probe is a kprobe PMU event placed by address (the kernel then looks
//! up no name, and a name that several modules share cannot land on the
//! wrong one), opened once for all CPUs' hits, and the program is attached
//! to it through a BPF perf-event link that carries the function's cookie.
//! The link owns the event: dropping it removes the probe.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use libbpf_rs::{libbpf_sys, ProgramMut};
use perf_event_open::config::{Cpu, Opts, Proc};
use perf_event_open::count::Counter;

use crate::error::{Error, ErrorKind, Result};
use crate::probe::kprobe::KprobeEvent;

/// How a program reaches many functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// All of them through one multi-kprobe (fprobe) link.
    Multi,
    /// One kprobe link per function.
    PerFunction,
}

impl Attach {
    /// Multi-kprobe links where the kernel has them, unless one link per
    /// function is asked for (`--no-multi-kprobe`).
    pub fn choose(per_function_asked: bool) -> Attach {
        if !per_function_asked && crate::sys::kconfig::has_fprobe() {
            Attach::Multi
        } else {
            Attach::PerFunction
        }
    }

    /// Why one link per function, when it is that, for the progress line.
    pub fn why_per_function(per_function_asked: bool) -> &'static str {
        if per_function_asked {
            "as --no-multi-kprobe asks"
        } else {
            "this kernel has no multi-kprobe links (CONFIG_FPROBE is off)"
        }
    }
}

/// How often attaching many functions says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Threads that place (and remove) probes at once. Placing a kprobe is
/// mostly serialized in the kernel, but removing one waits for RCU grace
/// periods, which threads removing probes side by side share: on 6.1
/// under emulation, 505 probes took 40 s to remove one after the other,
/// 692 take 26 s from eight threads (32 gain nothing more: part of each
/// removal holds a kernel mutex).
const THREADS: usize = 8;

/// Open files each probe holds: the perf event and the BPF link.
const FILES_PER_PROBE: u64 = 2;

/// Probes above this many take the kernel long enough to remove (each
/// waits out grace periods under a kernel mutex: about 40 ms apiece on 6.1
/// under emulation) that netprof says it is removing them.
pub const SLOW_TO_REMOVE: usize = 100;

/// How far placing or removing many probes has got, for a progress line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// This many functions are about to be probed one link each (their
    /// program is loaded).
    OneByOne(usize),
    /// `done` of `total` probes placed (or refused).
    Placed { done: usize, total: usize },
    /// This many probes are being removed now.
    Removing(usize),
}

/// A function to probe: where, and the cookie its hits carry.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub name: &'a str,
    pub address: u64,
    pub cookie: u64,
}

/// One function's probe: the kprobe event and the BPF link on it.
struct Probe {
    link: OwnedFd,
    event: OwnedFd,
}

/// Probes placed one per function; dropping them removes every one.
#[derive(Default)]
pub struct Links {
    probes: Vec<Probe>,
}

impl Links {
    pub fn len(&self) -> usize {
        self.probes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }

    pub fn extend(&mut self, mut other: Links) {
        self.probes.append(&mut other.probes);
    }
}

impl Drop for Links {
    /// Removes the probes from several threads, so that their grace
    /// periods overlap.
    fn drop(&mut self) {
        let probes = std::mem::take(&mut self.probes);
        if probes.len() < 2 * THREADS {
            return; // dropping them here closes them
        }
        let mut shares: Vec<Vec<Probe>> = (0..THREADS).map(|_| Vec::new()).collect();
        for (i, probe) in probes.into_iter().enumerate() {
            shares[i % THREADS].push(probe);
        }
        std::thread::scope(|scope| {
            for share in shares {
                scope.spawn(move || {
                    for probe in share {
                        // The link first: it holds the event open.
                        drop(probe.link);
                        drop(probe.event);
                    }
                });
            }
        });
    }
}

/// The links made, and the functions the kernel would not probe.
pub struct Attached {
    pub links: Links,
    pub refused: Vec<String>,
}

/// Attaches `program` at the entry (or return) of every target, calling
/// `progress(done, total)` about once a second while it works. Of several
/// targets, those the kernel refuses (a glob takes in functions that turn
/// out unprobe-able: inlined copies, the kprobe blacklist) are left out and
/// named; a lone target's refusal, or every target's, is the error, and so
/// is any failure that is not the kernel refusing one function (no room
/// for more open files, no memory). Once `stop` is set (Ctrl-C), targets
/// not yet reached are given up: what was placed is returned.
pub fn attach(
    program: &ProgramMut<'_>,
    targets: &[Target<'_>],
    is_return: bool,
    stop: &AtomicBool,
    mut progress: impl FnMut(usize, usize),
) -> Result<Attached> {
    crate::sys::limits::make_room_for_files(
        FILES_PER_PROBE * targets.len() as u64,
        &format!("probing {} functions one link each", targets.len()),
    )?;
    let program_fd = program.as_fd().as_raw_fd();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    // Each thread takes the next target until none is left (or one failed).
    let work = || {
        let mut links = Links::default();
        let mut refused = Vec::new();
        while !failed.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(target) = targets.get(index) else {
                break;
            };
            match attach_one(program_fd, target, is_return) {
                Ok(probe) => links.probes.push(probe),
                Err(e) if targets.len() == 1 || e.kind() != ErrorKind::KernelRefused => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                Err(_) => refused.push(index),
            }
            done.fetch_add(1, Ordering::Relaxed);
        }
        Ok((links, refused))
    };
    let results = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS.min(targets.len()))
            .map(|_| scope.spawn(work))
            .collect();
        let mut said = Instant::now();
        while !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            if said.elapsed() >= PROGRESS_EVERY {
                progress(done.load(Ordering::Relaxed), targets.len());
                said = Instant::now();
            }
        }
        workers
            .into_iter()
            .map(|w| w.join().expect("a probe-placing thread panicked"))
            .collect::<Vec<_>>()
    });
    let mut attached = Attached {
        links: Links::default(),
        refused: Vec::new(),
    };
    let mut refused = Vec::new();
    let mut first_error = None;
    for result in results {
        match result {
            Ok((links, indexes)) => {
                attached.links.extend(links);
                refused.extend(indexes);
            }
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    if let Some(e) = first_error {
        return Err(e); // what was placed is removed as `attached` drops
    }
    refused.sort_unstable();
    attached.refused = refused
        .iter()
        .map(|&i| targets[i].name.to_string())
        .collect();
    if attached.links.is_empty() && !targets.is_empty() && !stop.load(Ordering::Relaxed) {
        return Err(Error::kernel_refused(format!(
            "the kernel refuses a probe on every one of the {} functions (notrace, blacklisted or \
             inlined); `netprof probe --list` shows what can be probed",
            targets.len()
        )));
    }
    Ok(attached)
}

/// One line naming refused functions (the first few), for a note.
pub fn refused_note(refused: &[String]) -> Option<String> {
    const NAMED: usize = 5;
    if refused.is_empty() {
        return None;
    }
    let mut names = refused[..refused.len().min(NAMED)].join(", ");
    if refused.len() > NAMED {
        names.push_str(&format!(" and {} more", refused.len() - NAMED));
    }
    Some(format!(
        "{} functions left out: the kernel would not probe them (notrace, blacklisted or inlined): {names}",
        refused.len()
    ))
}

fn attach_one(program_fd: RawFd, target: &Target<'_>, is_return: bool) -> Result<Probe> {
    let failure = |e: &std::io::Error| match e.raw_os_error() {
        // Out of descriptors or memory, or not allowed: no other
        // function would fare better.
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EPERM | libc::EACCES) => {
            Error::io(format!("cannot probe {}", target.name), e)
        }
        _ => Error::kernel_refused(format!(
            "the kernel refuses a probe on {} ({e}): it is notrace, on the kprobe blacklist, or \
             inlined; `netprof probe --list` shows what can be probed",
            target.name
        )),
    };
    let event = KprobeEvent {
        address: target.address,
        is_return,
    }
    .pmu_event()?;
    // One event for every CPU's hits: a BPF program on a kprobe runs for
    // each hit, whichever CPU the event was opened on.
    let counter =
        Counter::new(event, (Proc::ALL, Cpu(0)), Opts::default()).map_err(|e| failure(&e))?;
    let event = counter
        .file()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| failure(&e))?;
    drop(counter);
    let mut opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        ..Default::default()
    };
    opts.__bindgen_anon_1.perf_event.bpf_cookie = target.cookie;
    // SAFETY: both descriptors are open, and `opts` is a sized, zeroed
    // libbpf options struct.
    let fd = unsafe {
        libbpf_sys::bpf_link_create(
            program_fd,
            event.as_raw_fd(),
            libbpf_sys::BPF_PERF_EVENT,
            &opts,
        )
    };
    if fd < 0 {
        return Err(failure(&std::io::Error::from_raw_os_error(-fd)));
    }
    // SAFETY: bpf_link_create returned a new descriptor that nothing else owns.
    let link = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(Probe { link, event })
}
