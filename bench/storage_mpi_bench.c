/* One collective checkpoint write of synthetic images, timed:
 *   mpirun -np N storage_mpi_bench DIR MIB
 * Every rank holds MIB MiB of non-zero pseudo-random pages (runs of 4 MiB)
 * and the ranks write and commit one generation with container_write_mpi
 * and container_commit_mpi. Prints, from rank 0, the seconds from the
 * first rank starting to the last rank done, the file's bytes and which
 * road /memory took; then removes the file. Not a test: it reports. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpi.h>

#include "storage/container.h"
#include "storage/container_internal.h"

#define RUN_PAGES 1024u

int main(int argc, char **argv)
{
	struct ck_generation_info info;
	struct ck_image img;
	struct ck_region region;
	char tmp[4096], final[4096];
	uint64_t *p, x;
	size_t len, nruns;
	double t0, t1, dt, worst = 0;
	int rank, size, rc, all = 0;
	struct stat st;

	if (MPI_Init(&argc, &argv) != MPI_SUCCESS)
		return 2;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (argc != 3 || atoi(argv[2]) <= 0) {
		if (!rank)
			fprintf(stderr, "usage: mpirun -np N storage_mpi_bench DIR MIB\n");
		MPI_Finalize();
		return 2;
	}
	len = (size_t)atoi(argv[2]) << 20;
	nruns = (len / CK_PAGE_SIZE + RUN_PAGES - 1) / RUN_PAGES;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || storage_init()) {
		perror("storage_mpi_bench: mmap");
		MPI_Abort(MPI_COMM_WORLD, 2);
	}
	x = 0x9e3779b97f4a7c15ull * (uint64_t)(rank + 1);
	for (size_t i = 0; i < len / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = x | 1;
	}

	memset(&img, 0, sizeof img);
	img.proc.pid = (uint64_t)getpid();
	img.nruns = nruns;
	img.runs = calloc(nruns, sizeof *img.runs);
	if (!img.runs)
		MPI_Abort(MPI_COMM_WORLD, 2);
	for (size_t i = 0; i < nruns; i++) {
		uint64_t off = (uint64_t)i * RUN_PAGES * CK_PAGE_SIZE, n = RUN_PAGES;

		if (off + n * CK_PAGE_SIZE > len)
			n = (len - off) / CK_PAGE_SIZE;
		img.runs[i] = (struct ck_page_run){ (uint64_t)(uintptr_t)p + off, n, 0 };
	}
	region = (struct ck_region){ .start = (uint64_t)(uintptr_t)p,
	                             .end = (uint64_t)(uintptr_t)p + len, .prot = 3,
	                             .kind = CK_REGION_ANON, .run_count = nruns };
	img.regions = &region;
	img.nregions = 1;

	memset(&info, 0, sizeof info);
	info.generation = 1;
	info.nranks = (uint64_t)size;
	strcpy(info.reason, "command");
	strcpy(info.mpi_flavour, "bench");
	strcpy(info.program, "/bench");
	strcpy(info.runtime, "/bench");

	MPI_Barrier(MPI_COMM_WORLD);
	t0 = MPI_Wtime();
	rc = container_write_mpi(MPI_COMM_WORLD, argv[1], &info, &img, NULL, tmp, sizeof tmp);
	if (!rc)
		rc = container_commit_mpi(MPI_COMM_WORLD, argv[1], 1, tmp);
	t1 = MPI_Wtime();
	dt = t1 - t0;
	MPI_Reduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
	MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
	if (!rank) {
		snprintf(final, sizeof final, "%s/ckpt-%06d.h5", argv[1], 1);
		if (rc || stat(final, &st) < 0) {
			fprintf(stderr, "storage_mpi_bench: %s\n", rc ? container_error() : final);
			MPI_Abort(MPI_COMM_WORLD, 1);
		}
		printf("%.3f %lld %s\n", worst, (long long)st.st_size,
		       ck_mpio_direct_last ? "direct" : "h5dwrite");
		unlink(final);
	}
	img.regions = NULL;
	img.nregions = 0;
	ck_image_free(&img);
	munmap(p, len);
	MPI_Finalize();
	return all ? 1 : 0;
}
