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

use crate::sys::kallsyms::{code_symbol, long_line_address, CodeSymbol};

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
        // Lines average some forty bytes; most are code symbols.
        let mut parsed = Parsed::with_capacity(text.len() / 40);
        let mut module_ids: HashMap<&str, u32> = HashMap::new();
        let mut modules: Vec<Box<str>> = Vec::new();
        // A module's symbols come in one run: its id is looked up once.
        let mut last_module: Option<(&str, KernelSpace)> = None;
        let bytes = text.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            let (symbol, next) = match fast_line(bytes, at) {
                Some((address, name, module, next)) => (
                    Some(CodeSymbol {
                        address,
                        name: &text[name.0..name.1],
                        module: module.map(|(from, to)| &text[from..to]),
                    }),
                    next,
                ),
                None => {
                    let end = bytes[at..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(bytes.len(), |n| at + n);
                    (code_symbol(text[at..end].trim_end_matches('\r')), end + 1)
                }
            };
            at = next;
            if let Some(symbol) = symbol.filter(|s| s.address != 0) {
                let base = text.as_ptr() as usize;
                let start = symbol.name.as_ptr() as usize - base;
                let space = match symbol.module {
                    None => KernelSpace::Vmlinux,
                    Some("bpf") => KernelSpace::Bpf,
                    Some(module) => match last_module {
                        Some((m, space)) if m == module => space,
                        _ => {
                            let next = module_ids.len() as u32;
                            let id = *module_ids.entry(module).or_insert_with(|| {
                                modules.push(module.into());
                                next
                            });
                            last_module = Some((module, KernelSpace::Module(id)));
                            KernelSpace::Module(id)
                        }
                    },
                };
                parsed.push(
                    symbol.address,
                    (start as u32, symbol.name.len() as u32),
                    space,
                );
            }
        }
        parsed.sort();
        KernelSymbols {
            addrs: parsed.addrs,
            names: parsed.names,
            spaces: parsed.spaces,
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

/// The symbols of a kallsyms text as read, then put in address order.
struct Parsed {
    addrs: Vec<u64>,
    names: Vec<(u32, u32)>,
    spaces: Vec<KernelSpace>,
    /// Whether the addresses came in order (vmlinux's do; modules' and BPF
    /// programs' follow at other addresses).
    in_order: bool,
}

impl Parsed {
    fn with_capacity(n: usize) -> Parsed {
        Parsed {
            addrs: Vec::with_capacity(n),
            names: Vec::with_capacity(n),
            spaces: Vec::with_capacity(n),
            in_order: true,
        }
    }

    fn push(&mut self, addr: u64, name: (u32, u32), space: KernelSpace) {
        if self.addrs.last().is_some_and(|&last| last > addr) {
            self.in_order = false;
        }
        self.addrs.push(addr);
        self.names.push(name);
        self.spaces.push(space);
    }

    /// Puts the symbols in address order (stable: of symbols at one address,
    /// the first listed stays first).
    fn sort(&mut self) {
        if self.in_order {
            return;
        }
        let mut order: Vec<u32> = (0..self.addrs.len() as u32).collect();
        order.sort_by_key(|&i| self.addrs[i as usize]);
        self.addrs = order.iter().map(|&i| self.addrs[i as usize]).collect();
        self.names = order.iter().map(|&i| self.names[i as usize]).collect();
        self.spaces = order.iter().map(|&i| self.spaces[i as usize]).collect();
        self.in_order = true;
    }
}

/// A 64-bit kernel's code symbol line starting at `at`, read in one pass:
/// 16 hex digits, a space, the type letter (t, T, w or W), a space, the
/// name, and a tab and `[module]` or not. Returns the address, the name's
/// and module's byte ranges, and where the next line starts; `None` for a
/// line of any other shape (the general parser then reads it).
#[allow(clippy::type_complexity)]
fn fast_line(
    bytes: &[u8],
    at: usize,
) -> Option<(u64, (usize, usize), Option<(usize, usize)>, usize)> {
    let address = long_line_address(bytes.get(at..at + 19)?)?;
    let name_start = at + 19;
    let mut end = name_start;
    while end < bytes.len() && !matches!(bytes[end], b'\t' | b'\n' | b'\r' | b' ') {
        end += 1;
    }
    let name = (name_start, end);
    match bytes.get(end) {
        None => Some((address, name, None, end)),
        Some(b'\n') => Some((address, name, None, end + 1)),
        Some(b'\t') => {
            // `[module]` up to the line's end.
            let line_end = bytes[end..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |n| end + n);
            let module = &bytes[end + 1..line_end];
            let module = module.strip_suffix(b"\r").unwrap_or(module);
            let inner = module.strip_prefix(b"[")?.strip_suffix(b"]")?;
            let from = end + 2;
            Some((
                address,
                name,
                Some((from, from + inner.len())),
                line_end + 1,
            ))
        }
        // Spaces or a carriage return after the name: the general way.
        Some(_) => None,
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
    fn the_one_pass_reading_agrees_with_the_line_parser() {
        // Modules after vmlinux at lower addresses, a CRLF line, a module
        // without brackets, a 32-bit kernel's line, data and hidden lines.
        let text = "\
ffffffff81000000 T _text
ffffffff81001000 t b_first
ffffffff81001000 t a_alias
ffffffff81002000 D data
ffffffffa0001000 t sctp_do_sm\t[sctp]
ffffffffa0000800 T sctp_init\t[sctp]\r
ffffffff80001000 t low_module_fn\t[veth]
ffffffff80002000 t no_brackets\tveth
c1000000 T thirty_two_bit
0000000000000000 T hidden
ffffffff81003000 t crlf_end\r
ffffffffc0100000 t bpf_prog_1_x\t[bpf]";
        let mut expected: Vec<(u64, String, Option<String>)> = text
            .lines()
            .filter_map(code_symbol)
            .filter(|s| s.address != 0)
            .map(|s| (s.address, s.name.to_string(), s.module.map(str::to_string)))
            .collect();
        expected.sort_by_key(|e| e.0);
        let k = KernelSymbols::parse(text);
        let got: Vec<(u64, String, Option<String>)> = k
            .addrs
            .iter()
            .zip(k.iter())
            .map(|(&a, s)| (a, s.name.to_string(), s.module.map(str::to_string)))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(k.lookup(0xffffffff80001010).unwrap().module, Some("veth"));
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
