//! The man pages in man/ are generated from the clap definitions; this test
//! fails when they are stale. Regenerate with:
//!   NETPROF_UPDATE_MAN=1 cargo test --test man

use std::path::Path;

fn pages() -> Vec<(String, Vec<u8>)> {
    let root = netprof::cli::command();
    let mut pages = Vec::new();
    let mut render = |name: String, cmd: clap::Command| {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut buf).unwrap();
        pages.push((format!("{name}.1"), buf));
    };
    for sub in root.get_subcommands() {
        let name = format!("netprof-{}", sub.get_name());
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        render(name, sub.clone().name(leaked));
    }
    render("netprof".to_string(), root);
    pages
}

#[test]
fn man_pages_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let update = std::env::var_os("NETPROF_UPDATE_MAN").is_some();
    for (name, content) in pages() {
        let path = dir.join(&name);
        if update {
            std::fs::write(&path, &content).unwrap();
        } else {
            let on_disk = std::fs::read(&path).unwrap_or_default();
            assert!(
                on_disk == content,
                "man/{name} is stale; run NETPROF_UPDATE_MAN=1 cargo test --test man"
            );
        }
    }
}

#[test]
fn report_man_page_documents_the_json_schema() {
    let (_, page) = pages()
        .into_iter()
        .find(|(n, _)| n == "netprof-report.1")
        .unwrap();
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("netprof\\-report/1"), "schema name missing");
    assert!(page.contains("live\\-kallsyms"));
}

#[test]
fn shell_completions_know_the_subcommands_and_flags() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netprof"))
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
