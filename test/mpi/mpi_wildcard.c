/* mpi_wildcard [STEPS [SIZE [HOLD]]]: a program whose output depends on the
 * order messages arrive in and on how often a test or probe found nothing
 * yet, so that two plain runs print different lines (the MPI replay's
 * test program, test/e2e/mpi_replay*.sh).
 *
 * Each step, ranks 1..N-1 sleep random amounts (seeded from the clock and
 * the pid) around six sends to rank 0 (tags 1 to 6). Rank 0 takes them with
 *   A: MPI_Recv(MPI_ANY_SOURCE, tag 1), noting the order;
 *   B: an MPI_Irecv from every rank (tag 2), MPI_Testany polled until one
 *      is done (the polls counted), then MPI_Waitsome, then MPI_Waitany;
 *   C: MPI_Iprobe(MPI_ANY_SOURCE, tag 3) polled (counted), then
 *      MPI_Recv from what the probe saw;
 *   D: MPI_Improbe(MPI_ANY_SOURCE, tag 4) polled (counted), MPI_Mrecv;
 *   E: MPI_Irecv(MPI_ANY_SOURCE, tag 5) for every rank, MPI_Test on the
 *      first polled, then MPI_Testall (counted), the sources noted;
 *   F: MPI_Probe(MPI_ANY_SOURCE, tag 6), MPI_Recv from it;
 * and prints "STEP order=... polls=... probes=... sum=CHECKSUM".
 * SIZE (default 1) is the number of ints of every message: a run with
 * another SIZE is another input. HOLD (a step, default none): at that
 * step rank 0 says "hold" on stderr once E's receives are posted, and the
 * other ranks wait HOLD_MS (4 s) before their tag 5 sends, so that a checkpoint
 * requested on seeing it is cut with the receives pending
 * (test/e2e/mpi_replay_pending.sh); the output is the same. */
#define HOLD_MS 4000
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../programs/common.h" /* pace_ms */

