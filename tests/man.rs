//! The man pages in man/ are generated from the command-line definitions
//! (`netprof man-pages DIR`, a hidden command); this test fails when they
//! are stale. Regenerate with:
//!   NETPROF_UPDATE_MAN=1 cargo test --test man

use std::path::Path;
use std::process::Command;

/// Every page as the binary writes it today: (file name, content).
fn pages() -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .arg("man-pages")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pages: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    pages.sort();
    pages
}

#[test]
fn man_pages_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let update = std::env::var_os("NETPROF_UPDATE_MAN").is_some();
    let pages = pages();
    assert!(
        pages.len() >= 8,
        "{:?}",
        pages.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    for (name, content) in &pages {
        let path = dir.join(name);
        if update {
            std::fs::write(&path, content).unwrap();
        } else {
            let on_disk = std::fs::read(&path).unwrap_or_default();
            assert!(
                &on_disk == content,
                "man/{name} is stale; run NETPROF_UPDATE_MAN=1 cargo test --test man"
            );
        }
    }
    // No page of a command that is gone.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            pages.iter().any(|p| p.0 == name),
            "man/{name} has no command"
        );
    }
}

#[test]
fn man_pages_document_the_json_schema_and_exit_statuses() {
    let pages = pages();
    let page = |name: &str| {
        String::from_utf8(pages.iter().find(|(n, _)| n == name).unwrap().1.clone()).unwrap()
    };
    let report = page("netprof-report.1");
    assert!(report.contains("netprof\\-report/1"), "schema name missing");
    assert!(report.contains("live\\-kallsyms"));
    let root = page("netprof.1");
    for status in [
        "2 bad command\\-line argument",
        "5 not supported by this kernel",
    ] {
        assert!(root.contains(status), "{status} missing from netprof.1");
    }
    assert!(
        !pages.iter().any(|(n, _)| n.contains("man-pages")),
        "the hidden command has no page"
    );
}

#[test]
fn shell_completions_know_the_subcommands_and_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    for word in [
        "record",
        "report",
        "--percent-limit",
        "--flame",
        "--duration",
    ] {
        assert!(script.contains(word), "{word} missing from bash completion");
    }
}
