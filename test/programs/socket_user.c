/* socket_user: holds something ckptmpi does not support yet for the whole
 * run, so a checkpoint must be refused and the run go on:
 *   socket        a socketpair
 *   sigev_thread  a SIGEV_THREAD timer (glibc's helper thread blocks every
 *                 signal)
 *
 *   socket_user [NSTEPS=30] [SLEEP_MS=50] [socket|sigev_thread] */
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv)
{
	int nsteps = argc > 1 ? atoi(argv[1]) : 30;
	long ms = argc > 2 ? atol(argv[2]) : 50;
	int sv[2];
	uint64_t h = 7;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return 1;
	if (argc > 3 && !strcmp(argv[3], "sigev_thread")) {
		struct sigevent sev;
		struct itimerspec its = {{3600, 0}, {3600, 0}};
		timer_t t;
		close(sv[0]);
		close(sv[1]);
		sv[0] = -1;
		memset(&sev, 0, sizeof sev);
		sev.sigev_notify = SIGEV_THREAD;
		sev.sigev_notify_function = (void (*)(union sigval))abort;
		if (timer_create(CLOCK_MONOTONIC, &sev, &t) || timer_settime(t, 0, &its, NULL))
			return 1;
	}
	for (int i = 1; i <= nsteps; i++) {
		char c = (char)i, d = 0;
		if (sv[0] < 0)
			d = c;
		else if (write(sv[0], &c, 1) != 1 || read(sv[1], &d, 1) != 1)
			return 1;
		h = mix64(h, (uint64_t)d);
		printf("%d h=%016llx\n", i, (unsigned long long)h);
		fflush(stdout);
		pace_ms(ms);
	}
	hold_before_final();
	printf("%d final checksum=%016llx\n", nsteps + 1, (unsigned long long)h);
	return 0;
}
