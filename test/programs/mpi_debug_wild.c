/* mpi_debug_wild NROUNDS: wildcard receives whose values depend on the
 * order messages arrive in, for `ckptmpi debug --rank 0` on a live job
 * (test/e2e/debug_mpi_live.sh). Each round every other rank naps a random
 * while and sends rank 0 a value; rank 0 takes them with MPI_ANY_SOURCE in
 * arrival order, folds the senders into `order` and the values into `acc`,
 * and sends `acc` back to each, which prints it. Two plain runs print
 * different orders; a replayed run prints the recorded one. Each rank
 * prints "rank K ..." lines (mpirun merges the ranks' lines in any order:
 * compare them rank by rank). Rank 0 also reads the clock as each
 * message comes (`stamp`, printed by no one): a debugger going back must
 * show the value the clock gave the first time. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* A nap of 0 to 4 ms, drawn anew in every run (only the senders nap:
 * rank 0, the one debugged, has nothing of its pid or the clock). */
static void nap_random(void)
{
	static int seeded;
	struct timespec t;

	if (!seeded) {
			seeded = 1;
	}
	t.tv_sec = 0;
	t.tv_nsec = (long)(rand() % 4000) * 1000L;
	nanosleep(&t, NULL);
}

long stamp; /* the clock at the last message: read by the debugger only */

int main(int argc, char **argv)
{
	int nrounds = argc > 1 ? atoi(argv[1]) : 4;
	int rank, size, round, k, val, src;
	long order = 0, acc = 1;
	MPI_Status st;
	struct timespec now;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	for (round = 1; round <= nrounds; round++) {
		if (rank == 0) {
			for (k = 0; k < size - 1; k++) {
				MPI_Recv(&val, 1, MPI_INT, MPI_ANY_SOURCE, 7, MPI_COMM_WORLD, &st);
				src = st.MPI_SOURCE;
				clock_gettime(CLOCK_REALTIME, &now);
				stamp = now.tv_nsec;
				order = order * 10 + src; /* the breakpoint's line */
				acc = (acc * 31 + val) % 1000003;
			}
			for (k = 1; k < size; k++)
				MPI_Send(&acc, 1, MPI_LONG, k, 8, MPI_COMM_WORLD);
			printf("rank 0 round %d order %ld acc %ld\n", round, order, acc);
		} else {
			nap_random();
			val = rank * 100 + round;
			MPI_Send(&val, 1, MPI_INT, 0, 7, MPI_COMM_WORLD);
			MPI_Recv(&acc, 1, MPI_LONG, 0, 8, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			printf("rank %d round %d acc %ld\n", rank, round, acc);
		}
		fflush(stdout);
	}
	MPI_Finalize();
	return 0;
}
