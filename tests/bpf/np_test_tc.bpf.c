// SPDX-License-Identifier: GPL-2.0
/*
 * The tests' own tc program: lets every packet through. Attached with
 * `tc filter ... bpf`, the classic cls_bpf way, which makes no BPF link.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#define SEC(name) __attribute__((section(name), used))

SEC("tc")
int np_test_tc(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
