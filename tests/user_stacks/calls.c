/*
 * A call chain for user-stack tests: main -> outer (a direct call) ->
 * middle (through a function pointer: an indirect call) -> leaf, which
 * spins for the seconds given (default 1). Built with frame pointers, every
 * frame of the chain is a real return address.
 */
#include <stdlib.h>
#include <time.h>

static double seconds_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

__attribute__((noinline)) static unsigned long leaf(double seconds)
{
	volatile unsigned long x = 0;
	double end = seconds_now() + seconds;

	while (seconds_now() < end)
		for (int i = 0; i < 100000; i++)
			x += i;
	return x;
}

__attribute__((noinline)) static unsigned long middle(double seconds)
{
	return leaf(seconds) + 1;
}

/* volatile: the compiler cannot turn the call into a direct one. */
static unsigned long (*volatile middle_pointer)(double) = middle;

__attribute__((noinline)) static unsigned long outer(double seconds)
{
	return middle_pointer(seconds) + 1;
}

int main(int argc, char **argv)
{
	return outer(argc > 1 ? atof(argv[1]) : 1.0) == 0;
}
