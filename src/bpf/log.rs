//! libbpf's messages: kept instead of printed, so that netprof's errors stay
//! one line, and a refused program load can quote the verifier's reason.

use std::sync::Mutex;

use libbpf_rs::PrintLevel;

static MESSAGES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// How many messages are kept (a verifier log is a few hundred lines).
const KEPT: usize = 4096;

fn keep(_level: PrintLevel, message: String) {
    if let Ok(mut messages) = MESSAGES.lock() {
        if messages.len() >= KEPT {
            messages.remove(0);
        }
        messages.push(message);
    }
}

/// Routes libbpf's messages here from now on (the loader calls it).
pub(super) fn capture() {
    libbpf_rs::set_print(Some((PrintLevel::Warn, keep)));
}

/// The log of the verifier's last refusal, if it refused a program.
pub fn verifier_log() -> Option<String> {
    let messages = MESSAGES.lock().ok()?;
    let text = messages.concat();
    let begin = text.rfind("-- BEGIN PROG LOAD LOG --")?;
    let log = &text[begin..];
    Some(log[..log.find("-- END PROG LOAD LOG --").unwrap_or(log.len())].to_string())
}

/// The reason the verifier gave for refusing the last program, if it did:
/// the last line of its log that is not a statistic.
pub fn verifier_reason() -> Option<String> {
    verifier_log()?
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("processed ") && !l.starts_with("verification time")
        })
        .last()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verifier_reason_is_the_last_line_of_its_log() {
        keep(
            PrintLevel::Warn,
            "libbpf: prog 'p': -- BEGIN PROG LOAD LOG --\n0: R1=ctx() R10=fp0\n\
             1: (79) r0 = *(u64 *)(r1 +0)\nR1 invalid mem access 'scalar'\n\
             processed 2 insns (limit 1000000)\n-- END PROG LOAD LOG --\n"
                .into(),
        );
        keep(
            PrintLevel::Warn,
            "libbpf: failed to load object 'p'\n".into(),
        );
        assert_eq!(
            verifier_reason().as_deref(),
            Some("R1 invalid mem access 'scalar'")
        );
    }
}
