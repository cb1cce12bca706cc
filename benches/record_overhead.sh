#!/usr/bin/env bash
# Recorder overhead on a busy datapath: loopback iperf3 under
#   (a) nothing
#   (b) netprof record --bpf -a -g -F 999   (stacks counted in the kernel)
#   (c) netprof record -a -g -F 999         (every sample copied to user space)
#   (d) perf record -a -g -F 999
# For each: iperf3 throughput, and the CPU time the recorder process itself
# used (perf stat's task-clock: the scheduler's exact runtime, where rusage
# only counts 10 ms ticks). Sampling work done in interrupt context is charged to
# whatever task was interrupted, so it shows up as lost throughput, not as
# recorder CPU; the two columns together are the overhead.
#
# Conditions alternate over ROUNDS rounds (default 3) and each figure is the
# median of its rounds, so a slow moment of the machine does not land on
# one condition only.
#
# Needs: iperf3, perf (linux-perf), jq.
# Run from the repository root: benches/record_overhead.sh [SECONDS] (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in iperf3 perf jq; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install iperf3 linux-perf jq)" >&2; exit 1; }
done
seconds=${1:-10}
rounds=${ROUNDS:-3}
cargo build --release --locked -q
netprof=$PWD/target/release/netprof
work=$(mktemp -d)
port=5301
iperf3 -s -p $port >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 0.5

# One measurement: prints "Gbit/s recorder-cpu-seconds".
run() { # condition
  local recorder=()
  case $1 in
    a) ;;
    b) recorder=("$netprof" record -q --bpf -a -g -F 999 --duration $((seconds + 2)) -o "$work/b.data") ;;
    c) recorder=("$netprof" record -q -a -g -F 999 --duration $((seconds + 2)) -o "$work/c.data") ;;
    d) recorder=(perf record -q -a -g -F 999 -o "$work/d.data" -- sleep $((seconds + 2))) ;;
  esac
  local cpu=0 recorder_pid=
  if [ ${#recorder[@]} -gt 0 ]; then
    perf stat -x, -e task-clock -o "$work/stat" -- "${recorder[@]}" >/dev/null 2>&1 &
    recorder_pid=$!
    sleep 1
  fi
  local bps
  bps=$(iperf3 -c 127.0.0.1 -p $port -t "$seconds" -J | jq '.end.sum_received.bits_per_second')
  if [ -n "$recorder_pid" ]; then
    wait "$recorder_pid"
    cpu=$(awk -F, '/task-clock/ { printf "%.3f", $1 / 1000 }' "$work/stat")
  fi
  awk -v b="$bps" -v c="$cpu" 'BEGIN { printf "%.2f %s\n", b / 1e9, c }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for round in $(seq "$rounds"); do
  for c in a b c d; do
    run $c >> "$work/results.$c"
  done
  echo "round $round of $rounds done" >&2
done

echo "loopback iperf3, ${seconds}s per run, median of $rounds rounds, $(nproc) CPUs, $(uname -r)"
printf "%-40s %12s %22s\n" "condition" "Gbit/s" "recorder CPU s (%)"
for c in a b c d; do
  case $c in
    a) label="(a) nothing" ;;
    b) label="(b) netprof record --bpf -a -g -F 999" ;;
    c) label="(c) netprof record -a -g -F 999" ;;
    d) label="(d) perf record -a -g -F 999" ;;
  esac
  gbps=$(cut -d' ' -f1 "$work/results.$c" | median)
  cpu=$(cut -d' ' -f2 "$work/results.$c" | median)
  pct=$(awk -v c="$cpu" -v s="$seconds" 'BEGIN { printf "%.1f", 100 * c / (s + 2) }')
  printf "%-40s %12s %15s (%s%%)\n" "$label" "$gbps" "$cpu" "$pct"
done
b=$(cut -d' ' -f2 "$work/results.b" | median)
d=$(cut -d' ' -f2 "$work/results.d" | median)
awk -v b="$b" -v d="$d" 'BEGIN { printf "recorder CPU, --bpf against perf record: %.2fx (goal: at most 0.5x)\n", (d > 0 ? b / d : 0) }'
