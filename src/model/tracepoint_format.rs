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
            });
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
}
