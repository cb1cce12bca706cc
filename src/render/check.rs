//! `netprof check`'s list: each capability, found or not, with why it
//! matters.

use crate::sys::capabilities::Capability;

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
    }
    out
}
