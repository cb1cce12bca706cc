//! Tracepoint fields: tracefs's format description of an event, and the
//! decoding of each hit's raw data with it, so that probe arguments
//! (`netprof probe 'FUNC len=$arg3'`) and tracepoint fields show in reports.
//!
//! Hand-written: no maintained crate parses tracefs format files (perf
//! uses the C libtraceevent).

/// One field of a tracepoint's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub offset: usize,
    pub size: usize,
    pub signed: bool,
    /// `char name[N]`: a NUL-padded string.
    pub is_char_array: bool,
    /// `__data_loc char[] name`: a u32 (offset | length << 16) to a string.
    pub is_data_loc_string: bool,
    /// Names of its values, where the event's print format gives them
    /// (`__print_flags`, `__print_symbolic`), as perf shows them.
    pub names: Option<ValueNames>,
}

/// How a field's value reads as names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueNames {
    /// Flags, each set bit a name joined by `delimiter`; else one value.
    pub flags: bool,
    pub delimiter: String,
    pub values: Vec<(u64, String)>,
    /// What a value with none of the flags reads as (`R` for a running
    /// task's prev_state), where the format says.
    pub none: Option<String>,
}

impl ValueNames {
    fn name(&self, value: u64) -> Option<String> {
        if !self.flags {
            return self
                .values
                .iter()
                .find(|v| v.0 == value)
                .map(|v| v.1.clone());
        }
        let set: Vec<&str> = self
            .values
            .iter()
            .filter(|v| v.0 != 0 && value & v.0 == v.0)
            .map(|v| v.1.as_str())
            .collect();
        if set.is_empty() {
            return self.none.clone();
        }
        Some(set.join(&self.delimiter))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Format {
    pub fields: Vec<Field>,
}

impl Format {
    /// Parses the `format` file; the common_* fields every event shares are
    /// left out.
    pub fn parse(text: &str) -> Format {
        let mut fields = Vec::new();
        let print_fmt = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("print fmt:"))
            .unwrap_or_default();
        for line in text.lines() {
            let Some(rest) = line.trim().strip_prefix("field:") else {
                continue;
            };
            let mut decl = "";
            let (mut offset, mut size, mut signed) = (None, None, false);
            for part in rest.split(';').map(str::trim) {
                if let Some(v) = part.strip_prefix("offset:") {
                    offset = v.parse().ok();
                } else if let Some(v) = part.strip_prefix("size:") {
                    size = v.parse().ok();
                } else if let Some(v) = part.strip_prefix("signed:") {
                    signed = v == "1";
                } else if decl.is_empty() {
                    decl = part;
                }
            }
            let (Some(offset), Some(size)) = (offset, size) else {
                continue;
            };
            let last = decl.rsplit(' ').next().unwrap_or(decl);
            let name = last.split('[').next().unwrap_or(last).to_string();
            if name.starts_with("common_") || name.is_empty() {
                continue;
            }
            fields.push(Field {
                name,
                offset,
                size,
                signed,
                is_char_array: decl.starts_with("char ") && last.contains('['),
                is_data_loc_string: decl.starts_with("__data_loc char"),
                names: None,
            });
        }
        for (field, names) in value_names(print_fmt) {
            if let Some(f) = fields.iter_mut().find(|f| f.name == field) {
                f.names = Some(names);
            }
        }
        Format { fields }
    }

    /// `name=value` for each field present in `raw`.
    pub fn decode(&self, raw: &[u8]) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for f in &self.fields {
            let Some(bytes) = raw.get(f.offset..f.offset + f.size) else {
                continue;
            };
            let value = if f.is_char_array {
                c_string(bytes)
            } else if f.is_data_loc_string && f.size == 4 {
                let loc = u32::from_le_bytes(bytes.try_into().expect("4 bytes"));
                let (start, len) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
                raw.get(start..start + len)
                    .map(c_string)
                    .unwrap_or_default()
            } else if let Some(name) = f.names.as_ref().and_then(|n| n.name(integer(bytes)?)) {
                name
            } else {
                match (f.size, f.signed) {
                    (1, false) => bytes[0].to_string(),
                    (1, true) => (bytes[0] as i8).to_string(),
                    (2, false) => u16::from_le_bytes(bytes.try_into().expect("2")).to_string(),
                    (2, true) => i16::from_le_bytes(bytes.try_into().expect("2")).to_string(),
                    (4, false) => u32::from_le_bytes(bytes.try_into().expect("4")).to_string(),
                    (4, true) => i32::from_le_bytes(bytes.try_into().expect("4")).to_string(),
                    (8, false) => {
                        format!("{:#x}", u64::from_le_bytes(bytes.try_into().expect("8")))
                    }
                    (8, true) => i64::from_le_bytes(bytes.try_into().expect("8")).to_string(),
                    _ => bytes.iter().map(|b| format!("{b:02x}")).collect(),
                }
            };
            out.push((f.name.clone(), value));
        }
        out
    }
}

