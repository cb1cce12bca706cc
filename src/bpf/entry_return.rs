//! An entry and a return program on many functions at once, the probes
//! `latency` and `funcgraph` time calls with: through one session
//! multi-kprobe link (one program at entry and return) or a multi-kprobe
//! link pair where the kernel has fprobe, else (or when asked) one kprobe
//! link pair per function ([`super::kprobe_links`]), each function's hits
//! carrying its cookie.
//!
//! Return probes go in before entry probes and come out after them, so
//! that no call is seen entering but never leaving while probes come and
//! go. Also the measurement's course both share: following a command's
//! forks, and waiting for the duration, Ctrl-C or the command's end.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use libbpf_rs::{libbpf_sys, KprobeMultiOpts, Link, OpenProgramMut, ProgramMut};

use super::kprobe_links::{self, Attach, Progress, Target};
use crate::error::{Error, Result};
use crate::probe::Function;

/// Whose calls a timing program measures, for how long, and how its
/// probes attach: what `latency` and `funcgraph` share.
#[derive(Clone, Debug)]
pub struct MeasureOptions {
    /// Only calls made by these processes (all when empty).
    pub pids: Vec<u32>,
    /// Also the processes they start from now on (a command netprof runs).
    pub follow_children: bool,
    /// Until `stop` is set when absent.
    pub duration: Option<Duration>,
    /// Through multi-kprobe links, or a link pair per function.
    pub attach: Attach,
}

/// How a measurement's probes go in, chosen once from [`Attach`] and the
/// kernel: it says which of a program's entry points are loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryPoints {
    /// One session program at entry and return (kernel 6.10 and later).
    Session,
    /// An entry and a return multi-kprobe program.
    MultiPair,
    /// An entry and a return kprobe program, one link pair per function.
    PerFunction,
}

impl EntryPoints {
    pub fn choose(attach: Attach) -> EntryPoints {
        match attach {
            Attach::Multi if crate::sys::kconfig::has_kprobe_session() => EntryPoints::Session,
            Attach::Multi => EntryPoints::MultiPair,
            Attach::PerFunction => EntryPoints::PerFunction,
        }
    }
}

/// A program's entry points before it loads, and its fork follower.
pub struct OpenPrograms<'a, 'obj> {
    pub session: &'a mut OpenProgramMut<'obj>,
    pub entry_multi: &'a mut OpenProgramMut<'obj>,
    pub return_multi: &'a mut OpenProgramMut<'obj>,
    pub entry: &'a mut OpenProgramMut<'obj>,
    pub return_: &'a mut OpenProgramMut<'obj>,
    pub follow_fork: &'a mut OpenProgramMut<'obj>,
}

impl OpenPrograms<'_, '_> {
    /// Loads only the entry points `way` uses, and the fork follower when
    /// children are followed.
    pub fn load_only(self, way: EntryPoints, follow_children: bool) {
        self.session.set_autoload(way == EntryPoints::Session);
        self.entry_multi.set_autoload(way == EntryPoints::MultiPair);
        self.return_multi
            .set_autoload(way == EntryPoints::MultiPair);
        self.entry.set_autoload(way == EntryPoints::PerFunction);
        self.return_.set_autoload(way == EntryPoints::PerFunction);
        self.follow_fork.set_autoload(follow_children);
    }
}

/// A program's entry points once loaded (only those [`EntryPoints`] chose
/// are), and its fork follower when children are followed.
pub struct Programs<'p, 'obj> {
    pub session: &'p ProgramMut<'obj>,
    pub entry_multi: &'p ProgramMut<'obj>,
    pub return_multi: &'p ProgramMut<'obj>,
    pub entry: &'p ProgramMut<'obj>,
    pub return_: &'p ProgramMut<'obj>,
    pub follow_fork: Option<&'p ProgramMut<'obj>>,
}

/// The probes in place; [`Probes::remove`] (or dropping them) removes them.
pub struct Probes {
    /// Dropped first: no new process is followed once measuring ends.
    follow: Option<Link>,
    entries: Placed,
    returns: Placed,
    /// Functions the kernel would not probe (with a link pair per function).
    pub refused: Vec<String>,
    /// How they were attached: kprobe.multi or kprobe.
    pub kind: &'static str,
}

enum Placed {
    Multi(Link),
    /// A session link: entries and returns in one.
    Session(OwnedFd),
    PerFunction(kprobe_links::Links),
    None,
}

