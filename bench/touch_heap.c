/* Benchmark subject: MiB of heap, then "ready"; waits until GO_FILE
 * exists, prints a checksum of the heap and exits.
 *   touch_heap MIB GO_FILE [KIND [DUMP_FILE]]
 * KIND half (default): first half random bytes (incompressible), second
 * half zeros (touched); field: a smooth field (sines of a 1-D grid)
 * computed in single precision and held in doubles, as codes that read
 * single-precision inputs do (compressible); field64: the same field in
 * full double precision (barely compressible by byte codecs). DUMP_FILE
 * gets a copy of the heap (for tests that read the checkpoint with other
 * tools). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double field(size_t i, size_t n)
{
	double x = (double)i / (double)n;

	return sin(2 * M_PI * 3 * x) * exp(-x) + 0.5 * cos(2 * M_PI * 17 * x);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024, n = mib << 20;
	const char *go = argc > 2 ? argv[2] : "go";
	const char *kind = argc > 3 ? argv[3] : "half";
	uint64_t *heap = malloc(n), x = 88172645463325252ull, sum = 0;

	if (!heap)
		return 1;
	if (!strcmp(kind, "field") || !strcmp(kind, "field64")) {
		double *d = (double *)heap;
		int single = !strcmp(kind, "field");

		for (size_t i = 0; i < n / 8; i++)
			d[i] = single ? (double)(float)field(i, n / 8) : field(i, n / 8);
	} else {
		for (size_t i = 0; i < n / 16; i++) { /* xorshift: incompressible */
			x ^= x << 13; x ^= x >> 7; x ^= x << 17;
			heap[i] = x;
		}
		memset((char *)heap + n / 2, 0, n / 2); /* touched, zero */
	}
	if (argc > 4) {
		FILE *f = fopen(argv[4], "wb");

		if (!f || fwrite(heap, 1, n, f) != n || fclose(f))
			return perror(argv[4]), 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (access(go, F_OK))
		usleep(5000);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (size_t i = 0; i < n / 8; i++)
		sum = sum * 31 + heap[i];
	clock_gettime(CLOCK_MONOTONIC, &b);
	/* the bench subtracts the pass's time from the restart's */
	printf("checksum %016llx pass %.3f\n", (unsigned long long)sum,
	       (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}
