// SPDX-License-Identifier: GPL-2.0
/*
 * Per-call latency of kernel functions (`netprof latency`), aggregated in
 * the kernel: the entry probe notes the time per (thread, function), the
 * return probe adds the elapsed time to a histogram per (function, group).
 *
 * Functions are told apart by the BPF cookie netprof attaches each with
 * (its index). The histogram is log-linear (histogram.h).
 *
 * Three ways in: one kprobe.session program (kernel 6.10 and later: one
 * fprobe runs it at entry and at return; under emulation it cost 1100 ns
 * a call less than a kprobe.multi pair, two fprobes on every function), a
 * kprobe.multi pair (many functions in one link each, where the kernel has
 * fprobe) and plain kprobes (one link per function). netprof loads only
 * the one it uses. An entry returns 1 when the call is not timed, which
 * spares a session the call's return.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "histogram.h"
#include "follow_pids.h"

struct pt_regs;

struct start_key {
	__u64 pid_tgid;
	__u64 function;
};

struct hist_key {
	__u32 function;
	__u32 group; /* the process with a per-process breakdown, else 0 */
};

struct hist {
	__u64 count;
	__u64 sum_ns;
	__u64 min_ns; /* 0: none yet */
	__u64 max_ns;
	__u64 buckets[BUCKETS];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct start_key);
	__type(value, __u64);
} starts SEC(".maps");

/*
 * Per CPU, so that no update needs an atomic; netprof sums the CPUs (or,
 * per CPU, shows each). netprof preallocates it, one entry per function,
 * unless histograms are per process: allocating a value this large in a
 * probe fails while the kernel's cache of them is empty (a burst of first
 * calls lost every call of a function on 6.12).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hist_key);
	__type(value, struct hist);
} hists SEC(".maps");

/*
 * Calls not measured: [0] no room to note a start, [1] no room for a
 * histogram.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

/* A new histogram's first value (too large for the BPF stack). */
struct hist empty_hist;

/* 0: one histogram per function; 1: per CPU; 2: per process. */
const volatile __u8 breakdown = 0;

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&dropped, &reason);

	if (n)
		*n += 1;
}

static __always_inline int on_entry(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct start_key key = { .pid_tgid = pid_tgid, .function = bpf_get_attach_cookie(ctx) };
	__u64 now;

	if (!measured(pid_tgid >> 32))
		return 1;
	now = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&starts, &key, &now, BPF_ANY)) {
		count_drop(0);
		return 1;
	}
	return 0;
}

static __always_inline int on_return(void *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct start_key key = { .pid_tgid = pid_tgid, .function = bpf_get_attach_cookie(ctx) };
	struct hist_key hkey = {};
	struct hist *h;
	__u64 *start, ns;

	/* None: the call began before netprof attached, or is filtered out. */
	start = bpf_map_lookup_elem(&starts, &key);
	if (!start)
		return 0;
	ns = now - *start;
	bpf_map_delete_elem(&starts, &key);

	hkey.function = key.function;
	if (breakdown == 2)
		hkey.group = pid_tgid >> 32;
	h = bpf_map_lookup_elem(&hists, &hkey);
	if (!h) {
		bpf_map_update_elem(&hists, &hkey, &empty_hist, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &hkey);
		if (!h) {
			count_drop(1);
			return 0;
		}
	}
	h->count += 1;
	h->sum_ns += ns;
	if (h->min_ns == 0 || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->buckets[at_most(bucket_of(ns), BUCKETS - 1)] += 1;
	return 0;
}

extern bool bpf_session_is_return(void) __ksym __weak;

SEC("kprobe.session")
int latency_session(struct pt_regs *ctx)
{
	if (bpf_session_is_return())
		return on_return(ctx);
	return on_entry(ctx);
}

SEC("kprobe.multi")
int latency_entry_multi(struct pt_regs *ctx)
{
	on_entry(ctx);
	return 0;
}

SEC("kretprobe.multi")
int latency_return_multi(struct pt_regs *ctx)
{
	return on_return(ctx);
}

SEC("kprobe")
int latency_entry(struct pt_regs *ctx)
{
	on_entry(ctx);
	return 0;
}

SEC("kretprobe")
int latency_return(struct pt_regs *ctx)
{
	return on_return(ctx);
}

char LICENSE[] SEC("license") = "GPL";