impl Probes {
    /// Returns the kernel skipped for want of kretprobe instances
    /// (multi-kprobe links report them; 0 where the kernel does not say).
    pub fn missed_returns(&self) -> u64 {
        let fd = match &self.returns {
            Placed::Multi(link) => link.as_fd(),
            Placed::Session(fd) => fd.as_fd(),
            _ => return 0,
        };
        match libbpf_rs::query::LinkInfo::from_fd(fd) {
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
            follow,
            entries,
            returns,
            ..
        } = self;
        drop(follow);
        let one_by_one = |p: &Placed| match p {
            Placed::PerFunction(links) => links.len(),
            _ => 0,
        };
        let count = one_by_one(&entries) + one_by_one(&returns);
        if count > kprobe_links::SLOW_TO_REMOVE {
            progress(Progress::Removing(count));
        }
        drop(entries);
        drop(returns);
    }
}

/// Probes the entry and the return of every function, and follows forks
/// when the programs do; `cookies[i]` is what `functions[i]`'s hits carry.
/// With a link pair per function, reports its `progress` and leaves out
/// (and names) functions the kernel refuses. Ctrl-C (`stop`) while
/// attaching ends in an error saying nothing was `measured` ("timed"): a
/// table of partly probed functions would read as calls not made.
pub fn attach(
    programs: &Programs<'_, '_>,
    way: EntryPoints,
    functions: &[Function],
    cookies: &[u64],
    stop: &AtomicBool,
    measured: &str,
    progress: impl FnMut(Progress),
) -> Result<Probes> {
    let mut probes = attach_entry_points(programs, way, functions, cookies, stop, progress)?;
    if let Some(program) = programs.follow_fork {
        probes.follow = Some(super::follow_pids::follow_forks(program)?);
    }
    if stop.load(Ordering::SeqCst) {
        return Err(Error::failed(format!(
            "interrupted while attaching probes: nothing was {measured}"
        )));
    }
    Ok(probes)
}

/// Waits for `duration` (forever when absent), until `stop` is set or
/// `finished()` says so, calling `tick` with how long it may wait each
/// time (at most 100 ms); returns how long it measured.
pub fn measure_until(
    duration: Option<Duration>,
    stop: &AtomicBool,
    mut finished: impl FnMut() -> bool,
    mut tick: impl FnMut(Duration),
) -> Duration {
    let start = Instant::now();
    while !stop.load(Ordering::SeqCst)
        && duration.is_none_or(|d| start.elapsed() < d)
        && !finished()
    {
        let left = duration.map_or(Duration::from_millis(100), |d| {
            d.saturating_sub(start.elapsed())
        });
        tick(left.min(Duration::from_millis(100)));
    }
    start.elapsed()
}

fn attach_entry_points(
    programs: &Programs<'_, '_>,
    way: EntryPoints,
    functions: &[Function],
    cookies: &[u64],
    stop: &AtomicBool,
    mut progress: impl FnMut(Progress),
) -> Result<Probes> {
    if way == EntryPoints::Session {
        return Ok(Probes {
            follow: None,
            entries: Placed::None,
            returns: Placed::Session(attach_session(programs.session, functions, cookies)?),
            refused: Vec::new(),
            kind: "kprobe.session",
        });
    }
    if way == EntryPoints::MultiPair {
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
            follow: None,
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
        follow: None,
        entries: Placed::PerFunction(entries.links),
        returns: Placed::PerFunction(returns.links),
        refused,
        kind: "kprobe",
    })
}

/// One session multi-kprobe link on every function (libbpf-rs has no
/// option for it: the link is made as libbpf would, by name).
fn attach_session(
    program: &ProgramMut,
    functions: &[Function],
    cookies: &[u64],
) -> Result<OwnedFd> {
    let names: Vec<CString> = functions
        .iter()
        .map(|f| CString::new(f.name.as_str()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::bad_argument("a function name holds a NUL byte"))?;
    let mut pointers: Vec<*const std::os::raw::c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let mut opts = libbpf_sys::bpf_link_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
        ..Default::default()
    };
    opts.__bindgen_anon_1.kprobe_multi.cnt = names.len() as u32;
    opts.__bindgen_anon_1.kprobe_multi.syms = pointers.as_mut_ptr();
    opts.__bindgen_anon_1.kprobe_multi.cookies = cookies.as_ptr();
    // SAFETY: the program is loaded; `opts` is a sized, zeroed libbpf
    // options struct whose name and cookie arrays (`cnt` long) outlive the
    // call.
    let fd = unsafe {
        libbpf_sys::bpf_link_create(
            program.as_fd().as_raw_fd(),
            0,
            libbpf_sys::BPF_TRACE_KPROBE_SESSION,
            &opts,
        )
    };
    if fd < 0 {
        let e = std::io::Error::from_raw_os_error(-fd);
        return Err(refused(libbpf_rs::Error::from(e), names.len()));
    }
    // SAFETY: bpf_link_create returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn refused(e: libbpf_rs::Error, functions: usize) -> Error {
    Error::kernel_refused(format!(
        "the kernel refuses multi-kprobes on {functions} functions ({e}): a function is notrace, on \
         the kprobe blacklist, or inlined; `netprof probe --list` shows what can be probed"
    ))
}
