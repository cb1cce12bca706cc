//! The running kernel's build configuration (/proc/config.gz or
//! /boot/config-RELEASE), through procfs.

/// Whether the running kernel was built with `option` (=y or =m); `None`
/// where no configuration is readable.
pub fn enabled(option: &str) -> Option<bool> {
    let config = procfs::kernel_config().ok()?;
    Some(matches!(
        config.get(option),
        Some(procfs::ConfigSetting::Yes | procfs::ConfigSetting::Module)
    ))
}

/// Whether the kernel has multi-kprobe (fprobe) BPF links, which attach
/// one program to many functions in one call.
pub fn has_fprobe() -> bool {
    enabled("CONFIG_FPROBE").unwrap_or(false)
}

/// Whether BPF session kprobes exist (kernel 6.10 and later): one program
/// run at a function's entry and at its return by a single fprobe. Told by
/// the kernel's BTF naming their kfunc, which a backport brings along too.
pub fn has_kprobe_session() -> bool {
    let Ok(btf) = std::fs::read("/sys/kernel/btf/vmlinux") else {
        return false;
    };
    // BTF's names are NUL-terminated strings; one pass over them.
    btf.split(|&b| b == 0)
        .any(|name| name == b"bpf_session_is_return")
}
