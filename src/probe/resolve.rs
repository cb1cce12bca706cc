//! From the names and globs a user types to the kernel functions a probe can
//! be put on: the one place that decides it, for `record -e kprobe:`,
//! `probe`, `latency` and what comes next.
//!
//! - An exact name must exist in kallsyms (in the module, with `-m`);
//!   close names are suggested when it does not. A name on the kprobe
//!   blacklist is refused here with the reason, before the kernel refuses it.
//! - A glob expands to the probe-able functions it matches: traceable
//!   (listed in available_filter_functions, where the kernel lets us read
//!   it, as multi-kprobe links need) and not on the kprobe blacklist, so that
//!   one refusal cannot end a run that attaches hundreds at once.
//! - A module named with `-m` must be loaded.
//! - Every probe costs on every call: past a limit, the caller's remedy is
//!   named (narrow the pattern, or `--force` where it exists).

use std::collections::HashSet;

use super::Function;
use crate::error::{Error, Result};
use crate::suggest::{close_names, did_you_mean};
use crate::sys::kallsyms;
use crate::sys::tracefs::Tracefs;

const BLACKLIST: &str = "/sys/kernel/debug/kprobes/blacklist";

/// More functions than this from one resolution slow every call of them;
/// callers that register a probe (or perf event) per function refuse it
/// unless told otherwise.
pub const MAX_FUNCTIONS: usize = 300;

/// Functions one BPF program may be attached to at once (a multi-kprobe
/// link, or a link each): whole modules (sctp has about 700 probe-able
/// functions), with room to spare, but not the whole kernel.
pub const MAX_BPF_FUNCTIONS: usize = 5000;

/// A cap on how many functions a resolution may give, and what the user
/// can do when a pattern matches more.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub max: usize,
    /// Finishes "narrow the pattern...": e.g. " or pass --force".
    pub remedy: &'static str,
}

/// Whether `pattern` is a glob rather than one function's name.
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// A compiled glob, with a one-line error for a malformed one.
pub fn glob(pattern: &str) -> Result<glob::Pattern> {
    glob::Pattern::new(pattern).map_err(|e| {
        Error::bad_argument(format!(
            "bad pattern '{pattern}' ({e}); use * and ? as in 'hsr_*'"
        ))
    })
}

/// The kernel's functions and what it lets netprof probe.
pub struct Resolver {
    /// Code symbols of vmlinux and loaded modules (BPF programs excluded).
    functions: Vec<Function>,
    /// What ftrace can attach to, where the kernel lets us read the list.
    traceable: Option<HashSet<String>>,
    blacklist: HashSet<String>,
}

impl Resolver {
    /// Reads the running kernel's functions; fails on a kernel without
    /// kprobes, saying what still works.
    pub fn load() -> Result<Resolver> {
        super::kprobe::require()?;
        let text = kallsyms::read()?;
        let functions = text
            .lines()
            .filter_map(kallsyms::code_symbol)
            .filter(|s| s.module != Some("bpf") && !s.name.starts_with("__pfx_"))
            .map(|s| Function {
                name: s.name.to_string(),
                module: s.module.map(str::to_string),
                address: s.address,
            })
            .collect();
        let traceable = Tracefs::get()
            .ok()
            .and_then(|t| t.read("available_filter_functions"))
            .map(|text| {
                text.lines()
                    .filter_map(|l| l.split_whitespace().next())
                    .map(str::to_string)
                    .collect()
            });
        let blacklist = std::fs::read_to_string(BLACKLIST)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
            .collect();
        Ok(Resolver {
            functions,
            traceable,
            blacklist,
        })
    }

