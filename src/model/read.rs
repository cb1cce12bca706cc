//! Reading a perf.data file (netprof's or perf's) into a [`Profile`]: the
//! file's layout is checked first, the records are parsed and counted on
//! two cores ([`super::aggregate`]) while the kernel symbols load on a third.

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use ahash::AHashMap as HashMap;
use linux_perf_data::linux_perf_event_reader::{SampleFormat, SamplingPolicy};
use linux_perf_data::{Feature, PerfFileReader};

use super::aggregate::{read_records, Aggregator, Attribute, Batch, FixedLayout, BATCH_RECORDS};
use super::in_place::Walk;
use super::kernel_symbols::KernelSymbols;
use super::profile::{Filter, KernelNames, Profile, RecordingFacts};
use super::tracepoint_format::Format;
use crate::error::{Error, ErrorKind, Result};
use crate::infile::open_regular;
use crate::perfdata::check::{announces_feature, check_layout, Layout};
use crate::perfdata::{FEATURE_NETPROF_KALLSYMS, FEATURE_NETPROF_TP_FORMATS};

impl Profile {
    /// Reads a recording; errors name the file. Kernel frames of files
    /// without a kallsyms snapshot (perf's) are named from this machine's.
    pub fn read(path: &Path, filter: &Filter) -> Result<Profile> {
        if path == Path::new("-") {
            return Profile::read_stdin(filter);
        }
        let mut file = open_regular(path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::not_found(format!(
                "{}: no such file; record one with `netprof record` or pass -i FILE",
                path.display()
            )),
            _ => e,
        })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            // /proc and /sys files say they are empty and are not.
            let mut first = [0u8; 1];
            let has_bytes = file.read(&mut first).is_ok_and(|n| n > 0);
            return Err(Error::corrupt_input(if has_bytes {
                format!("{} is not a recording (it has no size: a /proc or /sys file?); pass a perf.data file", path.display())
            } else {
                format!(
                    "{} is empty; the recording that wrote it did not finish, record again",
                    path.display()
                )
            }));
        }
        // SAFETY: the mapping is only read; a file truncated by another
        // process while we read is the one hazard, as for every mmap reader.
        let map = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), &e))?;
        read_guarded(&map, filter, live_kallsyms)
            .map_err(|e| e.prefixed(format!("{} ", path.display())))
    }

    /// Reads a recording from standard input (`-i -`), as `perf record -o -`
    /// writes it or from a file.
    fn read_stdin(filter: &Filter) -> Result<Profile> {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("cannot read the standard input", &e))?;
        if bytes.is_empty() {
            return Err(Error::corrupt_input(
                "the standard input is empty; pipe a recording into it, e.g. `perf record -o - ... | netprof report -i -`",
            ));
        }
        read_guarded(&bytes, filter, live_kallsyms).map_err(|e| e.prefixed("the standard input "))
    }

    /// Reads a file held in memory; kernel frames are named only from the
    /// file's own snapshot. Unlike [`Profile::read`], a panic in the parser
    /// is not caught: the fuzz target and its corpus test must see them.
    pub fn from_bytes(bytes: &[u8], filter: &Filter) -> Result<Profile> {
        read_profile(bytes, filter, || None)
    }
}

/// This machine's kallsyms (its code symbols), for files that carry no
/// snapshot (perf's).
fn live_kallsyms() -> Option<String> {
    crate::sys::kallsyms_cache::code_symbols_text()
        .ok()
        .filter(|t| !t.is_empty())
}

/// Reads a profile, turning a parser panic on a malformed file into an
/// error like any other unreadable file (the binary's panic hook keeps it
/// quiet). Errors read as the rest of a sentence that starts with the
/// file's name: "is truncated ...".
fn read_guarded(
    bytes: &[u8],
    filter: &Filter,
    kallsyms: fn() -> Option<String>,
) -> Result<Profile> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_profile(bytes, filter, kallsyms)
    }))
    .unwrap_or_else(|_| {
        Err(Error::corrupt_input(
            "is corrupt (its records do not parse); record it again",
        ))
    })
}

