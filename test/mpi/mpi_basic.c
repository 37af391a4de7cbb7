/* mpi_basic: point-to-point ring, collectives, a split communicator, a
 * derived datatype, non-blocking requests and wildcard receives, with a
 * deterministic result printed by rank 0 each step.
 *
 *   mpi_basic [NSTEPS=20] [SLEEP_MS=20] */
#include <errno.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* A user reduction (max) that leans on the C library's thread state
 * (malloc's per-thread cache, snprintf, errno) and checks that it is
 * handed the application's own datatype handle. */
static void max_via_text(void *in, void *inout, int *len, MPI_Datatype *dt)
{
	long long *a = in, *b = inout;
	char *buf = malloc(64);

	if (*dt != MPI_LONG_LONG || !buf)
		abort();
	for (int i = 0; i < *len; i++) {
		snprintf(buf, 64, "%lld", a[i] > b[i] ? a[i] : b[i]);
		errno = 0;
		b[i] = strtoll(buf, NULL, 10);
	}
	free(buf);
}

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v;
	h *= 0x100000001b3ULL;
	return h ^ (h >> 29);
}

int main(int argc, char **argv)
{
	int nsteps = argc > 1 ? atoi(argv[1]) : 20;
	long ms = argc > 2 ? atol(argv[2]) : 20;
	int rank, size, provided;
	MPI_Comm half;
	MPI_Op maxop;
	MPI_Datatype pair;
	uint64_t h = 1;

	MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	MPI_Comm_split(MPI_COMM_WORLD, rank % 2, -rank, &half);
	MPI_Type_contiguous(2, MPI_LONG_LONG, &pair);
	MPI_Type_commit(&pair);
	MPI_Op_create(max_via_text, 1, &maxop);
	if (rank == 0)
		printf("0 start size=%d provided>=funneled=%d\n", size, provided >= MPI_THREAD_FUNNELED);
	for (int s = 1; s <= nsteps; s++) {
		long long out[2] = {rank * 1000 + s, s * s}, in[2] = {0, 0};
		int right = (rank + 1) % size;
		MPI_Request rq[2];
		MPI_Status st;
		long long sum = 0, hs = 0, mx = 0;
		int got = 0, hrank;

		/* ring with a derived type; the receive is a wildcard */
		MPI_Irecv(in, 1, pair, MPI_ANY_SOURCE, s, MPI_COMM_WORLD, &rq[0]);
		MPI_Isend(out, 1, pair, right, s, MPI_COMM_WORLD, &rq[1]);
		MPI_Waitall(2, rq, MPI_STATUSES_IGNORE);
		MPI_Allreduce(&in[0], &sum, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
		MPI_Allreduce(&in[0], &mx, 1, MPI_LONG_LONG, maxop, MPI_COMM_WORLD);
		MPI_Comm_rank(half, &hrank);
		MPI_Allreduce(&in[1], &hs, 1, MPI_LONG_LONG, MPI_MAX, half);
		if (rank == 0) {
			MPI_Probe(MPI_ANY_SOURCE, 1000 + s, MPI_COMM_WORLD, &st);
			MPI_Get_count(&st, MPI_INT, &got);
		}
		if (rank == size - 1)
			MPI_Send(&s, 1, MPI_INT, 0, 1000 + s, MPI_COMM_WORLD);
		if (rank == 0) {
			int v;
			MPI_Recv(&v, 1, MPI_INT, st.MPI_SOURCE, 1000 + s, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
			h = mix(mix(mix(mix(h, (uint64_t)sum), (uint64_t)hs), (uint64_t)v), (uint64_t)mx);
			printf("%d sum=%lld halfmax=%lld max=%lld from=%d got=%d h=%016llx\n", s, sum, hs,
			       mx, st.MPI_SOURCE, got, (unsigned long long)h);
			fflush(stdout);
		} else {
			int v;
			MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
		}
		struct timespec t = {0, ms * 1000000L};
		nanosleep(&t, NULL);
	}
	MPI_Op_free(&maxop);
	MPI_Type_free(&pair);
	MPI_Comm_free(&half);
	if (rank == 0)
		printf("%d final checksum=%016llx\n", nsteps + 1, (unsigned long long)h);
	MPI_Finalize();
	return 0;
}
