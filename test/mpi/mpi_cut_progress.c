/* mpi_cut_progress: a rank the cut has parked must keep its MPI moving.
 *
 *   mpi_cut_progress [NITER=6] [SLEEP_MS=1500]        (3 or more ranks)
 *
 * Every iteration, after a barrier: rank 1 posts a receive from rank 2
 * and computes (sleeps SLEEP_MS, no MPI call) before it waits for it;
 * rank 2 waits a little (so that the receive is posted first), sends to
 * rank 1 with MPI_Ssend, which completes only once rank 1's MPI has
 * matched the message, and then joins rank 0 in an MPI_Allreduce on the
 * communicator of the two; rank 0 prints the iteration's line and enters
 * that Allreduce at once. Natively the Ssend waits out rank 1's sleep.
 *
 * A checkpoint asked for just after the line finds rank 0 inside the
 * Allreduce, rank 2 bound to follow it there (the cut's target for that
 * communicator) and rank 1 with nothing to finish: parked. Rank 2's Ssend
 * then needs the parked rank's MPI to match it: a cut that does not drive
 * MPI on parked ranks (pmpi/lower_cut.c, progress_parked) never settles
 * (test/e2e/mpi_ckpt_cut_progress.sh). Other ranks only take the
 * barriers. Rank 0 prints, as ckpt_common.h says, lines computed from
 * what went through MPI. */
#include "ckpt_common.h"

int main(int argc, char **argv)
{
	int niter, rank, size;
	long ms;
	uint64_t h = 0, got = 0;
	MPI_Comm pair;

	parse_args(argc, argv, &niter, &ms, 6, 1500);
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
	for (int it = 1; it <= niter; it++) {
		int64_t v = rank * 1000 + it, s = 0;
		MPI_OK(MPI_Barrier(MPI_COMM_WORLD));
		if (rank == 1) {
			MPI_Request rq;
			int64_t in = 0;
			MPI_OK(MPI_Irecv(&in, 1, MPI_INT64_T, 2, it, MPI_COMM_WORLD, &rq));
			sleep_ms(ms); /* computing: no MPI call */
			MPI_OK(MPI_Wait(&rq, MPI_STATUS_IGNORE));
			CHECK(in == 2000 + it, "received %lld, expected %d", (long long)in, 2000 + it);
			got = mix(got, (uint64_t)in);
		} else if (rank == 2) {
			sleep_ms(ms / 10 < 100 ? ms / 10 : 100);
			MPI_OK(MPI_Ssend(&v, 1, MPI_INT64_T, 1, it, MPI_COMM_WORLD));
			MPI_OK(MPI_Allreduce(&v, &s, 1, MPI_INT64_T, MPI_SUM, pair));
		} else if (rank == 0) {
			printf("%d h=%016llx\n", it, (unsigned long long)h);
			fflush(stdout);
			MPI_OK(MPI_Allreduce(&v, &s, 1, MPI_INT64_T, MPI_SUM, pair));
			h = mix(h, (uint64_t)s);
		}
	}
	h = mix(h, gather_fold(got, MPI_COMM_WORLD));
	if (rank == 0) {
		printf("%d final %016llx\n", niter + 1, (unsigned long long)h);
		fflush(stdout);
	}
	if (pair != MPI_COMM_NULL)
		MPI_OK(MPI_Comm_free(&pair));
	MPI_Finalize();
	return 0;
}
