//! Feeds arbitrary bytes to the perf.data reader: it must return a profile or
//! an error, never panic or hang. The corpus in fuzz/corpus/read_profile is
//! replayed by tests/fuzz_corpus.rs in every test run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netprof::model::profile::{Filter, Profile};

fuzz_target!(|data: &[u8]| {
    if let Ok(profile) = Profile::from_bytes(data, &Filter::default()) {
        // Naming frames walks every stack and address space of the result.
        let symbols = netprof::model::symbolize::symbolize(&profile);
        let _ = netprof::model::view::View::build(&profile, &symbols, Default::default()).map(|v| v.folded());
    }
});
