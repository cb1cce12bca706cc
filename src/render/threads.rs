//! `report --threads`: each thread's time on and off the CPU, off-CPU time
//! by state, and its longest waits, as text or JSON (schema
//! netprof-threads/1, see man/netprof-report.1):
//!
//! ```text
//! { "schema": "netprof-threads/1",
//!   "threads": [ { "pid", "tid", "comm", "on_cpu_ns", "off_cpu_ns",
//!                  "off_cpu_by_state": { "S": ns, ... },
//!                  "top_waits": [ { "state", "ns", "frames": [name, root first] } ] } ] }
//! ```

use std::collections::BTreeMap;

use serde::Serialize;

use super::units::human_ns;
use crate::model::off_cpu::{OffCpuState, ThreadTime};
use crate::model::profile::Profile;
use crate::model::symbolize::SymbolizedProfile;

/// Frames that every wait passes through, left out of the short labels.
const SCHEDULER_FRAMES: &[&str] = &["__schedule", "schedule", "--"];
/// Frames a wait's label shows, from where it blocked outwards.
const LABEL_FRAMES: usize = 4;

/// The table: threads below `percent_limit` of all the time are left out
/// (and counted in a last line).
pub fn render(
    threads: &[ThreadTime],
    profile: &Profile,
    symbols: &SymbolizedProfile,
    percent_limit: f64,
) -> String {
    let total: u64 = threads
        .iter()
        .map(|t| t.on_cpu_ns + t.off_cpu_total())
        .sum();
    let mut out = String::from(
        "# netprof report --threads: time on and off the CPU per thread; off-CPU by state: \
         R runnable (waiting for a CPU), S sleeping, D uninterruptible, I idle kernel thread, \
         other (T, t, P)\n",
    );
    out.push_str(&format!(
        "# {:>7} {:>7}  {:<15} {:>10} {:>10} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "pid", "tid", "comm", "on-CPU", "off-CPU", "off%", "R", "S", "D", "I", "other"
    ));
    let mut hidden = 0;
    for t in threads {
        let mine = t.on_cpu_ns + t.off_cpu_total();
        if total > 0 && (mine as f64 * 100.0 / total as f64) < percent_limit {
            hidden += 1;
            continue;
        }
        let by = |s: OffCpuState| t.off_cpu_ns[s as usize];
        let other = by(OffCpuState::Stopped) + by(OffCpuState::Traced) + by(OffCpuState::Parked);
        out.push_str(&format!(
            "  {:>7} {:>7}  {:<15} {:>10} {:>10} {:>5.1}% {:>9} {:>9} {:>9} {:>9} {:>9}\n",
            t.pid,
            t.tid,
            profile.comms[t.comm as usize],
            human_ns(t.on_cpu_ns as f64),
            human_ns(t.off_cpu_total() as f64),
            t.off_cpu_total() as f64 * 100.0 / mine.max(1) as f64,
            human_ns(by(OffCpuState::Runnable) as f64),
            human_ns(by(OffCpuState::Sleeping) as f64),
            human_ns(by(OffCpuState::Disk) as f64),
            human_ns(by(OffCpuState::Idle) as f64),
            human_ns(other as f64),
        ));
        for &(state, stack, ns) in &t.top_waits {
            out.push_str(&format!(
                "  {:>28} {:>10}  {}  {}\n",
                "waits",
                human_ns(ns as f64),
                state.letter(),
                wait_label(symbols, stack)
            ));
        }
    }
    if hidden > 0 {
        out.push_str(&format!(
            "# {hidden} threads with less than {percent_limit}% of the time left out (--percent-limit)\n"
        ));
    }
    out
}

/// Where a wait blocked: its frames from the leaf outwards, past the
/// scheduler's own, `a < b < c` (a called by b).
fn wait_label(symbols: &SymbolizedProfile, stack: u32) -> String {
    let frames: Vec<&str> = symbols.stacks[stack as usize]
        .iter()
        .rev()
        .map(|&f| symbols.frames[f as usize].name.as_str())
        .filter(|name| !SCHEDULER_FRAMES.contains(name))
        .take(LABEL_FRAMES)
        .collect();
    match frames.is_empty() {
        true => "(no stack: record with -g)".to_string(),
        false => frames.join(" < "),
    }
}

#[derive(Serialize)]
struct Threads<'a> {
    schema: &'static str,
    threads: Vec<Thread<'a>>,
}

#[derive(Serialize)]
struct Thread<'a> {
    pid: i32,
    tid: i32,
    comm: &'a str,
    on_cpu_ns: u64,
    off_cpu_ns: u64,
    off_cpu_by_state: BTreeMap<&'static str, u64>,
    top_waits: Vec<Wait<'a>>,
}

#[derive(Serialize)]
struct Wait<'a> {
    state: &'static str,
    ns: u64,
    frames: Vec<&'a str>,
}

/// Every thread, as JSON.
pub fn to_json(threads: &[ThreadTime], profile: &Profile, symbols: &SymbolizedProfile) -> String {
    let threads = threads
        .iter()
        .map(|t| Thread {
            pid: t.pid,
            tid: t.tid,
            comm: &profile.comms[t.comm as usize],
            on_cpu_ns: t.on_cpu_ns,
            off_cpu_ns: t.off_cpu_total(),
            off_cpu_by_state: OffCpuState::ALL
                .iter()
                .filter(|&&s| t.off_cpu_ns[s as usize] > 0)
                .map(|&s| (s.letter(), t.off_cpu_ns[s as usize]))
                .collect(),
            top_waits: t
                .top_waits
                .iter()
                .map(|&(state, stack, ns)| Wait {
                    state: state.letter(),
                    ns,
                    frames: symbols.stacks[stack as usize]
                        .iter()
                        .map(|&f| symbols.frames[f as usize].name.as_str())
                        .collect(),
                })
                .collect(),
        })
        .collect();
    serde_json::to_string(&Threads {
        schema: "netprof-threads/1",
        threads,
    })
    .expect("plain data serializes")
}
