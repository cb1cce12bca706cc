//! A mutation run over recordings of every kind netprof reads: its own
//! (plain, `--bpf`, a tracepoint with fields), perf's (file, pipe mode,
//! compressed) and synthetic ones. Each mutant is reported by the binary
//! under a memory limit and a time limit, and must end with status 0 or one
//! line of error: never a signal, a panic, an abort or a hang.
//!
//! The mutations aim where parsers trust the file: header fields, the
//! attribute and feature tables, record sizes and types, truncations, and
//! bit flips in the data. The seed of the generator is fixed, so a failure
//! repeats; `NETPROF_MUTANTS=N` runs N mutants a seed instead of the
//! default.

mod common;

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

/// Mutants per seed recording (seven seeds).
const DEFAULT_MUTANTS: usize = 300;
const TIME_LIMIT: Duration = Duration::from_secs(20);
const MEMORY_LIMIT: u64 = 2 << 30;

/// xorshift64*: small, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Offsets of the records in a file's data section (pipe files: all after
/// the 16-byte header).
fn record_offsets(file: &[u8]) -> Vec<usize> {
    let (start, end) = if u64_at(file, 8) == 16 {
        (16, file.len())
    } else {
        let at = u64_at(file, 40) as usize;
        (at, (at + u64_at(file, 48) as usize).min(file.len()))
    };
    let mut offsets = Vec::new();
    let mut at = start;
    while at + 8 <= end {
        offsets.push(at);
        let size = u16::from_le_bytes([file[at + 6], file[at + 7]]) as usize;
        if size < 8 {
            break;
        }
        at += size;
    }
    offsets
}