/// The value names of `__print_flags(REC->field..., "|", { 1, "S" }, ...)`
/// and `__print_symbolic(REC->field, { 2, "NAME" }, ...)` in a print format.
fn value_names(print_fmt: &str) -> Vec<(String, ValueNames)> {
    let mut found = Vec::new();
    for (marker, flags) in [("__print_flags(", true), ("__print_symbolic(", false)] {
        let mut rest = print_fmt;
        while let Some(at) = rest.find(marker) {
            let inside = &rest[at + marker.len()..];
            let Some(end) = closing_paren(inside) else {
                break;
            };
            let args = split_args(&inside[..end]);
            let after = inside[end + 1..].trim_start();
            rest = &inside[end + 1..];
            let Some(field) = args.first().and_then(|a| a.split("REC->").nth(1)) else {
                continue;
            };
            let field: String = field
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let (delimiter, pairs) = if flags {
                (
                    args.get(1).map(|d| unquote(d)).unwrap_or_default(),
                    &args[2.min(args.len())..],
                )
            } else {
                (String::new(), &args[1.min(args.len())..])
            };
            let values: Vec<(u64, String)> = pairs.iter().filter_map(|p| pair(p)).collect();
            // `cond ? __print_flags(...) : "R"`: the name of no flag set.
            let none = after
                .strip_prefix(':')
                .map(str::trim_start)
                .filter(|a| a.starts_with('"'))
                .and_then(|a| a[1..].split('"').next())
                .map(str::to_string);
            found.push((
                field,
                ValueNames {
                    flags,
                    delimiter,
                    values,
                    none,
                },
            ));
        }
    }
    found
}

/// Where the parenthesis that the text's start is inside of closes.
fn closing_paren(text: &str) -> Option<usize> {
    let mut depth = 0;
    let mut in_string = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '(' | '{' if !in_string => depth += 1,
            ')' | '}' if !in_string && depth > 0 => depth -= 1,
            ')' if !in_string => return Some(i),
            _ => {}
        }
    }
    None
}

/// Arguments separated by commas outside parentheses, braces and strings.
fn split_args(text: &str) -> Vec<&str> {
    let (mut args, mut depth, mut in_string, mut start) = (Vec::new(), 0, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_string = !in_string,
            '(' | '{' if !in_string => depth += 1,
            ')' | '}' if !in_string => depth -= 1,
            ',' if !in_string && depth == 0 => {
                args.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    args.push(text[start..].trim());
    args
}

fn unquote(text: &str) -> String {
    text.trim().trim_matches('"').to_string()
}

/// `{ 0x00000001, "S" }` -> (1, "S").
fn pair(text: &str) -> Option<(u64, String)> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let (value, name) = inner.split_once(',')?;
    let value = value.trim();
    let value = match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => value.parse::<i64>().ok()? as u64,
    };
    Some((value, unquote(name)))
}

/// A little-endian integer field of 1 to 8 bytes, sign-extended to 64 bits
/// as the kernel's masks expect.
fn integer(bytes: &[u8]) -> Option<u64> {
    Some(match bytes.len() {
        1 => bytes[0] as i8 as i64 as u64,
        2 => i16::from_le_bytes(bytes.try_into().ok()?) as i64 as u64,
        4 => i32::from_le_bytes(bytes.try_into().ok()?) as i64 as u64,
        8 => u64::from_le_bytes(bytes.try_into().ok()?),
        _ => return None,
    })
}

fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KPROBE: &str = "name: netprof_test_inner\nID: 1234\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n\
\tfield:unsigned long __probe_ip;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:s32 x;\toffset:16;\tsize:4;\tsigned:1;\n\
\tfield:char comm[16];\toffset:20;\tsize:16;\tsigned:0;\n";

    #[test]
    fn decodes_probe_arguments() {
        let f = Format::parse(KPROBE);
        assert_eq!(
            f.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["__probe_ip", "x", "comm"]
        );
        let mut raw = vec![0u8; 36];
        raw[8..16].copy_from_slice(&0xffffffffc0001000u64.to_le_bytes());
        raw[16..20].copy_from_slice(&(-7i32).to_le_bytes());
        raw[20..22].copy_from_slice(b"sh");
        assert_eq!(
            f.decode(&raw),
            vec![
                ("__probe_ip".to_string(), "0xffffffffc0001000".to_string()),
                ("x".to_string(), "-7".to_string()),
                ("comm".to_string(), "sh".to_string()),
            ]
        );
        // A short record decodes what it holds and nothing more.
        assert_eq!(f.decode(&raw[..18]).len(), 1);
    }

    const SWITCH: &str = "name: sched_switch\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:long prev_state;\toffset:8;\tsize:8;\tsigned:1;\n\
\tfield:int reason;\toffset:16;\tsize:4;\tsigned:1;\n\n\
print fmt: \"prev_state=%s%s reason=%s\", (REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002) + 1) << 1) - 1)) ? __print_flags(REC->prev_state & ((((0x00000000 | 0x00000001 | 0x00000002) + 1) << 1) - 1), \"|\", { 0x00000001, \"S\" }, { 0x00000002, \"D\" }, { 0x00000080, \"I\" }) : \"R\", REC->prev_state & 256 ? \"+\" : \"\", __print_symbolic(REC->reason, { 2, \"NOT_SPECIFIED\" }, { 3, \"NO_SOCKET\" })\n";

    #[test]
    fn flag_and_enum_fields_read_as_perf_shows_them() {
        let f = Format::parse(SWITCH);
        let record = |state: i64, reason: i32| {
            let mut raw = vec![0u8; 20];
            raw[8..16].copy_from_slice(&state.to_le_bytes());
            raw[16..20].copy_from_slice(&reason.to_le_bytes());
            f.decode(&raw)
        };
        let value = |fields: Vec<(String, String)>, name: &str| {
            fields.into_iter().find(|(n, _)| n == name).unwrap().1
        };
        assert_eq!(value(record(2, 3), "prev_state"), "D");
        assert_eq!(value(record(1, 2), "prev_state"), "S");
        assert_eq!(value(record(0, 2), "prev_state"), "R");
        assert_eq!(value(record(0x81, 2), "prev_state"), "S|I");
        assert_eq!(value(record(0, 3), "reason"), "NO_SOCKET");
        assert_eq!(value(record(0, 99), "reason"), "99");
    }
}
