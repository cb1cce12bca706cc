//! "Did you mean": close names for a misspelt event, function or module.

/// Up to five names within a small edit distance of `wanted`, closest first.
pub fn close_names<'a>(wanted: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let limit = (wanted.len() / 3).clamp(1, 4);
    let mut scored: Vec<(usize, &str)> = candidates
        .filter_map(|c| {
            let d = edit_distance(wanted, c);
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

/// Levenshtein distance over bytes, in one row of memory.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_substrings() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
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
    }
}
