#!/usr/bin/env bash
# What tracing HSR's functions costs, and how much output it gives: a ping
# flood across an HSR ring (two network namespaces, two veth pairs, hsr0 on
# each) for SECONDS, under
#   (a) nothing
#   (b) ftrace's function_graph, restricted (set_ftrace_filter) to the
#       module's hsr_* functions, the way net-perf traces HSR
#   (c) netprof funcgraph -m hsr 'hsr_*' (the same functions)
# For each: pings per second (the flood sends the next ping when the reply
# is in, so the tracers' cost per frame slows it), the time it takes to get
# the result (netprof's process's CPU time, from loading its program, which
# the kernel verifies, to printing its tree; for function_graph, reading its
# trace buffer), and the lines a person then has
# to read (function_graph: one line per event it recorded, counted from its
# per-CPU buffer statistics, overwritten ones included).
#
# Conditions alternate over ROUNDS rounds (default 3); each figure is the
# median of its rounds. Needs a kernel with HSR as a module, kprobes and
# function_graph: run it in the test guest, from the repository root after
# `cargo build --release`:
#
#   tests/guest/run benches/funcgraph_overhead.sh [SECONDS]   (default 5)
#
# The tracer is set back to nop and the filter cleared on exit, as found.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
rounds=${ROUNDS:-3}
netprof=$PWD/target/release/netprof
tracing=/sys/kernel/tracing
[ -e $tracing/current_tracer ] || mount -t tracefs nodev $tracing
work=$(mktemp -d)

ring_down() { ip netns del hsra 2>/dev/null || true; ip netns del hsrb 2>/dev/null || true; }
restore() {
  echo 0 > $tracing/tracing_on
  echo nop > $tracing/current_tracer
  echo > $tracing/set_ftrace_filter
  echo 1 > $tracing/tracing_on
  ring_down
  rm -rf "$work"
}
trap restore EXIT

modprobe hsr
ring_down
ip netns add hsra && ip netns add hsrb
ip link add a1 netns hsra type veth peer name b1 netns hsrb
ip link add a2 netns hsra type veth peer name b2 netns hsrb
for ns in hsra hsrb; do ip -n $ns link set lo up; done
for dev in a1 a2; do ip -n hsra link set $dev up; done
for dev in b1 b2; do ip -n hsrb link set $dev up; done
ip -n hsra link add hsr0 type hsr slave1 a1 slave2 a2
ip -n hsrb link add hsr0 type hsr slave1 b1 slave2 b2
ip -n hsra addr add 192.0.2.1/24 dev hsr0 && ip -n hsra link set hsr0 up
ip -n hsrb addr add 192.0.2.2/24 dev hsr0 && ip -n hsrb link set hsr0 up
ip netns exec hsra ping -q -c 3 -W 2 192.0.2.2 >/dev/null

# Pings per second of one flood of SECONDS.
flood() {
  ip netns exec hsra ping -q -f -w "$seconds" 192.0.2.2 2>/dev/null \
    | awk -v s="$seconds" '/packets transmitted/ { printf "%.0f\n", $1 / s }'
}

# One measurement: prints "pings-per-second tracer-cpu-seconds output-lines".
run() { # condition
  local rate cpu=0 lines=0
  case $1 in
    a) rate=$(flood) ;;
    b)
      echo 'hsr_*:mod:hsr' > $tracing/set_ftrace_filter
      echo function_graph > $tracing/current_tracer
      echo > $tracing/trace
      rate=$(flood)
      echo 0 > $tracing/tracing_on
      # Events recorded, those the buffer overwrote included.
      lines=$(cat $tracing/per_cpu/cpu*/stats | awk '/^(entries|overrun):/ { n += $2 } END { print n }')
      # function_graph's output is the trace buffer: read it, as a user would.
      local start end
      start=$(date +%s.%N)
      cat $tracing/trace > "$work/trace"
      end=$(date +%s.%N)
      cpu=$(awk -v s="$start" -v e="$end" 'BEGIN { printf "%.2f", e - s }')
      echo nop > $tracing/current_tracer
      echo > $tracing/set_ftrace_filter
      echo 1 > $tracing/tracing_on
      ;;
    c)
      # bash's time keyword gives the tracer's own user + system time.
      ( TIMEFORMAT='%U %S'; time "$netprof" funcgraph -m hsr 'hsr_*' > "$work/tree" 2> "$work/said" ) \
        2> "$work/time" &
      local timed=$!
      # The probes are in place once it says it is tracing; the tree comes
      # at Ctrl-C.
      for _ in $(seq 300); do
        grep -q 'netprof: tracing' "$work/said" 2>/dev/null && break
        sleep 0.1
      done
      rate=$(flood)
      pkill -INT -P $timed -f 'funcgraph -m hsr'
      wait $timed || true
      cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$work/time")
      lines=$(wc -l < "$work/tree")
      ;;
  esac
  echo "$rate $cpu $lines"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for round in $(seq "$rounds"); do
  for c in a b c; do
    run $c >> "$work/$c"
    echo "round $round, condition $c: $(tail -1 "$work/$c")" >&2
  done
done

column() { awk -v n="$2" '{ print $n }' "$work/$1" | median; }
base=$(column a 1)
echo "# HSR ring, ping flood for ${seconds}s, median of $rounds rounds ($(uname -r))"
echo "| tracing | pings/s | vs none | getting the result, s | lines to read |"
echo "|---|---|---|---|---|"
for c in a b c; do
  case $c in
    a) name="none" ;;
    b) name="function_graph, set_ftrace_filter 'hsr_*:mod:hsr'" ;;
    c) name="netprof funcgraph -m hsr 'hsr_*'" ;;
  esac
  rate=$(column $c 1)
  awk -v n="$name" -v r="$rate" -v b="$base" -v cpu="$(column $c 2)" -v l="$(column $c 3)" \
    'BEGIN { printf "| %s | %.0f | %.2f | %s | %d |\n", n, r, r / b, cpu, l }'
done
