// SPDX-License-Identifier: GPL-2.0
/*
 * Counts call stacks in the kernel, for two kinds of recording:
 *
 * - `netprof record --bpf`: each sample (cpu-clock tick, tracepoint hit,
 *   kprobe hit) adds one to the count of its (task, CPU, kernel stack,
 *   user stack) instead of copying the stack to user space.
 * - `netprof record --off-cpu`: on sched_switch, a thread leaving the CPU
 *   has its stacks and state noted; when it comes back, the time it was
 *   away is added to the count of (task, state, stacks). With --wakeups,
 *   sched_waking notes the kernel stack of whoever woke it, and the time is
 *   also counted under (waker stack, blocked stack).
 *
 * User space drains the counts when a map is half full, every ten
 * seconds and at the end, and reads new stacks as they come.
 *
 * Stacks are known by a 64-bit hash of their frames rather than kept in a
 * BPF_MAP_TYPE_STACK_TRACE map: stack-trace maps drop a stack whenever two
 * stacks share a bucket, which happens from a few hundred distinct stacks on;
 * a 64-bit hash practically never collides.
 *
 * Draining without losing counts: there are two generations of count maps.
 * The programs write into the generation `generation` selects; user space
 * flips it, waits for programs still running on the old one, then reads and
 * empties the old generation at leisure.
 *
 * A stack's frames go to user space once, through a ring buffer, the first
 * time its hash is seen; an LRU map remembers the hashes sent. User space
 * reads the ring buffer as it fills and never looks stacks up or deletes
 * them: when stacks were kept in hash maps, emptying those maps of the
 * stacks read (to make room) was most of the drain's cost, and every stack
 * that recurred after that was stored and read again. A hash the LRU map
 * forgets is sent again, which user space ignores.
 */
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <bpf/bpf_helpers.h>

#include "follow_pids.h"

#define MAX_FRAMES 127
#define TASK_COMM_LEN 16

struct pt_regs;

/*
 * A stack as sent to user space: its hash, its depth, then its frames, leaf
 * first (only `depth` of them are sent).
 */
struct stack {
	__u64 hash;
	__u64 depth;
	__u64 frames[MAX_FRAMES];
};

/*
 * What a count is of: a sample (0), or off-CPU time in one of the states
 * below, or that time by waker (WAKER_COUNT | state), whose key then holds
 * the waker's kernel stack in place of the user stack.
 */
#define SAMPLE_COUNT 0
#define OFF_CPU_COUNT 0x100
#define WAKER_COUNT 0x200

/* Why a thread left the CPU, as ps(1) letters; bit n of state_mask is state n. */
enum off_cpu_state {
	STATE_RUNNABLE,      /* R: preempted or yielded, waiting for a CPU */
	STATE_SLEEPING,      /* S: interruptible sleep */
	STATE_DISK,          /* D: uninterruptible sleep */
	STATE_IDLE,          /* I: an idle kernel thread (D without load) */
	STATE_STOPPED,       /* T */
	STATE_TRACED,        /* t */
	STATE_PARKED,        /* P: a parked kernel thread */
	STATE_NONE,          /* exiting: never comes back */
};

struct count_key {
	__u32 pid;
	__u32 tid;
	__u32 cpu;
	__u32 what;         /* SAMPLE_COUNT, or OFF_CPU_COUNT / WAKER_COUNT | state */
	__u64 kernel_stack; /* hash, 0: none */
	__u64 user_stack;   /* hash, 0: none; the waker's kernel stack for WAKER_COUNT */
	char comm[TASK_COMM_LEN];
};

/* Sizes are set by user space before loading (see src/bpf/stack_count.rs). */
#define COUNTS_MAP(name)                                                       \
	struct {                                                               \
		__uint(type, BPF_MAP_TYPE_HASH);                               \
		__uint(max_entries, 1);                                        \
		__type(key, struct count_key);                                 \
		__type(value, __u64);                                          \
	} name SEC(".maps")
