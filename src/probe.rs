//! `netprof probe`: persistent kprobes and return probes, like `perf probe`,
//! on functions of vmlinux or any loaded module, named by function alone.
//!
//! They live in tracefs's kprobe_events under the group `netprof`, so they
//! are usable later as `-e netprof:FUNC` (and by perf as a tracepoint), and
//! `--del` removes netprof's probes and nothing else. Probes that exist only
//! for one recording (`record -e kprobe:FUNC`) do not come through here; see
//! [`crate::kprobe`].

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::kprobe::{glob_match, kernel_functions, no_kprobes, resolve_function, Function};

pub const GROUP: &str = "netprof";
/// More probes than this need --force: each costs on every call.
pub const MAX_PROBES_WITHOUT_FORCE: usize = 300;

fn kprobe_events() -> Result<PathBuf> {
    let has_kprobes = Path::new("/sys/bus/event_source/devices/kprobe").exists();
    let events =
        crate::event::tracefs_events().map_err(|e| if has_kprobes { e } else { no_kprobes() })?;
    let file = events
        .parent()
        .expect("events has a parent")
        .join("kprobe_events");
    if !file.exists() {
        return Err(no_kprobes());
    }
    Ok(file)
}

/// The tracefs event name for a function: letters, digits and `_` only
/// (`foo.isra.0` becomes `foo_isra_0`), `__return` appended for return probes.
pub fn event_name(function: &str, is_return: bool) -> String {
    let mut name: String = function
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if is_return {
        name.push_str("__return");
    }
    name
}

/// Adds persistent probes for `target`: `FUNC`, `FUNC%return` or a glob,
/// optionally followed by arguments to record at each hit, in the kernel's
/// fetch-arg syntax: BTF names (`len`), positions (`len=$arg3`), and so on.
/// Returns the event names created, and whether they went in one write.
pub fn add(target: &str, module: Option<&str>, force: bool) -> Result<(Vec<String>, bool)> {
    let file = kprobe_events()?;
    let mut words = target.split_whitespace();
    let function = words.next().context("name a function to probe")?;
    let args: Vec<&str> = words.collect();
    let (pattern, is_return) = match function.strip_suffix("%return") {
        Some(p) => (p, true),
        None => (function, false),
    };
    if !args.is_empty() && pattern.contains(['*', '?']) {
        bail!("arguments need one function, not a glob; probe '{pattern}' without arguments or name one function");
    }
    let functions: Vec<Function> = if pattern.contains(['*', '?']) {
        let found: Vec<Function> = kernel_functions()?
            .into_iter()
            .filter(|f| {
                glob_match(pattern, &f.name) && (module.is_none() || f.module.as_deref() == module)
            })
            .collect();
        if found.is_empty() {
            bail!("no kernel function matches '{pattern}'; list them with `netprof probe --list '{pattern}'`");
        }
        if found.len() > MAX_PROBES_WITHOUT_FORCE && !force {
            bail!(
                "'{pattern}' matches {} functions; that many probes slow every call, narrow the pattern or pass --force",
                found.len()
            );
        }
        found
    } else {
        vec![resolve_function(pattern, module)?]
    };
    let kind = if is_return { "r" } else { "p" };
    let definitions: Vec<(String, String)> = functions
        .iter()
        .map(|f| {
            let name = event_name(&f.name, is_return);
            let location = match &f.module {
                Some(m) => format!("{m}:{}", f.name),
                None => f.name.clone(),
            };
            let mut line = format!("{kind}:{GROUP}/{name} {location}");
            for arg in &args {
                line.push(' ');
                line.push_str(arg);
            }
            line.push('\n');
            (name, line)
        })
        .collect();
    // All definitions in one write: the kernel takes them line by line, and
    // one write instead of hundreds is what makes a glob quick.
    if definitions.len() > 1
        && append(
            &file,
            &definitions.iter().map(|d| d.1.as_str()).collect::<String>(),
        )
        .is_ok()
    {
        return Ok((definitions.into_iter().map(|d| d.0).collect(), true));
    }
    // Something was refused: the lines before it took effect; go on one at a
    // time, keeping past functions the kernel refuses when there are several.
    let existing: std::collections::HashSet<String> = list_probes()
        .unwrap_or_default()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut created = Vec::new();
    for ((name, line), f) in definitions.into_iter().zip(&functions) {
        if existing.contains(&name) && functions.len() > 1 {
            created.push(name);
            continue;
        }
        if let Err(e) = append(&file, &line) {
            if functions.len() > 1 {
                continue;
            }
            if !args.is_empty() && e.raw_os_error() == Some(libc::EINVAL) {
                bail!(
                    "the kernel rejects the arguments '{}' for {} ({}); use BTF names (`len`) or positions (`len=$arg3`)",
                    args.join(" "),
                    f.name,
                    last_trace_error().unwrap_or_else(|| e.to_string())
                );
            }
            return Err(refused(&f.name, e));
        }
        created.push(name);
    }
    if created.is_empty() {
        bail!("the kernel refused every function matching '{pattern}' (notrace, blacklisted or inlined)");
    }
    Ok((created, false))
}

