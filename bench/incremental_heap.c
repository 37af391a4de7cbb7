/* Benchmark subject of bench/incremental_bench.sh: MIB MiB of random
 * bytes, then "ready"; once DIR/change exists it rewrites one word in
 * PCT percent of its pages (spread over the heap) and prints "changed N";
 * once DIR/go exists it prints a checksum of the heap and the time of
 * that pass, and exits.
 *   incremental_heap MIB PCT DIR */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void wait_for(const char *dir, const char *name)
{
	char path[4200];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	while (access(path, F_OK))
		usleep(5000);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024, n = mib << 20;
	double pct = argc > 2 ? atof(argv[2]) : 1.0;
	const char *dir = argc > 3 ? argv[3] : ".";
	uint64_t *heap = malloc(n), x = 88172645463325252ull, sum = 0;
	size_t pages = n / 4096, changed = 0;
	struct timespec a, b;

	if (!heap)
		return 1;
	for (size_t i = 0; i < n / 8; i++) { /* xorshift: incompressible */
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		heap[i] = x;
	}
	printf("ready\n");
	fflush(stdout);
	wait_for(dir, "change");
	/* page p is changed when its hash falls below pct: spread, about pct % */
	for (size_t p = 0; p < pages; p++)
		if ((double)((p * 2654435761u) % 100000u) < pct * 1000.0) {
			heap[p * 512 + (p % 512)] ^= 0x5a5a5a5a5a5a5a5aull;
			changed++;
		}
	printf("changed %zu of %zu pages\n", changed, pages);
	fflush(stdout);
	wait_for(dir, "go");
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (size_t i = 0; i < n / 8; i++)
		sum = sum * 31 + heap[i];
	clock_gettime(CLOCK_MONOTONIC, &b);
	/* the bench subtracts the pass's time from the restart's */
	printf("checksum %016llx pass %.3f\n", (unsigned long long)sum,
	       (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}
