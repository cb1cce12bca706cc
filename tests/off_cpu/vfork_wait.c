/* A parent in uninterruptible (killable) sleep while its vfork child
 * sleeps 200 ms, N times (argv[1], default 3); between them, the parent
 * sleeps 100 ms interruptibly. */
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 3;
	struct timespec child_nap = { 0, 200 * 1000 * 1000 };
	struct timespec nap = { 0, 100 * 1000 * 1000 };

	for (int i = 0; i < rounds; i++) {
		pid_t child = vfork();

		if (child == 0) {
			/* The parent waits in wait_for_vfork_done() until this exits. */
			nanosleep(&child_nap, NULL);
			_exit(0);
		}
		waitpid(child, NULL, 0);
		nanosleep(&nap, NULL);
	}
	return 0;
}
