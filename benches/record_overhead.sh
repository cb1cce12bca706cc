#!/usr/bin/env bash
# Recorder overhead on a busy datapath: loopback iperf3 under
#   (a) nothing
#   (b) netprof record --bpf -a -g OPTS   (stacks counted in the kernel)
#   (c) netprof record -a -g OPTS         (every sample copied to user space)
#   (d) perf record -a -g OPTS
# OPTS is `-F 999` unless the environment sets it: `OPTS='-F 9999'` samples
# ten times as often, `OPTS='-e sched:sched_switch'` or
# `OPTS='-e net:netif_receive_skb'` takes a tracepoint that fires far more
# often than any sampling rate (more so with STREAMS=8 parallel iperf3
# streams; default 1). Lost samples are each recording's, as netprof report
# reads them (perf's files included).
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
read -r -a opts <<<"${OPTS:--F 999}"
streams=${STREAMS:-1}
cargo build --release --locked -q
netprof=$PWD/target/release/netprof
work=$(mktemp -d)
port=5301
iperf3 -s -p $port >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 0.5

# One measurement: prints "Gbit/s recorder-cpu-seconds lost-samples".
run() { # condition
  local recorder=()
  case $1 in
    a) ;;
    b) recorder=("$netprof" record -q --bpf -a -g "${opts[@]}" --duration $((seconds + 2)) -o "$work/b.data") ;;
    c) recorder=("$netprof" record -q -a -g "${opts[@]}" --duration $((seconds + 2)) -o "$work/c.data") ;;
    d) recorder=(perf record -q -a -g "${opts[@]}" -o "$work/d.data" -- sleep $((seconds + 2))) ;;
  esac
  local cpu=0 recorder_pid=
  if [ ${#recorder[@]} -gt 0 ]; then
    perf stat -x, -e task-clock -o "$work/stat" -- "${recorder[@]}" >/dev/null 2>&1 &
    recorder_pid=$!
    sleep 1
  fi
  local bps
  bps=$(iperf3 -c 127.0.0.1 -p $port -P "$streams" -t "$seconds" -J | jq '.end.sum_received.bits_per_second')
  local lost=0
  if [ -n "$recorder_pid" ]; then
    wait "$recorder_pid"
    cpu=$(awk -F, '/task-clock/ { printf "%.3f", $1 / 1000 }' "$work/stat")
    lost=$("$netprof" report -i "$work/$1.data" --percent-limit 100 2>/dev/null |
      sed -n '1s/.*, \([0-9]*\) lost;.*/\1/p' | head -1)
  fi
  awk -v b="$bps" -v c="$cpu" -v l="${lost:-?}" 'BEGIN { printf "%.2f %s %s\n", b / 1e9, c, l }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for round in $(seq "$rounds"); do
  for c in a b c d; do
    run $c >> "$work/results.$c"
  done
  echo "round $round of $rounds done" >&2
done

echo "loopback iperf3 (${streams} streams), ${seconds}s per run, median of $rounds rounds, $(nproc) CPUs, $(uname -r), recorders with: ${opts[*]}"
printf "%-40s %12s %22s %10s\n" "condition" "Gbit/s" "recorder CPU s (%)" "lost"
for c in a b c d; do
  case $c in
    a) label="(a) nothing" ;;
    b) label="(b) netprof record --bpf -a -g" ;;
    c) label="(c) netprof record -a -g" ;;
    d) label="(d) perf record -a -g" ;;
  esac
  gbps=$(cut -d' ' -f1 "$work/results.$c" | median)
  cpu=$(cut -d' ' -f2 "$work/results.$c" | median)
  lost=$(cut -d' ' -f3 "$work/results.$c" | median)
  pct=$(awk -v c="$cpu" -v s="$seconds" 'BEGIN { printf "%.1f", 100 * c / (s + 2) }')
  printf "%-40s %12s %15s (%s%%) %10s\n" "$label" "$gbps" "$cpu" "$pct" "$lost"
done
b=$(cut -d' ' -f2 "$work/results.b" | median)
d=$(cut -d' ' -f2 "$work/results.d" | median)
awk -v b="$b" -v d="$d" 'BEGIN { printf "recorder CPU, --bpf against perf record: %.2fx (goal: at most 0.25x)\n", (d > 0 ? b / d : 0) }'
