//! `netprof latency`: how long each call of kernel or module functions
//! takes, measured by an entry and a return probe and aggregated into
//! histograms in the kernel (bpf/latency.bpf.c), so that a function called
//! a million times a second costs no copying to user space.
//!
//! Probes go through a multi-kprobe link pair (all functions in two links)
//! where the kernel has fprobe, else one kprobe link pair per function. The
//! links and the program belong to this process's descriptors: nothing
//! stays attached after netprof ends, however it ends.

use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{KprobeMultiOpts, KprobeOpts, Link, MapCore, MapFlags};
use serde::{Deserialize, Serialize};

use crate::kprobe::Function;

mod skeleton {
    include!(concat!(env!("OUT_DIR"), "/latency.skel.rs"));
}

use skeleton::LatencySkelBuilder;

/// Buckets of the kernel's histogram (see bpf/latency.bpf.c).
const BUCKETS: usize = (39 - 3) * 16 + 16;

/// How the histograms are split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breakdown {
    None,
    PerCpu,
    PerProcess,
}

#[derive(Clone, Debug)]
pub struct LatencyOptions {
    /// Function names or globs.
    pub functions: Vec<String>,
    pub module: Option<String>,
    /// Only calls made by these processes (all when empty).
    pub pids: Vec<u32>,
    /// Until Ctrl-C when absent.
    pub duration: Option<Duration>,
    pub breakdown: Breakdown,
}

/// Latencies of one function (in one CPU or process, with a breakdown).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FunctionLatency {
    pub function: String,
    pub module: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub pid: Option<u32>,
    pub count: u64,
    pub min_ns: u64,
    pub max_ns: u64,
    pub mean_ns: f64,
    pub p25_ns: f64,
    pub median_ns: f64,
    pub p75_ns: f64,
    pub iqr_ns: f64,
    pub p90_ns: f64,
    pub p99_ns: f64,
    /// Non-empty buckets: [low, high) in ns.
    pub histogram: Vec<Bucket>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bucket {
    pub low_ns: u64,
    pub high_ns: u64,
    pub count: u64,
}

/// A whole measurement, as `--json` writes it (schema netprof-latency/1).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatencyReport {
    pub schema: String,
    pub duration_s: f64,
    /// How the probes were attached: kprobe.multi or kprobe.
    pub probes: String,
    /// Calls not measured for want of room in the kernel's maps, and
    /// returns the kernel could not probe (kretprobe instances exhausted).
    pub dropped: u64,
    pub missed_returns: u64,
    pub functions: Vec<FunctionLatency>,
}

pub const SCHEMA: &str = "netprof-latency/1";

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// The functions the patterns name, each checked to exist and be probe-able.
pub fn resolve_functions(patterns: &[String], module: Option<&str>) -> Result<Vec<Function>> {
    crate::kprobe::KprobePmu::find()?;
    let mut functions: Vec<Function> = Vec::new();
    for pattern in patterns {
        if pattern.contains(['*', '?']) {
            let matched = crate::probe::probeable(module, Some(pattern))?;
            if matched.is_empty() {
                bail!(
                    "no probe-able kernel function matches '{pattern}'; list them with `netprof probe --list '{pattern}'`"
                );
            }
            functions.extend(matched);
        } else {
            functions.push(crate::kprobe::resolve_function(pattern, module)?);
        }
    }
    functions.sort_by(|a, b| (&a.module, &a.name).cmp(&(&b.module, &b.name)));
    functions.dedup_by(|a, b| a.name == b.name && a.module == b.module);
    if functions.len() > crate::probe::MAX_PROBES_WITHOUT_FORCE {
        bail!(
            "{} functions match; timing that many slows every call, narrow the pattern",
            functions.len()
        );
    }
    Ok(functions)
}

