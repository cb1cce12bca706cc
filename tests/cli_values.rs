//! Every command-line value class is checked where it is parsed: a bad
//! value ends in one line naming it, and exit status 2 (bad argument),
//! before any work starts.

mod common;

use common::*;

/// Runs netprof with `args` and asserts a bad-argument error naming `needle`.
fn refused(args: &[&str], needle: &str) {
    assert_error(&netprof(args), BadArgument, needle);
}

#[test]
fn durations_are_finite_positive_and_bounded() {
    for command in [
        &["record", "--duration"][..],
        &["bpf", "--duration"][..],
        &["latency", "f", "--duration"][..],
        &["funcgraph", "f", "--duration"][..],
    ] {
        for bad in ["inf", "nan", "-1", "0", "1e30", "1.8e19", "1e19", "soon"] {
            let mut args = command.to_vec();
            args.push(bad);
            let needle = if bad == "soon" {
                "give a number of seconds"
            } else {
                "give a positive number of seconds up to 2678400"
            };
            refused(&args, needle);
        }
    }
}

#[test]
fn frequencies_are_within_what_the_kernel_accepts() {
    refused(&["record", "-F", "0"], "frequency must be at least 1 Hz");
    refused(
        &["record", "-F", "100000000"],
        "kernel.perf_event_max_sample_rate",
    );
    refused(&["record", "-F", "fast"], "give a whole number of Hz");
}

#[test]
fn cpu_lists_are_within_the_machine() {
    refused(
        &["record", "-C", "999", "--duration", "0.1"],
        "CPU 999 is not a CPU of this machine",
    );
    refused(&["record", "-C", "0-4294967295"], "beyond the 8192 CPUs");
    refused(&["record", "-C", "3-1"], "bad CPU list");
    refused(&["report", "--cpu", "0-4294967295"], "beyond the 8192 CPUs");
    refused(&["report", "--cpu", "one"], "bad CPU list");
}

#[test]
fn percentages_are_from_0_to_100() {
    refused(&["report", "--percent-limit", "101"], "from 0 to 100");
    refused(&["report", "--percent-limit", "-1"], "from 0 to 100");
    refused(
        &["diff", "a", "b", "--percent-limit", "nan"],
        "from 0 to 100",
    );
}

#[test]
fn bpf_sizes_and_intervals_are_bounded() {
    refused(
        &["record", "--bpf", "--bpf-map-entries", "4294967295"],
        "give 1 to 1048576",
    );
    refused(
        &["record", "--bpf", "--bpf-map-entries", "0"],
        "give 1 to 1048576",
    );
    refused(&["bpf", "--interval", "5"], "from 10 to 60000");
    refused(
        &["funcgraph", "f", "--max-paths", "0"],
        "give 1 to 1048576 (each path takes 9.3 KiB",
    );
    refused(&["funcgraph", "f", "--depth", "33"], "--depth");
    refused(&["funcgraph", "f", "--slowest", "0"], "--slowest");
    refused(
        &["funcgraph", "f", "-p", "1", "--", "true"],
        "-- CMD traces the command's calls, and -p those of other processes; pick one",
    );
}

#[test]
fn events_are_names_not_paths() {
    refused(
        &["record", "-e", "../../../../tmp/x:evil/x"],
        "is not a tracepoint name",
    );
    refused(&["record", "-e", "cpu-clok"], "did you mean cpu-clock");
    refused(&["record", "-e", "kprobe:"], "names no function");
}

#[test]
fn usage_errors_name_the_subcommand_help() {
    let out = netprof(&["record", "--no-such-flag"]);
    assert_error(&out, BadArgument, "see `netprof record --help`");
    assert_error(&netprof(&["nosuch"]), BadArgument, "see `netprof --help`");
}
