//! Helpers shared by the integration tests: running the binary, and writing
//! synthetic recordings whose content is known exactly.
#![allow(dead_code)] // each test crate uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// Error kinds by name, for assert_error (not every test crate uses them).
use netprof::perfdata::attr::{EventAttr, Rate};
use netprof::perfdata::writer::{
    build_id_feature, event_desc_feature, BuildId, EventDesc, PerfDataWriter, RecordBuilder,
};
use netprof::perfdata::{
    Mapping, FEATURE_NETPROF_KALLSYMS, HEADER_BUILD_ID, HEADER_EVENT_DESC, PERF_CONTEXT_KERNEL,
    PERF_CONTEXT_USER,
};
#[allow(unused_imports)]
pub use netprof::ErrorKind::{self, *};

/// A C program of the tests (`tests/SOURCE.c`, SOURCE as `off_cpu/busy_sleep`)
/// built with frame pointers into DIR, under its file name.
pub fn build_c(dir: &Path, source: &str) -> PathBuf {
    let binary = dir.join(Path::new(source).file_name().unwrap());
    let out = Command::new("clang")
        .args(["-O1", "-fno-omit-frame-pointer", "-o"])
        .arg(&binary)
        .arg(format!("{}/tests/{source}.c", env!("CARGO_MANIFEST_DIR")))
        .output()
        .expect("clang (.ci/run installs it)");
    assert!(out.status.success(), "{source}: {}", stderr(&out));
    binary
}

