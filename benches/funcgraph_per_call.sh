#!/usr/bin/env bash
# What one traced call costs: the test module's outer -> middle -> inner
# chain, 20000 times (60000 traced calls), untraced and under ftrace's
# function tracer, its function_graph tracer (both filtered to the module),
# netprof funcgraph and netprof latency.
# Prints nanoseconds per traced call, the median of ROUNDS (default 5)
# alternating rounds. Needs the test module and a kernel with kprobes and
# function_graph: run it in the test guest, from the repository root after
# `cargo build --release`:
#
#   tests/guest/run benches/funcgraph_per_call.sh
#
# The tracer is set back to nop and the filter cleared on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${ROUNDS:-5}
netprof=$PWD/target/release/netprof
tracing=/sys/kernel/tracing
[ -e $tracing/current_tracer ] || mount -t tracefs nodev $tracing
grep -q '^netprof_test ' /proc/modules || insmod "${NETPROF_TEST_MODULE:-tests/kmod/netprof_test.ko}"
work=$(mktemp -d)
restore() {
  echo nop > $tracing/current_tracer
  echo > $tracing/set_ftrace_filter
  rm -rf "$work"
}
trap restore EXIT

# ns per traced call of one burst (three traced calls per iteration), into
# $work/last: a command netprof runs writes its output to stderr.
burst="s=\$(date +%s%N); echo 20000 > /proc/netprof_test; e=\$(date +%s%N); echo \$(( (e - s) / 60000 )) > $work/last"

ftrace() { # tracer
  echo 'netprof_test_*:mod:netprof_test' > $tracing/set_ftrace_filter
  echo "$1" > $tracing/current_tracer
  sh -c "$burst"
  echo nop > $tracing/current_tracer
  echo > $tracing/set_ftrace_filter
}

run() { # condition
  case $1 in
    none) sh -c "$burst" ;;
    function|function_graph) ftrace "$1" ;;
    funcgraph) "$netprof" funcgraph -m netprof_test 'netprof_test_*' -- sh -c "$burst" >/dev/null 2>&1 ;;
    latency) "$netprof" latency -m netprof_test 'netprof_test_*' -- sh -c "$burst" >/dev/null 2>&1 ;;
  esac
  cat "$work/last"
}

conditions="none function function_graph funcgraph latency"
for round in $(seq "$rounds"); do
  for c in $conditions; do
    run "$c" >> "$work/$c"
  done
  echo "round $round done" >&2
done

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
base=$(median < "$work/none")
echo "# outer -> middle -> inner x 20000, median of $rounds rounds ($(uname -r))"
echo "| tracing | ns per traced call | added by tracing |"
echo "|---|---|---|"
for c in $conditions; do
  ns=$(median < "$work/$c")
  echo "| $c | $ns | $((ns - base)) |"
done
