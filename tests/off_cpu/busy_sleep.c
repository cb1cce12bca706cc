/* 100 ms of busy loop, then 300 ms of nanosleep, N times (argv[1], default 5):
 * a thread a quarter on the CPU and three quarters off it. */
#include <stdlib.h>
#include <time.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	volatile unsigned long spins = 0;

	for (int i = 0; i < rounds; i++) {
		double start = now();
		struct timespec nap = { 0, 300 * 1000 * 1000 };

		while (now() - start < 0.1)
			spins++;
		nanosleep(&nap, NULL);
	}
	return 0;
}
