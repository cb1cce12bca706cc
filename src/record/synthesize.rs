//! What a recording holds besides the kernel's records: the processes that
//! ran before sampling started (names and executable maps, which the kernel
//! reports only for changes), and the feature sections (host, command line,
//! event names, build ids, the kallsyms snapshot, tracepoint formats).

use std::collections::BTreeSet;

use crate::error::Result;
use crate::perfdata::writer::{self, EventDesc, FeatureBody, PerfDataWriter, RecordBuilder};
use crate::perfdata::*;

/// Names and executable maps of processes that exist before sampling starts.
pub fn processes(
    writer: &mut PerfDataWriter,
    pids: &[u32],
    id: u64,
    mapped_files: &mut BTreeSet<String>,
) -> Result<()> {
    for &pid in pids {
        let Ok(process) = procfs::process::Process::new(pid as i32) else {
            continue;
        };
        if let Ok(tasks) = process.tasks() {
            for task in tasks.flatten() {
                if let Ok(stat) = task.stat() {
                    writer.write_record(&RecordBuilder::comm(
                        pid,
                        task.tid as u32,
                        stat.comm.as_bytes(),
                        id,
                    ))?;
                }
            }
        }
        let Ok(maps) = process.maps() else { continue };
        for m in maps {
            // Files, and the vdso, whose frames are as real as a file's.
            let path = match &m.pathname {
                procfs::process::MMapPath::Path(path) => path.to_string_lossy().into_owned(),
                procfs::process::MMapPath::Vdso => "[vdso]".to_string(),
                _ => continue,
            };
            if !m.perms.contains(procfs::process::MMPermissions::EXECUTE) {
                continue;
            }
            let mapping = Mapping {
                start: m.address.0,
                end: m.address.1,
                pgoff: m.offset,
                path,
            };
            writer.write_record(&RecordBuilder::mmap2(pid, &mapping, id))?;
            mapped_files.insert(mapping.path);
        }
    }
    Ok(())
}

/// The feature sections of a recording: host, kernel release, command
/// line, event names and build ids.
pub fn features(events: &[EventDesc], mapped_files: &BTreeSet<String>) -> Vec<(u32, FeatureBody)> {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let args: Vec<String> = std::env::args().collect();
    let ncpus = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    let features = vec![
        (
            HEADER_HOSTNAME,
            writer::string_feature(&read("/proc/sys/kernel/hostname")),
        ),
        (
            HEADER_OSRELEASE,
            writer::string_feature(&read("/proc/sys/kernel/osrelease")),
        ),
        (
            HEADER_VERSION,
            writer::string_feature(concat!("netprof ", env!("CARGO_PKG_VERSION"))),
        ),
        (HEADER_ARCH, writer::string_feature(std::env::consts::ARCH)),
        (HEADER_NRCPUS, writer::nrcpus_feature(ncpus, ncpus)),
        (HEADER_CMDLINE, writer::cmdline_feature(&args)),
        (HEADER_EVENT_DESC, writer::event_desc_feature(events)),
        (
            HEADER_BUILD_ID,
            writer::build_id_feature(&build_ids(mapped_files)),
        ),
    ];
    features
        .into_iter()
        .map(|(bit, body)| (bit, body.into()))
        .collect()
}

/// Build ids of the kernel and of the mapped files that have one.
fn build_ids(mapped_files: &BTreeSet<String>) -> Vec<writer::BuildId> {
    let mut ids = Vec::new();
    if let Some(id) = std::fs::read("/sys/kernel/notes")
        .ok()
        .and_then(|n| gnu_build_id_note(&n))
    {
        ids.push(writer::BuildId {
            kernel: true,
            path: "[kernel.kallsyms]".into(),
            id,
        });
    }
    for path in mapped_files.iter().filter(|p| p.starts_with('/')) {
        if let Ok(Some(id)) = blazesym::helper::read_elf_build_id(path) {
            ids.push(writer::BuildId {
                kernel: false,
                path: path.clone(),
                id: id.into_owned(),
            });
        }
    }
    ids
}

/// The NT_GNU_BUILD_ID descriptor in a sequence of ELF notes.
fn gnu_build_id_note(mut notes: &[u8]) -> Option<Vec<u8>> {
    let word =
        |b: &[u8], i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?) as usize);
    while notes.len() >= 12 {
        let (namesz, descsz, type_) = (word(notes, 0)?, word(notes, 4)?, word(notes, 8)?);
        let name_end = 12 + namesz.div_ceil(4) * 4;
        let desc_end = name_end + descsz.div_ceil(4) * 4;
        if type_ == 3 && notes.get(12..12 + namesz)? == b"GNU\0" {
            return Some(notes.get(name_end..name_end + descsz)?.to_vec());
        }
        notes = notes.get(desc_end..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_id_note_is_found_among_notes() {
        let mut notes = Vec::new();
        // A Xen note first, then the GNU build id.
        notes.extend_from_slice(&4u32.to_le_bytes());
        notes.extend_from_slice(&4u32.to_le_bytes());
        notes.extend_from_slice(&1u32.to_le_bytes());
        notes.extend_from_slice(b"Xen\0");
        notes.extend_from_slice(&[9, 9, 9, 9]);
        notes.extend_from_slice(&4u32.to_le_bytes());
        notes.extend_from_slice(&20u32.to_le_bytes());
        notes.extend_from_slice(&3u32.to_le_bytes());
        notes.extend_from_slice(b"GNU\0");
        notes.extend((1..=20).collect::<Vec<u8>>());
        assert_eq!(gnu_build_id_note(&notes), Some((1..=20).collect()));
        assert_eq!(gnu_build_id_note(&notes[..20]), None);
    }
}
