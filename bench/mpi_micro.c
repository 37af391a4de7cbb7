/* MPI micro-benchmarks: 8-byte ping-pong latency and 1 MiB bandwidth
 * between ranks 0 and 1, 8-byte Allreduce latency on all ranks. Rank 0
 * prints "name value unit" lines; mpi_bench.sh runs it with and without
 * ckptmpi and reports the ratios.  mpi_micro [ITERS=20000] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 20000, rank, size;
	static char big[1 << 20];
	double buf8 = 1, out8, t0, best;

	/* MICRO_THREAD=multiple: the level ckptmpi's checkpoints need */
	if (getenv("MICRO_THREAD") && !strcmp(getenv("MICRO_THREAD"), "multiple")) {
		int provided;
		MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
	} else {
		MPI_Init(&argc, &argv);
	}
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	/* best of 3 repetitions: the machine is shared and noisy */
	best = 1e30;
	for (int rep = 0; rep < 3 && size >= 2; rep++) {
		MPI_Barrier(MPI_COMM_WORLD);
		t0 = MPI_Wtime();
		for (int i = 0; i < iters; i++) {
			if (rank == 0) {
				MPI_Send(&buf8, 1, MPI_DOUBLE, 1, 0, MPI_COMM_WORLD);
				MPI_Recv(&buf8, 1, MPI_DOUBLE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			} else if (rank == 1) {
				MPI_Recv(&buf8, 1, MPI_DOUBLE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
				MPI_Send(&buf8, 1, MPI_DOUBLE, 0, 0, MPI_COMM_WORLD);
			}
		}
		double t = (MPI_Wtime() - t0) / iters / 2 * 1e6;
		if (t < best)
			best = t;
	}
	if (rank == 0 && size >= 2)
		printf("pingpong_8B_latency %.3f us\n", best);
	best = 1e30;
	for (int rep = 0; rep < 3 && size >= 2; rep++) {
		int n = iters / 100 + 10;
		MPI_Barrier(MPI_COMM_WORLD);
		t0 = MPI_Wtime();
		for (int i = 0; i < n; i++) {
			if (rank == 0) {
				MPI_Send(big, sizeof big, MPI_CHAR, 1, 1, MPI_COMM_WORLD);
				MPI_Recv(big, 1, MPI_CHAR, 1, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
			} else if (rank == 1) {
				MPI_Recv(big, sizeof big, MPI_CHAR, 0, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
				MPI_Send(big, 1, MPI_CHAR, 0, 1, MPI_COMM_WORLD);
			}
		}
		double t = (MPI_Wtime() - t0) / n;
		if (t < best)
			best = t;
	}
	if (rank == 0 && size >= 2)
		printf("pingpong_1MiB_bandwidth %.1f MB/s\n", (double)sizeof big / best / 1e6);
	best = 1e30;
	for (int rep = 0; rep < 3; rep++) {
		MPI_Barrier(MPI_COMM_WORLD);
		t0 = MPI_Wtime();
		for (int i = 0; i < iters; i++)
			MPI_Allreduce(&buf8, &out8, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
		double t = (MPI_Wtime() - t0) / iters * 1e6;
		if (t < best)
			best = t;
	}
	if (rank == 0)
		printf("allreduce_8B_latency_%dranks %.3f us\n", size, best);
	MPI_Finalize();
	return 0;
}