#define CHECK(x)                                                                   \
	do {                                                                       \
		int rc_ = (x);                                                     \
		if (rc_ != MPI_SUCCESS) {                                          \
			fprintf(stderr, "%s:%d: %s failed: %d\n", __FILE__, __LINE__, #x, rc_); \
			MPI_Abort(MPI_COMM_WORLD, 2);                              \
		}                                                                  \
	} while (0)

static void nap(void) { usleep((useconds_t)(rand() % 3000)); }

int main(int argc, char **argv)
{
	int steps = argc > 1 ? atoi(argv[1]) : 150, size = argc > 2 ? atoi(argv[2]) : 1;
	int hold = argc > 3 ? atoi(argv[3]) : 0;
	int rank, np;
	unsigned long long sum = 0;

	CHECK(MPI_Init(&argc, &argv));
	CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
	CHECK(MPI_Comm_size(MPI_COMM_WORLD, &np));
	if (np < 3 || size < 1 || size > 1024) {
		if (!rank)
			fprintf(stderr, "mpi_wildcard: needs 3 ranks or more, SIZE 1..1024\n");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	{
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		srand((unsigned)(t.tv_nsec ^ (getpid() << 8) ^ rank));
	}
	int *buf = calloc((size_t)size, sizeof *buf);
	MPI_Request *rq = calloc((size_t)np, sizeof *rq);
	int *idx = calloc((size_t)np, sizeof *idx);
	char *line = malloc(64 + (size_t)np * 40);
	if (!buf || !rq || !idx || !line)
		MPI_Abort(MPI_COMM_WORLD, 3);

	for (int s = 1; s <= steps; s++) {
		if (rank) {
			for (int tag = 1; tag <= 6; tag++) {
				nap();
				if (s == hold && tag == 5)
					pace_ms(HOLD_MS); /* whatever interrupts it: a checkpoint does */
				for (int i = 0; i < size; i++)
					buf[i] = rank * 1000 + s * 10 + tag + i;
				CHECK(MPI_Send(buf, size, MPI_INT, 0, tag, MPI_COMM_WORLD));
			}
		} else {
			MPI_Status st;
			int n = 0, polls = 0, probes = 0, flag = 0, k, out;
			n += sprintf(line + n, "%d order=", s);
			for (int r = 1; r < np; r++) { /* A */
				CHECK(MPI_Recv(buf, size, MPI_INT, MPI_ANY_SOURCE, 1, MPI_COMM_WORLD, &st));
				n += sprintf(line + n, "%d", st.MPI_SOURCE);
				sum = sum * 31 + (unsigned long long)st.MPI_SOURCE * 7 + (unsigned)buf[size - 1];
			}
			/* B */
			int *bb = calloc((size_t)np * (size_t)size, sizeof *bb);
			for (int r = 1; r < np; r++)
				CHECK(MPI_Irecv(bb + (r - 1) * size, size, MPI_INT, r, 2, MPI_COMM_WORLD,
				                &rq[r - 1]));
			do {
				CHECK(MPI_Testany(np - 1, rq, &k, &flag, &st));
				if (!flag)
					polls++;
			} while (!flag);
			n += sprintf(line + n, " first=%d some=", k + 1);
			sum = sum * 31 + (unsigned long long)k + (unsigned long long)polls;
			CHECK(MPI_Waitsome(np - 1, rq, &out, idx, MPI_STATUSES_IGNORE));
			for (int i = 0; i < out; i++) {
				n += sprintf(line + n, "%d", idx[i] + 1);
				sum = sum * 31 + (unsigned long long)idx[i];
			}
			for (;;) {
				CHECK(MPI_Waitany(np - 1, rq, &k, &st));
				if (k == MPI_UNDEFINED)
					break;
				n += sprintf(line + n, "/%d", k + 1);
				sum = sum * 31 + (unsigned long long)k;
			}
			free(bb);
			n += sprintf(line + n, " probe=");
			for (int r = 1; r < np; r++) { /* C */
				do {
					CHECK(MPI_Iprobe(MPI_ANY_SOURCE, 3, MPI_COMM_WORLD, &flag, &st));
					if (!flag)
						probes++;
				} while (!flag);
				CHECK(MPI_Recv(buf, size, MPI_INT, st.MPI_SOURCE, 3, MPI_COMM_WORLD,
				               MPI_STATUS_IGNORE));
				n += sprintf(line + n, "%d", st.MPI_SOURCE);
				sum = sum * 31 + (unsigned long long)st.MPI_SOURCE + (unsigned)buf[0];
			}
			n += sprintf(line + n, " mprobe=");
			for (int r = 1; r < np; r++) { /* D */
				MPI_Message m;
				do {
					CHECK(MPI_Improbe(MPI_ANY_SOURCE, 4, MPI_COMM_WORLD, &flag, &m, &st));
					if (!flag)
						probes++;
				} while (!flag);
				CHECK(MPI_Mrecv(buf, size, MPI_INT, &m, MPI_STATUS_IGNORE));
				n += sprintf(line + n, "%d", st.MPI_SOURCE);
				sum = sum * 31 + (unsigned long long)st.MPI_SOURCE + (unsigned)buf[0];
			}
			/* E: wildcard receives completed by MPI_Test, then MPI_Testall */
			MPI_Status *sts = calloc((size_t)np, sizeof *sts);
			int *eb = calloc((size_t)np * (size_t)size, sizeof *eb);
			for (int r = 1; r < np; r++)
				CHECK(MPI_Irecv(eb + (r - 1) * size, size, MPI_INT, MPI_ANY_SOURCE, 5,
				                MPI_COMM_WORLD, &rq[r - 1]));
			if (s == hold) {
				fprintf(stderr, "mpi_wildcard: hold at step %d\n", s);
				fflush(stderr);
			}
			do {
				CHECK(MPI_Test(&rq[0], &flag, &st));
				if (!flag)
					polls++;
			} while (!flag);
			do {
				CHECK(MPI_Testall(np - 1, rq, &flag, sts));
				if (!flag)
					polls++;
			} while (!flag);
			n += sprintf(line + n, " all=%d", st.MPI_SOURCE); /* (the first: from the Test) */
			sum = sum * 31 + (unsigned long long)st.MPI_SOURCE;
			for (int r = 2; r < np; r++) {
				n += sprintf(line + n, "%d", sts[r - 1].MPI_SOURCE);
				sum = sum * 31 + (unsigned long long)sts[r - 1].MPI_SOURCE;
			}
			free(eb);
			free(sts);
			n += sprintf(line + n, " probe6=");
			for (int r = 1; r < np; r++) { /* F */
				CHECK(MPI_Probe(MPI_ANY_SOURCE, 6, MPI_COMM_WORLD, &st));
				CHECK(MPI_Recv(buf, size, MPI_INT, st.MPI_SOURCE, 6, MPI_COMM_WORLD,
				               MPI_STATUS_IGNORE));
				n += sprintf(line + n, "%d", st.MPI_SOURCE);
				sum = sum * 31 + (unsigned long long)st.MPI_SOURCE;
			}
			sum = sum * 31 + (unsigned long long)probes + (unsigned long long)polls;
			printf("%s polls=%d probes=%d sum=%016llx\n", line, polls, probes, sum);
			fflush(stdout);
		}
		CHECK(MPI_Barrier(MPI_COMM_WORLD));
	}
	hold_before_final(); /* every rank: none waits in MPI meanwhile */
	if (!rank) {
		printf("%d final sum=%016llx\n", steps + 1, sum);
		fflush(stdout);
	}
	free(buf);
	free(rq);
	free(idx);
	free(line);
	MPI_Finalize();
	return 0;
}
