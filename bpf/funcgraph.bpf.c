// SPDX-License-Identifier: GPL-2.0
/*
 * Call paths of traced functions and the wall time of each
 * (`netprof funcgraph`), aggregated in the kernel.
 *
 * Each thread has a shadow stack of the traced functions it is inside:
 * the entry probe pushes the function and the time, the return probe pops
 * it and adds the call's wall time to its call path, the chain of traced
 * functions from the thread's outermost traced call down to it. Untraced
 * functions in between do not show: the path skips them. Per path: count,
 * total, self (total minus the traced children's), min, max, calls that
 * returned an errno, and a histogram of total and of self time.
 *
 * A function is its cookie's low 32 bits (an index into netprof's list);
 * bit 32 marks a function under which tracing starts (--under): with
 * such roots, a thread's stack starts only at one.
 *
 * A path is keyed by a 64-bit hash of its functions, built level by level
 * as calls enter (hashing a whole path on every return cost more than the
 * rest of the program); its functions are stored in its value once, when
 * it is first seen. Two paths would share statistics only if their hashes
 * collided: about one chance in 10^11 for 10^4 paths.
 *
 * Entries and returns that do not pair up are counted, not guessed at: a
 * return with no entry (a call begun before the probes were in place), an
 * entry whose return never came (frames above a returning function),
 * calls deeper than the depth limit.
 *
 * With calls kept (--slowest, --errors), every traced call under an
 * outermost one is logged, and the whole log goes to user space through a
 * ring buffer when that call is slow enough (and, with --errors, when a
 * call in it returned an errno).
 *
 * Three ways in: one kprobe.session program (kernel 6.10 and later: one
 * fprobe runs it at entry and at return, where two links would stack two
 * fprobes on every function), a kprobe.multi pair (fprobe without
 * sessions), or a plain kprobe pair (one link per function); netprof loads
 * the one it uses. An entry returns 1 when the call is not traced, which
 * spares a session the call's return. Built with -mcpu=v3: the statistics are shared by all CPUs and
 * updated with atomics (compare-and-exchange for the minimum and maximum).
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "histogram.h"
#include "follow_pids.h"

/* Traced functions one thread can be inside at once (--depth at most). */
#define MAX_DEPTH 32
/* Calls kept of one outermost call (--slowest, --errors). */
#define MAX_LOG 256
#define MAX_ERRNO 4095

struct frame {
	__u64 start_ns;
	__u64 children_ns; /* wall time of its traced children so far */
	__u64 path_id; /* hash of the functions from the outermost to it */
};

struct shadow {
	__u32 depth;
	/* Calls entered past the depth limit and not yet returned. */
	__u32 skipped;
	/* Function + 1 of each level below `depth` (above it: stale). */
	__u32 funcs[MAX_DEPTH];
	struct frame frames[MAX_DEPTH];
};

struct path_stats {
	__u64 count;
	__u64 total_ns;
	__u64 self_ns;
	__u64 min_ns; /* 0: none yet */
	__u64 max_ns;
	__u64 errors; /* calls that returned a negative errno */
	__u32 depth; /* the path's length */
	__u32 unused;
	__u32 funcs[MAX_DEPTH]; /* the path: function + 1 (above depth: stale) */
	__u64 total_buckets[BUCKETS];
	__u64 self_buckets[BUCKETS];
};

struct call_record {
	__u32 func; /* function + 1 */
	__u32 depth; /* 0: the outermost call */
	__u64 start_ns;
	__u64 duration_ns;
	__u64 ret;
};

struct call_log {
	__u32 tid;
	__u32 pid;
	__u32 calls; /* records that follow */
	__u32 truncated; /* calls left out: more than MAX_LOG */
	__u32 errors; /* calls that returned a negative errno */
	__u32 unused;
	char comm[16];
	struct call_record records[MAX_LOG];
};

