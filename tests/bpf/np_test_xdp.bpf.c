// SPDX-License-Identifier: GPL-2.0
/*
 * The tests' own XDP program: passes every packet, and writes one line per
 * packet with bpf_trace_printk so that a tracepoint (bpf_trace:bpf_trace_printk)
 * fires inside it, giving the tests a stack with this program's frame in it.
 */
#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))

static long (*trace_printk)(const char *fmt, __u32 fmt_size, ...) = (void *)BPF_FUNC_trace_printk;

SEC("xdp")
int np_test_xdp(struct xdp_md *ctx)
{
	char fmt[] = "np_test_xdp\n";

	trace_printk(fmt, sizeof(fmt));
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
