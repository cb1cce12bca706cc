#!/usr/bin/env bash
# The HTML report's budget: on recordings of several shapes, the size of
# `netprof report --html`'s page, the time to write it, and the time the page
# takes to draw its first view in headless Chromium (performance.now() when
# the first flamegraph is drawn: loading, parsing the data and drawing;
# median of 3 loads; and when the function table and timeline are ready
# too). Goal: under 10 MB and under 2 s on the 400k-sample
# iperf3 recording.
#
# Shapes: iperf3 on loopback recorded by perf (cpu-clock, 10 kHz, all CPUs,
# call graphs, 25 s: about 400k samples); dd copying zeros (syscall-heavy,
# netprof record, 10 s); a shell loop spawning short processes (many
# commands and threads, 10 s); busy_sleep with off-CPU time and wakeups;
# benches/deep_paths.c, nearly every sample on a call path of its own (2.6M
# call-tree nodes, of which the page keeps the largest 600k).
# Pass existing recordings as arguments to measure those instead.
#
# Needs: perf (linux-perf), iperf3, chromium, clang, GNU time (time).
# Run from the repository root: benches/html_budget.sh [FILE.data...]
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/common.sh
need perf iperf3 chromium clang /usr/bin/time -- "apt-get install linux-perf iperf3 chromium clang time"
setup

recordings=("$@")
if [ ${#recordings[@]} -eq 0 ]; then
  record_iperf3 25 "$work/iperf3.data"
  "$netprof" record -q -a -g -F 10000 -o "$work/dd.data" -- \
    timeout 10 dd if=/dev/zero of=/dev/null bs=4k 2>/dev/null || true
  "$netprof" record -q -a -g -F 10000 -o "$work/processes.data" -- \
    timeout 10 sh -c 'while :; do ls / | wc -l >/dev/null; date >/dev/null; done' || true
  clang -O1 -fno-omit-frame-pointer -o "$work/busy_sleep" tests/off_cpu/busy_sleep.c
  "$netprof" record -q --off-cpu --wakeups -a -g -o "$work/off-cpu.data" -- "$work/busy_sleep" 10
  clang -O1 -fno-omit-frame-pointer -o "$work/deep_paths" benches/deep_paths.c
  "$netprof" record -q -g -F 10000 -o "$work/deep-paths.data" -- "$work/deep_paths" 10
  recordings=("$work/iperf3.data" "$work/dd.data" "$work/processes.data" "$work/off-cpu.data" "$work/deep-paths.data")
fi

load() { # page: prints "first-draw-ms ready-ms" of one load
  chromium --headless --no-sandbox --disable-gpu --no-first-run --window-size=1400,1000 \
    --user-data-dir="$work/profile" --dump-dom "file://$1" 2>/dev/null |
    sed -n 's/.*data-first-draw-ms="\([0-9]*\)" data-ready-ms="\([0-9]*\)".*/\1 \2/p'
}

printf '%-16s %9s %8s %10s %9s %10s %12s %10s\n' recording samples nodes "page MB" "write s" "write MB" "first draw" "all ready"
for data in "${recordings[@]}"; do
  page=$work/$(basename "$data" .data).html
  /usr/bin/time -f "%e %M" -o "$work/t" "$netprof" report -i "$data" --html "$page" 2>/dev/null
  read -r secs kb < "$work/t"
  samples=$("$netprof" report -i "$data" --percent-limit 100 2>/dev/null |
    sed -n '1s/^# netprof report: \([0-9.]*\) \(samples\|s\) of.*/\1/p' | head -1)
  # Call-tree nodes in the page: one per distinct path from a command.
  nodes=$(python3 -c "import json,sys; s=open(sys.argv[1]).read(); d=s.split('id=\"data\">',1)[1].split('</script>',1)[0]; print(sum(len(p['tree']['frame']) for p in json.loads(d)['profiles']))" "$page")
  loads=$(for _ in 1 2 3; do load "$page"; done | sort -n)
  first=$(echo "$loads" | awk '{ print $1 }' | sort -n | sed -n 2p)
  ready=$(echo "$loads" | awk '{ print $2 }' | sort -n | sed -n 2p)
  printf '%-16s %9s %8s %10.2f %9s %10d %9s ms %7s ms\n' "$(basename "$data" .data)" "${samples:-?}" "$nodes" \
    "$(awk -v b="$(stat -c %s "$page")" 'BEGIN { print b / 1048576 }')" "$secs" "$((kb / 1024))" "$first" "$ready"
done
