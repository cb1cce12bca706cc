/*
 * Many call paths that recur: in each of ROUNDS rounds, path p (0 <= p <
 * PATHS) descends ten levels through left() or right() as p's bits say,
 * then calls getppid(). Each path is its own user stack, hit once a round;
 * PER_SECOND calls a second at most, so that a recorder polling its maps
 * every quarter second keeps up. Usage: paths PATHS ROUNDS PER_SECOND
 */
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define LEVELS 10

static long descend(unsigned path, int level);

/* The additions after each call keep the compiler from making tail calls. */
__attribute__((noinline)) static long left(unsigned path, int level)
{
	return descend(path, level) + 1;
}

__attribute__((noinline)) static long right(unsigned path, int level)
{
	return descend(path, level) + 2;
}

__attribute__((noinline)) static long descend(unsigned path, int level)
{
	if (level == LEVELS)
		return getppid();
	if (path & 1)
		return right(path >> 1, level + 1) + 3;
	return left(path >> 1, level + 1) + 4;
}

int main(int argc, char **argv)
{
	unsigned paths = argc > 1 ? atoi(argv[1]) : 768;
	int rounds = argc > 2 ? atoi(argv[2]) : 3;
	long per_second = argc > 3 ? atol(argv[3]) : 500;
	/* Sleep after every 16 calls for as long as 16 calls may take. */
	struct timespec pause = { 0, 16 * (1000000000L / per_second) };
	volatile long sink = 0;

	for (int r = 0; r < rounds; r++)
		for (unsigned p = 0; p < paths; p++) {
			sink += descend(p, 0);
			if (p % 16 == 15)
				nanosleep(&pause, NULL);
		}
	return sink == 0;
}
