/* A TCP receiver on loopback blocked in recv() while its sender sleeps
 * 200 ms between bytes, N times (argv[1], default 5). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t len = sizeof(addr);
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	char byte = 'x';

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(listener, 1) || getsockname(listener, (struct sockaddr *)&addr, &len))
		return 1;
	if (fork() == 0) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct timespec nap = { 0, 200 * 1000 * 1000 };

		if (connect(s, (struct sockaddr *)&addr, sizeof(addr)))
			_exit(1);
		for (int i = 0; i < rounds; i++) {
			nanosleep(&nap, NULL);
			if (write(s, &byte, 1) != 1)
				_exit(1);
		}
		_exit(0);
	}
	int conn = accept(listener, NULL, NULL);
	while (read(conn, &byte, 1) == 1)
		;
	wait(NULL);
	return 0;
}
