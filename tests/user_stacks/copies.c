/*
 * Copies a 4 MiB buffer back and forth for the seconds given (default 1):
 * the time goes to the C library's memcpy, whose code is one of several
 * implementations picked at load time (__memmove_avx_unaligned_erms, ...),
 * named by the library's full symbol table, which only its debug file has.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIZE (4 << 20)

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 1;
	char *a = calloc(1, SIZE), *b = calloc(1, SIZE);
	struct timespec t;
	double end;
	volatile char sink = 0;

	if (!a || !b)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t);
	end = t.tv_sec + t.tv_nsec / 1e9 + seconds;
	do {
		for (int i = 0; i < 64; i++) {
			memcpy(b, a, SIZE);
			b[i]++;
			memcpy(a, b, SIZE);
			sink += a[i];
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec + t.tv_nsec / 1e9 < end);
	return sink;
}
