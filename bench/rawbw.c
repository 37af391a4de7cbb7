/* Raw bandwidth of a directory, the baseline for checkpoint and restart:
 *   rawbw write FILE MIB   write MIB of random data in 8 MiB blocks + fsync
 *   rawbw read FILE        read it back (after evicting it from the cache)
 *   rawbw warm FILE        read it twice, time the second (from the cache)
 *   rawbw evict FILE       drop FILE's pages from the page cache
 * Prints seconds. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLK (8u << 20)

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int evict(const char *path)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return perror(path), 1;
	fdatasync(fd);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t *buf = aligned_alloc(4096, BLK), x = 0x9e3779b97f4a7c15ull;
	double t0;
	int fd;

	if (argc < 3 || !buf)
		return fprintf(stderr, "usage: rawbw write FILE MIB | read FILE | warm FILE | evict FILE\n"), 2;
	if (!strcmp(argv[1], "evict"))
		return evict(argv[2]);
	for (size_t i = 0; i < BLK / 8; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		buf[i] = x;
	}
	if (!strcmp(argv[1], "write") && argc > 3) {
		size_t n = strtoull(argv[3], NULL, 10) << 20;
		fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0)
			return perror(argv[2]), 1;
		t0 = now();
		for (size_t done = 0; done < n; done += BLK)
			if (write(fd, buf, BLK) != BLK)
				return perror("write"), 1;
		fsync(fd);
		printf("%.3f\n", now() - t0);
		close(fd);
		return evict(argv[2]);
	}
	if (!strcmp(argv[1], "read") || !strcmp(argv[1], "warm")) {
		int passes = !strcmp(argv[1], "warm") ? 2 : 1;
		ssize_t r = 0;

		evict(argv[2]);
		for (int p = 0; p < passes; p++) {
		fd = open(argv[2], O_RDONLY);
		if (fd < 0)
			return perror(argv[2]), 1;
		t0 = now();
		while ((r = read(fd, buf, BLK)) > 0)
			;
		if (p == passes - 1)
			printf("%.3f\n", now() - t0);
		close(fd);
		}
		return r < 0;
	}
	return 2;
}
