#!/usr/bin/env bash
# Report speed against perf on the same perf.data, for recordings of three
# shapes, each measured in one run (wall time, median of 3 rounds):
#   flamegraph: `perf script | inferno-collapse-perf | inferno-flamegraph`
#               against `netprof report --flame`;
#   call graph: `perf report --stdio --children -g graph,0.5,caller`
#               against `netprof report` (the same graph, as text).
#
# Shapes, all recorded by perf (cpu-clock, 10 kHz, all CPUs, call graphs):
#   iperf3     iperf3 on loopback for 25 s (about 400k samples on 2 CPUs);
#   dd         dd copying zeros in 4 KiB blocks for 10 s (syscall-heavy);
#   processes  a shell loop spawning short processes for 10 s (many
#              commands, address spaces and libraries).
# Pass existing perf.data files to measure those instead.
#
# Needs: perf (linux-perf), iperf3, and the inferno tools (`cargo install
# inferno`). Run from the repository root:
# benches/report_vs_perf.sh [FILE.data...]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
need perf iperf3 inferno-collapse-perf inferno-flamegraph -- "apt-get install linux-perf iperf3; cargo install inferno"
setup

recordings=("$@")
if [ ${#recordings[@]} -eq 0 ]; then
  record_iperf3 25 "$work/iperf3.data"
  perf record -q -e cpu-clock -F 10000 -a -g -o "$work/dd.data" -- \
    timeout 10 dd if=/dev/zero of=/dev/null bs=4k 2>/dev/null || true
  perf record -q -e cpu-clock -F 10000 -a -g -o "$work/processes.data" -- \
    timeout 10 sh -c 'while :; do ls / | wc -l >/dev/null; date >/dev/null; done' 2>/dev/null || true
  recordings=("$work/iperf3.data" "$work/dd.data" "$work/processes.data")
fi

seconds() { # command...: wall seconds of one run, to the microsecond
  # (GNU time's %e has 10 ms steps: a third of netprof's time on the
  # smaller shapes, which made their ratios jump by half from run to run).
  local start=$EPOCHREALTIME
  "$@" >/dev/null 2>&1 || true
  awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f\n", b - a }'
}
median3() { # command...: the median of three runs' wall seconds
  { seconds "$@"; seconds "$@"; seconds "$@"; } | sort -n | sed -n 2p
}

printf '%-12s %8s %8s | %8s %8s %6s | %8s %8s %6s\n' recording samples MB "perf fg" netprof ratio "perf cg" netprof ratio
for data in "${recordings[@]}"; do
  cat "$data" >/dev/null # the page cache holds it for both sides alike
  samples=$("$netprof" report -i "$data" --percent-limit 100 2>/dev/null |
    sed -n '1s/^# netprof report: \([0-9]*\) samples.*/\1/p')
  perf_fg=$(median3 bash -c "perf script -i '$data' 2>/dev/null | inferno-collapse-perf | inferno-flamegraph > '$work/perf.svg'")
  ours_fg=$(median3 "$netprof" report -i "$data" --flame "$work/netprof.svg")
  perf_cg=$(median3 perf report -i "$data" --stdio --children -g graph,0.5,caller)
  ours_cg=$(median3 "$netprof" report -i "$data")
  printf '%-12s %8s %8d | %8s %8s %5.1fx | %8s %8s %5.1fx\n' "$(basename "$data" .data)" "$samples" \
    "$(($(stat -c %s "$data") / 1048576))" "$perf_fg" "$ours_fg" \
    "$(awk -v a="$perf_fg" -v b="$ours_fg" 'BEGIN { print a / (b > 0 ? b : 0.01) }')" \
    "$perf_cg" "$ours_cg" "$(awk -v a="$perf_cg" -v b="$ours_cg" 'BEGIN { print a / (b > 0 ? b : 0.01) }')"
done
