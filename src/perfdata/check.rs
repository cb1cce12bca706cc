//! Validates a perf.data file's layout before the parser trusts it.
//!
//! linux-perf-data allocates what the file's sizes and counts claim before
//! reading the bytes behind them, so a corrupt size would abort the process
//! on a failed allocation instead of failing politely. Every size and count it
//! allocates by is checked here against the bytes that actually exist, and
//! every compressed record is expanded once, without keeping the output, to
//! bound what the parser will allocate for it.

use zstd_safe::{DCtx, InBuffer, OutBuffer};

use crate::error::{Error, Result};

fn corrupt<T>(what: &str) -> Result<T> {
    Err(Error::corrupt_input(what))
}

const HEADER_SIZE: usize = 104;
/// The header of a pipe-mode file (`perf record -o -`): magic and size.
const PIPE_HEADER_SIZE: u64 = 16;
const PERF_RECORD_AUXTRACE: u64 = 71;
const PERF_RECORD_COMPRESSED: u64 = 81;
const PERF_RECORD_COMPRESSED2: u64 = 83;
/// The most one compressed record may expand to: perf compresses one ring
/// buffer read at a time, a few MiB at the most.
const MAX_EXPANDED_RECORD: usize = 64 << 20;

/// How a perf.data file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// A file with a header, sections and a feature table; `plain` when its
    /// records are all as written in this machine's byte order, none
    /// compressed and none followed by AUX data, so they can be read where
    /// they lie.
    File { plain: bool },
    /// A stream (`perf record -o -`): a 16-byte header, then records only.
    Pipe,
}
/// The smallest perf_event_attr (PERF_ATTR_SIZE_VER0) plus its ids section.
const MIN_ATTR_ENTRY: u64 = 64 + 16;

struct Bytes<'a> {
    data: &'a [u8],
    big_endian: bool,
}

impl Bytes<'_> {
    fn u64(&self, at: u64) -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let b: [u8; 8] = self.data.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if self.big_endian {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
    fn u32(&self, at: u64) -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let b: [u8; 4] = self.data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u64::from(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }))
    }
    fn u16(&self, at: u64) -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let b: [u8; 2] = self.data.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(u64::from(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }))
    }
    fn inside(&self, offset: u64, size: u64) -> bool {
        offset
            .checked_add(size)
            .is_some_and(|end| end <= self.data.len() as u64)
    }
}

/// Whether a perf.data file's header announces feature section `feature`,
/// read before anything is checked (a bit of the header's bitmap: no
/// offset is trusted); `None` for a pipe's stream, which has no bitmap, or
/// what is not a perf.data header.
pub fn announces_feature(data: &[u8], feature: u32) -> Option<bool> {
    let magic = data.get(..8)?;
    if magic != b"PERFILE2" && magic != b"2ELIFREP" {
        return None;
    }
    let f = Bytes {
        data,
        big_endian: magic == b"2ELIFREP",
    };
    if f.u64(8) == Some(PIPE_HEADER_SIZE) || feature >= 256 {
        return None;
    }
    let bit = u64::from(feature);
    Some(f.u64(72 + 8 * (bit / 64))? & (1 << (bit % 64)) != 0)
}

