#!/usr/bin/env bash
# How report scales with the recording: iperf3 on loopback recorded by perf
# (cpu-clock, 10 kHz, all CPUs, call graphs) for 1x, 4x and 10x a base
# length (default 20 s: about 400k samples on 2 CPUs, so 10x is about 4M),
# then `netprof report --flame` and `netprof report` on each: wall time
# (median of 3) and the most anonymous memory (RssAnon, polled every 10 ms:
# the mapped recording itself is file memory and not counted).
# Goal: 10x the samples in at most 10x the time, under 250 MB RssAnon.
#
# Needs: perf (linux-perf), iperf3. Run from the repository root:
# benches/report_scaling.sh [BASE_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
need perf iperf3 -- "apt-get install linux-perf iperf3"
setup
base=${1:-20}

run() { # command...: prints "seconds peak-RssAnon-MB" of one run
  local start end peak=0 kb
  start=$(date +%s.%N)
  "$@" >/dev/null 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    kb=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${kb:-0}" -gt "$peak" ] && peak=$kb
    sleep 0.01
  done
  wait "$pid" || true
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v k="$peak" 'BEGIN { printf "%.2f %d\n", e - s, k / 1024 }'
}
median_run() { # command...: the run with the median time of three
  { run "$@"; run "$@"; run "$@"; } | sort -n | sed -n 2p
}

printf '%-6s %9s %8s | %14s %8s | %14s %8s\n' size samples MB "--flame s" "anon MB" "call graph s" "anon MB"
for factor in 1 4 10; do
  data=$work/x$factor.data
  record_iperf3 $((base * factor)) "$data"
  samples=$("$netprof" report -i "$data" --percent-limit 100 2>/dev/null |
    sed -n '1s/^# netprof report: \([0-9]*\) samples.*/\1/p')
  read -r fg_s fg_mb <<<"$(median_run "$netprof" report -i "$data" --flame "$work/out.svg")"
  read -r cg_s cg_mb <<<"$(median_run "$netprof" report -i "$data")"
  printf '%-6s %9s %8d | %14s %8s | %14s %8s\n' "${factor}x" "$samples" \
    "$(($(stat -c %s "$data") / 1048576))" "$fg_s" "$fg_mb" "$cg_s" "$cg_mb"
  rm -f "$data"
done
