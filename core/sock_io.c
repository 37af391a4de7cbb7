/* Whole messages over stream sockets (sock_io.h). */
#include "core/sock_io.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

double sock_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int sock_send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int sock_recv_all(int fd, void *p, size_t n, double deadline)
{
	char *c = p;
	while (n) {
		struct pollfd q = {fd, POLLIN, 0};
		int ms = -1, r;
		ssize_t got;

		if (deadline) {
			double left = deadline - sock_now();
			if (left <= 0)
				return -2;
			ms = (int)(left * 1000) + 1;
		}
		r = poll(&q, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			continue;
		got = recv(fd, c, n, 0);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got <= 0)
			return -1;
		c += got;
		n -= (size_t)got;
	}
	return 0;
}
