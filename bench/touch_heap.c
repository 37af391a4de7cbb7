/* Benchmark subject: MiB of heap, first half random bytes, second half
 * zeros (touched). Prints "ready", then waits until GO_FILE exists, prints
 * a checksum of the heap and exits.  touch_heap MIB GO_FILE */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 1024, n = mib << 20;
	const char *go = argc > 2 ? argv[2] : "go";
	uint64_t *heap = malloc(n), x = 88172645463325252ull, sum = 0;

	if (!heap)
		return 1;
	for (size_t i = 0; i < n / 16; i++) { /* xorshift: incompressible */
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		heap[i] = x;
	}
	memset((char *)heap + n / 2, 0, n / 2); /* touched, zero */
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
