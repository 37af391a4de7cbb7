/* term_self N K M: prints steps 1..N on stdout, one line each; at step K,
 * every signal but SIGTERM blocked, it takes a SIGTERM on its own thread
 * (raise: the handler has run when raise returns), as a time limit would
 * arrive, and then prints M lines 10 ms apart, "K.j" on stdout and "K.j
 * err" on stderr, before it unblocks the rest: lines written after the
 * SIGTERM and before anything can stop the thread (a checkpoint's park
 * waits for its signal to be unblocked; blocked only after the raise, a
 * fast park could stop the thread in between).
 * Natively the SIGTERM ends it at step K; under ckptmpi the job
 * checkpoints after the M lines and exits, and a restart finishes it.
 * term_self N K M udp: with a UDP socket open, which a checkpoint refuses
 * (the job then exits without one). */
#include <signal.h>
#include <string.h>
#include <sys/socket.h>

#include "common.h"

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 40, k = argc > 2 ? atoi(argv[2]) : 10;
	int m = argc > 3 ? atoi(argv[3]) : 20;
	sigset_t all, old;

	if (argc > 4 && !strcmp(argv[4], "udp") && socket(AF_INET, SOCK_DGRAM, 0) < 0) {
		perror("socket");
		return 1;
	}

	for (int i = 1; i <= n; i++) {
		printf("%d step\n", i);
		fflush(stdout);
		if (i == k) {
			sigfillset(&all);
			sigdelset(&all, SIGTERM);
			sigprocmask(SIG_BLOCK, &all, &old);
			raise(SIGTERM);
			for (int j = 1; j <= m; j++) {
				printf("%d.%d after the SIGTERM\n", i, j);
				fflush(stdout);
				fprintf(stderr, "%d.%d err\n", i, j);
				pace_ms(10);
			}
			sigprocmask(SIG_SETMASK, &old, NULL);
		}
		pace_ms(5);
	}
	hold_before_final();
	printf("%d final\n", n + 1);
	return 0;
}
