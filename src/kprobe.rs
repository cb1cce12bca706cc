//! What the running kernel offers for probes: the kprobe PMU, and the
//! functions (of vmlinux and of loaded modules) a probe can name.

use anyhow::{bail, Result};

use crate::event::did_you_mean;
use crate::suggest::close_names;

const PMU_DIR: &str = "/sys/bus/event_source/devices/kprobe";

/// The kernel's kprobe PMU: a perf event type whose probes live exactly as
/// long as their file descriptor.
pub struct KprobePmu {
    pub type_: u32,
    pub retprobe_bit: u32,
}

impl KprobePmu {
    pub fn find() -> Result<Self> {
        let read = |p: &str| std::fs::read_to_string(format!("{PMU_DIR}/{p}")).ok();
        let Some(type_) = read("type").and_then(|t| t.trim().parse().ok()) else {
            return Err(no_kprobes());
        };
        // format/retprobe reads "config:N".
        let retprobe_bit = read("format/retprobe")
            .and_then(|f| f.trim().strip_prefix("config:")?.parse().ok())
            .unwrap_or(0);
        Ok(KprobePmu {
            type_,
            retprobe_bit,
        })
    }
}

/// The error for kernels without kprobes, saying what still works.
pub fn no_kprobes() -> anyhow::Error {
    anyhow::anyhow!(
        "this kernel has no kprobes (CONFIG_KPROBES is off: no kprobe PMU, no kprobe_events), so functions \
         cannot be probed here; sampling (-e cpu-clock), tracepoints (-e net:net_dev_xmit) and reports still \
         work, and `netprof check` lists what this kernel can do"
    )
}

/// Whether the running kernel was built with `option` (=y or =m), from
/// /proc/config.gz or /boot/config-RELEASE; `None` where neither is readable.
pub fn kernel_config(option: &str) -> Option<bool> {
    use std::io::Read;
    let mut text = String::new();
    let from_proc = std::fs::File::open("/proc/config.gz")
        .ok()
        .is_some_and(|gz| {
            flate2::read::GzDecoder::new(gz)
                .read_to_string(&mut text)
                .is_ok()
        });
    if !from_proc {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
        text = std::fs::read_to_string(format!("/boot/config-{}", release.trim())).ok()?;
    }
    Some(
        text.lines()
            .any(|l| l == format!("{option}=y") || l == format!("{option}=m")),
    )
}

/// A kernel function: its name, for module code the module, and its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub module: Option<String>,
    pub address: u64,
}

/// The code symbols of vmlinux and loaded modules (BPF programs excluded).
pub fn kernel_functions() -> Result<Vec<Function>> {
    let text = std::fs::read_to_string("/proc/kallsyms")
        .map_err(|e| anyhow::anyhow!("cannot read /proc/kallsyms ({e}); run as root"))?;
    let mut functions = Vec::new();
    for sym in text.lines().filter_map(crate::kallsyms::code_symbol) {
        if sym.module == Some("bpf") || sym.name.starts_with("__pfx_") {
            continue;
        }
        functions.push(Function {
            name: sym.name.to_string(),
            module: sym.module.map(str::to_string),
            address: sym.address,
        });
    }
    Ok(functions)
}

/// Finds `name` (in `module`, if given) among the kernel's functions, with
/// close names suggested when it is not there.
pub fn resolve_function(name: &str, module: Option<&str>) -> Result<Function> {
    let functions = kernel_functions()?;
    if let Some(m) = module {
        if !functions.iter().any(|f| f.module.as_deref() == Some(m)) {
            let mut loaded: Vec<&str> = functions
                .iter()
                .filter_map(|f| f.module.as_deref())
                .collect();
            loaded.sort_unstable();
            loaded.dedup();
            let loaded = if loaded.is_empty() {
                "none".to_string()
            } else {
                loaded.join(", ")
            };
            bail!("module '{m}' is not loaded (loaded: {loaded}); load it with `modprobe {m}`");
        }
    }
    let matches: Vec<&Function> = functions
        .iter()
        .filter(|f| f.name == name && (module.is_none() || f.module.as_deref() == module))
        .collect();
    match matches.as_slice() {
        [one, ..] if matches.iter().all(|f| f.module == one.module) => Ok((*one).clone()),
        [] => {
            let candidates = functions
                .iter()
                .filter(|f| module.is_none() || f.module.as_deref() == module)
                .map(|f| f.name.as_str());
            let hint = close_names(name, candidates);
            let place = module
                .map(|m| format!(" of module {m}"))
                .unwrap_or_default();
            bail!(
                "no function '{name}'{place} in the running kernel{}; list them with `netprof probe --list`",
                did_you_mean(&hint)
            )
        }
        many => {
            let modules: Vec<String> = many
                .iter()
                .map(|f| f.module.clone().unwrap_or_else(|| "vmlinux".into()))
                .collect();
            bail!(
                "'{name}' exists in {}; pick one with -m MODULE",
                modules.join(", ")
            )
        }
    }
}

/// Shell-style wildcard match (`*` any run, `?` one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            backtrack = Some((pi, ni));
            pi += 1;
        } else if let Some((bp, bn)) = backtrack {
            pi = bp + 1;
            ni = bn + 1;
            backtrack = Some((bp, bn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("hsr_*", "hsr_forward_skb"));
        assert!(glob_match("*_skb", "hsr_forward_skb"));
        assert!(glob_match("h?r_*skb", "hsr_forward_skb"));
        assert!(!glob_match("hsr_*", "tcp_sendmsg"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("a*b", "ac"));
    }

    #[test]
    fn this_host_explains_missing_kprobes() {
        if std::path::Path::new(PMU_DIR).exists() {
            assert!(KprobePmu::find().is_ok());
        } else {
            let err = KprobePmu::find().err().unwrap().to_string();
            assert!(
                err.contains("CONFIG_KPROBES is off") && err.contains("tracepoints"),
                "{err}"
            );
        }
    }
}
