// SPDX-License-Identifier: GPL-2.0
/*
 * netprof's own test module: a known call chain and a known busy delay,
 * triggered from user space, so that probes, stacks and latencies measured
 * in the guest kernel can be checked against exact expectations.
 *
 *   echo N > /proc/netprof_test     calls outer -> middle -> inner N times
 *   echo dN > /proc/netprof_test    calls netprof_test_delay (busy delay_us, 200 us) N times
 *   echo wN > /proc/netprof_test    calls netprof_test_work N times: a fixed computation,
 *                                   half in netprof_test_work, half in netprof_test_spin
 *   echo sN > /proc/netprof_test    calls netprof_test_slow N times: inner, then the delay
 *                                   (a parent whose time is its child's)
 *   echo eN > /proc/netprof_test    calls netprof_test_parse(i) for i < N: it calls
 *                                   netprof_test_validate, which returns -EINVAL for odd i,
 *                                   and passes the error up
 *   echo rN > /proc/netprof_test    calls netprof_test_recurse(3) N times: four nested
 *                                   calls of itself, the last one calling inner
 *   echo mN > /proc/netprof_test    calls netprof_test_nap N times: msleep(20), a wait
 *                                   off the CPU in uninterruptible sleep (state D)
 *   echo 400 > /sys/module/netprof_test/parameters/delay_us   changes the delay
 *   cat /proc/netprof_test          "calls inner=<count> delay=<count>"
 *
 * The functions are global and noinline, and their results are used, so the
 * compiler keeps each one as a real function with its own kallsyms entry.
 */
#include <linux/atomic.h>
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>

/* A known change to measure: the delay can be set at load or at run time. */
static unsigned int delay_us = 200;
module_param(delay_us, uint, 0644);
MODULE_PARM_DESC(delay_us, "busy delay of netprof_test_delay, in microseconds (at most 10000)");

static atomic64_t inner_calls = ATOMIC64_INIT(0);
static atomic64_t delay_calls = ATOMIC64_INIT(0);

int netprof_test_inner(int x);
int netprof_test_middle(int x);
int netprof_test_outer(int x);
int netprof_test_delay(int x);
u64 netprof_test_spin(u64 x);
u64 netprof_test_work(u64 x);
int netprof_test_slow(int x);
int netprof_test_validate(int x);
int netprof_test_parse(int x);
int netprof_test_recurse(int n);
int netprof_test_nap(int x);

noinline int netprof_test_inner(int x)
{
	atomic64_inc(&inner_calls);
	return x * 3 + 1;
}
EXPORT_SYMBOL_GPL(netprof_test_inner);

noinline int netprof_test_middle(int x)
{
	return netprof_test_inner(x + 1) + 2;
}
EXPORT_SYMBOL_GPL(netprof_test_middle);

noinline int netprof_test_outer(int x)
{
	return netprof_test_middle(x * 2) + 3;
}
EXPORT_SYMBOL_GPL(netprof_test_outer);

noinline int netprof_test_delay(int x)
{
	u64 end;

	atomic64_inc(&delay_calls);
	/*
	 * Busy until the kernel's clock says so, not udelay: under emulation a
	 * 6.1 guest finds its TSCs unsynchronized and udelay's 200 us take
	 * anywhere from 2 to 200 us, while the clock (HPET there) keeps time.
	 */
	end = ktime_get_ns() + (u64)min(READ_ONCE(delay_us), 10000U) * NSEC_PER_USEC;
	while (ktime_get_ns() < end)
		cpu_relax();
	return x + 1;
}
EXPORT_SYMBOL_GPL(netprof_test_delay);

/*
 * The same instructions on any kernel, touching nothing of the kernel's:
 * the share of time each of these two takes is a property of the module
 * alone, which a comparison of two kernels must find unchanged.
 */
#define WORK_STEPS 200000

