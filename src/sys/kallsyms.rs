//! /proc/kallsyms: the one parser of its lines, shared by the probe
//! resolver (which functions exist) and the recorder (the snapshot stored in
//! each recording, from which reports name kernel frames later).

use crate::error::{Error, Result};

const PATH: &str = "/proc/kallsyms";

/// One code symbol line of kallsyms: `ADDR TYPE NAME [\t[MODULE]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeSymbol<'a> {
    pub address: u64,
    pub name: &'a str,
    /// The module in brackets (`bpf` for BPF programs), `None` for vmlinux.
    pub module: Option<&'a str>,
}

/// Parses a kallsyms line if it is a code symbol (types t, T, w, W): the
/// only symbols a stack or a probe can point into.
pub fn code_symbol(line: &str) -> Option<CodeSymbol<'_>> {
    // A 64-bit kernel's lines (16 hex digits, a type letter, a name) read
    // byte by byte: a report parses a hundred thousand of them, and this is
    // a fifth of the general way's cost.
    let bytes = line.as_bytes();
    if bytes.len() > 19 && bytes[16] == b' ' && bytes[18] == b' ' {
        let address = long_line_address(&bytes[..19])?;
        let rest = &line[19..];
        let (name, module) = match rest.find('\t') {
            Some(tab) => (&rest[..tab], module_name(&rest[tab + 1..])),
            None => (rest.trim_end(), None),
        };
        return Some(CodeSymbol {
            address,
            name,
            module,
        });
    }
    let mut parts = line.splitn(3, ' ');
    let (address, kind, rest) = (parts.next()?, parts.next()?, parts.next()?);
    if !matches!(kind, "t" | "T" | "w" | "W") {
        return None;
    }
    let address = u64::from_str_radix(address, 16).ok()?;
    let (name, module) = match rest.split_once('\t') {
        Some((name, m)) => (name, module_name(m)),
        None => (rest.trim_end(), None),
    };
    Some(CodeSymbol {
        address,
        name,
        module,
    })
}

/// The address of a 64-bit kernel's line from its first 19 bytes (16 hex
/// digits, a space, the type letter, a space), if the type is code's (t, T,
/// w or W); `None` for any other symbol or shape.
pub fn long_line_address(head: &[u8]) -> Option<u64> {
    if head.len() != 19 || head[16] != b' ' || head[18] != b' ' {
        return None;
    }
    if !matches!(head[17], b't' | b'T' | b'w' | b'W') {
        return None;
    }
    head[..16].iter().try_fold(0u64, |address, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        Some(address << 4 | u64::from(digit))
    })
}

/// `[hsr]` (what follows a name's tab) as `hsr`.
fn module_name(bracketed: &str) -> Option<&str> {
    Some(
        bracketed
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']'),
    )
}

/// The whole of /proc/kallsyms.
pub fn read() -> Result<String> {
    std::fs::read_to_string(PATH)
        .map_err(|e| Error::io(format!("cannot read {PATH} (run as root)"), &e))
}

/// The code symbol lines of /proc/kallsyms: what a recording stores so that
/// its reports name kernel, module and BPF frames anywhere, later. Only
/// code symbols: those are the only ones a stack can point into, and they
/// are most of the file.
pub fn code_symbols_text() -> Result<String> {
    let all = read()?;
    let mut text = String::with_capacity(all.len());
    for line in all.lines().filter(|l| code_symbol(l).is_some()) {
        text.push_str(line);
        text.push('\n');
    }
    Ok(text)
}

/// The address of the code symbol `name` in kallsyms text, if shown (not
/// hidden as zero by kptr_restrict).
pub fn address_in(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .filter_map(code_symbol)
        .find(|s| s.name == name)
        .map(|s| s.address)
        .filter(|&a| a != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_lines_parse_with_and_without_module() {
        assert_eq!(
            code_symbol("ffffffffc0001000 t hsr_forward_skb\t[hsr]"),
            Some(CodeSymbol {
                address: 0xffffffffc0001000,
                name: "hsr_forward_skb",
                module: Some("hsr")
            })
        );
        assert_eq!(
            code_symbol("ffffffff81000000 T _text").unwrap().module,
            None
        );
        assert_eq!(code_symbol("ffffffff81003000 D some_data"), None);
        assert_eq!(code_symbol("garbage"), None);
        // Not a 64-bit kernel's width: read the general way.
        assert_eq!(
            code_symbol("c0001000 T start_kernel").map(|s| (s.address, s.name)),
            Some((0xc000_1000, "start_kernel"))
        );
        assert_eq!(code_symbol("ffffffffx1000000 T bad_hex"), None);
        let text = "0000000000000000 T hidden\nffffffff81000000 T _text\n";
        assert_eq!(address_in(text, "_text"), Some(0xffffffff81000000));
        assert_eq!(address_in(text, "hidden"), None);
    }
}
