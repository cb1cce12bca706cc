//! "Did you mean": close names for a misspelt event, function or module.

/// Up to five names close to `wanted`, closest first: within a small edit
/// distance (Levenshtein, from strsim), or containing it.
pub fn close_names<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let limit = (wanted.len() / 3).clamp(1, 4);
    let mut scored: Vec<(usize, &str)> = candidates
        .filter_map(|c| {
            let d = strsim::levenshtein(wanted, c);
            let contains =
                c.contains(wanted) || (wanted.len() >= 4 && wanted.contains(c) && c.len() >= 4);
            (d <= limit || contains).then_some((if contains { d.min(limit) } else { d }, c))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(5)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// " (did you mean a, b?)", or nothing when there is no suggestion.
pub fn did_you_mean(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_substrings() {
        let names = [
            "hsr_forward_skb",
            "hsr_forward_do",
            "tcp_sendmsg",
            "udp_sendmsg",
        ];
        assert_eq!(
            close_names("hsr_forwrd_skb", names.iter().copied())[0],
            "hsr_forward_skb"
        );
        assert!(close_names("sendmsg", names.iter().copied()).contains(&"tcp_sendmsg".to_string()));
        assert!(close_names("zzzzzz", names.iter().copied()).is_empty());
        assert_eq!(did_you_mean(&[]), "");
        assert_eq!(
            did_you_mean(&["a".into(), "b".into()]),
            " (did you mean a, b?)"
        );
    }
}
