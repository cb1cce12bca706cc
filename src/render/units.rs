//! Numbers for people.

/// A duration: 950ns, 12.3us, 4.56ms, 1.23s.
pub fn human_ns(ns: f64) -> String {
    match ns {
        n if n < 1e3 => format!("{n:.0}ns"),
        n if n < 1e6 => format!("{:.1}us", n / 1e3),
        n if n < 1e9 => format!("{:.2}ms", n / 1e6),
        n => format!("{:.2}s", n / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(human_ns(950.0), "950ns");
        assert_eq!(human_ns(12_340.0), "12.3us");
        assert_eq!(human_ns(4_560_000.0), "4.56ms");
        assert_eq!(human_ns(1.23e9), "1.23s");
    }
}
