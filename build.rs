//! Compiles the BPF programs in bpf/ with clang and generates their
//! libbpf-rs skeletons (Debian: clang, libelf-dev, zlib1g-dev, pkg-config).

use std::env;
use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

/// The programs in bpf/, by file stem, with their own compiler options.
/// funcgraph updates statistics shared by all CPUs with compare-and-exchange,
/// which needs BPF ISA v3 (kernel 5.12 and later).
const PROGRAMS: &[(&str, &[&str])] = &[
    ("funcgraph", &["-mcpu=v3"]),
    ("kprobe_multi", &[]),
    ("latency", &[]),
    ("stack_count", &[]),
];

/// Headers the programs include.
const HEADERS: &[&str] = &["bpf/follow_pids.h", "bpf/histogram.h"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets the target arch");
    // <linux/bpf.h> includes <asm/types.h>, which Debian keeps per architecture.
    let asm_headers = format!("-I/usr/include/{arch}-linux-gnu");
    // bpf_tracing.h reads registers (a return value) by libbpf's arch name.
    let target_arch = match arch.as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        other => other,
    };
    let target_define = format!("-D__TARGET_ARCH_{target_arch}");
    for (program, extra) in PROGRAMS {
        let source = format!("bpf/{program}.bpf.c");
        let mut args = vec![asm_headers.as_str(), target_define.as_str()];
        args.extend_from_slice(extra);
        SkeletonBuilder::new()
            .source(&source)
            .clang_args(args)
            .build_and_generate(out.join(format!("{program}.skel.rs")))
            .unwrap_or_else(|e| {
                panic!("cannot build {source} (needs clang and libbpf's build deps): {e:#}")
            });
        println!("cargo:rerun-if-changed={source}");
    }
    for header in HEADERS {
        println!("cargo:rerun-if-changed={header}");
    }
}