/// Checks every size and count the parser will trust. Errors are of kind
/// CorruptInput and read as the rest of a sentence that starts with the
/// file's name.
pub fn check_layout(data: &[u8]) -> Result<Layout> {
    let magic = data.get(..8);
    if magic != Some(b"PERFILE2") && magic != Some(b"2ELIFREP") {
        return Err(Error::corrupt_input("is not a readable perf.data file (no PERFILE2 magic); pass a file from `netprof record` or `perf record`"));
    }
    let f = Bytes {
        data,
        big_endian: magic == Some(b"2ELIFREP"),
    };
    if f.u64(8) == Some(PIPE_HEADER_SIZE) {
        check_records(&f, PIPE_HEADER_SIZE, data.len() as u64)?;
        return Ok(Layout::Pipe);
    }
    let native = f.big_endian == cfg!(target_endian = "big");
    if data.len() < HEADER_SIZE {
        return corrupt("is truncated (shorter than a perf.data header); record it again");
    }
    let word = |i: u64| f.u64(i).unwrap_or(0);
    let (attr_entry, attrs, attrs_size, data_at, data_size) =
        (word(16), word(24), word(32), word(40), word(48));
    if !f.inside(data_at, data_size) {
        return corrupt(
            "is truncated (it ends inside its data); the recording was cut short, record again",
        );
    }
    // The event_types section (old perf) is read the same way as the attrs.
    if !f.inside(attrs, attrs_size) || !f.inside(word(56), word(64)) || attr_entry < MIN_ATTR_ENTRY
    {
        return corrupt("is corrupt (its event attributes do not fit the file); record it again");
    }
    // Each attr entry ends with the section of its event ids.
    let mut entry = attrs;
    while entry + attr_entry <= attrs + attrs_size {
        let ids_section = entry + attr_entry - 16;
        if !f.inside(word(ids_section), word(ids_section + 8)) {
            return corrupt("is corrupt (an event's ids lie past its end); record it again");
        }
        entry += attr_entry;
    }
    // Feature sections: a table right after the data, one entry per set bit.
    let mut table = data_at + data_size;
    for bit in 0..256u64 {
        if word(72 + 8 * (bit / 64)) & (1 << (bit % 64)) == 0 {
            continue;
        }
        let (Some(offset), Some(size)) = (f.u64(table), f.u64(table + 8)) else {
            return corrupt("is truncated (its feature sections are missing); record it again");
        };
        if !f.inside(offset, size) {
            return corrupt(
                "is corrupt or truncated (a feature section lies past its end); record it again",
            );
        }
        if bit == u64::from(super::HEADER_EVENT_DESC) && !event_desc_fits(&f, offset, size) {
            return corrupt(
                "is corrupt (its event descriptions do not fit their section); record it again",
            );
        }
        table += 16;
    }
    let plain = check_records(&f, data_at, data_at + data_size)?;
    Ok(Layout::File {
        plain: plain && native,
    })
}

/// How far ahead of the record being checked the walk touches the file.
const READ_AHEAD: u64 = 4096;

/// Walks the records in [start, end): each must fit, the data an AUXTRACE
/// record announces must follow it, and a compressed record must expand to
/// at most [`MAX_EXPANDED_RECORD`]. Whether none was compressed or had AUX
/// data.
fn check_records(f: &Bytes, start: u64, end: u64) -> Result<bool> {
    let mut plain = true;
    let mut zstd: Option<Expander> = None;
    let mut at = start;
    while at < end {
        // Each record's place follows from the size of the one before, so
        // reading headers alone waits for memory at every record; a load
        // from a page ahead, which nothing waits for, overlaps that wait
        // (the walk over a 400k-record file: 32 -> 11 ms).
        std::hint::black_box(f.data.get((at + READ_AHEAD) as usize).copied());
        let (Some(type_), Some(size)) = (f.u32(at), f.u16(at + 6)) else {
            return corrupt("is truncated (it ends inside a record); record it again");
        };
        if size < 8 || at + size > end {
            return corrupt(
                "is corrupt or truncated (a record does not fit its data); record it again",
            );
        }
        let body = &f.data[(at + 8) as usize..(at + size) as usize];
        match type_ {
            PERF_RECORD_AUXTRACE => {
                plain = false;
                let aux = f.u64(at + 8).unwrap_or(u64::MAX);
                if aux > end - (at + size) {
                    return corrupt("is corrupt (an AUXTRACE record claims more data than the file holds); record it again");
                }
                at += aux;
            }
            PERF_RECORD_COMPRESSED => {
                plain = false;
                zstd.get_or_insert_with(Expander::new).expand(body)?
            }
            PERF_RECORD_COMPRESSED2 => {
                plain = false;
                // The compressed size comes first; the rest may be padding.
                let len = f.u64(at + 8).unwrap_or(u64::MAX);
                let Some(data) = body
                    .get(8..)
                    .and_then(|b| b.get(..usize::try_from(len).ok()?))
                else {
                    return corrupt("is corrupt (a compressed record claims more data than it holds); record it again");
                };
                zstd.get_or_insert_with(Expander::new).expand(data)?;
            }
            _ => {}
        }
        at += size;
    }
    Ok(plain)
}

