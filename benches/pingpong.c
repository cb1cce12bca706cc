/* A context-switch-heavy load: two processes pass a byte back and forth
 * through two pipes for SECONDS (argv[1], default 5); prints round trips
 * per second. Each round trip is two sleeps and two wake-ups. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 5, start;
	int ping[2], pong[2];
	unsigned long trips = 0;
	char byte = 'x';
	pid_t child;

	if (pipe(ping) || pipe(pong))
		return 1;
	child = fork();
	if (child == 0) {
		/* Its own copy of the write end would keep its reads from ever ending. */
		close(ping[1]);
		close(pong[0]);
		while (read(ping[0], &byte, 1) == 1)
			if (write(pong[1], &byte, 1) != 1)
				_exit(1);
		_exit(0);
	}
	close(ping[0]);
	close(pong[1]);
	start = now();
	while (now() - start < seconds) {
		if (write(ping[1], &byte, 1) != 1 || read(pong[0], &byte, 1) != 1)
			return 1;
		trips++;
	}
	close(ping[1]);
	waitpid(child, NULL, 0);
	printf("%.0f\n", trips / (now() - start));
	return 0;
}
