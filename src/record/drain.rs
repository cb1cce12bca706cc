//! Copying the kernel's ring buffers into the file, as the kernel wrote the
//! records, while counting samples, lost samples and mapped files.

use std::os::fd::RawFd;
use std::time::Duration;

use perf_event_open::sample::Sampler;

use super::RecordSummary;
use crate::error::{Error, Result};
use crate::perfdata::writer::PerfDataWriter;
use crate::perfdata::*;

/// Copies the rings into the file; `last_time` follows the newest
/// timestamp, which stamps the counted samples of `record --bpf`.
pub fn drain(
    samplers: &[Sampler],
    writer: &mut PerfDataWriter,
    summary: &mut RecordSummary,
    last_time: &mut u64,
) -> Result<()> {
    for sampler in samplers {
        let mut records = sampler
            .iter()
            .ok_or_else(|| Error::failed("internal error: ring buffer already being read"))?
            .into_cow();
        while let Some(record) = records.lending_next() {
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
                _ => {}
            }
            writer.write_record(bytes)?;
        }
    }
    writer.finish_round()
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
/// early, which is what stopping needs).
pub fn wait_for_data(fds: &[RawFd], timeout: Duration) {
    let mut pollfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: pollfds is a valid array of the given length. EINTR only ends the wait early.
    unsafe {
        libc::poll(
            pollfds.as_mut_ptr(),
            pollfds.len() as libc::nfds_t,
            timeout.as_millis() as i32,
        )
    };
}
