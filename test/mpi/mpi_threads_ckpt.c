/* mpi_threads_ckpt: MPI_THREAD_MULTIPLE, 3 threads per rank, each on a
 * communicator of its own (Comm_dup'ed by the main thread in a fixed
 * order), doing point-to-point and collectives concurrently with the other
 * threads, with a receive and a send pending across each thread's sleep.
 *
 *   mpi_threads_ckpt [NITER=30] [SLEEP_MS=100]          (2 or more ranks)
 *
 * Per iteration and thread: an MPI_ANY_SOURCE Irecv from the left and an
 * Isend to the right posted before the sleep, completed after it; a
 * Sendrecv the other way; Allreduce, Bcast, Allgather and an Ibarrier on
 * the thread's communicator; the thread's checksum gathered to rank 0 in
 * rank order.  The threads of a rank meet at a pthread barrier at the end
 * of each iteration and thread 0 of rank 0 prints the three checksums. */
#include "ckpt_common.h"

#include <pthread.h>

#define NT 3

static int rank, size, niter;
static long ms;
static MPI_Comm comms[NT];
static uint64_t thr_h[NT], total;
static pthread_barrier_t bar;

static int64_t val(int r, int t, int it, int k)
{
	return (int64_t)(mix(mix(mix(mix(3, (uint64_t)r), (uint64_t)t), (uint64_t)it), (uint64_t)k) >> 2);
}

static void *worker(void *arg)
{
	int t = (int)(intptr_t)arg, left = (rank + size - 1) % size, right = (rank + 1) % size;
	MPI_Comm c = comms[t];
	int64_t *all = malloc(sizeof(int64_t) * (size_t)size);

	CHECK(all != NULL, "out of memory");
	for (int it = 1; it <= niter; it++) {
		uint64_t h = mix((uint64_t)t, (uint64_t)it);
		int64_t out[4], in[4] = {-1, -1, -1, -1}, x, y;
		MPI_Request rq[2];
		MPI_Status st;
		int tag = it % 1000;

		for (int k = 0; k < 4; k++)
			out[k] = val(rank, t, it, k);
		MPI_OK(MPI_Irecv(in, 4, MPI_INT64_T, MPI_ANY_SOURCE, tag, c, &rq[0]));
		MPI_OK(MPI_Isend(out, 4, MPI_INT64_T, right, tag, c, &rq[1]));
		sleep_ms(ms);
		MPI_OK(MPI_Wait(&rq[0], &st));
		MPI_OK(MPI_Wait(&rq[1], MPI_STATUS_IGNORE));
		CHECK(st.MPI_SOURCE == left, "thread %d: ANY_SOURCE receive from %d", t, st.MPI_SOURCE);
		for (int k = 0; k < 4; k++)
			CHECK(in[k] == val(left, t, it, k), "thread %d: ring word %d", t, k);
		h = mix_bytes(h, in, sizeof in);

		x = val(rank, t, it, 10);
		MPI_OK(MPI_Sendrecv(&x, 1, MPI_INT64_T, left, tag + 1000, &y, 1, MPI_INT64_T, right, tag + 1000,
		                    c, MPI_STATUS_IGNORE));
		CHECK(y == val(right, t, it, 10), "thread %d: Sendrecv", t);
		h = mix(h, (uint64_t)y);

		int64_t s = 0, e = 0, me = rank * 100 + t * 10 + it;
		MPI_OK(MPI_Allreduce(&me, &s, 1, MPI_INT64_T, MPI_SUM, c));
		for (int r = 0; r < size; r++)
			e += r * 100 + t * 10 + it;
		CHECK(s == e, "thread %d: Allreduce", t);
		int root = (it + t) % size;
		int64_t b = rank == root ? val(root, t, it, 20) : 0;
		MPI_OK(MPI_Bcast(&b, 1, MPI_INT64_T, root, c));
		CHECK(b == val(root, t, it, 20), "thread %d: Bcast", t);
		MPI_OK(MPI_Allgather(&me, 1, MPI_INT64_T, all, 1, MPI_INT64_T, c));
		for (int r = 0; r < size; r++)
			CHECK(all[r] == r * 100 + t * 10 + it, "thread %d: Allgather from %d", t, r);
		MPI_Request br;
		MPI_OK(MPI_Ibarrier(c, &br));
		MPI_OK(MPI_Wait(&br, MPI_STATUS_IGNORE));
		h = mix_bytes(mix(mix(h, (uint64_t)s), (uint64_t)b), all, sizeof(int64_t) * (size_t)size);

		thr_h[t] = gather_fold(h, c);
		pthread_barrier_wait(&bar);
		if (t == 0 && rank == 0) {
			for (int k = 0; k < NT; k++)
				total = mix(total, thr_h[k]);
			printf("%d t0=%016llx t1=%016llx t2=%016llx h=%016llx\n", it, (unsigned long long)thr_h[0],
			       (unsigned long long)thr_h[1], (unsigned long long)thr_h[2], (unsigned long long)total);
			fflush(stdout);
		}
		pthread_barrier_wait(&bar); /* thr_h is read before the next round writes it */
	}
	free(all);
	return NULL;
}

int main(int argc, char **argv)
{
	int provided;
	pthread_t th[NT];

	parse_args(argc, argv, &niter, &ms, 30, 100);
	MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	CHECK(size >= 2, "needs at least 2 ranks");
	CHECK(provided == MPI_THREAD_MULTIPLE, "MPI_THREAD_MULTIPLE not provided (%d)", provided);
	for (int t = 0; t < NT; t++)
		MPI_OK(MPI_Comm_dup(MPI_COMM_WORLD, &comms[t]));
	pthread_barrier_init(&bar, NULL, NT);
	if (rank == 0) {
		printf("0 mpi_threads_ckpt np=%d niter=%d threads=%d\n", size, niter, NT);
		fflush(stdout);
	}
	for (int t = 0; t < NT; t++)
		CHECK(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t) == 0, "pthread_create");
	for (int t = 0; t < NT; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&bar);
	for (int t = 0; t < NT; t++)
		MPI_Comm_free(&comms[t]);
	hold_before_final(); /* every rank: none waits in MPI meanwhile */
	if (rank == 0) {
		printf("%d final %016llx\n", niter + 1, (unsigned long long)total);
		fflush(stdout);
	}
	MPI_Finalize();
	return 0;
}
