//! Every output netprof prints or writes, one module each: the call graph
//! ([`tree`]), folded stacks ([`folded`]), flamegraphs ([`flame`],
//! [`diff_flame`]), JSON ([`json`]), samples in time order ([`samples`]),
//! pprof profiles ([`pprof`]), the diff tables ([`diff_table`]), latency text ([`latency`]), call
//! paths ([`funcgraph`]), time per thread ([`threads`]), the BPF
//! program table ([`bpf_table`]) and the capability list ([`check`]).

pub mod bpf_table;
pub mod check;
pub mod diff_flame;
pub mod diff_table;
pub mod flame;
pub mod folded;
pub mod funcgraph;
pub mod html;
pub mod json;
pub mod latency;
pub mod pprof;
pub mod samples;
pub mod threads;
pub mod tree;
pub mod units;

/// " [module]" after a function's name, or nothing for vmlinux.
fn module_suffix(module: Option<&str>) -> String {
    module.map(|m| format!(" [{m}]")).unwrap_or_default()
}
