//! Every command-line value class, checked once, where clap parses it: a
//! bad value is a one-line usage error (exit status 2) before any work
//! starts, and the library receives typed, valid values.

use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

use netprof::model::off_cpu::StateSelection;
use netprof::record::event::EventRequest;
use netprof::sys::cpus::{self, CpuList};

/// The longest `--duration`: 31 days. Longer is a typo, and larger values
/// overflow the clock arithmetic.
pub const MAX_SECONDS: f64 = 31.0 * 24.0 * 3600.0;

/// The most entries `--bpf-map-entries` may ask for: each takes about
/// 600 bytes of kernel memory (a count in each of two generations, a stack
/// remembered as sent, and room to send it), so this is about 600 MiB.
pub const MAX_MAP_ENTRIES: u32 = 1 << 20;

/// What the kernel accepts for -F when it does not say
/// (kernel.perf_event_max_sample_rate's default).
const DEFAULT_MAX_SAMPLE_RATE: u64 = 100_000;

/// Seconds: finite, positive, at most [`MAX_SECONDS`].
pub fn seconds(text: &str) -> Result<Duration, String> {
    let s: f64 = text
        .trim()
        .parse()
        .map_err(|_| "give a number of seconds such as 10 or 0.5".to_string())?;
    if !(s.is_finite() && s > 0.0 && s <= MAX_SECONDS) {
        return Err(format!(
            "give a positive number of seconds up to {MAX_SECONDS} (31 days)"
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

/// A sampling frequency the kernel accepts: 1 Hz up to
/// kernel.perf_event_max_sample_rate.
pub fn frequency(text: &str) -> Result<u64, String> {
    let max = netprof::sys::perf::max_sample_rate().unwrap_or(DEFAULT_MAX_SAMPLE_RATE);
    let hz: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("give a whole number of Hz from 1 to {max}"))?;
    if hz == 0 {
        return Err("the sampling frequency must be at least 1 Hz".into());
    }
    if hz > max {
        return Err(format!(
            "the kernel samples at most {max} Hz (kernel.perf_event_max_sample_rate); give 1 to {max}"
        ));
    }
    Ok(hz)
}

/// A percentage from 0 to 100.
pub fn percent(text: &str) -> Result<f64, String> {
    let p: f64 = text
        .trim()
        .parse()
        .map_err(|_| "give a percentage such as 0.5".to_string())?;
    if !(0.0..=100.0).contains(&p) {
        return Err("give a percentage from 0 to 100".into());
    }
    Ok(p)
}

/// CPUs of this machine (`-C`): each must be a possible CPU here.
pub fn cpus_of_this_machine(text: &str) -> Result<CpuList, String> {
    let list = CpuList::parse(text).map_err(|e| e.to_string())?;
    let possible = cpus::possible().map_err(|e| e.to_string())?;
    match list.first_outside(&possible) {
        Some(cpu) => Err(format!(
            "CPU {cpu} is not a CPU of this machine (CPUs: {possible})"
        )),
        None => Ok(list),
    }
}

/// CPUs of the machine a recording was made on (`report --cpu`): any CPU
/// Linux can have.
pub fn cpus_of_any_machine(text: &str) -> Result<CpuList, String> {
    CpuList::parse(text).map_err(|e| e.to_string())
}

/// Room in the kernel's maps for `--bpf`: 1 to [`MAX_MAP_ENTRIES`].
pub fn map_entries(text: &str) -> Result<u32, String> {
    let n: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("give a whole number from 1 to {MAX_MAP_ENTRIES}"))?;
    if n == 0 || n > u64::from(MAX_MAP_ENTRIES) {
        return Err(format!(
            "give 1 to {MAX_MAP_ENTRIES} (each entry takes up to 1 KiB of kernel memory)"
        ));
    }
    Ok(n as u32)
}

/// Room for call paths (`funcgraph --max-paths`): as many entries as a BPF
/// map of netprof's may have; the memory they take is checked when the map
/// is made.
pub fn path_entries(text: &str) -> Result<u32, String> {
    map_entries(text).map_err(|_| {
        format!("give 1 to {MAX_MAP_ENTRIES} (each path takes 9.3 KiB of kernel memory)")
    })
}

/// A statistics interval in milliseconds: 10 ms to one minute.
pub fn interval_ms(text: &str) -> Result<Duration, String> {
    let ms: u64 = text
        .trim()
        .parse()
        .map_err(|_| "give a whole number of milliseconds from 10 to 60000".to_string())?;
    if !(10..=60_000).contains(&ms) {
        return Err("give a whole number of milliseconds from 10 to 60000".into());
    }
    Ok(Duration::from_millis(ms))
}

/// `--state`: all, or thread state letters separated by commas.
pub fn states(text: &str) -> Result<StateSelection, String> {
    StateSelection::parse(text).map_err(|e| e.message().to_string())
}

/// `--min-block`: microseconds, up to a minute.
pub fn microseconds(text: &str) -> Result<Duration, String> {
    let us: u64 = text
        .trim()
        .parse()
        .map_err(|_| "give a whole number of microseconds from 0 to 60000000".to_string())?;
    if us > 60_000_000 {
        return Err("give a whole number of microseconds from 0 to 60000000".into());
    }
    Ok(Duration::from_micros(us))
}

/// An event name, checked for syntax (the kernel is asked when recording).
pub fn event(text: &str) -> Result<EventRequest, String> {
    EventRequest::parse(text).map_err(|e| e.to_string())
}

/// One of a few named choices, each with its help, mapped to a library value.
pub fn choice<T: Clone + Send + Sync + 'static>(
    choices: &'static [(&'static str, &'static str, T)],
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(
        choices
            .iter()
            .map(|(name, help, _)| PossibleValue::new(*name).help(*help)),
    )
    .map(move |name: String| {
        choices
            .iter()
            .find(|c| c.0 == name)
            .map(|c| c.2.clone())
            .expect("clap allows only the listed values")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_finite_positive_and_bounded() {
        assert_eq!(seconds("0.5").unwrap(), Duration::from_millis(500));
        for bad in ["inf", "nan", "-1", "0", "1e30", "1.8e19", "1e19", "x", ""] {
            assert!(seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn frequencies_and_percentages() {
        assert_eq!(frequency("999").unwrap(), 999);
        assert!(frequency("0").is_err());
        assert!(frequency("100000000")
            .unwrap_err()
            .contains("perf_event_max_sample_rate"));
        assert_eq!(percent("0.5").unwrap(), 0.5);
        assert!(percent("101").is_err() && percent("-1").is_err() && percent("nan").is_err());
    }

    #[test]
    fn cpus_and_map_entries() {
        assert!(cpus_of_this_machine("0").is_ok());
        assert!(cpus_of_this_machine("8191")
            .unwrap_err()
            .contains("not a CPU of this machine"));
        assert!(cpus_of_this_machine("0-4294967295").is_err());
        assert!(cpus_of_any_machine("0-255").is_ok());
        assert!(map_entries("0").is_err() && map_entries("4294967295").is_err());
        assert_eq!(map_entries("1024").unwrap(), 1024);
        assert!(interval_ms("5").is_err());
    }
}