/*
 * Each thread's stack, by thread id, kept from call to call (LRU: the
 * entries of threads that ended make room for new ones).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct shadow);
} shadows SEC(".maps");

/*
 * Shared by all CPUs (per-CPU copies of values this large would cost too
 * much memory on a big machine) and preallocated: netprof sizes it
 * (--max-paths).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2048);
	__type(key, __u64);
	__type(value, struct path_stats);
} paths SEC(".maps");

/* The calls under each thread's outermost call, when calls are kept. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct call_log);
} logs SEC(".maps");

/* Logs of the calls user space keeps; netprof sizes it. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 4);
} kept SEC(".maps");

/* What could not be timed or kept; src/bpf/funcgraph.rs names each. */
enum counter {
	NO_THREAD_ROOM,
	NO_PATH_ROOM,
	NO_ENTRY,
	NO_RETURN,
	TOO_DEEP,
	LOG_TRUNCATED,
	NO_LOG_ROOM,
	LOG_LOST,
	COUNTERS,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* First values (too large for the BPF stack). */
struct shadow empty_shadow;
struct path_stats empty_stats;
struct call_log empty_log;

/* Calls deeper than this are not timed (--depth). */
const volatile __u32 max_depth = MAX_DEPTH;
/* Stacks start only at root functions (--under). */
const volatile __u8 under_roots = 0;
/* Log every call under an outermost one (--slowest, --errors). */
const volatile __u8 keep_calls = 0;
/* Keep only outermost calls under which a call returned an errno (--errors). */
const volatile __u8 errors_only = 0;

/* The slowest call user space keeps must be at least this slow. */
volatile __u64 keep_threshold_ns = 0;

static __always_inline void count(enum counter which, __u64 n)
{
	__u32 key = which;
	__u64 *value = bpf_map_lookup_elem(&counters, &key);

	if (value)
		*value += n;
}

/*
 * A negative errno, from a function returning a long or an int (whose
 * upper half of the register the compiler leaves zero). Kept in step with
 * errno_of() in src/model/funcgraph.rs.
 */
static __always_inline int is_errno(__u64 ret)
{
	if ((__s64)ret < 0 && (__s64)ret >= -MAX_ERRNO)
		return 1;
	return (ret >> 32) == 0 && (__s32)ret < 0 && (__s32)ret >= -MAX_ERRNO;
}

static __always_inline void atomic_min(__u64 *at, __u64 value)
{
	for (int tries = 0; tries < 4; tries++) {
		__u64 seen = *at;

		if (seen != 0 && seen <= value)
			return;
		if (__sync_val_compare_and_swap(at, seen, value) == seen)
			return;
	}
}

static __always_inline void atomic_max(__u64 *at, __u64 value)
{
	for (int tries = 0; tries < 4; tries++) {
		__u64 seen = *at;

		if (seen >= value)
			return;
		if (__sync_val_compare_and_swap(at, seen, value) == seen)
			return;
	}
}

/* The path of level `level` of `s`. */
static __always_inline void add_to_path(struct shadow *s, __u32 level, __u64 total, __u64 self,
					__u64 ret)
{
	__u64 id = s->frames[at_most(level, MAX_DEPTH - 1)].path_id;
	struct path_stats *p = bpf_map_lookup_elem(&paths, &id);

	if (!p) {
		bpf_map_update_elem(&paths, &id, &empty_stats, BPF_NOEXIST);
		p = bpf_map_lookup_elem(&paths, &id);
		if (!p) {
			count(NO_PATH_ROOM, 1);
			return;
		}
		/* Another CPU may write the same path at once: no harm. */
		__builtin_memcpy(p->funcs, s->funcs, sizeof(p->funcs));
		p->depth = level + 1;
	}
	__sync_fetch_and_add(&p->count, 1);
	__sync_fetch_and_add(&p->total_ns, total);
	__sync_fetch_and_add(&p->self_ns, self);
	if (is_errno(ret))
		__sync_fetch_and_add(&p->errors, 1);
	atomic_min(&p->min_ns, total);
	atomic_max(&p->max_ns, total);
	__sync_fetch_and_add(&p->total_buckets[at_most(bucket_of(total), BUCKETS - 1)], 1);
	__sync_fetch_and_add(&p->self_buckets[at_most(bucket_of(self), BUCKETS - 1)], 1);
}

/* splitmix64's finalizer over the parent's hash and the function. */
static __always_inline __u64 path_hash(__u64 parent, __u32 func)
{
	__u64 h = parent + func * 0x9E3779B97F4A7C15ULL;

	h ^= h >> 30;
	h *= 0xBF58476D1CE4E5B9ULL;
	h ^= h >> 27;
	h *= 0x94D049BB133111EBULL;
	return h ^ (h >> 31);
}

static __always_inline void log_call(__u32 tid, __u32 func, __u32 depth, __u64 start, __u64 ns,
				     __u64 ret)
{
	struct call_log *log = bpf_map_lookup_elem(&logs, &tid);
	struct call_record *r;
	__u32 n;

	if (!log)
		return;
	if (is_errno(ret))
		log->errors += 1;
	n = log->calls;
	if (n >= MAX_LOG) {
		log->truncated += 1;
		count(LOG_TRUNCATED, 1);
	} else {
		r = &log->records[at_most(n, MAX_LOG - 1)];
		r->func = func;
		r->depth = depth;
		r->start_ns = start;
		r->duration_ns = ns;
		r->ret = ret;
		log->calls = n + 1;
	}
	if (depth != 0)
		return;
	/* The outermost call returned: keep its log if user space wants it. */
	if (ns >= keep_threshold_ns && (!errors_only || log->errors)) {
		__u64 size = sizeof(*log) - sizeof(log->records) +
			     at_most(log->calls, MAX_LOG) * sizeof(struct call_record);

		if (bpf_ringbuf_output(&kept, log, at_most(size, sizeof(*log)), 0))
			count(LOG_LOST, 1);
	}
	bpf_map_delete_elem(&logs, &tid);
}

static __always_inline void start_log(__u64 pid_tgid)
{
	__u32 tid = pid_tgid;
	struct call_log *log;

	if (bpf_map_update_elem(&logs, &tid, &empty_log, BPF_ANY)) {
		count(NO_LOG_ROOM, 1);
		return;
	}
	log = bpf_map_lookup_elem(&logs, &tid);
	if (!log)
		return;
	log->tid = tid;
	log->pid = pid_tgid >> 32;
	bpf_get_current_comm(log->comm, sizeof(log->comm));
}

/* 0: the return is wanted; 1: the call is not traced. */
static __always_inline int on_entry(void *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 func = (__u32)cookie + 1;
	int root = cookie >> 32;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = pid_tgid;
	struct shadow *s;
	__u32 d;

	if (!measured(pid_tgid >> 32))
		return 1;
	s = bpf_map_lookup_elem(&shadows, &tid);
	if (!s) {
		if (under_roots && !root)
			return 1;
		if (bpf_map_update_elem(&shadows, &tid, &empty_shadow, BPF_NOEXIST)) {
			count(NO_THREAD_ROOM, 1);
			return 1;
		}
		s = bpf_map_lookup_elem(&shadows, &tid);
		if (!s)
			return 1;
	}
	d = s->depth;
	if (d == 0 && under_roots && !root)
		return 1;
	if (s->skipped || d >= max_depth || d >= MAX_DEPTH) {
		s->skipped += 1;
		count(TOO_DEEP, 1);
		return 0;
	}
	d = at_most(d, MAX_DEPTH - 1);
	s->funcs[d] = func;
	s->frames[d].children_ns = 0;
	s->frames[d].path_id =
		path_hash(d ? s->frames[at_most(d - 1, MAX_DEPTH - 1)].path_id : 0, func);
	s->depth = d + 1;
	if (keep_calls && d == 0)
		start_log(pid_tgid);
	/* Last: the time spent above is not the call's. */
	s->frames[d].start_ns = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int on_return(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 func = (__u32)cookie + 1;
	int root = cookie >> 32;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = pid_tgid;
	struct shadow *s;
	__u64 ns, self, children, start, ret;
	__u32 d, top, level = MAX_DEPTH;

	if (!measured(pid_tgid >> 32))
		return 0;
	s = bpf_map_lookup_elem(&shadows, &tid);
	if (!s || s->depth == 0) {
		/* Not under a root is not a missed entry. */
		if (!under_roots || root)
			count(NO_ENTRY, 1);
		return 0;
	}
	if (s->skipped) {
		s->skipped -= 1;
		return 0;
	}
	d = s->depth;
	top = at_most(d - 1, MAX_DEPTH - 1);
	if (s->funcs[top] == func) {
		level = top;
	} else {
		/* The innermost open call of this function, below the top. */
		for (int i = MAX_DEPTH - 1; i >= 0; i--) {
			if (i < top && s->funcs[i] == func) {
				level = i;
				break;
			}
		}
		if (level == MAX_DEPTH) {
			count(NO_ENTRY, 1);
			return 0;
		}
		/* Calls above it whose returns were never seen: dropped. */
		count(NO_RETURN, top - level);
	}
	/*
	 * Popped now; and read back from the map, `level` is a value the
	 * verifier does not know, not one of the 32 the loop above can give:
	 * followed one by one through what comes next, they made the 6.1
	 * verifier give up (a million instructions).
	 */
	s->depth = level;
	level = at_most(s->depth, MAX_DEPTH - 1);
	start = s->frames[level].start_ns;
	children = s->frames[level].children_ns;
	ns = now - start;
	self = ns > children ? ns - children : 0;
	if (level > 0)
		s->frames[at_most(level - 1, MAX_DEPTH - 1)].children_ns += ns;
	ret = PT_REGS_RC(ctx);
	add_to_path(s, level, ns, self, ret);
	if (keep_calls)
		log_call(tid, func, level, start, ns, ret);
	return 0;
}

extern bool bpf_session_is_return(void) __ksym __weak;

SEC("kprobe.session")
int funcgraph_session(struct pt_regs *ctx)
{
	if (bpf_session_is_return())
		return on_return(ctx);
	return on_entry(ctx);
}

SEC("kprobe.multi")
int funcgraph_entry_multi(struct pt_regs *ctx)
{
	on_entry(ctx);
	return 0;
}

SEC("kretprobe.multi")
int funcgraph_return_multi(struct pt_regs *ctx)
{
	return on_return(ctx);
}

SEC("kprobe")
int funcgraph_entry(struct pt_regs *ctx)
{
	on_entry(ctx);
	return 0;
}

SEC("kretprobe")
int funcgraph_return(struct pt_regs *ctx)
{
	return on_return(ctx);
}

char LICENSE[] SEC("license") = "GPL";