    /// A resolver over given functions, for tests.
    pub fn from_functions(functions: Vec<Function>, blacklist: &[&str]) -> Resolver {
        Resolver {
            functions,
            traceable: None,
            blacklist: blacklist.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Fails unless `module` (if given) is loaded.
    pub fn check_module(&self, module: Option<&str>) -> Result<()> {
        let Some(m) = module else { return Ok(()) };
        if self
            .functions
            .iter()
            .any(|f| f.module.as_deref() == Some(m))
        {
            return Ok(());
        }
        let mut loaded: Vec<&str> = self
            .functions
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
        Err(Error::not_found(format!(
            "module '{m}' is not loaded (loaded: {loaded}); load it with `modprobe {m}`"
        )))
    }

    /// The function called `name` (in `module`, if given).
    pub fn exact(&self, name: &str, module: Option<&str>) -> Result<Function> {
        self.check_module(module)?;
        let in_scope = |f: &&Function| module.is_none() || f.module.as_deref() == module;
        let matches: Vec<&Function> = self
            .functions
            .iter()
            .filter(in_scope)
            .filter(|f| f.name == name)
            .collect();
        let function = match matches.as_slice() {
            [] => {
                let hint = close_names(
                    name,
                    self.functions
                        .iter()
                        .filter(in_scope)
                        .map(|f| f.name.as_str()),
                );
                let place = module
                    .map(|m| format!(" of module {m}"))
                    .unwrap_or_default();
                return Err(Error::not_found(format!(
                    "no function '{name}'{place} in the running kernel{}; list them with `netprof probe --list`",
                    did_you_mean(&hint)
                )));
            }
            [one, ..] if matches.iter().all(|f| f.module == one.module) => *one,
            many => {
                let mut modules: Vec<String> = many
                    .iter()
                    .map(|f| f.module.clone().unwrap_or_else(|| "vmlinux".into()))
                    .collect();
                modules.dedup();
                return Err(Error::bad_argument(format!(
                    "'{name}' exists in {}; pick one with -m MODULE",
                    modules.join(", ")
                )));
            }
        };
        if self.blacklist.contains(name) {
            return Err(Error::kernel_refused(format!(
                "the kernel refuses a probe on '{name}': it is on the kprobe blacklist; probe its caller or a callee instead"
            )));
        }
        if function.address == 0 {
            return Err(Error::no_permission(
                "no permission to see kernel addresses (/proc/kallsyms shows zeros under kernel.kptr_restrict); run as root",
            ));
        }
        Ok(function.clone())
    }

    /// Functions that can be probed, of `module` and matching `pattern` if
    /// given, sorted by module and name (`netprof probe --list`).
    pub fn probeable(&self, module: Option<&str>, pattern: Option<&str>) -> Result<Vec<Function>> {
        self.check_module(module)?;
        let pattern = pattern.map(glob).transpose()?;
        let mut functions: Vec<Function> = self
            .functions
            .iter()
            .filter(|f| module.is_none() || f.module.as_deref() == module)
            .filter(|f| pattern.as_ref().is_none_or(|p| p.matches(&f.name)))
            .filter(|f| self.traceable.as_ref().is_none_or(|t| t.contains(&f.name)))
            .filter(|f| !self.blacklist.contains(&f.name))
            .cloned()
            .collect();
        sort_and_dedup(&mut functions);
        Ok(functions)
    }

    /// The functions `patterns` name, names and globs mixed, each checked as
    /// the module doc says; sorted by module and name, each once.
    pub fn resolve(
        &self,
        patterns: &[&str],
        module: Option<&str>,
        limit: Option<Limit>,
    ) -> Result<Vec<Function>> {
        self.check_module(module)?;
        let mut functions = Vec::new();
        for &pattern in patterns {
            if is_glob(pattern) {
                let matched = self.probeable(module, Some(pattern))?;
                if matched.is_empty() {
                    return Err(Error::not_found(format!(
                        "no probe-able kernel function matches '{pattern}'; list them with `netprof probe --list '{pattern}'`"
                    )));
                }
                functions.extend(matched);
            } else {
                functions.push(self.exact(pattern, module)?);
            }
        }
        sort_and_dedup(&mut functions);
        if let Some(limit) = limit {
            if functions.len() > limit.max {
                return Err(Error::bad_argument(format!(
                    "'{}' matches {} functions; that many probes slow every call, narrow the pattern{}",
                    patterns.join(" "),
                    functions.len(),
                    limit.remedy
                )));
            }
        }
        Ok(functions)
    }
}

fn sort_and_dedup(functions: &mut Vec<Function>) {
    functions.sort_by(|a, b| (&a.module, &a.name).cmp(&(&b.module, &b.name)));
    functions.dedup_by(|a, b| a.name == b.name && a.module == b.module);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn resolver() -> Resolver {
        let f = |name: &str, module: Option<&str>, address| Function {
            name: name.into(),
            module: module.map(str::to_string),
            address,
        };
        Resolver::from_functions(
            vec![
                f("hsr_forward_skb", Some("hsr"), 0xc000),
                f("hsr_dev_xmit", Some("hsr"), 0xc100),
                f("tcp_sendmsg", None, 0x8100),
                f("dup", None, 0x8200),
                f("dup", Some("m"), 0xc200),
                f("kprobe_hidden", None, 0x8300),
            ],
            &["kprobe_hidden"],
        )
    }

    #[test]
    fn names_globs_and_modules() {
        let r = resolver();
        let got = r.resolve(&["hsr_*", "tcp_sendmsg"], None, None).unwrap();
        let labels: Vec<String> = got.iter().map(Function::label).collect();
        assert_eq!(
            labels,
            ["tcp_sendmsg", "hsr_dev_xmit [hsr]", "hsr_forward_skb [hsr]"]
        );
        assert_eq!(r.exact("dup", Some("m")).unwrap().address, 0xc200);
        assert_eq!(r.probeable(Some("hsr"), None).unwrap().len(), 2);
    }

    #[test]
    fn every_refusal_says_why() {
        let r = resolver();
        let e = r.exact("hsr_forwrd_skb", None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.message().contains("did you mean hsr_forward_skb"), "{e}");
        let e = r.exact("dup", None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadArgument);
        assert!(e.message().contains("pick one with -m"), "{e}");
        let e = r.exact("kprobe_hidden", None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::KernelRefused);
        let e = r.resolve(&["x*"], Some("nosuch"), None).unwrap_err();
        assert!(e.message().contains("module 'nosuch' is not loaded"), "{e}");
        let e = r.resolve(&["zz*"], None, None).unwrap_err();
        assert!(
            e.message()
                .contains("no probe-able kernel function matches"),
            "{e}"
        );
        let limit = Limit {
            max: 1,
            remedy: " or pass --force",
        };
        let e = r.resolve(&["hsr_*"], None, Some(limit)).unwrap_err();
        assert!(
            e.message().ends_with("narrow the pattern or pass --force"),
            "{e}"
        );
        let e = r.resolve(&["a["], None, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BadArgument);
        // A blacklisted function is never part of a glob.
        assert!(r.probeable(None, Some("kprobe_*")).unwrap().is_empty());
    }
}
