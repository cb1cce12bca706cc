/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The log-linear histogram of call times shared by `netprof latency` and
 * `netprof funcgraph`: exact below 32 ns, then 16 buckets per power of two,
 * so a bucket is at most 1/16 (6.25%) of its value wide, fine enough for
 * medians and quartiles. Kept in step with bucket_bounds() in
 * src/model/latency.rs.
 */
#ifndef NETPROF_HISTOGRAM_H
#define NETPROF_HISTOGRAM_H

/* Up to 2^40 ns (18 minutes); longer calls land in the last bucket. */
#define MAX_EXPONENT 39
#define BUCKETS ((MAX_EXPONENT - 3) * 16 + 16)

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

static __always_inline __u64 bucket_of(__u64 ns)
{
	__u64 e;

	if (ns < 16)
		return ns;
	e = log2_u64(ns);
	if (e > MAX_EXPONENT)
		return BUCKETS - 1;
	return (e - 3) * 16 + ((ns >> (e - 4)) & 15);
}

/*
 * `index`, at most `max`, in the very register that then indexes an array.
 * Written in C, clang may test a copy of the index and use another: the
 * 6.1 verifier then loses the bound ("R0 unbounded memory access"), where
 * later ones follow it.
 */
static __always_inline __u64 at_most(__u64 index, const __u64 max)
{
	asm volatile("if %[i] <= %[m] goto +1; %[i] = %[m]" : [i] "+r"(index) : [m] "i"(max));
	return index;
}

#endif