/// Probes `functions`, waits for the duration (or Ctrl-C), and returns
/// their latency histograms.
pub fn measure(
    functions: &[Function],
    opts: &LatencyOptions,
    on_start: impl FnOnce(&str),
) -> Result<LatencyReport> {
    crate::libbpf_log::capture();
    let storage: &'static mut MaybeUninit<libbpf_rs::OpenObject> =
        Box::leak(Box::new(MaybeUninit::uninit()));
    let mut open = LatencySkelBuilder::default()
        .open(storage)
        .map_err(|e| load_error(&e))?;
    let multi = crate::multiprobe::available();
    let progs = &mut open.progs;
    progs.latency_entry_multi.set_autoload(multi);
    progs.latency_return_multi.set_autoload(multi);
    progs.latency_entry.set_autoload(!multi);
    progs.latency_return.set_autoload(!multi);
    let rodata = open
        .maps
        .rodata_data
        .as_deref_mut()
        .context("internal error: the BPF program has no read-only data")?;
    rodata.filter_pids = !opts.pids.is_empty() as u8;
    rodata.breakdown = match opts.breakdown {
        Breakdown::None => 0,
        Breakdown::PerCpu => 1,
        Breakdown::PerProcess => 2,
    };
    let skeleton = open.load().map_err(|e| load_error(&e))?;
    for pid in &opts.pids {
        skeleton
            .maps
            .pids
            .update(&pid.to_ne_bytes(), &[1], MapFlags::ANY)
            .context("cannot fill the BPF process filter")?;
    }

    let names: Vec<String> = functions.iter().map(|f| f.name.clone()).collect();
    let cookies: Vec<u64> = (0..functions.len() as u64).collect();
    let mut links: Vec<Link> = Vec::new();
    let refused = |e: libbpf_rs::Error, what: &str| {
        anyhow::anyhow!(
            "the kernel refuses {what} ({e}): a function is notrace, on the kprobe blacklist, or inlined; \
             `netprof probe --list` shows what can be probed"
        )
    };
    let probes = if multi {
        for retprobe in [true, false] {
            let link = if retprobe {
                &skeleton.progs.latency_return_multi
            } else {
                &skeleton.progs.latency_entry_multi
            }
            .attach_kprobe_multi_with_opts(KprobeMultiOpts {
                symbols: names.clone(),
                cookies: cookies.clone(),
                retprobe,
                ..Default::default()
            })
            .map_err(|e| refused(e, &format!("multi-kprobes on {} functions", names.len())))?;
            links.push(link);
        }
        "kprobe.multi"
    } else {
        for (name, &cookie) in names.iter().zip(&cookies) {
            for retprobe in [true, false] {
                let prog = if retprobe {
                    &skeleton.progs.latency_return
                } else {
                    &skeleton.progs.latency_entry
                };
                let opts = KprobeOpts {
                    cookie,
                    ..Default::default()
                };
                let link = prog
                    .attach_kprobe_with_opts(retprobe, name, opts)
                    .map_err(|e| refused(e, &format!("a probe on {name}")))?;
                links.push(link);
            }
        }
        "kprobe"
    };

    STOP.store(false, Ordering::SeqCst);
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, request_stop as *const () as libc::sighandler_t) };
    }
    on_start(probes);
    let start = Instant::now();
    while !STOP.load(Ordering::SeqCst) && opts.duration.is_none_or(|d| start.elapsed() < d) {
        let left = opts.duration.map_or(Duration::from_millis(100), |d| {
            d.saturating_sub(start.elapsed())
        });
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
    let duration_s = start.elapsed().as_secs_f64();
    let missed_returns = links.iter().map(missed_of).sum();
    // Detach before reading: the histograms no longer move.
    drop(links);

    let mut report = LatencyReport {
        schema: SCHEMA.into(),
        duration_s,
        probes: probes.into(),
        dropped: 0,
        missed_returns,
        functions: Vec::new(),
    };
    for key in skeleton.maps.hists.keys() {
        let Some(per_cpu) = skeleton.maps.hists.lookup_percpu(&key, MapFlags::ANY)? else {
            continue;
        };
        let word = |at: usize| u32::from_ne_bytes(key[at..at + 4].try_into().expect("u32"));
        let (index, group) = (word(0) as usize, word(4));
        let Some(function) = functions.get(index) else {
            continue;
        };
        let mut latency = summarize(&function.name, function.module.clone(), &per_cpu);
        match opts.breakdown {
            Breakdown::PerCpu => latency.cpu = Some(group),
            Breakdown::PerProcess => latency.pid = Some(group),
            Breakdown::None => {}
        }
        report.functions.push(latency);
    }
    for reason in 0u32..2 {
        if let Some(per_cpu) = skeleton
            .maps
            .dropped
            .lookup_percpu(&reason.to_ne_bytes(), MapFlags::ANY)?
        {
            report.dropped += per_cpu.iter().map(|v| read_u64(v, 0)).sum::<u64>();
        }
    }
    // Functions never called are listed too, with no calls.
    for f in functions {
        if !report
            .functions
            .iter()
            .any(|l| l.function == f.name && l.module == f.module)
        {
            report
                .functions
                .push(summarize(&f.name, f.module.clone(), &[]));
        }
    }
    report.functions.sort_by(|a, b| {
        (&a.module, &a.function, a.cpu, a.pid).cmp(&(&b.module, &b.function, b.cpu, b.pid))
    });
    Ok(report)
}