fn refused(function: &str, e: std::io::Error) -> anyhow::Error {
    match e.raw_os_error() {
        Some(libc::EEXIST) => anyhow::anyhow!("a probe netprof:{} exists already; remove it with `netprof probe --del {}`", event_name(function, false), event_name(function, false)),
        Some(libc::EACCES | libc::EPERM) => anyhow::anyhow!("no permission to add probes ({e}); run as root (lockdown may also forbid it: see `netprof check`)"),
        _ => anyhow::anyhow!(
            "the kernel refuses a probe on '{function}' ({e}): it is notrace, on the kprobe blacklist, or inlined; probe its caller or a callee instead"
        ),
    }
}

/// The kernel's explanation of the last rejected probe definition.
fn last_trace_error() -> Option<String> {
    let events = crate::event::tracefs_events().ok()?;
    let log = std::fs::read_to_string(events.parent()?.join("error_log")).ok()?;
    let line = log.lines().rev().find(|l| l.contains("error:"))?;
    Some(line.split("error:").nth(1)?.trim().to_string())
}

fn append(file: &Path, line: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(file)?;
    f.write_all(line.as_bytes())
}

/// netprof's persistent probes: (event name, definition).
pub fn list_probes() -> Result<Vec<(String, String)>> {
    let file = kprobe_events()?;
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (head, def) = l.split_once(' ')?;
            let (_, event) = head.split_once(':')?;
            let (group, name) = event.split_once('/')?;
            (group == GROUP).then(|| (name.to_string(), def.to_string()))
        })
        .collect())
}

/// Removes netprof's probes named `names` (globs allowed), or all of them.
pub fn delete(names: &[String], all: bool) -> Result<Vec<String>> {
    let file = kprobe_events()?;
    let existing = list_probes()?;
    let doomed: Vec<&String> = existing
        .iter()
        .map(|(n, _)| n)
        .filter(|n| all || names.iter().any(|pat| glob_match(pat, n)))
        .collect();
    if doomed.is_empty() {
        let have: Vec<&str> = existing.iter().map(|(n, _)| n.as_str()).collect();
        bail!(
            "no netprof probe matches {} (netprof's probes: {})",
            names.join(", "),
            if have.is_empty() {
                "none".to_string()
            } else {
                have.join(", ")
            }
        );
    }
    // One write for all, as for adding; one at a time only to say which
    // probe the kernel would not remove.
    let all: String = doomed
        .iter()
        .map(|name| format!("-:{GROUP}/{name}\n"))
        .collect();
    if append(&file, &all).is_err() {
        for name in &doomed {
            let gone = !list_probes()?.iter().any(|(n, _)| n == *name);
            if gone {
                continue;
            }
            append(&file, &format!("-:{GROUP}/{name}\n")).map_err(|e| match e.raw_os_error() {
                Some(libc::EBUSY) => anyhow::anyhow!(
                    "probe netprof:{name} is in use by a running recording; stop it first"
                ),
                _ => anyhow::anyhow!("cannot remove probe netprof:{name}: {e}"),
            })?;
        }
    }
    Ok(doomed.into_iter().cloned().collect())
}

/// Functions that can be probed: in kallsyms, traceable (listed in
/// available_filter_functions, where the kernel has it) and not on the kprobe
/// blacklist. Returns (function, module).
pub fn probeable(module: Option<&str>, pattern: Option<&str>) -> Result<Vec<Function>> {
    kprobe_events()?;
    let tracing = crate::event::tracefs_events()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let traceable: Option<std::collections::HashSet<String>> = tracing
        .as_ref()
        .and_then(|t| std::fs::read_to_string(t.join("available_filter_functions")).ok())
        .map(|text| {
            text.lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_string)
                .collect()
        });
    let blacklist: std::collections::HashSet<String> =
        std::fs::read_to_string("/sys/kernel/debug/kprobes/blacklist")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
            .collect();
    let mut functions: Vec<Function> = kernel_functions()?
        .into_iter()
        .filter(|f| module.is_none() || f.module.as_deref() == module)
        .filter(|f| pattern.is_none_or(|p| glob_match(p, &f.name)))
        .filter(|f| traceable.as_ref().is_none_or(|t| t.contains(&f.name)))
        .filter(|f| !blacklist.contains(&f.name))
        .collect();
    functions.sort_by(|a, b| (&a.module, &a.name).cmp(&(&b.module, &b.name)));
    functions.dedup_by(|a, b| a.name == b.name && a.module == b.module);
    Ok(functions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_tracefs_safe() {
        assert_eq!(event_name("hsr_forward_skb", false), "hsr_forward_skb");
        assert_eq!(event_name("foo.isra.0", true), "foo_isra_0__return");
    }
}
