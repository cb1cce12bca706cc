//! `netprof probe`: persistent kprobes and return probes, like `perf probe`,
//! on functions of vmlinux or any loaded module, named by function alone.
//!
//! They live in tracefs's kprobe_events under the group `netprof`, so they
//! are usable later as `-e netprof:FUNC` (and by perf as a tracepoint), and
//! `--del` removes netprof's probes and nothing else. Probes that exist only
//! for one recording (`record -e kprobe:FUNC`) do not come through here; see
//! [`super::kprobe`].

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::arguments::{self, Arguments};
use super::resolve::{is_glob, Limit, Resolver, MAX_FUNCTIONS};
use crate::error::{Error, IoContext, Result};
use crate::sys::tracefs::Tracefs;

/// The tracefs group of netprof's probes: `-e netprof:FUNC`.
pub const GROUP: &str = "netprof";

/// What to probe: `FUNC`, `FUNC%return` or a glob, and the arguments to
/// record at each hit in the kernel's fetch-arg syntax (BTF names such as
/// `len`, positions such as `len=$arg3`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeRequest {
    pub pattern: String,
    pub is_return: bool,
    pub arguments: Vec<String>,
}

impl ProbeRequest {
    /// Parses `FUNC[%return] [ARG...]` as one string or as words.
    pub fn parse(words: &[String]) -> Result<ProbeRequest> {
        let text = words.join(" ");
        let mut words = text.split_whitespace();
        let function = words.next().ok_or_else(|| {
            Error::bad_argument(
                "name a function to probe (netprof probe FUNC), or use --list or --del",
            )
        })?;
        let (pattern, is_return) = match function.strip_suffix("%return") {
            Some(p) => (p, true),
            None => (function, false),
        };
        let arguments: Vec<String> = words.map(str::to_string).collect();
        if !arguments.is_empty() && is_glob(pattern) {
            return Err(Error::bad_argument(format!(
                "arguments need one function, not a glob; probe '{pattern}' without arguments or name one function"
            )));
        }
        Ok(ProbeRequest {
            pattern: pattern.to_string(),
            is_return,
            arguments,
        })
    }
}

/// The probes `add` created, and whether they went in one write.
pub struct Added {
    pub names: Vec<String>,
    pub in_one_write: bool,
    /// How argument names were resolved, when netprof resolved them.
    pub note: Option<String>,
}

