/* mpi_finalize_late: the ranks other than 0 call MPI_Finalize while rank 0
 * still works (a post-processing step of many applications).
 *
 *     mpi_finalize_late [NITER=5] [SLEEP_MS=100] [POST=5]
 *
 * NITER iterations on every rank (an allreduce each; rank 0 prints
 * "IT h=..."), then every rank but 0 finalizes, and rank 0 prints POST
 * more lines "NITER+K post h=..." (paced, no MPI) before its own
 * MPI_Finalize and "NITER+POST+1 final h=...".  A checkpoint asked for in
 * that phase is refused (test/e2e/mpi_ckpt_finalizing.sh, which holds rank
 * 0 there with the harness's hold). */
#include "ckpt_common.h"

int main(int argc, char **argv)
{
	int rank, niter;
	long ms;
	uint64_t h = 0;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	parse_args(argc, argv, &niter, &ms, 5, 100);
	int post = argc > 3 ? atoi(argv[3]) : 5;
	if (rank == 0)
		printf("0 mpi_finalize_late niter=%d post=%d\n", niter, post);
	for (int it = 1; it <= niter; it++) {
		uint64_t mine = mix((uint64_t)rank, (uint64_t)it), all = 0;
		MPI_OK(MPI_Allreduce(&mine, &all, 1, MPI_UINT64_T, MPI_BXOR, MPI_COMM_WORLD));
		h = mix(h, all);
		if (rank == 0) {
			printf("%d h=%016llx\n", it, (unsigned long long)h);
			fflush(stdout);
		}
		sleep_ms(ms);
	}
	if (rank != 0) {
		MPI_Finalize();
		return 0;
	}
	for (int k = 1; k <= post; k++) {
		h = mix(h, (uint64_t)k);
		printf("%d post h=%016llx\n", niter + k, (unsigned long long)h);
		fflush(stdout);
		sleep_ms(ms);
	}
	hold_before_final();
	MPI_Finalize();
	printf("%d final h=%016llx\n", niter + post + 1, (unsigned long long)h);
	return 0;
}