/// A parser error as the rest of a sentence about the file.
fn parse_error(e: &linux_perf_data::Error) -> Error {
    match e {
        linux_perf_data::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::corrupt_input(
                "is truncated (it ends inside its data); the recording was cut short, record again",
            )
        }
        _ => Error::corrupt_input(format!(
            "is not a readable perf.data file ({e}); record it again"
        )),
    }
}

fn read_profile(
    bytes: &[u8],
    filter: &Filter,
    kallsyms: fn() -> Option<String>,
) -> Result<Profile> {
    // A file without netprof's kallsyms snapshot (perf's) names kernel
    // frames from this machine's /proc/kallsyms, which costs the kernel
    // tens of milliseconds to write out: read it on another core while this
    // one checks the file.
    let live = (announces_feature(bytes, FEATURE_NETPROF_KALLSYMS) == Some(false))
        .then(|| std::thread::spawn(kallsyms));
    let layout = check_layout(bytes)?;
    let reader = std::io::Cursor::new(bytes);
    let PerfFileReader {
        mut perf_file,
        mut record_iter,
    } = match layout {
        Layout::File { .. } => PerfFileReader::parse_file(reader),
        Layout::Pipe => PerfFileReader::parse_pipe(reader),
    }
    .map_err(|e| parse_error(&e))?;
    // Attributes with one name are one event: perf's per-CPU copies, and
    // the per-function probes of one kprobe glob.
    let mut events: Vec<String> = Vec::new();
    let mut attributes: Vec<Attribute> = Vec::new();
    for (i, a) in perf_file.event_attributes().iter().enumerate() {
        let name = a
            .name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("event{i}"));
        let event = match events.iter().position(|e| *e == name) {
            Some(e) => e,
            None => {
                events.push(name);
                events.len() - 1
            }
        };
        attributes.push(Attribute {
            event: event as u16,
            // A sample of a fixed-period event stands for `period`
            // occurrences: 1 for a probe hit, the count of a stack for
            // `record --bpf`. Samples of frequency-driven events count one
            // each.
            period_weighted: matches!(a.attr.sampling_policy, SamplingPolicy::Period(_)),
            // DWARF unwinding data (--call-graph dwarf): stack snapshots
            // netprof does not unwind.
            dwarf: a.attr.sample_format.contains(SampleFormat::STACK_USER),
            layout: FixedLayout::of(a.attr.sample_format),
        });
    }
    let formats = tracepoint_formats(
        &events,
        perf_file.feature_section_data(Feature(FEATURE_NETPROF_TP_FORMATS)),
    );
    let build_ids: HashMap<String, Vec<u8>> = perf_file
        .build_ids()
        .unwrap_or_default()
        .into_values()
        .map(|info| {
            (
                String::from_utf8_lossy(&info.path).into_owned(),
                info.build_id,
            )
        })
        .collect();

    let facts = RecordingFacts {
        command_line: command_line(&perf_file),
        os_release: perf_file.os_release().ok().flatten().map(str::to_string),
        hostname: perf_file.hostname().ok().flatten().map(str::to_string),
    };

    // Kernel symbols load on another core while the records are read.
    let snapshot = perf_file
        .feature_section_data(Feature(FEATURE_NETPROF_KALLSYMS))
        .map(|text| String::from_utf8_lossy(text).into_owned());
    let kernel_thread = std::thread::spawn(move || match snapshot {
        Some(text) => (KernelSymbols::parse(text), KernelNames::Snapshot),
        None => match live.map_or_else(kallsyms, |read| read.join().ok().flatten()) {
            Some(text) => (KernelSymbols::parse(text), KernelNames::LiveKallsyms),
            None => (KernelSymbols::parse(""), KernelNames::Unavailable),
        },
    });

    // Plain files are walked where they lie; the others (compressed, with
    // AUX data, from a pipe or simpleperf) through linux-perf-data.
    let simpleperf = perf_file
        .feature_section_data(Feature::SIMPLEPERF_META_INFO)
        .is_some();
    let walk = match layout {
        Layout::File { plain: true } if !simpleperf => {
            Walk::new(data_section(bytes), perf_file.event_attributes())
        }
        _ => None,
    };

    // One thread walks the records, this one parses and counts them: the
    // two halves of the work run on two cores. The walker digests samples
    // while batches wait here (`queued`), and leaves them to this thread
    // when it waits for batches: which half is larger depends on the
    // recording (few stacks, many processes).
    let (batches_tx, batches_rx) = std::sync::mpsc::sync_channel::<Batch>(8);
    let (recycle_tx, recycled) = std::sync::mpsc::channel::<Batch>();
    let queued = AtomicUsize::new(0);
    let mut counts = Aggregator::new(filter, attributes, events.len());
    std::thread::scope(|scope| -> Result<()> {
        let queued = &queued;
        let reader = scope.spawn(move || match walk {
            Some(walk) => {
                walk.run(BATCH_RECORDS, batches_tx, recycled, queued);
                Ok(())
            }
            None => read_records(&mut perf_file, &mut record_iter, batches_tx, recycled),
        });
        for mut batch in batches_rx {
            // Only the walker counts what it sends (the other reader does
            // not digest): never below zero.
            let _ = queued.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            counts.add(&batch);
            batch.clear();
            // The reader may be done and gone: the batch is then dropped.
            let _ = recycle_tx.send(batch);
        }
        match reader.join() {
            Ok(result) => result.map_err(|e| parse_error(&e)),
            Err(_) => Err(Error::corrupt_input(
                "is corrupt (its records do not parse); record it again",
            )),
        }
    })?;
    let (kernel, kernel_names) = kernel_thread.join().map_err(|_| {
        Error::corrupt_input("is corrupt (its kernel symbols do not parse); record it again")
    })?;
    let kernel_names = if kernel.is_empty() {
        KernelNames::Unavailable
    } else {
        kernel_names
    };
    let counted = counts.finish();
    Ok(Profile {
        facts,
        events,
        groups: counted.groups,
        stacks: counted.stacks,
        comms: counted.comms,
        files: counted.files,
        kernel,
        kernel_names,
        build_ids,
        formats,
        samples: counted.samples,
        total_samples: counted.total_samples,
        file_samples: counted.file_samples,
        file_periods: counted.file_periods,
        lost_samples: counted.lost_samples,
        dwarf_samples: counted.dwarf_samples,
        truncated_user: counted.truncated_user,
    })
}

