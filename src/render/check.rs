//! `netprof check`'s list: each capability, found or not, with why it
//! matters.

use crate::sys::capabilities::Capability;

/// Schema netprof-check/1: the kernel's release and each capability.
pub fn to_json(caps: &[Capability]) -> String {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let doc = serde_json::json!({
        "schema": "netprof-check/1",
        "kernel": kernel.trim(),
        "capabilities": caps,
    });
    format!("{doc:#}\n")
}

pub fn render(caps: &[Capability]) -> String {
    let mut out = String::new();
    for c in caps {
        out.push_str(&format!(
            "{:<4} {:<36} {}\n     {:<36} {}\n",
            if c.available { "yes" } else { "NO" },
            c.name,
            c.detail,
            "",
            c.why
        ));
        if !c.available {
            out.push_str(&format!("     {:<36} without it: {}\n", "", c.without));
        }
    }
    out
}