COUNTS_MAP(counts0);
COUNTS_MAP(counts1);

/* New stacks, on their way to user space (size set by user space). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} new_stacks SEC(".maps");

/* The hashes of stacks already sent (size set by user space). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, __u8);
} sent SEC(".maps");

/* Per-CPU room to take a stack in: too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stack);
} scratch SEC(".maps");

/*
 * What could not be counted: [0] samples or blocks whose new stack found no
 * room in the ring buffer, [1] with no room in a counts map, [2] blocks lost to another in their `blocked` slot;
 * [3] blocks shorter than min_block_ns, left out, and [4] their time.
 */
#define DROPPED_STACKS 0
#define DROPPED_COUNTS 1
#define DROPPED_BLOCKED 2
#define SHORT_BLOCKS 3
#define SHORT_BLOCKS_NS 4
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} dropped SEC(".maps");

/* Which generation of maps the programs write to; flipped by user space. */
volatile __u32 generation;

/*
 * Entries created in each generation's count map since user space last
 * emptied it: user space drains when a map fills, not at a fixed pace, as
 * emptying walks every bucket of the map however few are used.
 */
__u64 new_counts[2];

/* Samples counted so far, for the recorder's status line. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} samples_seen SEC(".maps");

/* Set before loading. */
const volatile __u32 max_frames = MAX_FRAMES;
/*
 * Tracepoint and kprobe programs run on every CPU whatever event they came
 * from, so a CPU list (-C) is applied here: bit n of cpu_mask is CPU n.
 */
const volatile __u8 filter_cpus = 0;
const volatile __u64 cpu_mask[16] = {};

static __always_inline void count_drop_by(__u32 reason, __u64 amount)
{
	__u64 *n = bpf_map_lookup_elem(&dropped, &reason);

	if (n)
		*n += amount;
}

static __always_inline void count_drop(__u32 reason)
{
	count_drop_by(reason, 1);
}

/*
 * User stacks come from walking frame pointers, and code built without them
 * (most distributions' libc, iperf3, ...) leaves the walk reading whatever
 * its stack holds: every sample then has a different user stack, nothing
 * aggregates, and each sample sends a new stack to user space. A
 * real return address is the end of a call instruction, so the walk is cut
 * at the first frame that does not follow one; the stack then ends in a 0
 * frame, which the report shows as an unknown user frame (and counts as a
 * cut chain), as it does for frames outside any mapped code.
 */
#if defined(__TARGET_ARCH_x86)
/*
 * The length of `call` with this ModRM (and SIB) byte after its 0xff opcode
 * (the FF /2 forms: through a register or memory), or 0 if it is not one.
 */
static __always_inline __u32 indirect_call_len(__u8 modrm, __u8 sib)
{
	__u8 mod = modrm >> 6, rm = modrm & 7;

	if (((modrm >> 3) & 7) != 2)
		return 0;
	if (mod == 3)
		return 2;
	if (mod == 0) {
		if (rm == 5)
			return 6; /* rip-relative: call *foo@GOTPCREL(%rip) */
		if (rm == 4)
			return (sib & 7) == 5 ? 7 : 3;
		return 2;
	}
	if (mod == 1)
		return rm == 4 ? 4 : 3;
	return rm == 4 ? 7 : 6;
}

static __always_inline int follows_call(__u64 ret)
{
	__u8 b[8];

	if (ret < 8 || bpf_probe_read_user(b, sizeof(b), (void *)(ret - 8)))
		return 0;
	if (b[3] == 0xe8) /* call rel32 */
		return 1;
	/* call through a register or memory: 2, 3, 4, 6 or 7 bytes */
	if (b[6] == 0xff && indirect_call_len(b[7], 0) == 2)
		return 1;
	if (b[5] == 0xff && indirect_call_len(b[6], b[7]) == 3)
		return 1;
	if (b[4] == 0xff && indirect_call_len(b[5], b[6]) == 4)
		return 1;
	if (b[2] == 0xff && indirect_call_len(b[3], b[4]) == 6)
		return 1;
	return b[1] == 0xff && indirect_call_len(b[2], b[3]) == 7;
}
#elif defined(__TARGET_ARCH_arm64)
static __always_inline int follows_call(__u64 ret)
{
	__u32 insn;

	if (ret < 4 || bpf_probe_read_user(&insn, sizeof(insn), (void *)(ret - 4)))
		return 0;
	/* bl, blr */
	return (insn & 0xfc000000) == 0x94000000 || (insn & 0xfffffc1f) == 0xd63f0000;
}
#else
/* No check known for this architecture: every frame is kept. */
static __always_inline int follows_call(__u64 ret)
{
	return 1;
}
#endif

