//! Compiles the BPF programs in bpf/ with clang and generates their
//! libbpf-rs skeletons (Debian: clang, libelf-dev, zlib1g-dev, pkg-config).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// The programs in bpf/, by file stem.
const PROGRAMS: &[&str] = &["kprobe_multi", "latency", "stack_count"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets the target arch");
    // <linux/bpf.h> includes <asm/types.h>, which Debian keeps per architecture.
    let asm_headers = format!("-I/usr/include/{arch}-linux-gnu");
    for program in PROGRAMS {
        let source = format!("bpf/{program}.bpf.c");
        SkeletonBuilder::new()
            .source(&source)
            .clang_args([asm_headers.as_str()])
            .build_and_generate(out.join(format!("{program}.skel.rs")))
            .unwrap_or_else(|e| {
                panic!("cannot build {source} (needs clang and libbpf's build deps): {e:#}")
            });
        println!("cargo:rerun-if-changed={source}");
    }
}
