// SPDX-License-Identifier: GPL-2.0
/*
 * Counts call stacks in the kernel (`netprof record --bpf`): each sample
 * (cpu-clock tick, tracepoint hit, kprobe hit) adds one to the count of its
 * (task, CPU, kernel stack, user stack) instead of copying the stack to user
 * space. User space drains the counts every second.
 *
 * Stacks are stored by a 64-bit hash of their frames rather than in a
 * BPF_MAP_TYPE_STACK_TRACE map: stack-trace maps drop a stack whenever two
 * stacks share a bucket, which happens from a few hundred distinct stacks on;
 * a 64-bit hash practically never collides.
 *
 * Draining without losing counts: there are two generations of count maps.
 * The programs write into the generation `generation` selects; user space
 * flips it, waits for programs still running on the old one, then reads and
 * empties the old generation at leisure. Stacks live in one map that user
 * space reads only for hashes it has not seen, and empties of the stacks it
 * has read when the map fills up: a stack that recurs is stored again.
 */
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <bpf/bpf_helpers.h>

#define MAX_FRAMES 127
#define TASK_COMM_LEN 16

struct pt_regs;

/* A stack: its depth, then its frames, leaf first. */
struct stack {
	__u64 depth;
	__u64 frames[MAX_FRAMES];
};

struct count_key {
	__u32 pid;
	__u32 tid;
	__u32 cpu;
	__u32 pad;
	__u64 kernel_stack; /* hash, 0: none */
	__u64 user_stack;   /* hash, 0: none */
	char comm[TASK_COMM_LEN];
};

/* Sizes are set by user space before loading (see src/bpfcount.rs). */
#define COUNTS_MAP(name)                                                       \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                               \
		__uint(max_entries, 1);                                        \
		__type(key, struct count_key);                                 \
		__type(value, __u64);                                          \
	} name SEC(".maps")
#define STACKS_MAP(name)                                                       \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                               \
		__uint(max_entries, 1);                                        \
		__type(key, __u64);                                            \
		__type(value, struct stack);                                   \
	} name SEC(".maps")

COUNTS_MAP(counts0);
COUNTS_MAP(counts1);
STACKS_MAP(stacks);

/* Per-CPU room to take a stack in: too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stack);
} scratch SEC(".maps");

/* Samples that found no room: [0] in a stacks map, [1] in a counts map. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

/* Which generation of maps the programs write to; flipped by user space. */
volatile __u32 generation;

/* Set before loading. */
const volatile __u32 max_frames = MAX_FRAMES;
/*
 * Tracepoint and kprobe programs run on every CPU whatever event they came
 * from, so a CPU list (-C) is applied here: bit n of cpu_mask is CPU n.
 */
const volatile __u8 filter_cpus = 0;
const volatile __u64 cpu_mask[16] = {};

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&dropped, &reason);

	if (n)
		*n += 1;
}

/*
 * Takes the current kernel or user stack and stores it under its hash;
 * returns the hash, 0 for no stack, or 1 when there was no room for it.
 */
static __always_inline __u64 save_stack(void *ctx, __u64 flags)
{
	__u32 zero = 0;
	struct stack *s = bpf_map_lookup_elem(&scratch, &zero);
	__u32 size = (max_frames & MAX_FRAMES) * sizeof(__u64);
	long len;
	__u64 hash = 14695981039346656037ULL;

	if (!s || size == 0)
		return 0;
	len = bpf_get_stack(ctx, s->frames, size, flags);
	if (len <= 0)
		return 0;
	s->depth = len / sizeof(__u64);
	for (__u32 i = 0; i < MAX_FRAMES; i++) {
		if (i >= s->depth)
			break;
		hash = (hash ^ s->frames[i]) * 1099511628211ULL;
	}
	/* 0 and 1 mean "no stack" and "no room". */
	if (hash < 2)
		hash += 2;
	if (bpf_map_lookup_elem(&stacks, &hash))
		return hash;
	/* Another CPU may store the same stack meanwhile: EEXIST is fine. */
	if (bpf_map_update_elem(&stacks, &hash, s, BPF_NOEXIST) && !bpf_map_lookup_elem(&stacks, &hash)) {
		count_drop(0);
		return 1;
	}
	return hash;
}

static __always_inline void count(void *ctx, void *counts)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct count_key key = {};
	__u64 one = 1, *n;

	key.cpu = bpf_get_smp_processor_id();
	if (filter_cpus && !(cpu_mask[(key.cpu / 64) & 15] & (1ULL << (key.cpu % 64))))
		return;
	key.pid = pid_tgid >> 32;
	key.tid = (__u32)pid_tgid;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.kernel_stack = save_stack(ctx, 0);
	/* Without call chains (max_frames 1), only where the sample hit. */
	if (key.pid != 0 && (max_frames > 1 || key.kernel_stack == 0))
		key.user_stack = save_stack(ctx, BPF_F_USER_STACK);
	if (key.kernel_stack == 1 || key.user_stack == 1)
		return;

	n = bpf_map_lookup_elem(counts, &key);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return;
	}
	if (bpf_map_update_elem(counts, &key, &one, BPF_NOEXIST)) {
		/* Another CPU may have created it meanwhile. */
		n = bpf_map_lookup_elem(counts, &key);
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			count_drop(1);
	}
}

static __always_inline void count_current(void *ctx)
{
	if (generation & 1)
		count(ctx, &counts1);
	else
		count(ctx, &counts0);
}

/*
 * A sampling event's program runs for netprof's own event only: returning
 * 0 keeps the kernel from writing the sample to a ring buffer, as the
 * count is all that is kept.
 */
SEC("perf_event")
int count_perf_event(struct bpf_perf_event_data *ctx)
{
	count_current(ctx);
	return 0;
}

/*
 * A tracepoint's (or a tracefs probe's) programs run once per hit for every
 * perf event on it, and returning 0 would drop the hit for all of them:
 * other perf and netprof users would see nothing. Returning 1 lets the
 * kernel deliver it as usual; netprof's own event has no ring buffer, so
 * nothing more is written for it.
 */
SEC("tracepoint")
int count_tracepoint(void *ctx)
{
	count_current(ctx);
	return 1;
}

SEC("kprobe")
int count_kprobe(struct pt_regs *ctx)
{
	count_current(ctx);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
