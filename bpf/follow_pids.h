/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which processes a timing program measures (-p, or a command netprof runs
 * and the processes it starts), shared by `netprof latency` and `netprof
 * funcgraph`. netprof fills `pids`; follow_fork adds each child of a
 * measured process when children are followed.
 */
#ifndef NETPROF_FOLLOW_PIDS_H
#define NETPROF_FOLLOW_PIDS_H

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} pids SEC(".maps");

const volatile __u8 filter_pids = 0;
/*
 * Where sched_process_fork's child_pid lies in its record (from its tracefs
 * format: it moved between kernels), or 0 when children are not followed.
 */
const volatile __u32 child_pid_offset = 0;

static __always_inline int measured(__u32 tgid)
{
	return !filter_pids || bpf_map_lookup_elem(&pids, &tgid);
}

/*
 * A process being measured forks: its child is measured too (`-- CMD`
 * times the command and everything it starts). Returns 1, so that the
 * kernel still delivers the event to every other user of the tracepoint.
 */
SEC("tracepoint")
int follow_fork(void *ctx)
{
	__u32 parent = bpf_get_current_pid_tgid() >> 32;
	__u32 child = 0;
	__u8 one = 1;

	if (!filter_pids || !child_pid_offset || !bpf_map_lookup_elem(&pids, &parent))
		return 1;
	if (bpf_probe_read_kernel(&child, sizeof(child), (char *)ctx + child_pid_offset))
		return 1;
	bpf_map_update_elem(&pids, &child, &one, BPF_ANY);
	return 1;
}

#endif
