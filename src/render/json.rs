//! `--json`: the whole view in a stable, documented schema (see
//! man/netprof-report.1 and README). Version 1:
//!
//! ```text
//! { "schema": "netprof-report/1",
//!   "events": ["cpu-clock"], "event": "cpu-clock" (the one reported, or null),
//!   "total_samples": N, "lost_samples": N, "truncated_user_samples": N,
//!   "kernel_names": "snapshot" | "live-kallsyms" | "unavailable",
//!   "frames": [ { "name", "module" (kernel module, "bpf", or user file; or null),
//!                 "kind": "kernel"|"module"|"bpf"|"user", "resolved": bool } ],
//!   "stacks": [ { "comm", "pid", "tid", "cpu", "event", "count",
//!                 "frames": [frame index, root first] } ] }
//! ```

use serde::Serialize;

use crate::model::profile::KernelNames;
use crate::model::symbolize::Frame;
use crate::model::view::View;

#[derive(Serialize)]
struct Report<'a> {
    schema: &'static str,
    events: &'a [String],
    /// The event reported (null: all of them).
    event: Option<&'a str>,
    total_samples: u64,
    lost_samples: u64,
    /// Samples whose user call chain ends in `[unknown]`, in the unit of
    /// `total_samples` (nanoseconds for off-CPU time).
    truncated_user_samples: u64,
    kernel_names: &'static str,
    frames: &'a [Frame],
    stacks: Vec<Stack<'a>>,
}

#[derive(Serialize)]
struct Stack<'a> {
    comm: &'a str,
    pid: i32,
    tid: i32,
    cpu: u32,
    event: &'a str,
    count: u64,
    frames: &'a [u32],
}

pub fn to_json(view: &View) -> String {
    let p = view.profile;
    let report = Report {
        schema: "netprof-report/1",
        events: &p.events,
        event: view.event.map(|e| p.events[e as usize].as_str()),
        total_samples: view.total,
        lost_samples: p.lost_samples,
        truncated_user_samples: view.truncated_user(),
        kernel_names: match p.kernel_names {
            KernelNames::Snapshot => "snapshot",
            KernelNames::LiveKallsyms => "live-kallsyms",
            KernelNames::Unavailable => "unavailable",
        },
        frames: &view.symbols.frames,
        stacks: view
            .rows
            .iter()
            .map(|r| Stack {
                comm: &p.comms[r.comm as usize],
                pid: r.pid,
                tid: r.tid,
                cpu: r.cpu,
                event: p
                    .events
                    .get(r.event as usize)
                    .map(String::as_str)
                    .unwrap_or("?"),
                count: r.count,
                frames: &view.symbols.stacks[r.stack as usize],
            })
            .collect(),
    };
    serde_json::to_string_pretty(&report).expect("report serializes")
}
