/* proc_self: keeps its own /proc/self/status open for the whole run (as
 * programs that watch their memory or threads do) and reads it again from
 * the start every step: a restart must reopen the restarted process's own
 * file, not /proc/PID of the process that was checkpointed.
 *
 *   proc_self [NSTEPS=30] [SLEEP_MS=50]
 *
 * Prints, per step, the number of lines and of "Threads:" fields read
 * (the same in every process of this program on one machine). */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv)
{
	int nsteps = argc > 1 ? atoi(argv[1]) : 30;
	long ms = argc > 2 ? atol(argv[2]) : 50;
	int fd = open("/proc/self/status", O_RDONLY);
	uint64_t h = 7;

	if (fd < 0) {
		perror("proc_self: /proc/self/status");
		return 1;
	}
	for (int i = 1; i <= nsteps; i++) {
		static char buf[65536];
		ssize_t n, len = 0;
		int lines = 0, threads = 0;

		if (lseek(fd, 0, SEEK_SET) < 0) {
			perror("proc_self: lseek");
			return 1;
		}
		while ((n = read(fd, buf + len, sizeof buf - 1 - (size_t)len)) > 0)
			len += n;
		if (n < 0) {
			perror("proc_self: read");
			return 1;
		}
		buf[len] = 0;
		for (char *p = buf; *p; p++)
			lines += *p == '\n';
		for (char *p = buf; (p = strstr(p, "\nThreads:")); p++)
			threads++;
		h = mix64(mix64(h, (uint64_t)lines), (uint64_t)threads);
		printf("%d lines=%d threads-fields=%d h=%016llx\n", i, lines, threads,
		       (unsigned long long)h);
		fflush(stdout);
		pace_ms(ms);
	}
	hold_before_final();
	printf("%d final checksum=%016llx\n", nsteps + 1, (unsigned long long)h);
	return 0;
}
