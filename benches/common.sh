# Shared by the benches (sourced, not run): the tools a bench needs, the
# release build, a scratch directory removed on exit, and the recordings
# several benches make.

# need TOOL... -- INSTALL-HINT: stops with the hint when a tool is missing.
need() {
  local tools=() hint
  while [ "$1" != "--" ]; do tools+=("$1"); shift; done
  hint=$2
  for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || { echo "missing $tool ($hint)" >&2; exit 1; }
  done
}

# Builds netprof; sets $netprof and a scratch directory $work.
setup() {
  cargo build --release --locked -q
  netprof=$PWD/target/release/netprof
  work=$(mktemp -d)
  trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT
}

# record_iperf3 SECONDS FILE: perf records cpu-clock at 10 kHz on all CPUs
# with call graphs while iperf3 runs on loopback.
record_iperf3() {
  iperf3 -s -1 -p 5299 >/dev/null &
  sleep 0.5
  iperf3 -c 127.0.0.1 -p 5299 -t $(($1 + 2)) >/dev/null &
  sleep 1
  perf record -q -e cpu-clock -F 10000 -a -g -o "$2" -- sleep "$1" 2>/dev/null
  wait
}
