/* mpi_cut_progress: what a rank the cut has settled must still do for the
 * others.
 *
 *   mpi_cut_progress [NITER=3] [SLEEP_MS=1000]        (3 or more ranks)
 *
 * Each iteration has two phases, lines 2*IT-1 and 2*IT. In each, after a
 * barrier, rank 0 prints the line and enters at once an MPI_Allreduce on
 * the communicator of ranks 0 and 2, which rank 2 can enter only after a
 * message from rank 1, and rank 1 computes SLEEP_MS (no MPI call):
 *  - odd lines: rank 1 posted a receive before computing; rank 2 sends to
 *    it with MPI_Ssend, which completes once rank 1's MPI has matched it
 *    (MPI progress on rank 1);
 *  - even lines: rank 1 sends after computing; rank 2 receives (a
 *    point-to-point dependency on rank 1's program).
 * Natively rank 2 just waits out rank 1's computing. A checkpoint asked
 * for just after a line finds rank 0 inside the Allreduce, rank 2 bound to
 * follow it there (the cut's target for that communicator) and rank 1
 * with no collective to reach: settled. Parked at once, it left rank 2
 * waiting and the cut timed out; the cut now lets a settled rank run on
 * until every rank is settled, and drives MPI on parked ranks
 * (pmpi/lower_cut.c; test/e2e/mpi_ckpt_cut_*.sh). Other ranks only take
 * the barriers. Rank 0 prints, as ckpt_common.h says, lines computed from
 * what went through MPI. */
#include "ckpt_common.h"

int main(int argc, char **argv)
{
	int niter, rank, size;
	long ms;
	uint64_t h = 0, got = 0;
	MPI_Comm pair;

	parse_args(argc, argv, &niter, &ms, 3, 1000);
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	CHECK(size >= 3, "needs at least 3 ranks");
	/* ranks 0 and 2 */
	MPI_OK(MPI_Comm_split(MPI_COMM_WORLD, rank == 0 || rank == 2 ? 0 : MPI_UNDEFINED, rank,
	                      &pair));
	if (rank == 0) {
		printf("0 mpi_cut_progress np=%d niter=%d\n", size, niter);
		fflush(stdout);
	}
	for (int step = 1; step <= 2 * niter; step++) {
		int64_t v = rank * 1000 + step, s = 0, in = 0;
		MPI_OK(MPI_Barrier(MPI_COMM_WORLD));
		if (rank == 1) {
			if (step % 2) { /* a receive MPI must match while rank 1 computes */
				MPI_Request rq;
				MPI_OK(MPI_Irecv(&in, 1, MPI_INT64_T, 2, step, MPI_COMM_WORLD, &rq));
				sleep_ms(ms);
				MPI_OK(MPI_Wait(&rq, MPI_STATUS_IGNORE));
				CHECK(in == 2000 + step, "received %lld, expected %d", (long long)in,
				      2000 + step);
				got = mix(got, (uint64_t)in);
			} else { /* a message sent after computing */
				sleep_ms(ms);
				MPI_OK(MPI_Send(&v, 1, MPI_INT64_T, 2, step, MPI_COMM_WORLD));
			}
		} else if (rank == 2) {
			if (step % 2) {
				sleep_ms(ms / 10 < 100 ? ms / 10 : 100); /* (the receive first) */
				MPI_OK(MPI_Ssend(&v, 1, MPI_INT64_T, 1, step, MPI_COMM_WORLD));
			} else {
				MPI_OK(MPI_Recv(&in, 1, MPI_INT64_T, 1, step, MPI_COMM_WORLD,
				                MPI_STATUS_IGNORE));
				CHECK(in == 1000 + step, "received %lld, expected %d", (long long)in,
				      1000 + step);
				got = mix(got, (uint64_t)in);
			}
			MPI_OK(MPI_Allreduce(&v, &s, 1, MPI_INT64_T, MPI_SUM, pair));
		} else if (rank == 0) {
			printf("%d h=%016llx\n", step, (unsigned long long)h);
			fflush(stdout);
			MPI_OK(MPI_Allreduce(&v, &s, 1, MPI_INT64_T, MPI_SUM, pair));
			h = mix(h, (uint64_t)s);
		}
	}
	h = mix(h, gather_fold(got, MPI_COMM_WORLD));
	hold_before_final(); /* every rank: none waits in MPI meanwhile */
	if (rank == 0) {
		printf("%d final %016llx\n", 2 * niter + 1, (unsigned long long)h);
		fflush(stdout);
	}
	if (pair != MPI_COMM_NULL)
		MPI_OK(MPI_Comm_free(&pair));
	MPI_Finalize();
	return 0;
}