/* bpf_loop's step: 1 (stop) at the end of the stack or at the frame cut. */
static long cut_if_uncalled(__u32 i, void *ctx)
{
	struct stack *s = *(struct stack **)ctx;

	/* Frame 0 is where the sample hit, not a return address. */
	if (i == 0)
		return 0;
	if (i >= s->depth)
		return 1;
	/* Kept apart from the depth's test, which the verifier cannot bound. */
	barrier_var(i);
	if (i >= MAX_FRAMES)
		return 1;
	if (follows_call(s->frames[i]))
		return 0;
	s->frames[i] = 0;
	s->depth = i + 1;
	return 1;
}

/*
 * Cuts a user stack at its first frame after the sampled one that no call
 * made. bpf_loop, not a loop: the verifier then checks the step once rather
 * than once per frame, which costs a quarter of a second at every load.
 */
static __always_inline void cut_at_uncalled_frame(struct stack *s)
{
	/* bpf_loop's context must be on the BPF stack. */
	bpf_loop(MAX_FRAMES, cut_if_uncalled, &s, 0);
}

/*
 * Sends a stack to user space unless its hash was sent before; the hash, or
 * 1 when the ring buffer had no room. The hash is remembered only once the
 * stack is in the ring buffer, so a count never names a stack user space
 * cannot get; two CPUs may both send a new stack, which is harmless.
 */
static __always_inline __u64 send_stack(struct stack *s)
{
	__u8 yes = 1;

	if (bpf_map_lookup_elem(&sent, &s->hash))
		return s->hash;
	if (bpf_ringbuf_output(&new_stacks, s, (2 + (s->depth & MAX_FRAMES)) * sizeof(__u64),
			       BPF_RB_NO_WAKEUP)) {
		count_drop(DROPPED_STACKS);
		return 1;
	}
	bpf_map_update_elem(&sent, &s->hash, &yes, BPF_ANY);
	return s->hash;
}

/*
 * Takes the current kernel or user stack and sends it to user space if it
 * is new; returns its hash, 0 for no stack, or 1 when there was no room.
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
	if (flags & BPF_F_USER_STACK)
		cut_at_uncalled_frame(s);
	for (__u32 i = 0; i < MAX_FRAMES; i++) {
		if (i >= s->depth)
			break;
		hash = (hash ^ s->frames[i]) * 1099511628211ULL;
	}
	/* 0 and 1 mean "no stack" and "no room". */
	if (hash < 2)
		hash += 2;
	s->hash = hash;
	return send_stack(s);
}

static __always_inline void add_to_count_in(void *counts, __u32 gen, struct count_key *key,
					    __u64 amount)
{
	__u64 *n = bpf_map_lookup_elem(counts, key);

	if (n) {
		__sync_fetch_and_add(n, amount);
		return;
	}
	if (!bpf_map_update_elem(counts, key, &amount, BPF_NOEXIST)) {
		__sync_fetch_and_add(&new_counts[gen & 1], 1);
	} else {
		/* Another CPU may have created it meanwhile. */
		n = bpf_map_lookup_elem(counts, key);
		if (n)
			__sync_fetch_and_add(n, amount);
		else
			count_drop(DROPPED_COUNTS);
	}
}

