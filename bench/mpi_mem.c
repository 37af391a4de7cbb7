/* MPI program for bench/mpi_ckpt_bench.sh: each rank fills MiB mebibytes
 * with non-zero pseudo-random data (nothing for the image to skip), then
 * loops: an Allreduce of a checksum and a sleep, printing one line per step
 * on rank 0.   mpi_mem MIB STEPS SLEEP_MS */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atol(argv[1]) : 512, n = mib << 17; /* uint64 words */
	int steps = argc > 2 ? atoi(argv[2]) : 100, ms = argc > 3 ? atoi(argv[3]) : 100, rank;
	uint64_t *m, x, sum = 0, all = 0;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	m = malloc(n * sizeof *m);
	if (!m)
		MPI_Abort(MPI_COMM_WORLD, 1);
	x = 0x9e3779b97f4a7c15ull * (uint64_t)(rank + 1);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		m[i] = x | 1;
	}
	for (int s = 0; s < steps; s++) {
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
		for (size_t i = (size_t)s % 4096; i < n; i += 4096)
			sum += m[i];
		MPI_Allreduce(&sum, &all, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
		if (rank == 0) {
			printf("%d %016llx\n", s, (unsigned long long)all);
			fflush(stdout);
		}
		nanosleep(&ts, NULL);
	}
	MPI_Finalize();
	return 0;
}
