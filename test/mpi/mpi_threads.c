/* mpi_threads: MPI_THREAD_MULTIPLE with NT threads per rank exchanging
 * messages concurrently with the same thread of the neighbour ranks (tag =
 * thread id), plus per-thread errno use around MPI calls. Rank 0 prints a
 * deterministic digest per round.  mpi_threads [ROUNDS=20] [NT=4] */
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

int main(int argc, char **argv)
{
	int provided;
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
	MPI_Finalize();
	return 0;
}