/// tracefs's kprobe_events file, or why there is none.
fn kprobe_events() -> Result<PathBuf> {
    let has_kprobes = super::kprobe::available();
    let tracefs = Tracefs::get().map_err(|e| {
        if has_kprobes {
            e
        } else {
            super::kprobe::no_kprobes()
        }
    })?;
    let file = tracefs.file("kprobe_events");
    if !file.exists() {
        return Err(super::kprobe::no_kprobes());
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

/// Adds persistent probes for `request` (in `module`, if given); more than
/// [`MAX_FUNCTIONS`] only with `force`.
pub fn add(request: &ProbeRequest, module: Option<&str>, force: bool) -> Result<Added> {
    let file = kprobe_events()?;
    let limit = (!force).then_some(Limit {
        max: MAX_FUNCTIONS,
        remedy: " or pass --force",
    });
    let functions = Resolver::load()?.resolve(&[request.pattern.as_str()], module, limit)?;
    // Arguments come with one function (see ProbeRequest::parse).
    let arguments = match functions.first() {
        Some(f) if !request.arguments.is_empty() => arguments::resolve(f, &request.arguments)?,
        _ => Arguments {
            fetch: Vec::new(),
            note: None,
        },
    };
    let kind = if request.is_return { "r" } else { "p" };
    let definitions: Vec<(String, String)> = functions
        .iter()
        .map(|f| {
            let name = event_name(&f.name, request.is_return);
            let location = match &f.module {
                Some(m) => format!("{m}:{}", f.name),
                None => f.name.clone(),
            };
            let mut line = format!("{kind}:{GROUP}/{name} {location}");
            for arg in &arguments.fetch {
                line.push(' ');
                line.push_str(arg);
            }
            line.push('\n');
            (name, line)
        })
        .collect();
    // All definitions in one write: the kernel takes them line by line, and
    // one write instead of hundreds is what makes a glob quick.
    if definitions.len() > 1 {
        let all: String = definitions.iter().map(|d| d.1.as_str()).collect();
        if append(&file, &all).is_ok() {
            return Ok(Added {
                names: definitions.into_iter().map(|d| d.0).collect(),
                in_one_write: true,
                note: arguments.note,
            });
        }
    }
    // Something was refused: the lines before it took effect; go on one at a
    // time, keeping past functions the kernel refuses when there are several.
    let several = functions.len() > 1;
    let existing: HashSet<String> = list()
        .unwrap_or_default()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut created = Vec::new();
    for ((name, line), f) in definitions.into_iter().zip(&functions) {
        if several && existing.contains(&name) {
            created.push(name);
            continue;
        }
        if let Err(e) = append(&file, &line) {
            if several {
                continue;
            }
            if !request.arguments.is_empty() && e.raw_os_error() == Some(libc::EINVAL) {
                return Err(Error::bad_argument(format!(
                    "the kernel rejects the arguments '{}' for {} ({}); use BTF names (`len`) or positions (`len=$arg3`)",
                    arguments.fetch.join(" "),
                    f.name,
                    last_trace_error().unwrap_or_else(|| e.to_string())
                )));
            }
            return Err(refused(&f.name, &e));
        }
        created.push(name);
    }
    if created.is_empty() {
        return Err(Error::kernel_refused(format!(
            "the kernel refused every function matching '{}' (notrace, blacklisted or inlined)",
            request.pattern
        )));
    }
    Ok(Added {
        names: created,
        in_one_write: false,
        note: arguments.note,
    })
}

fn refused(function: &str, e: &std::io::Error) -> Error {
    let name = event_name(function, false);
    match e.raw_os_error() {
        Some(libc::EEXIST) => Error::bad_argument(format!(
            "a probe netprof:{name} exists already; remove it with `netprof probe --del {name}`"
        )),
        Some(libc::EACCES | libc::EPERM) => Error::no_permission(format!(
            "no permission to add probes ({e}); run as root (lockdown may also forbid it: see `netprof check`)"
        )),
        _ => Error::kernel_refused(format!(
            "the kernel refuses a probe on '{function}' ({e}): it is notrace, on the kprobe blacklist, or inlined; probe its caller or a callee instead"
        )),
    }
}

/// The kernel's explanation of the last rejected probe definition.
fn last_trace_error() -> Option<String> {
    let log = Tracefs::get().ok()?.read("error_log")?;
    let line = log.lines().rev().find(|l| l.contains("error:"))?;
    Some(line.split("error:").nth(1)?.trim().to_string())
}

fn append(file: &Path, line: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(file)?;
    f.write_all(line.as_bytes())
}

/// netprof's persistent probes: (event name, definition).
pub fn list() -> Result<Vec<(String, String)>> {
    let file = kprobe_events()?;
    let text =
        std::fs::read_to_string(&file).io_context(|| format!("cannot read {}", file.display()))?;
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
    let patterns: Vec<glob::Pattern> = names
        .iter()
        .map(|n| super::resolve::glob(n))
        .collect::<Result<_>>()?;
    let existing = list()?;
    let doomed: Vec<&String> = existing
        .iter()
        .map(|(n, _)| n)
        .filter(|n| all || patterns.iter().any(|p| p.matches(n)))
        .collect();
    if doomed.is_empty() {
        let have: Vec<&str> = existing.iter().map(|(n, _)| n.as_str()).collect();
        return Err(Error::not_found(format!(
            "no netprof probe matches {} (netprof's probes: {})",
            names.join(", "),
            if have.is_empty() {
                "none".to_string()
            } else {
                have.join(", ")
            }
        )));
    }
    // One write for all, as for adding; one at a time only to say which
    // probe the kernel would not remove.
    let all: String = doomed
        .iter()
        .map(|name| format!("-:{GROUP}/{name}\n"))
        .collect();
    if append(&file, &all).is_err() {
        for name in &doomed {
            let gone = !list()?.iter().any(|(n, _)| n == *name);
            if gone {
                continue;
            }
            append(&file, &format!("-:{GROUP}/{name}\n")).map_err(|e| match e.raw_os_error() {
                Some(libc::EBUSY) => Error::failed(format!(
                    "probe netprof:{name} is in use by a running recording; stop it first"
                )),
                _ => Error::io(format!("cannot remove probe netprof:{name}"), &e),
            })?;
        }
    }
    Ok(doomed.into_iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_tracefs_safe() {
        assert_eq!(event_name("hsr_forward_skb", false), "hsr_forward_skb");
        assert_eq!(event_name("foo.isra.0", true), "foo_isra_0__return");
    }

    #[test]
    fn requests_take_return_probes_and_arguments() {
        let words = |s: &str| vec![s.to_string()];
        let r = ProbeRequest::parse(&words("tcp_sendmsg%return")).unwrap();
        assert!(r.is_return && r.arguments.is_empty());
        let r = ProbeRequest::parse(&["f".into(), "len=$arg3".into()]).unwrap();
        assert_eq!(r.arguments, ["len=$arg3"]);
        assert!(ProbeRequest::parse(&words("hsr_* len")).is_err());
        assert!(ProbeRequest::parse(&[]).is_err());
    }
}