/* Adds `amount` to the count of `key` in the current generation. */
static __always_inline void add_to_count(struct count_key *key, __u64 amount)
{
	__u32 gen = generation;

	if (gen & 1)
		add_to_count_in(&counts1, 1, key, amount);
	else
		add_to_count_in(&counts0, 0, key, amount);
}

static __always_inline int cpu_selected(__u32 cpu)
{
	return !filter_cpus || (cpu_mask[(cpu / 64) & 15] & (1ULL << (cpu % 64)));
}

static __always_inline void count_current(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct count_key key = {};
	__u32 zero = 0;
	__u64 *seen;

	key.cpu = bpf_get_smp_processor_id();
	if (!cpu_selected(key.cpu))
		return;
	key.pid = pid_tgid >> 32;
	key.tid = (__u32)pid_tgid;
	key.what = SAMPLE_COUNT;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.kernel_stack = save_stack(ctx, 0);
	/* Without call chains (max_frames 1), only where the sample hit. */
	if (key.pid != 0 && (max_frames > 1 || key.kernel_stack == 0))
		key.user_stack = save_stack(ctx, BPF_F_USER_STACK);
	if (key.kernel_stack == 1 || key.user_stack == 1)
		return;
	add_to_count(&key, 1);
	seen = bpf_map_lookup_elem(&samples_seen, &zero);
	if (seen)
		*seen += 1;
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

/* A thread off the CPU: since when, why, where, and who woke it. */
struct blocked {
	__u64 start; /* 0: the slot is free */
	__u64 kernel_stack;
	__u64 user_stack;
	__u64 waker_stack; /* 0 until woken (with --wakeups) */
	__u32 tid;
	__u32 pid;
	__u32 state;
	__u32 pad;
	char comm[TASK_COMM_LEN];
	__u64 task; /* the thread's task_struct, which names it to switch_in */
};

/*
 * One slot per thread, by a hash of its task_struct's address modulo the
 * array's size (a power of two, set by user space): an array costs a
 * fraction of a hash map's update and delete on every switch. Two threads
 * that share a slot and are away at once lose the first one's wait,
 * counted as dropped.
 *
 * Threads are known by their task_struct's address, not their id: the
 * scheduler's tracepoints give the address, and reading the id from it
 * would need the kernel's BTF to find the field (CO-RE), which libbpf
 * then loads for every program of this object, --bpf's too: 5 ms of each
 * recording's start, and no off-CPU recording on a kernel without BTF.
 * An address is reused only after its thread exited, and a thread runs
 * (clearing its slot) before it can exit.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct blocked);
} blocked SEC(".maps");

const volatile __u32 blocked_mask = 0;

static __always_inline struct blocked *slot_of(__u64 task)
{
	/* Tasks are slab objects kilobytes apart: multiply to mix the bits
	 * that differ into the high half, which the index takes. */
	__u32 index = (__u32)((task * 0x9E3779B97F4A7C15ULL) >> 32) & blocked_mask;

	return bpf_map_lookup_elem(&blocked, &index);
}

/* Set before loading: which states to count, the shortest block counted,
 * whether to note wakers, and netprof's own process, left out. */
const volatile __u32 state_mask = ~0U;
const volatile __u64 min_block_ns = 0;
const volatile __u8 note_wakers = 0;
const volatile __u32 self_pid = 0;

/*
 * The kernel's task states (include/linux/sched.h), stable since 4.14, and
 * what sched_switch's prev_state argument holds: the task's __state.
 */
#define TASK_INTERRUPTIBLE 0x1
#define TASK_UNINTERRUPTIBLE 0x2
#define TASK_STOPPED 0x4
#define TASK_TRACED 0x8
#define TASK_DEAD 0x80
#define TASK_NOLOAD 0x400
#define TASK_PARKED 0x40

