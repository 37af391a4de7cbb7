/* Single-core memcpy bandwidth of 1 MiB buffers (the baseline of
 * bench/verbs_bench.sh): copies between two 1 MiB buffers (each in L2/L3
 * and touched), best of 5 rounds of ITERS copies. Prints
 * "memcpy_1MiB_bandwidth GB/s" (10^9 bytes/s).  verbs_memcpy [ITERS=2000] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 2000;
	size_t n = 1 << 20;
	char *a = aligned_alloc(4096, n), *b = aligned_alloc(4096, n);
	if (!a || !b)
		return 1;
	memset(a, 1, n);
	memset(b, 2, n);
	double best = 1e30;
	for (int r = 0; r < 5; r++) {
		double t0 = now();
		for (int i = 0; i < iters; i++) {
			memcpy((i & 1) ? a : b, (i & 1) ? b : a, n);
			__asm__ volatile("" ::: "memory");
		}
		double t = (now() - t0) / iters;
		if (t < best)
			best = t;
	}
	printf("memcpy_1MiB_bandwidth %.3f GB/s\n", n / best / 1e9);

	size_t ring = 256;
	char *ra = malloc(ring * n), *rb = malloc(ring * n);
	if (!ra || !rb)
		return 1;
	memset(ra, 1, ring * n);
	memset(rb, 2, ring * n);
	best = 1e30;
	for (int r = 0; r < 3; r++) {
		double t0 = now();
		for (size_t i = 0; i < ring; i++) {
			memcpy(rb + i * n, ra + i * n, n);
			__asm__ volatile("" ::: "memory");
		}
		double t = (now() - t0) / ring;
		if (t < best)
			best = t;
	}
	printf("memcpy_1MiB_uncached_bandwidth %.3f GB/s\n", n / best / 1e9);
	return a[7] == 3 || rb[5] == 3; /* keeps the copies */
}
