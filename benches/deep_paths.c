/* The worst shape for a call tree: nearly every sample on a call path of its
 * own. Sixteen functions call one another at random, 24 deep, and burn a
 * little CPU at the bottom, for argv[1] seconds (default 10). Built with frame
 * pointers so that every user frame unwinds. */
#include <stdlib.h>
#include <time.h>

static volatile unsigned long sink;
typedef void (*step_fn)(int depth);
static step_fn steps[16];

static void next(int depth)
{
	if (depth == 0) {
		for (int i = 0; i < 20000; i++)
			sink += i;
		return;
	}
	steps[rand() % 16](depth - 1);
}

#define STEP(n) \
	__attribute__((noinline)) static void step##n(int depth) { next(depth); sink++; }
STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)
STEP(8) STEP(9) STEP(10) STEP(11) STEP(12) STEP(13) STEP(14) STEP(15)

int main(int argc, char **argv)
{
	step_fn all[16] = { step0, step1, step2, step3, step4, step5, step6, step7,
			    step8, step9, step10, step11, step12, step13, step14, step15 };
	double seconds = argc > 1 ? atof(argv[1]) : 10;
	struct timespec start, now;

	for (int i = 0; i < 16; i++)
		steps[i] = all[i];
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		next(24);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - start.tv_sec + (now.tv_nsec - start.tv_nsec) / 1e9 < seconds);
	return 0;
}
