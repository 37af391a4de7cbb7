/* mpi_bisect NSTEPS K [SLEEP_MS]: a planted bug in an MPI job, for
 * `ckptmpi bisect --rank/--any-rank` and `ckptmpi debug --restart --rank`
 * (test/e2e/debug_mpi.sh). Every rank runs NSTEPS steps of an allreduce
 * and a nap; at step K rank 1 (only) sets `bad`. `bad` is set before
 * `at_step` is advanced, so in any image at_step >= K on rank 1 means
 * bad != 0 and at_step < K means bad == 0, wherever the checkpoint
 * stopped the rank. (Not `step`: libc has a function of that name.)
 * Rank 0 prints "N bad ranks B" as step N ends (B: how many are bad). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

volatile int at_step; /* the step under way (1..NSTEPS) */
volatile int bad;     /* the planted bug: rank 1 from step K on */
volatile int me;      /* this rank: which slice a debugger reads */

int main(int argc, char **argv)
{
	int nsteps = argc > 1 ? atoi(argv[1]) : 40;
	int k = argc > 2 ? atoi(argv[2]) : 20;
	int ms = argc > 3 ? atoi(argv[3]) : 100;
	int rank, sum;
	struct timespec nap = {ms / 1000, (ms % 1000) * 1000000L};

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	me = rank;
	for (int s = 1; s <= nsteps; s++) {
		if (rank == 1 && s == k)
			bad = 1;
		at_step = s;
		MPI_Allreduce((const void *)&bad, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
		nanosleep(&nap, NULL);
		if (rank == 0) {
			printf("%d bad ranks %d\n", s, sum);
			fflush(stdout);
		}
	}
	MPI_Finalize();
	return 0;
}
