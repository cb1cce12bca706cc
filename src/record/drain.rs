//! Copying the kernel's ring buffers into the file, as the kernel wrote the
//! records, while counting samples, lost samples and mapped files, and
//! following which tasks of a `-p` recording are still alive.

use std::collections::HashSet;
use std::os::fd::RawFd;
use std::time::Duration;

use perf_event_open::sample::Sampler;

use super::RecordSummary;
use crate::error::{Error, Result};
use crate::perfdata::writer::PerfDataWriter;
use crate::perfdata::*;

/// The tasks a `-p` recording follows: the given threads and the children
/// they create. The recording ends when none is left.
pub struct FollowedTasks {
    live: HashSet<u32>,
}

impl FollowedTasks {
    pub fn new(tids: &[u32]) -> FollowedTasks {
        FollowedTasks {
            live: tids.iter().copied().collect(),
        }
    }

    /// Follows FORK and EXIT records of followed tasks.
    fn see(&mut self, type_: u32, record: &[u8]) {
        // pid, ppid, tid, ptid follow the header.
        let word = |at: usize| {
            record
                .get(at..at + 4)
                .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        };
        match (type_, word(16), word(20)) {
            (PERF_RECORD_FORK, Some(tid), Some(ptid)) if self.live.contains(&ptid) => {
                self.live.insert(tid);
            }
            (PERF_RECORD_EXIT, Some(tid), _) => {
                self.live.remove(&tid);
            }
            _ => {}
        }
    }

    /// Forgets tasks that are gone without an EXIT record seen (records lost
    /// to a full ring); true when none is left.
    pub fn all_gone(&mut self) -> bool {
        self.live
            .retain(|&tid| crate::sys::processes::is_alive(tid));
        self.live.is_empty()
    }
}

/// Copies the rings into the file; `last_time` follows the newest
/// timestamp, which stamps the counted samples of `record --bpf`. A round
/// marker follows only a drain that copied something.
pub fn drain(
    samplers: &[Sampler],
    writer: &mut PerfDataWriter,
    summary: &mut RecordSummary,
    last_time: &mut u64,
    mut followed: Option<&mut FollowedTasks>,
) -> Result<()> {
    let mut copied = false;
    for sampler in samplers {
        let mut records = sampler
            .iter()
            .ok_or_else(|| Error::failed("internal error: ring buffer already being read"))?
            .into_cow();
        while let Some(record) = records.lending_next() {
            // A full disk takes no more records: they are not counted either.
            if writer.disk_full() {
                break;
            }
            let bytes = record.as_raw().as_bytes();
            let type_ = u32::from_le_bytes(bytes[..4].try_into().expect("record header"));
            if type_ != PERF_RECORD_SAMPLE && bytes.len() >= 32 {
                // The sample_id trailer: pid/tid, time, id, cpu.
                *last_time = (*last_time).max(read_u64(bytes, bytes.len() - 24));
            }
            match type_ {
                PERF_RECORD_SAMPLE => summary.samples += 1,
                PERF_RECORD_MMAP2 => {
                    if let Some(path) = executable_mmap2_path(bytes) {
                        summary.mapped_files.insert(path);
                    }
                }
                PERF_RECORD_LOST => summary.lost += read_u64(bytes, 16),
                PERF_RECORD_LOST_SAMPLES => summary.lost += read_u64(bytes, 8),
                PERF_RECORD_FORK | PERF_RECORD_EXIT => {
                    if let Some(tasks) = followed.as_deref_mut() {
                        tasks.see(type_, bytes);
                    }
                }
                _ => {}
            }
            writer.write_record(bytes)?;
            copied = true;
        }
    }
    if copied {
        writer.finish_round()?;
    }
    Ok(())
}

/// The file of an MMAP2 record that maps code (its filename follows 64
/// bytes of fields after the header).
fn executable_mmap2_path(record: &[u8]) -> Option<String> {
    const PROT_OFFSET: usize = 8 + 56;
    const NAME_OFFSET: usize = 8 + 64;
    let prot = u32::from_le_bytes(record.get(PROT_OFFSET..PROT_OFFSET + 4)?.try_into().ok()?);
    if prot & libc::PROT_EXEC as u32 == 0 {
        return None;
    }
    let name = record.get(NAME_OFFSET..)?;
    let name = &name[..name.iter().position(|&b| b == 0)?];
    Some(String::from_utf8_lossy(name).into_owned())
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
        .unwrap_or(0)
}

/// Waits until a ring has data or `timeout` passes (a signal ends the wait
/// early, which is what stopping needs). Rings whose task has exited are
/// taken out of `fds`: poll would report them hung up at once, every time.
pub fn wait_for_data(fds: &mut Vec<RawFd>, timeout: Duration) {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: pollfds is a valid array of the given length. EINTR only ends the wait early.
    let ready = unsafe {
        libc::poll(
            pollfds.as_mut_ptr(),
            pollfds.len() as libc::nfds_t,
            timeout.as_millis() as i32,
        )
    };
    if ready > 0 {
        let hung_up: HashSet<RawFd> = pollfds
            .iter()
            .filter(|p| p.revents & libc::POLLHUP != 0)
            .map(|p| p.fd)
            .collect();
        fds.retain(|fd| !hung_up.contains(fd));
    }
}