/// Returns the kernel skipped for want of kretprobe instances (multi-kprobe
/// links report them; 0 where the kernel does not say).
fn missed_of(link: &Link) -> u64 {
    match libbpf_rs::query::LinkInfo::from_fd(link.as_fd()) {
        Ok(info) => match info.info {
            libbpf_rs::query::LinkTypeInfo::KprobeMulti(k) => k.missed,
            _ => 0,
        },
        Err(_) => 0,
    }
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(bytes[at..at + 8].try_into().expect("u64"))
}

/// [low, high) of a histogram bucket, in ns (bucket_of() in the BPF program).
pub fn bucket_bounds(bucket: usize) -> (u64, u64) {
    if bucket < 16 {
        return (bucket as u64, bucket as u64 + 1);
    }
    let exponent = bucket / 16 + 3;
    let width = 1u64 << (exponent - 4);
    let low = (16 + (bucket % 16) as u64) * width;
    (low, low + width)
}

/// One histogram from the per-CPU copies of the kernel's value.
fn summarize(function: &str, module: Option<String>, per_cpu: &[Vec<u8>]) -> FunctionLatency {
    let mut count = 0;
    let mut sum = 0u64;
    let mut min = u64::MAX;
    let mut max = 0;
    let mut buckets = vec![0u64; BUCKETS];
    for value in per_cpu {
        let n = read_u64(value, 0);
        if n == 0 {
            continue;
        }
        count += n;
        sum = sum.wrapping_add(read_u64(value, 8));
        min = min.min(read_u64(value, 16));
        max = max.max(read_u64(value, 24));
        for (i, b) in buckets.iter_mut().enumerate() {
            *b += read_u64(value, 32 + 8 * i);
        }
    }
    let histogram: Vec<Bucket> = buckets
        .iter()
        .enumerate()
        .filter(|(_, &c)| c > 0)
        .map(|(i, &c)| {
            let (low_ns, high_ns) = bucket_bounds(i);
            Bucket {
                low_ns,
                high_ns,
                count: c,
            }
        })
        .collect();
    let min = if count == 0 { 0 } else { min };
    let q = |p: f64| quantile(&histogram, count, p, min, max);
    FunctionLatency {
        function: function.to_string(),
        module,
        cpu: None,
        pid: None,
        count,
        min_ns: min,
        max_ns: max,
        mean_ns: if count > 0 {
            sum as f64 / count as f64
        } else {
            0.0
        },
        p25_ns: q(0.25),
        median_ns: q(0.5),
        p75_ns: q(0.75),
        iqr_ns: q(0.75) - q(0.25),
        p90_ns: q(0.9),
        p99_ns: q(0.99),
        histogram,
    }
}

/// The p-quantile of a histogram, interpolating linearly inside the bucket
/// it falls in, and kept within the exact minimum and maximum.
pub fn quantile(histogram: &[Bucket], count: u64, p: f64, min: u64, max: u64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    let rank = p * count as f64;
    let mut below = 0.0;
    for b in histogram {
        let here = b.count as f64;
        if below + here >= rank {
            let low = b.low_ns.max(min) as f64;
            let high = b.high_ns.min(max.saturating_add(1)) as f64;
            let within = ((rank - below) / here).clamp(0.0, 1.0);
            return low + (high - low) * within;
        }
        below += here;
    }
    max as f64
}

fn load_error(e: &libbpf_rs::Error) -> anyhow::Error {
    let text = e.to_string();
    if text.contains("EPERM") || text.contains("Operation not permitted") {
        anyhow::anyhow!("no permission to load netprof's latency BPF program ({e}); latency needs root (CAP_BPF and CAP_PERFMON)")
    } else {
        let reason = crate::libbpf_log::verifier_reason()
            .map(|r| format!("; the verifier says: {r}"))
            .unwrap_or_default();
        anyhow::anyhow!("the kernel refuses netprof's latency BPF program ({e}{reason})")
    }
}

/// A duration for people: 950ns, 12.3us, 4.56ms, 1.23s.
pub fn human_ns(ns: f64) -> String {
    match ns {
        n if n < 1e3 => format!("{n:.0}ns"),
        n if n < 1e6 => format!("{:.1}us", n / 1e3),
        n if n < 1e9 => format!("{:.2}ms", n / 1e6),
        n => format!("{:.2}s", n / 1e9),
    }
}

