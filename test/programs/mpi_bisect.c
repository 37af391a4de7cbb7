/* mpi_bisect NSTEPS K [SLEEP_MS]: a NaN born in one rank of an MPI
 * stencil, for `ckptmpi bisect --rank/--any-rank` and `ckptmpi debug
 * --restart --rank` (test/e2e/debug_mpi.sh).
 *
 * Every rank holds CELLS cells of a 1-D heat equation on a ring of ranks
 * and relaxes them NSTEPS times. Each step sends its edge cells to both
 * neighbours and takes their halos with MPI_ANY_SOURCE receives (tagged
 * with the step), placed by the sender the status names: the order the
 * messages come in is the network's. At step K rank 1 (only) runs into
 * the planted bug, a 0/0 that makes cell HOT a NaN; the stencil spreads
 * it one cell per step, to the neighbouring ranks after a few steps.
 * The NaN is made before `at_step` is advanced to K, so in any image of
 * rank 1, at_step >= K means grid[HOT] is a NaN and at_step < K that it
 * is not, wherever the checkpoint stopped the rank. (Not `step`: libc
 * has a function of that name.) Rank 0 prints "N bad ranks B" as step N
 * ends, B the number of ranks whose cells hold a NaN. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "hold_end.h"

#define CELLS 16
#define HOT 5

volatile int at_step; /* the step under way (1..NSTEPS) */
volatile int me;      /* this rank: which slice a debugger reads */
double *grid;         /* cells 1..CELLS; 0 and CELLS+1 are the halos */

static int holds_nan(void)
{
	for (int i = 1; i <= CELLS; i++)
		if (grid[i] != grid[i])
			return 1;
	return 0;
}

static void relax(int s, int rank, int size)
{
	int left = (rank + size - 1) % size, right = (rank + 1) % size;
	double next[CELLS + 2], in[2];
	MPI_Request rq[4];
	MPI_Status st[4];

	MPI_Irecv(&in[0], 1, MPI_DOUBLE, MPI_ANY_SOURCE, s, MPI_COMM_WORLD, &rq[0]);
	MPI_Irecv(&in[1], 1, MPI_DOUBLE, MPI_ANY_SOURCE, s, MPI_COMM_WORLD, &rq[1]);
	MPI_Isend(&grid[1], 1, MPI_DOUBLE, left, s, MPI_COMM_WORLD, &rq[2]);
	MPI_Isend(&grid[CELLS], 1, MPI_DOUBLE, right, s, MPI_COMM_WORLD, &rq[3]);
	MPI_Waitall(2, rq, st);
	MPI_Waitall(2, rq + 2, st + 2);
	for (int k = 0; k < 2; k++) /* the left one's edge is our cell 0 */
		grid[st[k].MPI_SOURCE == left ? 0 : CELLS + 1] = in[k];
	for (int i = 1; i <= CELLS; i++)
		next[i] = grid[i] + 0.25 * (grid[i - 1] - 2 * grid[i] + grid[i + 1]);
	for (int i = 1; i <= CELLS; i++)
		grid[i] = next[i];
}

int main(int argc, char **argv)
{
	int nsteps = argc > 1 ? atoi(argv[1]) : 40;
	int k = argc > 2 ? atoi(argv[2]) : 20;
	int ms = argc > 3 ? atoi(argv[3]) : 100;
	int rank, size, bad, sum;
	struct timespec nap = {ms / 1000, (ms % 1000) * 1000000L};

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	me = rank;
	grid = calloc(CELLS + 2, sizeof *grid);
	for (int i = 1; i <= CELLS; i++)
		grid[i] = rank * CELLS + i;
	for (int s = 1; s <= nsteps; s++) {
		if (rank == 1 && s == k) {
			double d = grid[HOT] - grid[HOT];
			grid[HOT] = d / d; /* the planted bug */
		}
		at_step = s;
		relax(s, rank, size);
		bad = holds_nan();
		MPI_Allreduce(&bad, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
		nanosleep(&nap, NULL);
		if (rank == 0) {
			printf("%d bad ranks %d\n", s, sum);
			fflush(stdout);
		}
	}
	hold_before_final(); /* every rank, out of MPI: the test's last request lands */
	MPI_Finalize();
	return 0;
}