static __always_inline u64 lcg_steps(u64 x)
{
	int i;

	for (i = 0; i < WORK_STEPS; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		/* Keeps the compiler from folding or vectorizing the loop. */
		asm volatile("" : "+r"(x));
	}
	return x;
}

noinline u64 netprof_test_spin(u64 x)
{
	return lcg_steps(x);
}
EXPORT_SYMBOL_GPL(netprof_test_spin);

noinline u64 netprof_test_work(u64 x)
{
	return netprof_test_spin(lcg_steps(x));
}
EXPORT_SYMBOL_GPL(netprof_test_work);

noinline int netprof_test_slow(int x)
{
	return netprof_test_inner(x) + netprof_test_delay(x);
}
EXPORT_SYMBOL_GPL(netprof_test_slow);

noinline int netprof_test_validate(int x)
{
	return (x & 1) ? -EINVAL : 0;
}
EXPORT_SYMBOL_GPL(netprof_test_validate);

/* An error made deep down and passed up, as a parser's would be. */
noinline int netprof_test_parse(int x)
{
	int err = netprof_test_validate(x);

	if (err)
		return err;
	return x;
}
EXPORT_SYMBOL_GPL(netprof_test_parse);

noinline int netprof_test_recurse(int n)
{
	int r;

	if (n == 0)
		return netprof_test_inner(n);
	r = netprof_test_recurse(n - 1);
	/* Opaque to the compiler: no turning the recursion into a loop. */
	asm volatile("" : "+r"(r));
	return r + n;
}
EXPORT_SYMBOL_GPL(netprof_test_recurse);

/* Off the CPU for 20 ms, in the module's own frame: where a thread waits. */
noinline int netprof_test_nap(int x)
{
	msleep(20);
	/* Work after the sleep: no tail call, the frame stays on the stack. */
	asm volatile("" : "+r"(x));
	return x + 1;
}
EXPORT_SYMBOL_GPL(netprof_test_nap);

static ssize_t netprof_test_write(struct file *file, const char __user *ubuf,
				  size_t len, loff_t *off)
{
	char buf[24] = {};
	char mode = 0;
	unsigned long n, i;
	long sink = 0;
	char *p = buf;

	if (len >= sizeof(buf) || copy_from_user(buf, ubuf, len))
		return -EINVAL;
	if (*p && strchr("dwserm", *p))
		mode = *p++;
	if (kstrtoul(strim(p), 10, &n) || n > 1000000)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (mode == 'd')
			sink += netprof_test_delay(i);
		else if (mode == 'w')
			sink += netprof_test_work(i);
		else if (mode == 's')
			sink += netprof_test_slow(i);
		else if (mode == 'e')
			sink += netprof_test_parse(i);
		else if (mode == 'r')
			sink += netprof_test_recurse(3);
		else if (mode == 'm')
			sink += netprof_test_nap(i);
		else
			sink += netprof_test_outer(i);
	}
	/* Keep the calls' results alive. */
	if (sink == LONG_MIN)
		pr_info("netprof_test: %ld\n", sink);
	return len;
}

static int netprof_test_show(struct seq_file *m, void *v)
{
	seq_printf(m, "calls inner=%lld delay=%lld\n",
		   atomic64_read(&inner_calls), atomic64_read(&delay_calls));
	return 0;
}

static int netprof_test_open(struct inode *inode, struct file *file)
{
	return single_open(file, netprof_test_show, NULL);
}

static const struct proc_ops netprof_test_ops = {
	.proc_open = netprof_test_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
	.proc_write = netprof_test_write,
};

static int __init netprof_test_init(void)
{
	if (!proc_create("netprof_test", 0600, NULL, &netprof_test_ops))
		return -ENOMEM;
	return 0;
}

static void __exit netprof_test_exit(void)
{
	remove_proc_entry("netprof_test", NULL);
}

module_init(netprof_test_init);
module_exit(netprof_test_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("netprof test module: known call chain and busy delay");