pub fn netprof(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args(args)
        .output()
        .expect("netprof runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a failure of `kind` (its documented exit status) with exactly
/// one line of error naming `needle`, and no panic.
pub fn assert_error(o: &Output, kind: ErrorKind, needle: &str) {
    let err = stderr(o);
    assert!(
        !o.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert_eq!(
        o.status.code(),
        Some(i32::from(kind.exit_code())),
        "exit status of a {kind:?} error; stderr: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "panic: {err}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected: {err}"
    );
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
}

pub const KALLSYMS: &str = "\
ffffffff81000000 T _text
ffffffff81100000 T entry_SYSCALL_64
ffffffff81100400 T do_syscall_64
ffffffff81200000 T ksys_read
ffffffff81200800 T vfs_read
ffffffff81201000 t read_zero
ffffffff81300000 T net_rx_action
ffffffff81300800 T __netif_receive_skb
ffffffff81400000 T do_idle
ffffffff81400800 T pv_native_safe_halt
ffffffffc0001000 t hsr_forward_skb\t[hsr]
ffffffffc0001800 t hsr_handle_frame\t[hsr]
ffffffffc0002000 t hsr_get_node\t[hsr]
ffffffffc0100000 t bpf_prog_6deef7357e7b4530_xdp_count\t[bpf]
";

/// Addresses inside the functions above (an offset into each).
pub fn k(name: &str) -> u64 {
    let line = KALLSYMS
        .lines()
        .find(|l| l.split([' ', '\t']).nth(2) == Some(name))
        .expect("known symbol");
    u64::from_str_radix(&line[..16], 16).unwrap() + 0x10
}

/// A synthetic recording: samples with known stacks.
pub struct Synth {
    records: Vec<Vec<u8>>,
    pub kallsyms: Option<String>,
    pub build_ids: Vec<BuildId>,
    time: u64,
    /// How the event samples (cpu-clock at 999 Hz unless changed).
    pub rate: Rate,
    /// The period field of the samples added from now on.
    pub period: u64,
    /// The event's name (cpu-clock unless changed).
    pub event: String,
}

pub const EVENT_ID: u64 = 7;

impl Synth {
    pub fn new() -> Self {
        Synth {
            records: Vec::new(),
            kallsyms: Some(KALLSYMS.to_string()),
            build_ids: Vec::new(),
            time: 1,
            rate: Rate::Frequency(999),
            period: 1,
            event: "cpu-clock".to_string(),
        }
    }

    pub fn comm(&mut self, pid: u32, name: &str) -> &mut Self {
        self.records
            .push(RecordBuilder::comm(pid, pid, name.as_bytes(), EVENT_ID));
        self
    }

    /// Any record, as bytes (header included).
    pub fn raw(&mut self, record: Vec<u8>) -> &mut Self {
        self.records.push(record);
        self
    }

    pub fn mmap(&mut self, pid: u32, start: u64, end: u64, path: &str) -> &mut Self {
        self.mmap_at(pid, start, end, 0, path)
    }

    pub fn mmap_at(&mut self, pid: u32, start: u64, end: u64, pgoff: u64, path: &str) -> &mut Self {
        let m = Mapping {
            start,
            end,
            pgoff,
            path: path.to_string(),
        };
        self.records.push(RecordBuilder::mmap2(pid, &m, EVENT_ID));
        self
    }

    /// A mapping made during the recording, after the samples added so far
    /// (synthesized maps are dated 0: from before the recording started).
    pub fn mmap_later(
        &mut self,
        pid: u32,
        start: u64,
        end: u64,
        pgoff: u64,
        path: &str,
    ) -> &mut Self {
        let m = Mapping {
            start,
            end,
            pgoff,
            path: path.to_string(),
        };
        let mut record = RecordBuilder::mmap2(pid, &m, EVENT_ID);
        // The sample_id trailer: pid, tid, time, id, cpu.
        let at = record.len() - 24;
        record[at..at + 8].copy_from_slice(&self.time.to_le_bytes());
        self.time += 1;
        self.records.push(record);
        self
    }

    /// `n` samples of `pid` on `cpu` with kernel frames and user frames, each
    /// list leaf first, in the layout netprof's attr declares.
    pub fn samples(
        &mut self,
        n: u32,
        pid: u32,
        cpu: u32,
        kernel: &[u64],
        user: &[u64],
    ) -> &mut Self {
        for _ in 0..n {
            let mut chain = Vec::new();
            if !kernel.is_empty() {
                chain.push(PERF_CONTEXT_KERNEL);
                chain.extend_from_slice(kernel);
            }
            if !user.is_empty() {
                chain.push(PERF_CONTEXT_USER);
                chain.extend_from_slice(user);
            }
            let ip = kernel.first().or(user.first()).copied().unwrap_or(0);
            let misc: u16 = if kernel.is_empty() { 2 } else { 1 };
            let mut body = Vec::new();
            body.extend_from_slice(&ip.to_le_bytes());
            body.extend_from_slice(&pid.to_le_bytes());
            body.extend_from_slice(&pid.to_le_bytes());
            body.extend_from_slice(&self.time.to_le_bytes());
            body.extend_from_slice(&EVENT_ID.to_le_bytes());
            body.extend_from_slice(&cpu.to_le_bytes());
            body.extend_from_slice(&0u32.to_le_bytes());
            body.extend_from_slice(&self.period.to_le_bytes());
            body.extend_from_slice(&(chain.len() as u64).to_le_bytes());
            for a in &chain {
                body.extend_from_slice(&a.to_le_bytes());
            }
            let mut rec = Vec::new();
            rec.extend_from_slice(&9u32.to_le_bytes());
            rec.extend_from_slice(&misc.to_le_bytes());
            rec.extend_from_slice(&((body.len() + 8) as u16).to_le_bytes());
            rec.extend_from_slice(&body);
            self.records.push(rec);
            self.time += 1;
        }
        self
    }

    pub fn write(&self, path: &Path) {
        let mut w = PerfDataWriter::create(path).unwrap();
        for r in &self.records {
            w.write_record(r).unwrap();
        }
        w.finish_round().unwrap();
        let events = vec![EventDesc {
            attr: EventAttr {
                type_: 1,
                config: 0,
                rate: self.rate,
                callchain: true,
                raw: false,
                inherit: false,
                enable_on_exec: false,
                exclude_user: false,
                exclude_kernel: false,
            },
            name: self.event.clone(),
            ids: vec![EVENT_ID],
        }];
        let mut features = vec![(HEADER_EVENT_DESC, event_desc_feature(&events).into())];
        if !self.build_ids.is_empty() {
            features.push((HEADER_BUILD_ID, build_id_feature(&self.build_ids).into()));
        }
        if let Some(k) = &self.kallsyms {
            features.push((FEATURE_NETPROF_KALLSYMS, k.clone().into_bytes().into()));
        }
        w.finish(&events, &features).unwrap();
    }

    pub fn write_in(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        self.write(&p);
        p
    }
}

/// The little-endian u64 at `at` of a file, 0 past its end.
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap()))
}

/// The feature sections' table follows the data section; its entries are
/// (offset, size) pairs, one per feature bit set in the header, in order.
pub fn feature_section(file: &[u8], feature: u32) -> Option<(usize, usize)> {
    let bits = |word: u32| u64_at(file, 72 + 8 * word as usize);
    if bits(feature / 64) & (1 << (feature % 64)) == 0 {
        return None;
    }
    let before: u32 = (0..feature)
        .filter(|&f| bits(f / 64) & (1 << (f % 64)) != 0)
        .count() as u32;
    let table = (u64_at(file, 40) + u64_at(file, 48)) as usize;
    let entry = table + 16 * before as usize;
    Some((
        u64_at(file, entry) as usize,
        u64_at(file, entry + 8) as usize,
    ))
}