/// Expands compressed records as the parser will (one zstd stream across
/// records), counting the output without keeping it.
struct Expander {
    context: DCtx<'static>,
    buffer: Vec<u8>,
}

impl Expander {
    fn new() -> Expander {
        Expander {
            context: DCtx::create(),
            buffer: vec![0; 1 << 20],
        }
    }

    fn expand(&mut self, data: &[u8]) -> Result<()> {
        let mut input = InBuffer::around(data);
        let mut expanded = 0;
        loop {
            let mut output = OutBuffer::around(&mut self.buffer[..]);
            if self
                .context
                .decompress_stream(&mut output, &mut input)
                .is_err()
            {
                return corrupt(
                    "is corrupt (a compressed record does not decompress); record it again",
                );
            }
            let produced = output.pos();
            expanded += produced;
            if expanded > MAX_EXPANDED_RECORD {
                return corrupt("is corrupt (a compressed record expands past 64 MiB, more than perf ever compresses at once); record it again");
            }
            if produced < self.buffer.len() && input.pos() == data.len() {
                return Ok(());
            }
        }
    }
}

/// EVENT_DESC: u32 count, u32 attr size, then per event the attr, u32 id
/// count, a string (u32 length, bytes) and the ids.
fn event_desc_fits(f: &Bytes, offset: u64, size: u64) -> bool {
    let end = offset + size;
    let (Some(count), Some(attr_size)) = (f.u32(offset), f.u32(offset + 4)) else {
        return false;
    };
    if attr_size < 64 {
        return false;
    }
    let mut at = offset + 8;
    for _ in 0..count {
        at += attr_size;
        let Some(ids) = f.u32(at) else { return false };
        let Some(name_len) = f.u32(at + 4) else {
            return false;
        };
        at += 8 + name_len + 8 * ids;
        if at > end {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(attr_entry: u64, attrs: (u64, u64), data: (u64, u64)) -> Vec<u8> {
        let mut h = b"PERFILE2".to_vec();
        for v in [
            104, attr_entry, attrs.0, attrs.1, data.0, data.1, 0, 0, 0, 0, 0, 0,
        ] {
            h.extend_from_slice(&u64::to_le_bytes(v));
        }
        h.resize(104, 0);
        h
    }

    #[test]
    fn announced_features_are_read_from_the_header_bitmap() {
        let mut h = header(136, (104, 0), (104, 0));
        // Bitmap at byte 72: feature 200 is bit 8 of its fourth word.
        h[72 + 8 * 3 + 1] |= 1;
        assert_eq!(announces_feature(&h, 200), Some(true));
        assert_eq!(announces_feature(&h, 199), Some(false));
        assert_eq!(announces_feature(&h, 256), None);
        assert_eq!(announces_feature(b"not perf", 200), None);
        // A pipe's header has no bitmap.
        let mut pipe = b"PERFILE2".to_vec();
        pipe.extend_from_slice(&16u64.to_le_bytes());
        assert_eq!(announces_feature(&pipe, 200), None);
    }

    #[test]
    fn sizes_past_the_end_are_refused() {
        assert!(check_layout(b"not perf")
            .unwrap_err()
            .to_string()
            .contains("no PERFILE2 magic"));
        let h = header(144, (104, 0), (104, 1 << 40));
        assert!(check_layout(&h)
            .unwrap_err()
            .to_string()
            .contains("truncated"));
        let h = header(0, (104, 0), (104, 0));
        assert!(check_layout(&h)
            .unwrap_err()
            .to_string()
            .contains("attributes"));
        let h = header(144, (104, 0), (104, 0));
        assert_eq!(check_layout(&h).unwrap(), Layout::File { plain: true });
    }
}