/// One mutant of `seed`.
fn mutate(seed: &[u8], records: &[usize], rng: &mut Rng) -> Vec<u8> {
    let mut m = seed.to_vec();
    let extreme = |rng: &mut Rng, len: usize| match rng.below(6) {
        0 => 0,
        1 => u64::MAX,
        2 => len as u64,
        3 => len as u64 + 1 + rng.below(64) as u64,
        4 => 1 << (32 + rng.below(30)),
        _ => rng.next(),
    };
    match rng.below(8) {
        // A header field: sizes and offsets of the sections, feature bits.
        0 => {
            let field = 8 + 8 * rng.below(12);
            let v = extreme(rng, m.len());
            m[field..field + 8].copy_from_slice(&v.to_le_bytes());
        }
        // A record's size, type or misc.
        1 | 2 if !records.is_empty() => {
            let at = records[rng.below(records.len())];
            match rng.below(3) {
                0 => {
                    let size = [0u16, 7, 8, 9, 16, 0xffff][rng.below(6)];
                    m[at + 6..at + 8].copy_from_slice(&size.to_le_bytes());
                }
                1 => {
                    let kind = [
                        1u32, 2, 3, 4, 7, 9, 10, 13, 64, 65, 66, 67, 68, 70, 71, 80, 81, 83,
                    ];
                    m[at..at + 4].copy_from_slice(&kind[rng.below(kind.len())].to_le_bytes());
                }
                _ => m[at + 4] ^= 1 << rng.below(8),
            }
        }
        // A word inside a record: ids, pids, callchain lengths, name sizes.
        3 if !records.is_empty() => {
            let at = records[rng.below(records.len())] + 8 + 8 * rng.below(8);
            if at + 8 <= m.len() {
                let v = extreme(rng, m.len());
                m[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
        }
        // The tables after the data: feature sections, attributes, ids.
        4 => {
            let tail = (u64_at(&m, 40) + u64_at(&m, 48)) as usize;
            if tail + 8 < m.len() {
                let at = tail + 8 * rng.below((m.len() - tail) / 8);
                let n = (m.len() - at).min(8);
                let v = extreme(rng, m.len()).to_le_bytes();
                m[at..at + n].copy_from_slice(&v[..n]);
            }
        }
        // Cut short.
        5 => m.truncate(rng.below(m.len())),
        // Bits flipped anywhere.
        _ => {
            for _ in 0..1 + rng.below(16) {
                let at = rng.below(m.len());
                m[at] ^= 1 << rng.below(8);
            }
        }
    }
    m
}

/// The seed recordings, made here.
fn seeds(dir: &Path) -> Vec<PathBuf> {
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program).args(args).output().unwrap();
        assert!(out.status.success(), "{program} {args:?}: {}", stderr(&out));
        out
    };
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let dd = [
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=4k",
        "count=200000",
        "status=none",
    ];
    let netprof = env!("CARGO_BIN_EXE_netprof");
    let with_dd = |args: &[&str]| -> Vec<String> {
        args.iter()
            .chain(&["--"])
            .chain(&dd)
            .map(|s| s.to_string())
            .collect()
    };
    let plain = path("plain.data");
    run(
        netprof,
        &with_dd(&["record", "-q", "-g", "-F", "499", "-o", &plain])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let counted = path("counted.data");
    run(
        netprof,
        &with_dd(&["record", "-q", "--bpf", "-a", "-g", "-o", &counted])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let tracepoint = path("tracepoint.data");
    run(
        netprof,
        &[
            "record",
            "-q",
            "-g",
            "-e",
            "sched:sched_switch",
            "-o",
            &tracepoint,
            "--",
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do sleep 0.01; done",
        ],
    );
    let perf_file = path("perf.data");
    run(
        "perf",
        &with_dd(&["record", "-q", "-g", "-o", &perf_file])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let compressed = path("perf-z.data");
    run(
        "perf",
        &with_dd(&["record", "-q", "-z", "-g", "-o", &compressed])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let pipe = path("perf-pipe.data");
    let out = run(
        "perf",
        &with_dd(&["record", "-q", "-g", "-o", "-"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    std::fs::write(&pipe, &out.stdout).unwrap();
    let mut s = Synth::new();
    s.comm(7, "dd")
        .mmap(7, 0x400000, 0x500000, "/bin/true")
        .samples(40, 7, 0, &[k("read_zero"), k("vfs_read")], &[0x401000])
        .samples(20, 7, 1, &[k("hsr_forward_skb")], &[]);
    let synthetic = s.write_in(dir, "synthetic.data");
    [plain, counted, tracepoint, perf_file, compressed, pipe]
        .iter()
        .map(PathBuf::from)
        .chain([synthetic])
        .collect()
}

#[test]
fn mutants_of_every_kind_of_recording_end_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = seeds(dir.path());
    let per_seed: usize = std::env::var("NETPROF_MUTANTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_MUTANTS);
    let jobs: Vec<(usize, usize)> = (0..seeds.len())
        .flat_map(|s| (0..per_seed).map(move |i| (s, i)))
        .collect();
    let seed_bytes: Vec<Vec<u8>> = seeds.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let record_offsets: Vec<Vec<usize>> = seed_bytes.iter().map(|b| record_offsets(b)).collect();
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let (read, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let start = Instant::now();
    std::thread::scope(|scope| {
        for worker in 0..2 {
            let (jobs, next, failures, read, refused) = (&jobs, &next, &failures, &read, &refused);
            let (seed_bytes, record_offsets) = (&seed_bytes, &record_offsets);
            let dir = dir.path();
            scope.spawn(move || {
                while let Some(&(s, i)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((s as u64) << 32 | i as u64));
                    let mutant = mutate(&seed_bytes[s], &record_offsets[s], &mut rng);
                    let file = dir.join(format!("mutant-{worker}"));
                    std::fs::write(&file, &mutant).unwrap();
                    match report(&file) {
                        Ok(0) => read.fetch_add(1, Ordering::Relaxed),
                        Ok(_) => refused.fetch_add(1, Ordering::Relaxed),
                        Err(problem) => {
                            // Kept where cargo keeps test files, to replay.
                            let kept = Path::new(env!("CARGO_TARGET_TMPDIR"))
                                .join(format!("failed-mutant-{s}-{i}.data"));
                            std::fs::copy(&file, &kept).unwrap();
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("{} ({problem})", kept.display()));
                            0
                        }
                    };
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    eprintln!(
        "{} mutants of {} seeds in {:.1}s: {} read, {} refused in one line, {} crashed or hung",
        jobs.len(),
        seeds.len(),
        start.elapsed().as_secs_f64(),
        read.into_inner(),
        refused.into_inner(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A command line claiming four billion strings: linux-perf-data reserved
/// room for all of them (gigabytes) before reading one, and the report
/// aborted under the memory limit. The count is now checked against the
/// section first, and the recording reads without its command line.
#[test]
fn a_command_line_claiming_billions_of_strings_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("cmd.data");
    let out = netprof(&["record", "-o", data.to_str().unwrap(), "--", "true"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut bytes = std::fs::read(&data).unwrap();
    const HEADER_CMDLINE: u32 = 11;
    let (at, size) = feature_section(&bytes, HEADER_CMDLINE).expect("a command line section");
    assert!(size >= 4);
    bytes[at..at + 4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    std::fs::write(&data, &bytes).unwrap();
    assert_eq!(report(&data), Ok(0));
}

/// Reports `file` under the limits; its exit status, or what went wrong.
fn report(file: &Path) -> Result<i32, String> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netprof"));
    command
        .args(["report", "--folded", "-i"])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: MEMORY_LIMIT,
                rlim_max: MEMORY_LIMIT,
            };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| e.to_string())?;
    let start = Instant::now();
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if start.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("hung (killed after {TIME_LIMIT:?})"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let err = stderr(&out);
    if let Some(signal) = out.status.signal() {
        return Err(format!("killed by signal {signal}: {err}"));
    }
    let code = out.status.code().unwrap_or(-1);
    if !(0..=7).contains(&code) || err.contains("panicked") || err.contains("internal error") {
        return Err(format!("exit status {code}: {err}"));
    }
    if code != 0 && (err.trim_end().lines().count() != 1 || !err.starts_with("netprof: error: ")) {
        return Err(format!("not one line: {err}"));
    }
    Ok(code)
}
