//! Opening and loading netprof's BPF skeletons: object storage, libbpf's
//! messages, and load errors told apart by kind (no permission, or a
//! refusal with the verifier's reason quoted), in one place.

use std::mem::MaybeUninit;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::OpenObject;

use crate::error::Error;

/// Who a program serves, for its error messages.
pub(super) struct Role {
    /// The command that loads it: `record --bpf`, `latency`.
    pub command: &'static str,
    /// What still works without it, as the end of a sentence, or "".
    pub fallback: &'static str,
}

/// Opens a skeleton. libbpf-rs skeletons borrow their object storage for as
/// long as they live, and netprof keeps each for the rest of a command (a
/// recording, a measurement): the storage, a few hundred bytes, is leaked,
/// once per load, rather than tying every user to a borrow.
pub(super) fn open<B: SkelBuilder<'static>>(builder: B, role: &Role) -> Result<B::Output, Error> {
    super::log::capture();
    let storage: &'static mut MaybeUninit<OpenObject> = Box::leak(Box::new(MaybeUninit::uninit()));
    builder.open(storage).map_err(|e| load_error(&e, role))
}

/// Loads an opened (and configured) skeleton into the kernel.
pub(super) fn load<S: OpenSkel<'static>>(open: S, role: &Role) -> Result<S::Output, Error> {
    open.load().map_err(|e| load_error(&e, role))
}

/// A refusal with the verifier's reason when it gave one (the kernel says
/// EACCES for those too), else no permission.
pub(super) fn load_error(e: &libbpf_rs::Error, role: &Role) -> Error {
    let reason = super::log::verifier_reason();
    if reason.is_none() && e.kind() == libbpf_rs::ErrorKind::PermissionDenied {
        return Error::no_permission(format!(
            "no permission to load netprof's BPF program for {} ({e}); it needs root (CAP_BPF and CAP_PERFMON){}",
            role.command, role.fallback
        ));
    }
    // The whole log, for whoever works on the program.
    if std::env::var_os("NETPROF_VERIFIER_LOG").is_some() {
        if let Some(log) = super::log::verifier_log() {
            eprintln!("{log}");
        }
    }
    let reason = reason
        .map(|r| format!("; the verifier says: {r}"))
        .unwrap_or_default();
    Error::kernel_refused(format!(
        "the kernel refuses netprof's BPF program for {} ({e}{reason}){}",
        role.command, role.fallback
    ))
}
