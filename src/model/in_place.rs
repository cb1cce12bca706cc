//! The records of a perf.data file in memory, walked where they lie and
//! handed over in time order: linux-perf-data reads each record into a
//! buffer of its own, and the counting thread needed a copy of that; here a
//! record is its place in the file. Used for files whose records are all
//! plain (see [`crate::perfdata::check::Layout`]); others, and pipes, go
//! through linux-perf-data.
//!
//! Time order follows perf's rounds as linux-perf-data does: at the end of a
//! round (a FINISHED_ROUND record) the records not later than the previous
//! round's latest one are sorted and handed over, the rest wait for the next
//! round, as per-CPU buffers are written out one after the other.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

use ahash::AHashMap as HashMap;
use byteorder::NativeEndian;
use linux_perf_data::linux_perf_event_reader::{
    get_record_id, get_record_identifier, get_record_timestamp, AttrFlags, RawData, RawEventRecord,
    RecordIdParseInfo, RecordParseInfo, RecordType, SampleFormat,
};
use linux_perf_data::{AttributeDescription, Endianness, UserRecordType};

use super::aggregate::{reuse, Batch, Digest, FixedLayout};

/// How a record tells which of the file's attributes it belongs to.
enum AttrOf {
    /// One attribute.
    Only,
    /// Its id, found alike for every attribute.
    Id(RecordIdParseInfo),
    /// Its IDENTIFIER (every attribute has one), with or without
    /// sample_id_all.
    Identifier(bool),
}

/// What walking the file needs to know of its attributes.
pub(super) struct Walk<'f> {
    data: &'f [u8],
    parse_infos: Vec<RecordParseInfo>,
    /// By attribute: where its samples' fields lie, if fixed.
    layouts: Vec<Option<FixedLayout>>,
    attr_of: AttrOf,
    attr_of_id: HashMap<u64, usize>,
}

/// A record: its attribute's index, type, misc, and body's start and end.
type Record = (u16, RecordType, u16, usize, usize);

/// A record waiting for its round: (time, offset in the file) orders it.
type Pending = ((Option<u64>, usize), Record);