/// The text report: per function, the figures, then the histogram by
/// powers of two (the quantiles use the finer buckets).
pub fn render_text(report: &LatencyReport, out: &mut impl std::io::Write) -> std::io::Result<()> {
    for f in &report.functions {
        let module = f
            .module
            .as_ref()
            .map(|m| format!(" [{m}]"))
            .unwrap_or_default();
        let group = match (f.cpu, f.pid) {
            (Some(cpu), _) => format!("  on CPU {cpu}"),
            (_, Some(pid)) => format!("  in process {pid}"),
            _ => String::new(),
        };
        writeln!(out, "{}{module}{group}", f.function)?;
        if f.count == 0 {
            writeln!(out, "  no calls\n")?;
            continue;
        }
        let h = |v: f64| human_ns(v);
        writeln!(
            out,
            "  calls {}  min {}  median {}  IQR {} ({} - {})  p90 {}  p99 {}  max {}  mean {}",
            f.count,
            h(f.min_ns as f64),
            h(f.median_ns),
            h(f.iqr_ns),
            h(f.p25_ns),
            h(f.p75_ns),
            h(f.p90_ns),
            h(f.p99_ns),
            h(f.max_ns as f64),
            h(f.mean_ns)
        )?;
        let mut rows: Vec<(u64, u64, u64)> = Vec::new();
        for b in &f.histogram {
            let low = if b.low_ns == 0 {
                0
            } else {
                1u64 << b.low_ns.ilog2()
            };
            match rows.last_mut() {
                Some(row) if row.0 == low => row.2 += b.count,
                _ => rows.push((low, (low * 2).max(1), b.count)),
            }
        }
        let peak = rows.iter().map(|r| r.2).max().unwrap_or(1);
        for (low, high, count) in rows {
            let bar = "#".repeat(((count * 40).div_ceil(peak)) as usize);
            writeln!(
                out,
                "  {:>9} - {:<9} {:>10} |{bar:<40}|",
                h(low as f64),
                h(high as f64),
                count
            )?;
        }
        writeln!(out)?;
    }
    if report.dropped > 0 || report.missed_returns > 0 {
        writeln!(
            out,
            "# {} calls not measured (kernel maps full), {} returns missed by the kernel",
            report.dropped, report.missed_returns
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_line_and_stay_narrow() {
        let mut next = 0;
        for b in 0..BUCKETS {
            let (low, high) = bucket_bounds(b);
            assert_eq!(
                low,
                next,
                "bucket {b} starts where {} ended",
                b.saturating_sub(1)
            );
            assert!(high > low);
            // At most 1/16 of the value wide above the exact range.
            assert!(
                low < 16 || (high - low) * 16 <= low,
                "bucket {b}: {low}..{high}"
            );
            next = high;
        }
        assert_eq!(bucket_bounds(BUCKETS - 1).1, 1 << 40);
    }

    #[test]
    fn quantiles_interpolate_within_buckets_and_respect_min_max() {
        let hist = [
            Bucket {
                low_ns: 100,
                high_ns: 110,
                count: 50,
            },
            Bucket {
                low_ns: 200,
                high_ns: 220,
                count: 50,
            },
        ];
        assert_eq!(quantile(&hist, 100, 0.25, 100, 219), 105.0);
        assert_eq!(quantile(&hist, 100, 0.5, 100, 219), 110.0);
        assert_eq!(quantile(&hist, 100, 0.75, 100, 219), 210.0);
        // The maximum bounds the last bucket.
        assert!(quantile(&hist, 100, 1.0, 100, 204) <= 205.0);
        assert_eq!(quantile(&[], 0, 0.5, 0, 0), 0.0);
    }

    #[test]
    fn summary_adds_the_cpus_copies() {
        let value = |count: u64, min: u64, max: u64, bucket: usize| {
            let mut words = vec![0u64; 4 + BUCKETS];
            words[0] = count;
            words[1] = count * 1000;
            words[2] = min;
            words[3] = max;
            words[4 + bucket] = count;
            words
                .iter()
                .flat_map(|w| w.to_ne_bytes())
                .collect::<Vec<u8>>()
        };
        // 1000 ns falls in bucket (9-3)*16 + ((1000 >> 5) & 15) = 96 + 15.
        let per_cpu = vec![
            value(3, 990, 1010, 111),
            value(1, 1000, 1000, 111),
            value(0, 0, 0, 0),
        ];
        let s = summarize("f", None, &per_cpu);
        assert_eq!(
            (s.count, s.min_ns, s.max_ns, s.mean_ns),
            (4, 990, 1010, 1000.0)
        );
        assert_eq!(
            s.histogram,
            vec![Bucket {
                low_ns: 992,
                high_ns: 1024,
                count: 4
            }]
        );
        assert!((990.0..=1010.0).contains(&s.median_ns));
    }
}
