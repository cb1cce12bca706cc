//! Replays the fuzzer's corpus (fuzz/corpus/read_profile: seeds and every
//! input the fuzzer found interesting) through the reader: each must give a
//! profile or an error, never a panic. Grow the corpus with
//!   cargo fuzz run read_profile -- -max_total_time=300
//! and commit the new files.

mod common;

use std::path::Path;

use netprof::model::profile::{Filter, Profile};

#[test]
fn corpus_inputs_read_or_fail_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/read_profile");
    let mut inputs = 0;
    let mut readable = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        inputs += 1;
        if let Ok(profile) = Profile::from_bytes(&bytes, &Filter::default()) {
            readable += 1;
            let symbols = netprof::model::symbolize::symbolize(&profile);
            let view =
                netprof::model::view::View::build(&profile, &symbols, Default::default()).unwrap();
            let _ = view.folded();
        }
    }
    assert!(inputs >= 10, "corpus too small: {inputs}");
    assert!(
        readable >= 3,
        "the seeds must include readable recordings ({readable} of {inputs})"
    );
}

/// The hand-made seeds are small synthetic recordings; they must be exactly
/// what the writer produces today, so a change of the on-disk format shows
/// here. Regenerate after a deliberate change with:
///   NETPROF_WRITE_SEEDS=1 cargo test --test fuzz_corpus
#[test]
fn seeds_are_what_the_writer_produces() {
    use common::*;
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/read_profile");
    let fresh = tempfile::tempdir().unwrap();
    let mut s = Synth::new();
    s.kallsyms =
        Some("ffffffff81001000 T read_zero\nffffffffc0001000 t hsr_forward_skb\t[hsr]\n".into());
    s.comm(1, "a").mmap(1, 0x400000, 0x401000, "/bin/true");
    s.samples(2, 1, 0, &[k("read_zero")], &[0x400010]);
    s.write(&fresh.path().join("seed-kernel-user"));
    let mut s = Synth::new();
    s.kallsyms = None;
    s.comm(2, "b").samples(1, 2, 1, &[], &[0x1234, 0x5678]);
    s.write(&fresh.path().join("seed-no-snapshot"));
    let mut s = Synth::new();
    s.kallsyms = Some("ffffffffc0100000 t bpf_prog_6deef7357e7b4530_x\t[bpf]\n".into());
    s.samples(1, 3, 0, &[0xffffffffc0100010], &[]);
    s.write(&fresh.path().join("seed-bpf"));

    let update = std::env::var_os("NETPROF_WRITE_SEEDS").is_some();
    for name in ["seed-kernel-user", "seed-no-snapshot", "seed-bpf"] {
        let new = std::fs::read(fresh.path().join(name)).unwrap();
        if update {
            std::fs::write(corpus.join(name), &new).unwrap();
        }
        let committed = std::fs::read(corpus.join(name)).unwrap_or_default();
        assert!(
            committed == new,
            "{name} differs from the writer's output; regenerate with NETPROF_WRITE_SEEDS=1"
        );
        let profile = Profile::from_bytes(&new, &Filter::default()).unwrap();
        assert!(profile.total_samples > 0);
    }
}
