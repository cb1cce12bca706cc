// SPDX-License-Identifier: GPL-2.0
/*
 * One program on many kernel functions at once, through a multi-kprobe
 * (fprobe) BPF link: attaching a whole module's functions costs one system
 * call instead of one probe registration each. Where the kernel has no
 * multi-kprobe links (no fprobe, as in Debian 12's 6.1), the same program
 * in its kprobe form is attached through one link per function.
 *
 * Each hit writes a sample into the perf ring buffer of its CPU (a
 * bpf-output perf event opened by netprof record); the kernel adds the call
 * chain of the probed function as for any sample, so the recorder and the
 * reports treat these hits like every other event. The sample's raw data is
 * the address of the function that was hit.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct pt_regs;

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} samples SEC(".maps");

static __always_inline int hit(struct pt_regs *ctx, __u64 function)
{
	bpf_perf_event_output(ctx, &samples, BPF_F_CURRENT_CPU, &function, sizeof(function));
	return 0;
}

SEC("kprobe.multi")
int netprof_hit(struct pt_regs *ctx)
{
	return hit(ctx, bpf_get_func_ip(ctx));
}

/* One link per function: its cookie is the function's address. */
SEC("kprobe")
int netprof_hit_each(struct pt_regs *ctx)
{
	return hit(ctx, bpf_get_attach_cookie(ctx));
}

char LICENSE[] SEC("license") = "GPL";
