/* A reader blocked on a pipe, woken by a writer that sleeps 50 ms before
 * each byte, N times (argv[1], default 10). */
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 10;
	int fds[2];
	char byte = 'x';

	if (pipe(fds))
		return 1;
	if (fork() == 0) {
		struct timespec nap = { 0, 50 * 1000 * 1000 };

		for (int i = 0; i < rounds; i++) {
			nanosleep(&nap, NULL);
			if (write(fds[1], &byte, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	close(fds[1]);
	while (read(fds[0], &byte, 1) == 1)
		;
	wait(NULL);
	return 0;
}