impl<'f> Walk<'f> {
    /// `data` is the file's data section. `None` where the attributes do not
    /// tell which one a record is of (linux-perf-data refuses such files
    /// with its own error).
    pub(super) fn new(data: &'f [u8], attributes: &[AttributeDescription]) -> Option<Walk<'f>> {
        let endian = if cfg!(target_endian = "big") {
            Endianness::BigEndian
        } else {
            Endianness::LittleEndian
        };
        let parse_infos: Vec<RecordParseInfo> = attributes
            .iter()
            .map(|a| RecordParseInfo::new(&a.attr, endian))
            .collect();
        let first = parse_infos.first()?;
        let attr_of = if parse_infos.len() == 1 {
            AttrOf::Only
        } else if parse_infos
            .iter()
            .all(|p| p.id_parse_info == first.id_parse_info)
        {
            AttrOf::Id(first.id_parse_info)
        } else {
            let sample_id_all =
                |a: &AttributeDescription| a.attr.flags.contains(AttrFlags::SAMPLE_ID_ALL);
            let all = sample_id_all(&attributes[0]);
            let usable = attributes.iter().all(|a| {
                a.attr.sample_format.contains(SampleFormat::IDENTIFIER) && sample_id_all(a) == all
            });
            if !usable {
                return None;
            }
            AttrOf::Identifier(all)
        };
        let attr_of_id = attributes
            .iter()
            .enumerate()
            .flat_map(|(i, a)| a.event_ids.iter().map(move |&id| (id, i)))
            .collect();
        let layouts = parse_infos
            .iter()
            .map(|p| FixedLayout::of(p.sample_format))
            .collect();
        Some(Walk {
            data,
            parse_infos,
            layouts,
            attr_of,
            attr_of_id,
        })
    }

    /// Walks the records, handing them over in time order in batches of
    /// about `batch_records` (taking back emptied ones from `recycled`);
    /// stops early if the receiver is gone. `queued` counts the batches
    /// sent and not yet taken: while one waits when the next is sent, the
    /// receiver is the slower thread and this one digests the samples of
    /// the batch after; when none does, it leaves them to the receiver.
    pub(super) fn run(
        &self,
        batch_records: usize,
        out: SyncSender<Batch<'f>>,
        recycled: Receiver<Batch<'f>>,
        queued: &AtomicUsize,
    ) {
        let mut digesting = true;
        let mut incoming: Vec<Pending> = Vec::new();
        let (mut previous_max, mut current_max) = ((None, 0), (None, 0));
        let mut not_after_previous = 0;
        let mut batch = Batch::in_place(self.data, &self.parse_infos);
        let mut scratch = (Vec::new(), Vec::new());
        let mut at = 0;
        while let Some(header) = self.data.get(at..at + 8) {
            let record_type = u32::from_ne_bytes(header[..4].try_into().expect("4 bytes"));
            let misc = u16::from_ne_bytes(header[4..6].try_into().expect("2 bytes"));
            let size = usize::from(u16::from_ne_bytes(
                header[6..8].try_into().expect("2 bytes"),
            ));
            // The file was checked: every record fits and is at least a header.
            let (start, end) = (at + 8, (at + size).max(at + 8));
            at = end;
            let record_type = RecordType(record_type);
            if !record_type.is_builtin_type() {
                if UserRecordType::try_from(record_type)
                    == Some(UserRecordType::PERF_FINISHED_ROUND)
                {
                    // Records of this round later than the last round's
                    // latest wait for the next round.
                    let ready = finish_round(&mut incoming, not_after_previous);
                    for (_, record) in ready {
                        self.push(&mut batch, record, digesting, &mut scratch);
                        if batch.len() >= batch_records {
                            let next =
                                reuse(&recycled, || Batch::in_place(self.data, &self.parse_infos));
                            // Batches still waiting before this one: none,
                            // and the receiver is keeping up.
                            digesting = queued.fetch_add(1, Ordering::Relaxed) > 0;
                            if out.send(std::mem::replace(&mut batch, next)).is_err() {
                                return;
                            }
                        }
                    }
                    previous_max = current_max;
                    not_after_previous = incoming.len();
                }
                continue;
            }
            let body = RawData::Single(&self.data[start..end]);
            let attr = match &self.attr_of {
                AttrOf::Only => 0,
                AttrOf::Id(info) => get_record_id::<NativeEndian>(record_type, body, info)
                    .and_then(|id| self.attr_of_id.get(&id).copied())
                    .unwrap_or(0),
                AttrOf::Identifier(all) => {
                    get_record_identifier::<NativeEndian>(record_type, body, *all)
                        .and_then(|id| self.attr_of_id.get(&id).copied())
                        .unwrap_or(0)
                }
            };
            let time =
                get_record_timestamp::<NativeEndian>(record_type, body, &self.parse_infos[attr]);
            let key = (time, start);
            if key <= previous_max {
                not_after_previous += 1;
            } else if key > current_max {
                current_max = key;
            }
            incoming.push((key, (attr as u16, record_type, misc, start, end)));
        }
        incoming.sort_by_key(|&(key, _)| key);
        for (_, record) in incoming {
            self.push(&mut batch, record, digesting, &mut scratch);
        }
        queued.fetch_add(1, Ordering::Relaxed);
        let _ = out.send(batch);
    }

    /// Adds a record to the batch, with its digest if it is a sample and
    /// `digesting`: the part of counting that needs nothing but the record,
    /// done on this thread when the other is the slower one.
    fn push(
        &self,
        batch: &mut Batch<'f>,
        record: Record,
        digesting: bool,
        scratch: &mut (Vec<u64>, Vec<u64>),
    ) {
        let (attr, record_type, misc, start, end) = record;
        let parse_info = self.parse_infos[attr as usize];
        let digest = (digesting && record_type == RecordType::SAMPLE)
            .then(|| {
                let body = &self.data[start..end];
                let (chain, frames) = (&mut scratch.0, &mut scratch.1);
                let layout = self.layouts[attr as usize];
                layout
                    .and_then(|layout| Digest::of_fixed(body, misc, &layout, chain, frames))
                    .or_else(|| {
                        let raw = RawEventRecord::new(
                            record_type,
                            misc,
                            RawData::Single(body),
                            parse_info,
                        );
                        let at = layout.map(|l| l.callchain_at());
                        Digest::of_record(&raw, at, chain, frames)
                    })
            })
            .flatten();
        batch.push_in_place(record, digest);
    }
}

/// The end of a round: the `ready` records no later than the previous
/// round's latest, in time order, taken from the front of `incoming`.
/// `incoming` is a few runs already in time order (each CPU's buffer, and
/// what the round before left, sorted): a sort that merges runs (the
/// standard library's stable one) costs a pass per run, not a full sort.
fn finish_round(incoming: &mut Vec<Pending>, ready: usize) -> Vec<Pending> {
    if ready == 0 {
        return Vec::new();
    }
    incoming.sort_by_key(|&(key, _)| key);
    incoming.drain(..ready).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(time: u64, at: usize) -> Pending {
        ((Some(time), at), (0, RecordType(9), 0, at, at))
    }

    #[test]
    fn a_round_hands_over_what_cannot_be_overtaken_in_time_order() {
        let mut incoming = vec![pending(5, 0), pending(1, 8), pending(3, 16), pending(2, 24)];
        // Three of them were no later than the previous round's latest.
        let ready = finish_round(&mut incoming, 3);
        let times: Vec<u64> = ready.iter().map(|p| p.0 .0.unwrap()).collect();
        assert_eq!(times, [1, 2, 3]);
        assert_eq!(incoming.len(), 1);
        assert_eq!(incoming[0].0 .0, Some(5));
        assert!(finish_round(&mut incoming, 0).is_empty());
    }
}