static __always_inline __u32 state_of(__u64 preempt, __u32 state)
{
	if (preempt || state == 0)
		return STATE_RUNNABLE;
	if (state & TASK_DEAD)
		return STATE_NONE;
	if (state & TASK_INTERRUPTIBLE)
		return STATE_SLEEPING;
	if (state & TASK_UNINTERRUPTIBLE)
		return (state & TASK_NOLOAD) ? STATE_IDLE : STATE_DISK;
	if (state & TASK_STOPPED)
		return STATE_STOPPED;
	if (state & TASK_TRACED)
		return STATE_TRACED;
	if (state & TASK_PARKED)
		return STATE_PARKED;
	return STATE_NONE;
}

/*
 * The thread leaving the CPU: note its stacks and state. The tracepoint
 * fires before the switch, so the current task is still `prev`.
 */
static __always_inline void switch_out(__u64 *ctx, __u64 prev, __u32 cpu)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	__u32 pid = pid_tgid >> 32;
	__u64 kernel_stack = 0, user_stack = 0;
	struct blocked *b;
	__u32 state;

	/* The idle task is never blocked; netprof does not watch itself. */
	if (tid == 0 || pid == self_pid || !measured(pid) || !cpu_selected(cpu))
		return;
	state = state_of(ctx[0], (__u32)ctx[3]);
	if (state >= STATE_NONE || !(state_mask & (1U << state)))
		return;
	b = slot_of(prev);
	if (!b)
		return;
	/* Without call chains, a wait's one frame would be this program's. */
	if (max_frames > 1) {
		kernel_stack = save_stack(ctx, 0);
		user_stack = save_stack(ctx, BPF_F_USER_STACK);
	}
	if (kernel_stack == 1 || user_stack == 1)
		return;
	if (b->start && b->task != prev)
		count_drop(DROPPED_BLOCKED);
	b->task = prev;
	b->tid = tid;
	b->pid = pid;
	b->state = state;
	b->kernel_stack = kernel_stack;
	b->user_stack = user_stack;
	b->waker_stack = 0;
	bpf_get_current_comm(b->comm, sizeof(b->comm));
	b->start = bpf_ktime_get_ns();
}

/* The thread coming back: count the time it was away. */
static __always_inline void switch_in(__u64 next, __u32 cpu)
{
	struct blocked *b;
	struct count_key key = {};
	__u64 away, waker_stack;
	__u32 tid;

	b = slot_of(next);
	if (!b || !b->start || b->task != next)
		return;
	tid = b->tid;
	away = bpf_ktime_get_ns() - b->start;
	key.pid = b->pid;
	key.tid = tid;
	key.cpu = cpu;
	key.what = OFF_CPU_COUNT | b->state;
	key.kernel_stack = b->kernel_stack;
	key.user_stack = b->user_stack;
	__builtin_memcpy(key.comm, b->comm, sizeof(key.comm));
	waker_stack = b->waker_stack;
	b->start = 0;
	if (away < min_block_ns) {
		count_drop(SHORT_BLOCKS);
		count_drop_by(SHORT_BLOCKS_NS, away);
		return;
	}
	add_to_count(&key, away);
	if (waker_stack > 1) {
		key.what = WAKER_COUNT | (key.what & 0xff);
		key.user_stack = waker_stack;
		add_to_count(&key, away);
	}
}

/*
 * A raw tracepoint: the program gets the scheduler's own arguments
 * (preempt, prev, next, prev_state), costs no trace record, and has no
 * return value that could hide the event from other perf or BPF users.
 */
SEC("raw_tp/sched_switch")
int off_cpu_switch(__u64 *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id();

	switch_out(ctx, ctx[1], cpu);
	switch_in(ctx[2], cpu);
	return 0;
}

/* Someone (the current task, or an interrupt) wakes a blocked thread. */
SEC("raw_tp/sched_waking")
int off_cpu_waking(__u64 *ctx)
{
	struct blocked *b;

	if (!note_wakers)
		return 0;
	b = slot_of(ctx[0]);
	/* The first waker is the one that ended the wait. */
	if (!b || !b->start || b->task != ctx[0] || b->waker_stack)
		return 0;
	b->waker_stack = save_stack(ctx, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
