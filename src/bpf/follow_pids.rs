//! The user-space half of bpf/follow_pids.h: which processes a timing
//! program measures (-p, or a command netprof runs and what it starts).

use libbpf_rs::{MapCore, MapFlags, MapMut};

use crate::error::{Error, Result};
use crate::model::tracepoint_format::Format;
use crate::sys::tracefs::Tracefs;

/// Where sched_process_fork's record holds the child's pid, from tracefs.
pub(super) fn fork_child_offset() -> Result<u32> {
    let format = Tracefs::get()?
        .events()
        .join("sched/sched_process_fork/format");
    let text = std::fs::read_to_string(&format)
        .map_err(|e| Error::io(format!("cannot read {}", format.display()), &e))?;
    Format::parse(&text)
        .fields
        .iter()
        .find(|f| f.name == "child_pid")
        .map(|f| f.offset as u32)
        .ok_or_else(|| Error::unsupported(format!("{} has no child_pid field", format.display())))
}

/// Puts the processes to measure in the program's `pids` map.
pub(super) fn fill(map: &MapMut<'_>, pids: &[u32]) -> Result<()> {
    for pid in pids {
        map.update(&pid.to_ne_bytes(), &[1], MapFlags::ANY)
            .map_err(|e| Error::failed(format!("cannot fill the BPF process filter ({e})")))?;
    }
    Ok(())
}

/// Follows forks of measured processes from now on.
pub(super) fn follow_forks(program: &libbpf_rs::ProgramMut<'_>) -> Result<libbpf_rs::Link> {
    program
        .attach_tracepoint(libbpf_rs::TracepointCategory::Sched, "sched_process_fork")
        .map_err(|e| Error::kernel_refused(format!("the kernel refuses to follow forks ({e})")))
}
