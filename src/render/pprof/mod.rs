//! `report --pprof`: the view as a gzip-compressed pprof profile, the
//! format `go tool pprof` reads and fleet profilers (Parca, Grafana
//! Pyroscope) ingest. Every frame is already named, so each location is
//! one function (`func [module]` for modules and BPF programs, as the
//! other outputs name them) in a mapping per binary or module, with its
//! build id where the recording has one. Samples carry comm, pid, tid and
//! cpu labels; their values follow the event: samples and cpu nanoseconds
//! for cpu-clock, nanoseconds for off-CPU and wall time, hits for probes
//! and tracepoints.

mod proto;

use std::io::Write;

use ahash::AHashMap as HashMap;
use flate2::write::GzEncoder;
use flate2::Compression;
use prost::Message;

use crate::error::{IoContext, Result};
use crate::model::off_cpu::{self, OFF_CPU_EVENT, WALL_EVENT};
use crate::model::symbolize::{Frame, FrameKind};
use crate::model::view::View;

/// Writes the view's profile, compressed, to `out`.
pub fn write(view: &View, out: &mut impl Write) -> Result<()> {
    let bytes = profile(view).encode_to_vec();
    let mut gz = GzEncoder::new(out, Compression::default());
    gz.write_all(&bytes)
        .and_then(|_| gz.finish().map(|_| ()))
        .io_context(|| "cannot write the pprof profile")
}

/// The string table, each string once.
#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        let mut s = Strings::default();
        s.id("");
        s
    }

    fn id(&mut self, text: &str) -> i64 {
        if let Some(&id) = self.index.get(text) {
            return id;
        }
        let id = self.table.len() as i64;
        self.table.push(text.to_string());
        self.index.insert(text.to_string(), id);
        id
    }
}

/// What a sample's values are: (type, unit, what one count is worth).
struct Values {
    types: Vec<(&'static str, &'static str, u64)>,
    /// The sampling period's (type, unit, value), for sampling events.
    period: Option<(&'static str, &'static str, u64)>,
}

fn values_of(view: &View) -> Values {
    let p = view.profile;
    let Some(e) = view.event else {
        return Values {
            types: vec![("samples", "count", 1)],
            period: None,
        };
    };
    let name = p.events[e as usize].as_str();
    let mean_period = p.mean_period(e);
    if off_cpu::counts_nanoseconds(name) {
        let kind = match name {
            WALL_EVENT => "wall",
            n if n.starts_with(OFF_CPU_EVENT) => "off_cpu",
            _ => "woken",
        };
        return Values {
            types: vec![(kind, "nanoseconds", 1)],
            period: None,
        };
    }
    match name {
        // A period in ns (not counted with --bpf, whose period is a count).
        "cpu-clock" | "task-clock" if mean_period > 1 => Values {
            types: vec![("samples", "count", 1), ("cpu", "nanoseconds", mean_period)],
            period: Some(("cpu", "nanoseconds", mean_period)),
        },
        // Counted in the kernel (record --bpf): the period is a count.
        "cpu-clock" | "task-clock" => Values {
            types: vec![("samples", "count", 1)],
            period: None,
        },
        _ if mean_period > 1 => Values {
            types: vec![("samples", "count", 1), ("events", "count", mean_period)],
            period: Some(("events", "count", mean_period)),
        },
        // Probes and tracepoints: every hit is a sample.
        _ => Values {
            types: vec![("hits", "count", 1)],
            period: None,
        },
    }
}

/// The mapping a frame belongs to: the kernel, a module, BPF, or the file.
fn mapping_name(frame: &Frame) -> String {
    match (&frame.kind, &frame.module) {
        (FrameKind::Kernel, _) => "[kernel.kallsyms]".to_string(),
        (FrameKind::Module | FrameKind::Bpf, Some(m)) => format!("[{m}]"),
        (FrameKind::User, Some(path)) => path.clone(),
        _ => "[unknown]".to_string(),
    }
}

fn profile(view: &View) -> proto::Profile {
    let p = view.profile;
    let symbols = view.symbols;
    let mut strings = Strings::new();
    let values = values_of(view);
    let mut out = proto::Profile {
        sample_type: values
            .types
            .iter()
            .map(|&(t, u, _)| proto::ValueType {
                r#type: strings.id(t),
                unit: strings.id(u),
            })
            .collect(),
        ..Default::default()
    };
    if let Some((t, u, period)) = values.period {
        out.period_type = Some(proto::ValueType {
            r#type: strings.id(t),
            unit: strings.id(u),
        });
        out.period = period as i64;
    }
    out.default_sample_type = out.sample_type.last().map_or(0, |v| v.r#type);
    out.comment
        .push(strings.id(&format!("netprof report --pprof: {}", view.event_name())));
    // A location (and function) per frame met, ids from 1.
    let mut location_of: HashMap<u32, u64> = HashMap::new();
    let mut mapping_of: HashMap<String, u64> = HashMap::new();
    let keys = [
        strings.id("comm"),
        strings.id("pid"),
        strings.id("tid"),
        strings.id("cpu"),
    ];
    for row in &view.rows {
        let mut location_id = Vec::new();
        // Leaf first.
        for &f in symbols.stacks[row.stack as usize].iter().rev() {
            let next = location_of.len() as u64 + 1;
            let id = *location_of.entry(f).or_insert(next);
            if id == next {
                let frame = &symbols.frames[f as usize];
                let mapping_name = mapping_name(frame);
                let next_mapping = mapping_of.len() as u64 + 1;
                let mapping_id = *mapping_of
                    .entry(mapping_name.clone())
                    .or_insert(next_mapping);
                if mapping_id == next_mapping {
                    let build_id = p
                        .build_ids
                        .get(&mapping_name)
                        .map(|b| b.iter().map(|x| format!("{x:02x}")).collect::<String>())
                        .unwrap_or_default();
                    out.mapping.push(proto::Mapping {
                        id: mapping_id,
                        filename: strings.id(&mapping_name),
                        build_id: strings.id(&build_id),
                        has_functions: true,
                        ..Default::default()
                    });
                }
                let name = strings.id(&frame.label());
                out.function.push(proto::Function {
                    id,
                    name,
                    system_name: strings.id(&frame.name),
                    filename: strings.id(&mapping_name),
                });
                out.location.push(proto::Location {
                    id,
                    mapping_id,
                    address: 0,
                    line: vec![proto::Line {
                        function_id: id,
                        line: 0,
                    }],
                });
            }
            location_id.push(id);
        }
        let comm = strings.id(&p.comms[row.comm as usize]);
        out.sample.push(proto::Sample {
            location_id,
            value: values
                .types
                .iter()
                .map(|&(_, _, worth)| (row.count.saturating_mul(worth)) as i64)
                .collect(),
            label: vec![
                proto::Label {
                    key: keys[0],
                    str: comm,
                    num: 0,
                },
                proto::Label {
                    key: keys[1],
                    str: 0,
                    num: row.pid as i64,
                },
                proto::Label {
                    key: keys[2],
                    str: 0,
                    num: row.tid as i64,
                },
                proto::Label {
                    key: keys[3],
                    str: 0,
                    num: row.cpu as i64,
                },
            ],
        });
    }
    out.string_table = strings.table;
    out
}
