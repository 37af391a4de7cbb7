/* Running cost micro-benchmarks for bench/overhead_bench.sh: 8-byte
 * ping-pong latency (half a round trip), 8-byte MPI_Allreduce latency,
 * 1 MiB ping-pong bandwidth between ranks 0 and 1, and two exchanges of
 * 8 bytes through requests the program holds: MPI_Irecv, MPI_Isend and
 * MPI_Waitall (as hpcc's ring tests), and MPI_Irecv from any source
 * polled with MPI_Test, MPI_Isend and MPI_Wait (as hpcc's RandomAccess).
 * Built with -DMICRO_PLAIN_INIT it starts MPI with MPI_Init, as most
 * programs do (MPI_THREAD_SINGLE natively, and under ckptmpi, whose
 * runtime reads that from the executable); else with MPI_Init_thread at
 * MPI_THREAD_MULTIPLE, or the level OVERHEAD_THREAD_LEVEL names. Many
 * short repetitions: on a shared machine the fastest ones are those no
 * other process disturbed. Rank 0 prints "name best median unit" lines.
 * Built with -DMICRO_SWITCH_FLOOR, each MPI call of the measured loops is
 * wrapped in two writes of the thread pointer (wrfsbase of its own value,
 * before and after), as ckptmpi switches to the lower half's TLS and back
 * around a call, and nothing else: run natively, this is the split
 * process's floor, what no shim can go below.
 *   overhead_micro [REPS=200] [ITERS=1000] */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MICRO_SWITCH_FLOOR
#include <sys/auxv.h>
#ifndef HWCAP2_FSGSBASE
#define HWCAP2_FSGSBASE (1 << 1)
#endif
static inline __attribute__((always_inline)) void fs_write(void)
{
	uint64_t fs;
	__asm__ volatile("movq %%fs:0, %0" : "=r"(fs)); /* the TLS ABI's self pointer */
	__asm__ volatile("wrfsbase %0" : : "r"(fs) : "memory");
}
#define SWITCHED(call)                  \
	({                              \
		fs_write();             \
		int switched__rc = call; \
		fs_write();             \
		switched__rc;           \
	})
/* (a function-like macro does not expand within itself: the inner name is
 * MPI's function) */
#define MPI_Send(...) SWITCHED(MPI_Send(__VA_ARGS__))
#define MPI_Recv(...) SWITCHED(MPI_Recv(__VA_ARGS__))
#define MPI_Allreduce(...) SWITCHED(MPI_Allreduce(__VA_ARGS__))
#define MPI_Isend(...) SWITCHED(MPI_Isend(__VA_ARGS__))
#define MPI_Irecv(...) SWITCHED(MPI_Irecv(__VA_ARGS__))
#define MPI_Waitall(...) SWITCHED(MPI_Waitall(__VA_ARGS__))
#define MPI_Wait(...) SWITCHED(MPI_Wait(__VA_ARGS__))
#define MPI_Test(...) SWITCHED(MPI_Test(__VA_ARGS__))
#endif

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void report(int rank, const char *name, double *t, int n, double scale, const char *unit,
                   int invert)
{
	qsort(t, (size_t)n, sizeof *t, cmp);
	if (rank)
		return;
	if (invert) /* a rate: the best is the shortest time */
		printf("%s %.1f %.1f %s\n", name, scale / t[0], scale / t[n / 2], unit);
	else
		printf("%s %.4f %.4f %s\n", name, t[0] * scale, t[n / 2] * scale, unit);
}

int main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 200, iters = argc > 2 ? atoi(argv[2]) : 1000;
	int provided, rank, size, big_n = 20;
	static char big[1 << 20];
	double b8 = 1, o8, *t = malloc(sizeof(double) * (size_t)reps);

#ifdef MICRO_PLAIN_INIT
	(void)provided;
	MPI_Init(&argc, &argv);
#else
	const char *lv = getenv("OVERHEAD_THREAD_LEVEL");

	MPI_Init_thread(&argc, &argv,
	                lv && !strcmp(lv, "single") ? MPI_THREAD_SINGLE : MPI_THREAD_MULTIPLE,
	                &provided);
