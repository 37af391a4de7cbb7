/* socket_user: holds a socketpair open the whole time, which ckptmpi does
 * not support yet: a checkpoint must be refused and the run go on.
 *
 *   socket_user [NSTEPS=30] [SLEEP_MS=50] */
#include <sys/socket.h>
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
	for (int i = 1; i <= nsteps; i++) {
		char c = (char)i, d = 0;
		if (write(sv[0], &c, 1) != 1 || read(sv[1], &d, 1) != 1)
			return 1;
		h = mix64(h, (uint64_t)d);
		printf("%d h=%016llx\n", i, (unsigned long long)h);
		fflush(stdout);
		pace_ms(ms);
	}
	printf("%d final checksum=%016llx\n", nsteps + 1, (unsigned long long)h);
	return 0;
}
