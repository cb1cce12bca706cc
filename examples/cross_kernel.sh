#!/bin/sh
# Worked example for comparing two kernels (the OEMU workflow: an
# instrumented or newer kernel against a baseline): the same workload
# recorded on Debian 12's 6.1 and 6.12, then `netprof diff` between them.
# Functions match by name and module although every address differs;
# functions that exist in one kernel only are marked so.
#
# From the repository root after `cargo build --release`:
#
#   sh examples/cross_kernel.sh            # boots each kernel, records, compares
#
# It runs itself inside each guest as `sh examples/cross_kernel.sh record`,
# writing to $OUT/<kernel> (default target/cross-kernel, which the guests
# may write through NETPROF_GUEST_RWDIR).
set -eu
netprof=${NETPROF:-$PWD/target/release/netprof}
out=${OUT:-$PWD/target/cross-kernel}

if [ "${1:-}" = record ]; then
  # Inside a guest: the test module's fixed computation (the same
  # instructions on any kernel) and call chain, and a loopback TCP stream.
  grep -q '^netprof_test ' /proc/modules || insmod "${NETPROF_TEST_MODULE:-tests/kmod/netprof_test.ko}"
  series=$(uname -r | cut -d. -f1,2)
  mkdir -p "$out/$series"
  workload='busybox nc -l -p 5301 > /dev/null & sleep 0.3;
    echo 200 > /proc/netprof_test; echo w3000 > /proc/netprof_test;
    dd if=/dev/zero bs=64k count=300 status=none | busybox nc 127.0.0.1 5301; wait'
  "$netprof" record -q -a -g -o "$out/$series/workload.data" -- sh -c "$workload"
  "$netprof" latency -m netprof_test 'netprof_test_*' --json \
    -- sh -c 'echo 200 > /proc/netprof_test; echo d50 > /proc/netprof_test' > "$out/$series/latency.json"
  exit 0
fi

mkdir -p "$out"
for kernel in 6.1 6.12; do
  NETPROF_GUEST_KERNEL=$kernel NETPROF_GUEST_RWDIR=$out OUT=$out NETPROF=$netprof \
    tests/guest/run sh examples/cross_kernel.sh record
done
# The module's own functions: the same work on both kernels, so no change
# beyond noise.
"$netprof" diff "$out/6.1/workload.data" "$out/6.12/workload.data" --module netprof_test
# Everything, idle left out: what the kernels do differently.
"$netprof" diff "$out/6.1/workload.data" "$out/6.12/workload.data" --no-idle
# Per-call latency of the module's functions on each kernel.
"$netprof" diff "$out/6.1/latency.json" "$out/6.12/latency.json"
