/* An MPI application as a user builds it against an installed ckptmpi
 * (test/e2e/cli_install.sh): with `pkg-config ckptmpi-FLAVOUR` or CMake's
 * find_package(ckptmpi), or natively without it.  Usage: app STEPS MS.
 * Each step an Allreduce of values that depend on the step; rank 0
 * prints "STEP sum=S" (the step lines the e2e library merges), then
 * "STEPS final". */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	int steps = argc > 1 ? atoi(argv[1]) : 20, rank;
	long ms = argc > 2 ? atol(argv[2]) : 0;
	unsigned long long acc = 1;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	for (int s = 0; s < steps; s++) {
		unsigned long long mine = acc * 31u + (unsigned)(rank + 1) * (unsigned)(s + 7), sum = 0;
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

		MPI_Allreduce(&mine, &sum, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
		acc = sum;
		if (rank == 0) {
			printf("%d sum=%016llx\n", s, acc);
			fflush(stdout);
		}
		nanosleep(&ts, NULL);
	}
	if (rank == 0)
		printf("%d final\n", steps);
	MPI_Finalize();
	return 0;
}
