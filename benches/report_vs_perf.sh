#!/usr/bin/env bash
# Report speed: `netprof report --flame` against
# `perf script | inferno-collapse-perf | inferno-flamegraph` on the same
# perf.data, measured in one run (wall time and peak memory of each side).
#
# The recording is what our users make: cpu-clock at 10 kHz on all CPUs with
# call graphs for 25 s while iperf3 runs on loopback (about 400k samples on a
# 2-CPU machine). Pass an existing perf.data as $1 to skip recording.
#
# Needs: perf (linux-perf), iperf3, GNU time (time), and the inferno tools
# (`cargo install inferno`). Run from the repository root: benches/report_vs_perf.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in perf iperf3 /usr/bin/time inferno-collapse-perf inferno-flamegraph; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install linux-perf iperf3 time; cargo install inferno)" >&2; exit 1; }
done
cargo build --release --locked -q
netprof=$PWD/target/release/netprof
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT

data=${1:-}
if [ -z "$data" ]; then
  data=$work/iperf.data
  iperf3 -s -1 -p 5299 >/dev/null &
  sleep 0.5
  iperf3 -c 127.0.0.1 -p 5299 -t 27 >/dev/null &
  sleep 1
  perf record -q -e cpu-clock -F 10000 -a -g -o "$data" -- sleep 25 2>/dev/null
  wait
fi
samples=$("$netprof" report -i "$data" --percent-limit 100 | sed -n '1s/^# netprof report: \([0-9]*\) samples.*/\1/p')
echo "recording: $data, $samples samples"

measure() { # label, command...: prints "label seconds peakMB"
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" >/dev/null 2>&1
  read -r secs kb < "$work/t"
  echo "$label $secs $((kb / 1024))"
}
# Warm the page cache for both sides alike.
cat "$data" >/dev/null
perf_line=$(measure perf bash -c "perf script -i '$data' 2>/dev/null | inferno-collapse-perf | inferno-flamegraph > '$work/perf.svg'")
ours_line=$(measure netprof "$netprof" report -i "$data" --flame "$work/netprof.svg")
# Peak memory of the pipeline is that of its largest stage: measure perf script alone.
perf_mem=$(/usr/bin/time -f "%M" bash -c "perf script -i '$data' >/dev/null 2>&1" 2>&1 | tail -1)
read -r _ perf_s _ <<<"$perf_line"
read -r _ ours_s ours_mb <<<"$ours_line"
echo "perf script | inferno-collapse-perf | inferno-flamegraph: ${perf_s}s (perf script alone peaks at $((perf_mem / 1024)) MB)"
echo "netprof report --flame:                                  ${ours_s}s, peak ${ours_mb} MB"
awk -v a="$perf_s" -v b="$ours_s" 'BEGIN { printf "speed-up: %.1fx\n", a / (b > 0 ? b : 0.001) }'