/// The data section of a file whose layout was checked (in this machine's
/// byte order): its offset and size are header words 5 and 6.
fn data_section(bytes: &[u8]) -> &[u8] {
    let word =
        |at: usize| u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("8 bytes")) as usize;
    let (at, size) = (word(40), word(48));
    &bytes[at..at + size]
}

/// The tracepoint formats netprof stored, aligned with the file's events.
fn tracepoint_formats(events: &[String], section: Option<&[u8]>) -> Vec<Option<Format>> {
    let mut by_name: HashMap<String, Format> = HashMap::new();
    let mut rest = section.unwrap_or_default();
    let mut next = || -> Option<String> {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let s = String::from_utf8_lossy(rest.get(4..4 + len)?).into_owned();
        rest = &rest[4 + len..];
        Some(s)
    };
    while let (Some(name), Some(text)) = (next(), next()) {
        by_name.insert(name, Format::parse(&text));
    }
    events.iter().map(|e| by_name.get(e).cloned()).collect()
}

/// The recording's command line, when its feature section holds one. The
/// string count is checked against the section first: linux-perf-data
/// reserves room for as many strings as the count says, and a corrupt
/// count (up to 2^32) asked for gigabytes and aborted the process.
fn command_line(perf_file: &linux_perf_data::PerfFile) -> Option<String> {
    let section = perf_file.feature_section_data(Feature::CMDLINE)?;
    let count: [u8; 4] = section.get(..4)?.try_into().ok()?;
    let count = match perf_file.endian() {
        linux_perf_data::Endianness::LittleEndian => u32::from_le_bytes(count),
        linux_perf_data::Endianness::BigEndian => u32::from_be_bytes(count),
    };
    // Each string takes at least its 4-byte length.
    if u64::from(count) * 4 > (section.len() - 4) as u64 {
        return None;
    }
    perf_file
        .cmdline()
        .ok()
        .flatten()
        .map(|args| args.join(" "))
}
