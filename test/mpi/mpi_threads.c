/* mpi_threads: MPI_THREAD_MULTIPLE with NT threads per rank exchanging
 * messages concurrently with the same thread of the neighbour ranks (tag =
 * thread id), plus per-thread errno use around MPI calls. Rank 0 prints a
 * deterministic digest per round.  Then NSHORT short-lived threads, 4 at
 * a time, one Sendrecv each (a program that starts thousands of threads
 * must not run out of the runtime's per-thread contexts).
 *   mpi_threads [ROUNDS=20] [NT=4] [NSHORT=0] */
#include <errno.h>
#include <mpi.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int rank, size, rounds, nt;
static uint64_t digest[64];
static int errno_bad;

static void *worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	uint64_t h = (uint64_t)id + 1;

	for (int r = 0; r < rounds; r++) {
		long out = (long)rank * 1000000 + id * 1000 + r, in = -1;
		errno = 1000 + id; /* must survive MPI calls in this thread */
		MPI_Sendrecv(&out, 1, MPI_LONG, (rank + 1) % size, id, &in, 1, MPI_LONG,
		             (rank + size - 1) % size, id, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
		if (errno != 1000 + id)
			__atomic_store_n(&errno_bad, 1, __ATOMIC_RELAXED);
		h = h * 1099511628211ull ^ (uint64_t)in;
	}
	digest[id] = h;
	return NULL;
}

static uint64_t short_sum[4];

static void *short_lived(void *arg)
{
	int k = (int)(intptr_t)arg, slot = k % 4;
	long out = (long)rank * 1000000 + k, in = -1;
	MPI_Sendrecv(&out, 1, MPI_LONG, (rank + 1) % size, 100 + slot, &in, 1, MPI_LONG,
	             (rank + size - 1) % size, 100 + slot, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	short_sum[slot] = short_sum[slot] * 31 + (uint64_t)in;
	return NULL;
}

int main(int argc, char **argv)
{
	int provided, nshort = argc > 3 ? atoi(argv[3]) : 0;
	pthread_t th[64];
	uint64_t all = 0, total = 0;

	rounds = argc > 1 ? atoi(argv[1]) : 20;
	nt = argc > 2 ? atoi(argv[2]) : 4;
	if (nt > 64)
		nt = 64;
	MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (provided < MPI_THREAD_MULTIPLE) {
		if (rank == 0)
			printf("0 no MPI_THREAD_MULTIPLE\n");
		MPI_Finalize();
		return 77;
	}
	for (int i = 0; i < nt; i++)
		pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
	for (int i = 0; i < nt; i++) {
		pthread_join(th[i], NULL);
		all ^= digest[i] * (uint64_t)(i + 3);
	}
	MPI_Reduce(&all, &total, 1, MPI_UINT64_T, MPI_BXOR, 0, MPI_COMM_WORLD);
	int bad = errno_bad, anybad = 0;
	MPI_Reduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, 0, MPI_COMM_WORLD);
	if (rank == 0)
		printf("1 threads=%d rounds=%d digest=%016llx errno_ok=%d\n", nt, rounds,
		       (unsigned long long)total, !anybad);
	for (int k = 0; k < nshort; k += 4) {
		for (int j = 0; j < 4; j++)
			pthread_create(&th[j], NULL, short_lived, (void *)(intptr_t)(k + j));
		for (int j = 0; j < 4; j++)
			pthread_join(th[j], NULL);
	}
	if (nshort) {
		uint64_t h = short_sum[0] ^ short_sum[1] * 3 ^ short_sum[2] * 5 ^ short_sum[3] * 7, ht = 0;
		MPI_Reduce(&h, &ht, 1, MPI_UINT64_T, MPI_BXOR, 0, MPI_COMM_WORLD);
		if (rank == 0)
			printf("2 short-lived threads=%d digest=%016llx\n", nshort, (unsigned long long)ht);
	}
	MPI_Finalize();
	return 0;
}
