//! CPU lists such as `0,2-3`: the format of `-C`, `--cpu` and of sysfs's
//! online and possible CPU files.

use std::fmt;

use crate::error::{Error, Result};

/// The highest CPU number any Linux kernel can have (x86-64's NR_CPUS
/// limit is 8192): a list naming more is a typo, and expanding it would
/// allocate for nothing.
pub const MAX_CPU: u32 = 8191;

/// Sorted, distinct CPU numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuList(Vec<u32>);

impl CpuList {
    /// Parses `0,2-3`; every CPU must be at most [`MAX_CPU`].
    pub fn parse(s: &str) -> Result<CpuList> {
        let bad = || Error::bad_argument(format!("bad CPU list '{s}'; write it like 0,2-3"));
        let number = |t: &str| -> Result<u32> {
            let n: u64 = t.trim().parse().map_err(|_| bad())?;
            if n > u64::from(MAX_CPU) {
                return Err(Error::bad_argument(format!(
                    "CPU {n} in '{s}' is beyond the {} CPUs Linux supports",
                    MAX_CPU + 1
                )));
            }
            Ok(n as u32)
        };
        let mut cpus = Vec::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (number(a)?, number(b)?);
                    if a > b {
                        return Err(bad());
                    }
                    cpus.extend(a..=b);
                }
                None => cpus.push(number(part)?),
            }
        }
        if cpus.is_empty() {
            return Err(Error::bad_argument("empty CPU list; write it like 0,2-3"));
        }
        cpus.sort_unstable();
        cpus.dedup();
        Ok(CpuList(cpus))
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, cpu: u32) -> bool {
        self.0.binary_search(&cpu).is_ok()
    }

    /// The first CPU of `self` that `other` lacks.
    pub fn first_outside(&self, other: &CpuList) -> Option<u32> {
        self.0.iter().copied().find(|&c| !other.contains(c))
    }
}

impl fmt::Display for CpuList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&text.join(","))
    }
}

fn read_sysfs(file: &str) -> Result<CpuList> {
    let path = format!("/sys/devices/system/cpu/{file}");
    let text =
        std::fs::read_to_string(&path).map_err(|e| Error::io(format!("cannot read {path}"), &e))?;
    parse_sysfs(&path, &text)
}

fn parse_sysfs(path: &str, text: &str) -> Result<CpuList> {
    CpuList::parse(text.trim()).map_err(|e| Error::failed(format!("cannot parse {path}: {e}")))
}

const ONLINE: &str = "/sys/devices/system/cpu/online";

/// The online CPUs, read again and again through one open file: a
/// recording checks them four times a second, and opening the sysfs path
/// each time cost more than reading it (sysfs makes the text anew at each
/// read from the start).
pub struct OnlineCpus {
    file: std::fs::File,
}

impl OnlineCpus {
    pub fn open() -> Result<OnlineCpus> {
        let file = std::fs::File::open(ONLINE)
            .map_err(|e| Error::io(format!("cannot read {ONLINE}"), &e))?;
        Ok(OnlineCpus { file })
    }

    /// The CPUs online now.
    pub fn read(&self) -> Result<CpuList> {
        use std::os::unix::fs::FileExt;
        let mut text = Vec::new();
        // A sysfs attribute is at most a page, and each read makes its text
        // anew: a read shorter than the buffer is the whole of it, and one
        // more read to see the end would cost as much again.
        let mut chunk = [0u8; 4096];
        loop {
            let n = self
                .file
                .read_at(&mut chunk, text.len() as u64)
                .map_err(|e| Error::io(format!("cannot read {ONLINE}"), &e))?;
            text.extend_from_slice(&chunk[..n]);
            if n < chunk.len() {
                break;
            }
        }
        parse_sysfs(ONLINE, &String::from_utf8_lossy(&text))
    }
}

/// The CPUs online now.
pub fn online() -> Result<CpuList> {
    OnlineCpus::open()?.read()
}

/// The CPUs this machine can ever bring online.
pub fn possible() -> Result<CpuList> {
    read_sysfs("possible")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_cpus_read_through_one_file_match_a_fresh_read_every_time() {
        let file = OnlineCpus::open().unwrap();
        for _ in 0..3 {
            let fresh = std::fs::read_to_string(ONLINE).unwrap();
            assert_eq!(file.read().unwrap(), CpuList::parse(fresh.trim()).unwrap());
        }
    }

    #[test]
    fn lists_parse_sorted_and_distinct() {
        assert_eq!(CpuList::parse("3,0,2-3").unwrap().as_slice(), &[0, 2, 3]);
        assert_eq!(CpuList::parse("1").unwrap().to_string(), "1");
        assert!(CpuList::parse("3-1").is_err());
        assert!(CpuList::parse("x").is_err());
        assert!(CpuList::parse("").is_err());
    }

    #[test]
    fn huge_ranges_are_refused_before_they_are_expanded() {
        let err = CpuList::parse("0-4294967295").unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::BadArgument);
        assert!(err.message().contains("beyond"), "{err}");
        assert!(CpuList::parse("0-99999999999999999999").is_err());
    }

    #[test]
    fn this_machine_has_cpus() {
        let online = online().unwrap();
        assert!(!online.is_empty());
        assert_eq!(online.first_outside(&possible().unwrap()), None);
    }
}
