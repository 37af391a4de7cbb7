/* api_checkpoint: calls ckptmpi_checkpoint() (ckptmpi.h) at step K.
 *
 *   api_checkpoint [NSTEPS=20] [SLEEP_MS=20] [K=8]
 *
 * Line K reads "K checkpoint=resumed" in the run that took the checkpoint,
 * "K checkpoint=restarted" when a restart of it resumes there, and
 * "K checkpoint=unavailable" without ckptmpi. */
#include <ckptmpi.h>
#include <errno.h>
#include <string.h>

#include "common.h"

int main(int argc, char **argv)
{
	int nsteps = argc > 1 ? atoi(argv[1]) : 20;
	long ms = argc > 2 ? atol(argv[2]) : 20;
	int k = argc > 3 ? atoi(argv[3]) : 8;
	uint64_t h = 0x12345;
	volatile double acc = 1.0;

	for (int i = 1; i <= nsteps; i++) {
		h = mix64(h, (uint64_t)i * 7919u);
		acc = acc * 1.0001 + (double)(h & 0xff);
		if (i == k) {
			int r = ckptmpi_checkpoint();
			printf("%d checkpoint=%s\n", i,
			       r == CKPTMPI_RESUMED ? "resumed" :
			       r == CKPTMPI_RESTARTED ? "restarted" :
			       errno == ENOSYS ? "unavailable" : strerror(errno));
		} else {
			printf("%d h=%016llx acc=%.6f\n", i, (unsigned long long)h, acc);
		}
		fflush(stdout);
		pace_ms(ms);
	}
	hold_before_final();
	printf("%d final checksum=%016llx\n", nsteps + 1, (unsigned long long)mix64(h, (uint64_t)acc));
	return 0;
}
