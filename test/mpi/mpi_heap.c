/* mpi_heap: ranks with a large heap, for restarts whose memory comes in
 * behind the program (core/lazy_restore.h).
 *
 *   mpi_heap [NITER=20] [SLEEP_MS=100] [MIB=48]      (2 or more ranks)
 *
 * Each rank fills MIB MiB with a pattern of its own. Per iteration, before
 * the sleep (where a checkpoint lands): a receive of a 4 MiB ring message
 * into the middle of the heap is posted, and the left neighbour's message
 * sent; after it, the receive completes, its bytes are checked, and every
 * rank rewrites a stride of its heap (words folded into its checksum).
 * Rank 0 prints the ranks' checksums folded; the final line folds every
 * rank's checksum of its whole heap, so a page lost, stale or doubled in
 * any rank's restored memory changes it. */
#include "ckpt_common.h"

#define RING_WORDS (1u << 19) /* 4 MiB */

static uint64_t word(int rank, size_t i, int it)
{
	return mix(mix((uint64_t)rank * 7919u + 1, i), (uint64_t)it);
}

int main(int argc, char **argv)
{
	int niter, rank, size;
	long ms;
	size_t mib, n;
	uint64_t *heap, *out, total = 0;

	parse_args(argc, argv, &niter, &ms, 20, 100);
	mib = argc > 3 ? (size_t)atol(argv[3]) : 48;
	MPI_OK(MPI_Init(&argc, &argv));
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	CHECK(size >= 2, "mpi_heap needs 2 or more ranks");
	n = mib << 17;
	CHECK(n >= 4 * RING_WORDS, "MIB too small");
	heap = malloc(n * sizeof *heap);
	out = malloc(RING_WORDS * sizeof *out);
	CHECK(heap && out, "out of memory");
	for (size_t i = 0; i < n; i++)
		heap[i] = word(rank, i, 0);
	if (rank == 0) {
		printf("0 mpi_heap np=%d niter=%d mib=%zu\n", size, niter, mib);
		fflush(stdout);
	}
	for (int it = 1; it <= niter; it++) {
		int left = (rank + size - 1) % size, right = (rank + 1) % size;
		uint64_t *in = heap + n / 2, h = mix(0, (uint64_t)it);
		MPI_Request rq[2];

		for (size_t i = 0; i < RING_WORDS; i++)
			out[i] = word(rank, i, it);
		MPI_OK(MPI_Irecv(in, RING_WORDS, MPI_UINT64_T, left, it, MPI_COMM_WORLD, &rq[0]));
		MPI_OK(MPI_Isend(out, RING_WORDS, MPI_UINT64_T, right, it, MPI_COMM_WORLD, &rq[1]));
		sleep_ms(ms);
		MPI_OK(MPI_Waitall(2, rq, MPI_STATUSES_IGNORE));
		for (size_t i = 0; i < RING_WORDS; i++)
			CHECK(in[i] == word(left, i, it), "ring word %zu from %d wrong", i, left);
		h = mix_bytes(h, in, 64);
		for (size_t i = (size_t)it * 97; i < n; i += 4099) {
			heap[i] = mix(heap[i], (uint64_t)it);
			h = mix(h, heap[i]);
		}
		uint64_t all = gather_fold(h, MPI_COMM_WORLD);
		if (rank == 0) {
			total = mix(total, all);
			printf("%d heap=%016llx h=%016llx\n", it, (unsigned long long)all,
			       (unsigned long long)total);
			fflush(stdout);
		}
	}
	{
		uint64_t h = mix_bytes(0, heap, n * sizeof *heap), all = gather_fold(h, MPI_COMM_WORLD);
		hold_before_final(); /* every rank: none waits in MPI meanwhile */
		if (rank == 0) {
			printf("%d final %016llx\n", niter + 1, (unsigned long long)all);
			fflush(stdout);
		}
	}
	free(out);
	free(heap);
	MPI_Finalize();
	return 0;
}
