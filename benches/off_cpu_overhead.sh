#!/usr/bin/env bash
# What recording every wait costs, on a context-switch-heavy load: a pipe
# ping-pong between two processes (benches/pingpong.c) for SECONDS, under
#   (a) nothing
#   (b) netprof record --off-cpu -a -g   (waits counted in the kernel, BPF)
#   (b') netprof record --off-cpu -a     (the same without stacks: time and
#        state per thread only; what unwinding costs is (b) minus this)
#   (c) perf record -e sched:sched_switch -a -g   (every switch copied out)
#   (d) perf record --off-cpu -a -g, where this perf was built with it
# For each: round trips per second (both processes on CPU 0, so each is two
# context switches),
# the recorder's CPU time (user + system of its process, from start to the
# file written), the file's size, and the events it says it lost.
#
# Conditions alternate over ROUNDS rounds (default 3); each figure is the
# median of its rounds. Runs on this machine (sched_switch and BPF raw
# tracepoints work without kprobes), as root, from the repository root
# after `cargo build --release`:
#
#   benches/off_cpu_overhead.sh [SECONDS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
rounds=${ROUNDS:-3}
netprof=$PWD/target/release/netprof
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
clang -O2 -o "$work/pingpong" benches/pingpong.c

perf_said=$(perf record --off-cpu -o "$work/probe.data" -- true 2>&1 || true)
if [[ $perf_said == *"off-cpu' is being ignored"* ]]; then
  perf_off_cpu="no (this perf was built without BPF skeletons)"
else
  perf_off_cpu=yes
fi

# Both processes on CPU 0: every round trip is two switches there, and the
# rate does not depend on where the scheduler happens to place them.
pingpong() { taskset -c 0 "$work/pingpong" "$seconds"; }

# run LABEL [RECORDER...]: one round; appends "rate cpu_seconds bytes lost"
# to $work/LABEL.
run() {
  local label=$1; shift
  if [ $# -eq 0 ]; then
    echo "$(pingpong) 0 0 0" >> "$work/$label"
    return
  fi
  local data=$work/$label.data
  # The recorder runs SECONDS + 2 in the foreground of a subshell timed by
  # bash; the load starts once it is attached.
  ( TIMEFORMAT='%U %S'; time "$@" -o "$data" -- sleep $((seconds + 2)) >/dev/null 2>"$work/$label.log" ) \
    2> "$work/$label.cpu" &
  local recorder=$!
  sleep 1
  local rate
  rate=$(pingpong)
  wait $recorder
  local cpu lost
  cpu=$(awk '{ print $1 + $2 }' "$work/$label.cpu")
  # netprof: "N samples (L lost)" and dropped waits; perf: "lost N" chunks.
  lost=$({ grep -oiE '\(([0-9]+) lost\)|lost ([0-9]+)|([0-9]+) waits not counted' "$work/$label.log" || true; } \
    | { grep -oE '[0-9]+' || true; } | awk '{ s += $1 } END { print s + 0 }')
  echo "$rate $cpu $(stat -c %s "$data") $lost" >> "$work/$label"
  rm -f "$data"
}

for _ in $(seq "$rounds"); do
  run none
  run netprof "$netprof" record -q --off-cpu -a -g
  run netprof_nostack "$netprof" record -q --off-cpu -a
  run perf_switch perf record -q -e sched:sched_switch -a -g
  if [ "$perf_off_cpu" = yes ]; then
    run perf_off_cpu perf record -q --off-cpu -a -g
  fi
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
column_median() { awk -v c="$2" '{ print $c }' "$work/$1" | median; }
base=$(column_median none 1)
printf '%-48s %12s %8s %10s %10s %8s\n' "recorder ($seconds s of pipe ping-pong, median of $rounds)" "trips/s" "of none" "CPU s" "file MB" "lost"
for label in none netprof netprof_nostack perf_switch perf_off_cpu; do
  [ -s "$work/$label" ] || continue
  case $label in
    none) name="none" ;;
    netprof) name="netprof record --off-cpu -a -g" ;;
    netprof_nostack) name="netprof record --off-cpu -a (no stacks)" ;;
    perf_switch) name="perf record -e sched:sched_switch -a -g" ;;
    perf_off_cpu) name="perf record --off-cpu -a -g" ;;
  esac
  rate=$(column_median "$label" 1)
  printf '%-48s %12.0f %8.2f %10.2f %10.1f %8.0f\n' "$name" "$rate" "$(echo "$rate $base" | awk '{ print $1 / $2 }')" \
    "$(column_median "$label" 2)" "$(echo "$(column_median "$label" 3)" | awk '{ print $1 / 1e6 }')" "$(column_median "$label" 4)"
done
echo "perf record --off-cpu: $perf_off_cpu"
