/* Three functions that burn the CPU in the proportions given on the command
 * line (`spin A B C`, in rounds of A, B and C million iterations, 10 rounds):
 * a workload whose profile a test shifts on purpose. */
#include <stdlib.h>

static volatile unsigned long sink;

#define WORK(name)                                              \
	__attribute__((noinline)) static void name(long millions) \
	{                                                       \
		for (long i = 0; i < millions * 1000000; i++)   \
			sink += i;                              \
	}

WORK(work_a)
WORK(work_b)
WORK(work_c)

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	for (int round = 0; round < 10; round++) {
		work_a(atol(argv[1]));
		work_b(atol(argv[2]));
		work_c(atol(argv[3]));
	}
	return 0;
}
