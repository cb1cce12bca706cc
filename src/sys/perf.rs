//! perf_event's system-wide settings and PMUs, for validation and for
//! error messages that name the setting to change.

use std::path::Path;

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// kernel.perf_event_paranoid, as text (for messages).
pub fn paranoid() -> Option<String> {
    read_trimmed("/proc/sys/kernel/perf_event_paranoid")
}

/// kernel.perf_event_max_sample_rate: the highest -F the kernel accepts.
pub fn max_sample_rate() -> Option<u64> {
    read_trimmed("/proc/sys/kernel/perf_event_max_sample_rate")?
        .parse()
        .ok()
}

/// The PMUs this machine has (`cpu` is the hardware one), sorted.
pub fn pmus() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(Path::new("/sys/bus/event_source/devices"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
