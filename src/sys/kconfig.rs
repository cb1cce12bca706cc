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
