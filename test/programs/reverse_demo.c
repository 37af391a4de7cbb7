/* reverse_demo: a small program for ckptmpi debug's reverse commands and
 * its deterministic replay (test/e2e/debug_reverse*.sh, bench/debug_bench.sh).
 *
 *   reverse_demo [N=8] [STRAY=5] [PAD_MIB=0]
 *
 * Reads a seed (one line) from standard input and the time from
 * CLOCK_MONOTONIC, then for i = 1..N: v = combine(i, seed) = i*i + seed,
 * acc.sum += v, and the time since the start goes to elapsed[i]. At
 * iteration STRAY a planted bug overwrites acc.sum. With `extra` set (by a
 * debugger) iteration `extra` asks getrandom() for a byte besides: a call
 * the recorded run did not make. PAD_MIB: that much memory, touched (a
 * bigger image for the benchmark).
 *
 * Output: "seed=S", then "i v=V sum=SUM" per iteration, then "done sum=SUM". */
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

struct acc {
	long sum;
	long last;
};

struct acc acc;
long elapsed[64];
long extra = -1;
char *pad;

static long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static long square(long x)
{
	long r = x * x;
	return r;
}

static long combine(long i, long seed)
{
	long s = square(i);
	long v = s + seed;
	return v;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 8;
	long stray = argc > 2 ? atol(argv[2]) : 5;
	long mib = argc > 3 ? atol(argv[3]) : 0;
	char line[64];
	long seed = 0, t0;

	if (mib > 0) {
		pad = malloc((size_t)mib << 20);
		if (pad)
			memset(pad, 1, (size_t)mib << 20);
	}
	if (isatty(0)) /* a prompt: whoever types knows the program now reads */
		fprintf(stderr, "seed? ");
	if (fgets(line, sizeof line, stdin))
		seed = atol(line);
	t0 = now_ns();
	printf("seed=%ld\n", seed);
	for (long i = 1; i <= n; i++) {
		long v = combine(i, seed);
		acc.sum += v;
		acc.last = v;
		if (i == stray)
			acc.sum = -1; /* the planted bug */
		if (i == extra) {
			unsigned char b;
			if (getrandom(&b, 1, 0) == 1)
				acc.last += b & 1;
		}
		elapsed[i % 64] = now_ns() - t0;
		printf("%ld v=%ld sum=%ld\n", i, v, acc.sum);
	}
	printf("done sum=%ld\n", acc.sum);
	return 0;
}
