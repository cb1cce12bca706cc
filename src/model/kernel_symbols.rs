//! Kernel symbols: the lookup that names kernel, module and BPF-program
//! frames from the snapshot of /proc/kallsyms taken at record time (or from
//! this machine's, for files that carry none).
//!
//! The snapshot travels inside the data file, so a report names frames of a
//! module that has since been unloaded, of BPF programs that are gone, or of
//! another machine's kernel, without `--kallsyms` or a vmlinux.
//!
//! Hand-written: blazesym's kernel source reads kallsyms from a path and
//! keeps no module or BPF-program names; this lookup reads the snapshot in
//! memory and keeps both.

use std::collections::HashMap;

use crate::sys::kallsyms::{code_symbol, CodeSymbol};

/// Addresses further than this past a symbol's start are not taken to belong
/// to it: kallsyms has no sizes, and past the last symbol of a region the next
/// symbol may be far away. No kernel function is anywhere near this long.
const MAX_SYMBOL_SPAN: u64 = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelSpace {
    Vmlinux,
    Module(u32),
    Bpf,
}

pub struct KernelSymbols {
    /// The kallsyms text; names are ranges of it, which spares a hundred
    /// thousand small allocations per report.
    text: String,
    addrs: Vec<u64>,
    names: Vec<(u32, u32)>,
    spaces: Vec<KernelSpace>,
    modules: Vec<Box<str>>,
}

/// A named kernel address.
#[derive(Debug, PartialEq, Eq)]
pub struct KernelSymbol<'a> {
    pub name: &'a str,
    /// `None` for vmlinux, the module name, or `bpf` for BPF programs.
    pub module: Option<&'a str>,
}

impl KernelSymbols {
    /// Parses kallsyms text (`ADDR TYPE NAME [\t[MODULE]]`), skipping lines
    /// that do not parse and all-zero addresses (hidden by kptr_restrict).
    pub fn parse(text: impl Into<String>) -> Self {
        let text: String = text.into();
        let mut entries: Vec<(u64, (u32, u32), KernelSpace)> = Vec::new();
        let mut module_ids: HashMap<&str, u32> = HashMap::new();
        let mut modules: Vec<Box<str>> = Vec::new();
        let base = text.as_ptr() as usize;
        let range = |s: &str| ((s.as_ptr() as usize - base) as u32, s.len() as u32);
        for line in text.lines() {
            let Some(CodeSymbol {
                address: addr,
                name,
                module,
            }) = code_symbol(line)
            else {
                continue;
            };
            if addr == 0 {
                continue;
            }
            let space = match module {
                None => KernelSpace::Vmlinux,
                Some("bpf") => KernelSpace::Bpf,
                Some(module) => {
                    let next = module_ids.len() as u32;
                    KernelSpace::Module(*module_ids.entry(module).or_insert_with(|| {
                        modules.push(module.into());
                        next
                    }))
                }
            };
            entries.push((addr, range(name), space));
        }
        entries.sort_by_key(|e| e.0);
        KernelSymbols {
            addrs: entries.iter().map(|e| e.0).collect(),
            names: entries.iter().map(|e| e.1).collect(),
            spaces: entries.iter().map(|e| e.2).collect(),
            modules,
            text,
        }
    }

    fn name(&self, idx: usize) -> &str {
        let (start, len) = self.names[idx];
        &self.text[start as usize..(start + len) as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// Every symbol, in address order.
    pub fn iter(&self) -> impl Iterator<Item = KernelSymbol<'_>> {
        (0..self.addrs.len()).map(|i| KernelSymbol {
            name: self.name(i),
            module: match self.spaces[i] {
                KernelSpace::Vmlinux => None,
                KernelSpace::Module(id) => Some(&*self.modules[id as usize]),
                KernelSpace::Bpf => Some("bpf"),
            },
        })
    }

    /// The address of a vmlinux symbol, e.g. `_text`.
    pub fn address_of(&self, name: &str) -> Option<u64> {
        (0..self.names.len())
            .find(|&i| self.name(i) == name && self.spaces[i] == KernelSpace::Vmlinux)
            .map(|i| self.addrs[i])
    }

    pub fn lookup(&self, addr: u64) -> Option<KernelSymbol<'_>> {
        let idx = self.addrs.partition_point(|&a| a <= addr).checked_sub(1)?;
        if addr - self.addrs[idx] > MAX_SYMBOL_SPAN {
            return None;
        }
        let module = match self.spaces[idx] {
            KernelSpace::Vmlinux => None,
            KernelSpace::Module(id) => Some(&*self.modules[id as usize]),
            KernelSpace::Bpf => Some("bpf"),
        };
        Some(KernelSymbol {
            name: self.name(idx),
            module,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
ffffffff81000000 T _text
ffffffff81001000 T read_zero
ffffffff81002000 t vfs_read
ffffffff81003000 D some_data
ffffffffc0001000 t hsr_forward_skb\t[hsr]
ffffffffc0002000 T hsr_dev_xmit\t[hsr]
ffffffffc0100000 t bpf_prog_6deef7357e7b4530_xdp_pass\t[bpf]
0000000000000000 T hidden
";

    #[test]
    fn names_vmlinux_module_and_bpf_frames() {
        let k = KernelSymbols::parse(SAMPLE);
        assert_eq!(
            k.lookup(0xffffffff81001010).unwrap(),
            KernelSymbol {
                name: "read_zero",
                module: None
            }
        );
        assert_eq!(
            k.lookup(0xffffffffc0001004).unwrap(),
            KernelSymbol {
                name: "hsr_forward_skb",
                module: Some("hsr")
            }
        );
        assert_eq!(
            k.lookup(0xffffffffc0100040).unwrap(),
            KernelSymbol {
                name: "bpf_prog_6deef7357e7b4530_xdp_pass",
                module: Some("bpf")
            }
        );
        assert_eq!(k.address_of("_text"), Some(0xffffffff81000000));
    }

    #[test]
    fn addresses_outside_any_symbol_stay_unnamed() {
        let k = KernelSymbols::parse(SAMPLE);
        assert!(
            k.lookup(0xffffffff80000000).is_none(),
            "below the first symbol"
        );
        assert!(
            k.lookup(0xffffffffc0100000 + 2 * MAX_SYMBOL_SPAN).is_none(),
            "far past the last"
        );
        // Data symbols are not code: an address there belongs to the code before.
        assert_eq!(k.lookup(0xffffffff81003010).unwrap().name, "vfs_read");
    }
}