#endif
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
#ifdef MICRO_SWITCH_FLOOR
	if (!(getauxval(AT_HWCAP2) & HWCAP2_FSGSBASE)) {
		fprintf(stderr, "overhead_micro: this kernel does not allow wrfsbase (FSGSBASE)\n");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
#endif
	if (size < 2) {
		fprintf(stderr, "overhead_micro: needs 2 ranks\n");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	for (int r = 0; r < reps; r++) {
		MPI_Barrier(MPI_COMM_WORLD);
		double t0 = MPI_Wtime();
		for (int i = 0; i < iters; i++) {
			if (rank == 0) {
				MPI_Send(&b8, 1, MPI_DOUBLE, 1, 0, MPI_COMM_WORLD);
				MPI_Recv(&b8, 1, MPI_DOUBLE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			} else if (rank == 1) {
				MPI_Recv(&b8, 1, MPI_DOUBLE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
				MPI_Send(&b8, 1, MPI_DOUBLE, 0, 0, MPI_COMM_WORLD);
			}
		}
		t[r] = (MPI_Wtime() - t0) / iters / 2;
	}
	report(rank, "pingpong_8B_latency", t, reps, 1e6, "us", 0);
	for (int r = 0; r < reps; r++) {
		MPI_Barrier(MPI_COMM_WORLD);
		double t0 = MPI_Wtime();
		for (int i = 0; i < iters; i++)
			MPI_Allreduce(&b8, &o8, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
		t[r] = (MPI_Wtime() - t0) / iters;
	}
	report(rank, "allreduce_8B_latency", t, reps, 1e6, "us", 0);
	for (int r = 0; r < reps / 4 + 1; r++) {
		MPI_Barrier(MPI_COMM_WORLD);
		double t0 = MPI_Wtime();
		for (int i = 0; i < big_n; i++) {
			if (rank == 0) {
				MPI_Send(big, sizeof big, MPI_CHAR, 1, 1, MPI_COMM_WORLD);
				MPI_Recv(big, 1, MPI_CHAR, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			} else if (rank == 1) {
				MPI_Recv(big, sizeof big, MPI_CHAR, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
				MPI_Send(big, 1, MPI_CHAR, 0, 1, MPI_COMM_WORLD);
			}
		}
		t[r] = (MPI_Wtime() - t0) / big_n;
	}
	report(rank, "pingpong_1MiB_bandwidth", t, reps / 4 + 1, (double)sizeof big / 1e6, "MB/s", 1);
	for (int mode = 0; mode < 2; mode++) {
		for (int r = 0; r < reps; r++) {
			int peer = rank ^ 1;

			MPI_Barrier(MPI_COMM_WORLD);
			double t0 = MPI_Wtime();
			for (int i = 0; rank < 2 && i < iters; i++) {
				MPI_Request q[2];
				MPI_Status sts[2]; /* (MPICH's header warns of MPI_STATUSES_IGNORE) */
				int flag = 0;

				if (mode == 0) {
					MPI_Irecv(&o8, 1, MPI_DOUBLE, peer, 2, MPI_COMM_WORLD, &q[0]);
					MPI_Isend(&b8, 1, MPI_DOUBLE, peer, 2, MPI_COMM_WORLD, &q[1]);
					MPI_Waitall(2, q, sts);
					continue;
				}
				MPI_Irecv(&o8, 1, MPI_DOUBLE, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD,
				          &q[0]);
				MPI_Isend(&b8, 1, MPI_DOUBLE, peer, 3, MPI_COMM_WORLD, &q[1]);
				while (!flag)
					MPI_Test(&q[0], &flag, MPI_STATUS_IGNORE);
				MPI_Wait(&q[1], MPI_STATUS_IGNORE);
			}
			t[r] = (MPI_Wtime() - t0) / iters;
		}
		report(rank, mode ? "test_loop_8B_exchange" : "waitall_8B_exchange", t, reps, 1e6, "us",
		       0);
	}
	free(t);
	MPI_Finalize();
	return 0;
}
