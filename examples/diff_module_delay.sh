#!/bin/sh
# Worked example for `netprof diff`: a change to a kernel module made one
# function slower; which function, by how much, and is it more than noise?
#
# The "change" is the busy delay of the project's test module
# (tests/kmod/netprof_test.ko): 200 us before, 400 us after. This machine's
# kernel has no modules, so run it inside the test kernel, from the
# repository root after `cargo build --release`:
#
#   tests/guest/run sh examples/diff_module_delay.sh
#
# On a machine of your own, point NETPROF at the binary and load the module
# (make -C tests/kmod) first. Outputs stay in $OUT (default /tmp/netprof-diff).
set -eu
netprof=${NETPROF:-$PWD/target/release/netprof}
out=${OUT:-/tmp/netprof-diff}
mkdir -p "$out"
grep -q '^netprof_test ' /proc/modules || insmod "${NETPROF_TEST_MODULE:-tests/kmod/netprof_test.ko}"
delay=/sys/module/netprof_test/parameters/delay_us

# The workload: the delayed function (500 calls a round), and work that
# does not change: dd for a quarter of a second a round. Both are measured
# in time, not in work done, so that their shares do not move with the
# machine's speed (under software emulation it varies from run to run).
workload='for i in 1 2 3 4; do echo d500 > /proc/netprof_test; timeout 0.25 dd if=/dev/zero of=/dev/null bs=4k status=none; done; true'

for side in before after; do
  if [ $side = before ]; then echo 200 > $delay; else echo 400 > $delay; fi
  # A warm-up run first, not recorded: the first run after a change (or
  # after probes came and went, which rewrites kernel code) pays for cold
  # caches, and under software emulation for translating code again.
  sh -c "$workload"
  # Three recordings a side: repeated runs let diff see run-to-run noise.
  for run in 1 2 3; do
    "$netprof" record -q -g -o "$out/$side-$run.data" -- sh -c "$workload"
  done
  # And the function's latency, timed in the kernel: 50 calls by a command
  # that netprof starts once the probes are attached.
  "$netprof" latency netprof_test_delay --json -- sh -c 'echo d50 > /proc/netprof_test' \
    > "$out/$side-latency.json"
done
echo 200 > $delay

# One pair: two-proportion z-test on the sample shares.
"$netprof" diff "$out/before-1.data" "$out/after-1.data" --flame "$out/diff.svg"
# Repeated runs: Welch's t-test over the runs' shares.
"$netprof" diff -b "$out"/before-?.data -a "$out"/after-?.data
# Latency: medians, IQRs and the Mann-Whitney U test on the histograms.
"$netprof" diff "$out/before-latency.json" "$out/after-latency.json"
echo "differential flamegraph: $out/diff.svg"
