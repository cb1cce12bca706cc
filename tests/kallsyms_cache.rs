//! The copy of /proc/kallsyms kept between runs (src/sys/kallsyms_cache.rs):
//! used only while the kernel's symbols cannot have changed, private, and
//! never read through a symlink or from a file others could write.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// This machine's address of a kernel function (root sees them).
fn live_address(name: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/kallsyms").unwrap();
    let line = text
        .lines()
        .find(|l| l.split([' ', '\t']).nth(2) == Some(name))
        .unwrap_or_else(|| panic!("{name} in /proc/kallsyms"));
    let address = u64::from_str_radix(&line[..16], 16).unwrap();
    assert_ne!(
        address, 0,
        "kallsyms hides addresses: run the tests as root"
    );
    address
}

/// A perf-written file (no kallsyms snapshot): 5 samples in vfs_read.
fn perf_like_recording(dir: &Path) -> PathBuf {
    let mut s = Synth::new();
    s.kallsyms = None;
    s.comm(300, "reader")
        .samples(5, 300, 0, &[live_address("vfs_read") + 0x10], &[]);
    s.write_in(dir, "perf-like.data")
}

fn netprof_cached(cache_home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args(args)
        .env("XDG_CACHE_HOME", cache_home)
        .env_remove("NETPROF_NO_CACHE")
        .output()
        .expect("netprof runs")
}

fn folded(cache_home: &Path, file: &Path) -> String {
    let out = netprof_cached(
        cache_home,
        &["report", "-i", file.to_str().unwrap(), "--folded"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn perf_files_name_kernel_frames_from_a_private_copy_while_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let file = perf_like_recording(dir.path());
    let home = dir.path().join("cache");
    std::fs::create_dir(&home).unwrap();

    assert_eq!(folded(&home, &file).trim_end(), "reader;vfs_read 5");
    let copy = home.join("netprof/kallsyms");
    assert_eq!(mode(&copy), 0o600);
    assert_eq!(mode(&home.join("netprof")), 0o700);

    // The next run names from the copy: a name changed in it shows.
    let text = std::fs::read_to_string(&copy).unwrap();
    assert!(text.contains(" vfs_read\n"));
    std::fs::write(&copy, text.replace(" vfs_read\n", " read_from_copy\n")).unwrap();
    assert_eq!(folded(&home, &file).trim_end(), "reader;read_from_copy 5");

    // A copy made under another boot (or other modules, other BPF
    // programs) is not used, and is made again.
    let tampered = std::fs::read_to_string(&copy).unwrap();
    let other_boot = tampered.replacen("boot ", "boot 0", 1);
    std::fs::write(&copy, other_boot).unwrap();
    assert_eq!(folded(&home, &file).trim_end(), "reader;vfs_read 5");
    assert!(std::fs::read_to_string(&copy)
        .unwrap()
        .contains(" vfs_read\n"));
}

#[test]
fn a_copy_behind_a_symlink_or_open_to_others_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let file = perf_like_recording(dir.path());
    let home = dir.path().join("cache");
    std::fs::create_dir(&home).unwrap();
    folded(&home, &file);
    let copy = home.join("netprof/kallsyms");
    let planted = std::fs::read_to_string(&copy)
        .unwrap()
        .replace(" vfs_read\n", " planted_name\n");

    // Readable by others: someone else may have written it.
    std::fs::write(&copy, &planted).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(folded(&home, &file).trim_end(), "reader;vfs_read 5");

    // A symlink to a planted copy: neither read nor written through.
    let elsewhere = dir.path().join("planted");
    std::fs::write(&elsewhere, &planted).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(&copy).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &copy).unwrap();
    assert_eq!(folded(&home, &file).trim_end(), "reader;vfs_read 5");
    assert!(std::fs::symlink_metadata(&copy)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), planted);
}

#[test]
fn no_copy_is_kept_when_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let file = perf_like_recording(dir.path());
    let home = dir.path().join("cache");
    std::fs::create_dir(&home).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netprof"))
        .args(["report", "-i", file.to_str().unwrap(), "--folded"])
        .env("XDG_CACHE_HOME", &home)
        .env("NETPROF_NO_CACHE", "1")
        .output()
        .unwrap();
    assert_eq!(stdout(&out).trim_end(), "reader;vfs_read 5");
    assert!(!home.join("netprof").exists());
}

#[test]
fn recordings_store_the_kernel_symbols_of_the_copy_while_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("cache");
    std::fs::create_dir(&home).unwrap();
    let record = |name: &str| {
        let data = dir.path().join(name);
        let out = netprof_cached(
            &home,
            &[
                "record",
                "-g",
                "-F",
                "999",
                "-o",
                data.to_str().unwrap(),
                "--",
                "dd",
                "if=/dev/zero",
                "of=/dev/null",
                "bs=4k",
                "count=400000",
                "status=none",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        data
    };
    record("first.data");
    let copy = home.join("netprof/kallsyms");
    // Every system call goes through it: dd's stacks pass through it.
    let text = std::fs::read_to_string(&copy).unwrap();
    let line = text
        .lines()
        .find(|l| l.ends_with(" do_syscall_64"))
        .expect("do_syscall_64 in the copy");
    std::fs::write(
        &copy,
        text.replace(line, &line.replace("do_syscall_64", "syscall_from_copy")),
    )
    .unwrap();
    let second = record("second.data");
    let names = folded(&home, &second);
    assert!(names.contains(";syscall_from_copy;"), "{names}");
    // The recording holds the copy's symbols whole, byte for byte (they
    // are copied file to file): the copy's header is its magic line, the
    // fingerprint's length, and the fingerprint.
    let copy_text = std::fs::read_to_string(&copy).unwrap();
    let (_, rest) = copy_text.split_once('\n').unwrap();
    let (len, rest) = rest.split_once('\n').unwrap();
    let symbols = &rest[len.parse::<usize>().unwrap()..];
    let file = std::fs::read(&second).unwrap();
    let (offset, size) = feature_section(&file, netprof::perfdata::FEATURE_NETPROF_KALLSYMS)
        .expect("the kallsyms snapshot");
    assert!(size > 100_000, "{size}");
    assert!(file[offset..offset + size] == *symbols.as_bytes());
}
