//! Kernel probes: which functions of vmlinux and loaded modules can be
//! probed ([`resolve`]), probes that live as long as a recording's file
//! descriptors through the kernel's kprobe PMU ([`kprobe`]), and
//! persistent probes in tracefs's kprobe_events, like `perf probe`
//! ([`persistent`]), and probes on functions of programs ([`uprobe`]).
//! Many functions at once through one multi-kprobe BPF link are in
//! [`crate::bpf::kprobe_multi`].

pub mod arguments;
pub mod kprobe;
pub mod persistent;
pub mod resolve;
pub mod uprobe;

/// A kernel function: its name, for module code the module, and its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    pub module: Option<String>,
    pub address: u64,
}

impl Function {
    /// `name [module]` as reports show it, or the name alone for vmlinux.
    pub fn label(&self) -> String {
        match &self.module {
            Some(m) => format!("{} [{m}]", self.name),
            None => self.name.clone(),
        }
    }
}
