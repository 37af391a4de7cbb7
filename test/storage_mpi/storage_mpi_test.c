/* The collective container writer of MPI jobs, under mpirun -np N (N >= 2):
 *
 *   storage_mpi_test DIR
 *
 * Every rank builds an image of its own (page runs of rank-specific bytes
 * at real addresses of its memory, of different sizes per rank, rank 1
 * with no page data at all; threads, fds, timers, strings), the ranks
 * write generations together with container_write_mpi, commit them, and
 * every rank opens each committed file at the same moment, read-only,
 * and checks that its image and its pages come back exactly, placed in
 * memory or only verified. Generation 1 takes the direct road for /memory,
 * 2 collective H5Dwrite calls (CKPTMPI_MPIO_DIRECT=0), 3 deflate.
 * Failures (one rank's invalid image, one rank that cannot reach the
 * file, ranks disagreeing on the generation, an existing generation) must
 * fail on every rank alike and leave nothing behind.
 *
 * For the shell around it, it also leaves DIR/window (a generation with a
 * region of rank N-1 in the runtime's memory window) and DIR/corrupt (a
 * copy of generation 1 with a byte of rank N-1's page data flipped), which
 * `ckptmpi verify` must refuse naming that rank.
 *
 * Exit 0 when every rank passed; messages name the rank. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mpi.h>

#include "core/lowmem.h"
#include "storage/container.h"
#include "storage/container_internal.h"

static int rank, size, failures;
static uint64_t progress_last, progress_total;
static unsigned progress_calls;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	failures++;
	fprintf(stderr, "storage_mpi: rank %d: FAIL: ", rank);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void die(const char *what) __attribute__((noreturn));
static void die(const char *what)
{
	fprintf(stderr, "storage_mpi: rank %d: %s: %s\n", rank, what, strerror(errno));
	MPI_Abort(MPI_COMM_WORLD, 2);
	exit(2);
}

static void fill_random(uint8_t *b, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)(x >> 32);
	}
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		die("strdup");
	return p;
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (!p)
		die("calloc");
	return p;
}

/* Pages of this rank: where the runs live in this process. */
struct pages {
	uint8_t *map;
	size_t len;
};

/* Rank r % 3 == 0: a few runs, large and small, over 64 MiB in all (more
 * than one staging round); 1: no page data; 2: hundreds of single pages
 * with holes between them (many pieces a chunk) and a run across chunks. */
static void build_image(struct ck_image *img, struct pages *pg, int r)
{
	static const uint64_t big[] = { 1, 3, 700, 5, 16400, 2, 1100 };
	uint64_t seed = 1000u * (uint64_t)(r + 1);
	char buf[128];

	memset(img, 0, sizeof *img);
	img->proc.pid = 4000 + (uint64_t)r;
	img->proc.umask = 022;
	img->proc.tid_offset = 0x2d0;
	img->proc.rseq_offset = -192 - r;
	img->proc.rseq_size = 32;
	img->proc.vdso_start = 0x7fff0000 + (uint64_t)r * 0x10000;
	img->proc.vdso_end = img->proc.vdso_start + 0x2000;
	img->proc.link_epoch = (uint64_t)r;
	img->proc.upper_size = (1ull << 30) + (uint64_t)r;
	for (unsigned i = 0; i < CK_NSIG; i++)
		img->proc.sig[i] = (struct ck_sigaction){ 0x1000 + i + (uint64_t)r, i * 3, 0x2000 + i,
		                                          1ull << ((i + (unsigned)r) % 64) };
	for (unsigned i = 0; i < CK_NRLIMITS; i++)
		img->proc.rlim[i] = (struct ck_rlimit){ 100 + i + (uint64_t)r, UINT64_MAX - i };
	for (unsigned i = 0; i < 3; i++)
		img->proc.itimer[i] = (struct ck_itimer){ 1000 * i + (uint64_t)r, 7 * i };
	snprintf(buf, sizeof buf, "/home/user/rank %d", r);
	img->proc.cwd = xstrdup(buf);
	snprintf(buf, sizeof buf, "node-%d.cluster.example", r);
	img->proc.host = xstrdup(buf);

	memset(pg, 0, sizeof *pg);
	if (r % 3 == 0) {
		uint64_t total = 0, at = 0;

		img->nruns = sizeof big / sizeof big[0];
		for (size_t i = 0; i < img->nruns; i++)
			total += big[i] + 1;
		pg->len = total * CK_PAGE_SIZE;
		img->runs = xcalloc(img->nruns, sizeof *img->runs);
		pg->map = mmap(NULL, pg->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (pg->map == MAP_FAILED)
			die("mmap");
		for (size_t i = 0; i < img->nruns; i++) {
			/* a page of hole between runs */
			img->runs[i] = (struct ck_page_run){ (uint64_t)(uintptr_t)(pg->map + at), big[i], 0 };
			fill_random(pg->map + at, big[i] * CK_PAGE_SIZE, seed + i);
			at += (big[i] + 1) * CK_PAGE_SIZE;
		}
	} else if (r % 3 == 2) {
		const size_t singles = 600, long_run = 300 + (size_t)r;

		img->nruns = singles + 1;
		pg->len = (2 * singles + long_run) * CK_PAGE_SIZE;
		img->runs = xcalloc(img->nruns, sizeof *img->runs);
		pg->map = mmap(NULL, pg->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (pg->map == MAP_FAILED)
			die("mmap");
		fill_random(pg->map, pg->len, seed);
		for (size_t i = 0; i < singles; i++)
			img->runs[i] = (struct ck_page_run){ (uint64_t)(uintptr_t)(pg->map + 2 * i * CK_PAGE_SIZE),
			                                     1, 0 };
		img->runs[singles] = (struct ck_page_run){
			(uint64_t)(uintptr_t)(pg->map + 2 * singles * CK_PAGE_SIZE), long_run, 0 };
	}

	img->nregions = 3;
	img->regions = xcalloc(3, sizeof *img->regions);
	img->regions[0] = (struct ck_region){ .start = 0x10000000 + (uint64_t)r * 0x1000000,
	                                      .end = 0x10800000 + (uint64_t)r * 0x1000000,
	                                      .prot = 3, .kind = CK_REGION_ANON, .run_first = 0,
	                                      .run_count = img->nruns ? 1 : 0 };
	img->regions[1] = (struct ck_region){ .start = 0x7f0000000000, .end = 0x7f0000400000,
	                                      .prot = 5, .kind = CK_REGION_FILE_PRIVATE,
	                                      .file_offset = 8192, .file_size = 123456 + (uint64_t)r,
	                                      .file_mtime_ns = 1700000000123456789ull,
	                                      .run_first = img->nruns ? 1 : 0,
	                                      .run_count = img->nruns ? img->nruns - 1 : 0,
	                                      .path = xstrdup("/usr/lib/libfoo.so.1") };
	img->regions[2] = (struct ck_region){ .start = 0x7f0000400000, .end = 0x7f0000600000,
	                                      .prot = 1, .kind = CK_REGION_FILE_SHARED,
	                                      .run_first = img->nruns, .run_count = 0,
	                                      .path = xstrdup("/usr/lib/libfoo.so.1") };

	img->nthreads = 1 + (size_t)(r % 3);
	img->threads = xcalloc(img->nthreads, sizeof *img->threads);
	for (size_t t = 0; t < img->nthreads; t++) {
		img->threads[t] = (struct ck_thread){ .tid = 4000 + (uint64_t)r * 100 + t, .is_main = !t,
		                                      .fs_base = 0x7f1234 + t, .uc_addr = 0x7ffe0000,
		                                      .robust_head = 0x7f5678, .robust_len = 24 };
		for (unsigned i = 0; i < CK_NGREGS; i++)
			img->threads[t].gregs[i] = 0xabc000 + i + (uint64_t)r;
	}

	img->nfds = 2;
	img->fds = xcalloc(2, sizeof *img->fds);
	img->fds[0] = (struct ck_fd){ .fd = 0, .flags = 2, .kind = CK_FD_DEVICE,
	                              .path = xstrdup("/dev/null") };
	if (r % 3 == 2)
		/* no saved file contents on this rank */
		img->fds[1] = (struct ck_fd){ .fd = 5, .flags = 0100002, .offset = -1, .kind = CK_FD_FILE,
		                              .data_len = 12345, .path = xstrdup("/var/log/app.log") };
	else {
		size_t n = r % 3 ? 70000 : 10000;

		img->fds[1] = (struct ck_fd){ .fd = 3, .flags = 02, .offset = 777 + r,
		                              .kind = CK_FD_DELETED, .data_len = n,
		                              .path = xstrdup("/tmp/scratch (deleted)") };
		img->fds[1].data = xcalloc(n, 1);
		fill_random(img->fds[1].data, n, seed + 99);
	}

	if (r % 3 == 1) {
		img->ntimers = 2;
		img->timers = xcalloc(2, sizeof *img->timers);
		for (int i = 0; i < 2; i++)
			img->timers[i] = (struct ck_posix_timer){ .id = i + 1, .clock = 1, .notify = 4,
			                                          .signo = 14, .target_tid = 4000 + r,
			                                          .sigval = 0xdead, .interval_ns = 5000000,
			                                          .value_ns = 1234 };
	}
}

static void build_info(struct ck_generation_info *info, uint64_t gen)
{
	static const char argv[] = "prog\0--size\0 12 \0";

	memset(info, 0, sizeof *info);
	info->generation = gen;
	info->parent = gen ? gen - 1 : 0;
	info->nranks = (uint64_t)size;
	info->created_unix = 1700000000;
	strcpy(info->reason, "command");
	strcpy(info->mpi_flavour, "test");
	strcpy(info->program, "/usr/bin/prog");
	strcpy(info->runtime, "/usr/lib/ckptmpi/runtime");
	info->runtime_id = 0x1234567890abcdefull;
	memcpy(info->argv, argv, sizeof argv);
	info->argv_len = sizeof argv;
	info->interval = 60;
}

static int same_string(const char *a, const char *b)
{
	return a ? b && !strcmp(a, b) : !b;
}

static void compare_images(const struct ck_image *a, const struct ck_image *b, int r)
{
	check(a->proc.pid == b->proc.pid && a->proc.umask == b->proc.umask &&
	      a->proc.tid_offset == b->proc.tid_offset && a->proc.rseq_offset == b->proc.rseq_offset &&
	      a->proc.rseq_size == b->proc.rseq_size && a->proc.vdso_start == b->proc.vdso_start &&
	      a->proc.vdso_end == b->proc.vdso_end && a->proc.link_epoch == b->proc.link_epoch &&
	      a->proc.upper_size == b->proc.upper_size, "rank %d: process facts differ", r);
	check(!memcmp(a->proc.sig, b->proc.sig, sizeof a->proc.sig) &&
	      !memcmp(a->proc.rlim, b->proc.rlim, sizeof a->proc.rlim) &&
	      !memcmp(a->proc.itimer, b->proc.itimer, sizeof a->proc.itimer),
	      "rank %d: sigactions, rlimits or itimers differ", r);
	check(same_string(a->proc.cwd, b->proc.cwd) && same_string(a->proc.host, b->proc.host),
	      "rank %d: cwd or host differ", r);
	check(a->nregions == b->nregions, "rank %d: %zu regions, read %zu", r, a->nregions,
	      b->nregions);
	for (size_t i = 0; i < a->nregions && i < b->nregions; i++) {
		const struct ck_region *x = &a->regions[i], *y = &b->regions[i];

		check(x->start == y->start && x->end == y->end && x->prot == y->prot &&
		      x->kind == y->kind && x->file_offset == y->file_offset &&
		      x->file_size == y->file_size && x->file_mtime_ns == y->file_mtime_ns &&
		      x->run_first == y->run_first && x->run_count == y->run_count &&
		      same_string(x->path, y->path), "rank %d: region %zu differs", r, i);
	}
	check(a->nruns == b->nruns && (!a->nruns || !memcmp(a->runs, b->runs, a->nruns * sizeof *a->runs)),
	      "rank %d: runs differ", r);
	check(a->nthreads == b->nthreads &&
	      !memcmp(a->threads, b->threads, a->nthreads * sizeof *a->threads),
	      "rank %d: threads differ", r);
	check(a->ntimers == b->ntimers &&
	      (!a->ntimers || !memcmp(a->timers, b->timers, a->ntimers * sizeof *a->timers)),
	      "rank %d: timers differ", r);
	check(a->nfds == b->nfds, "rank %d: %zu fds, read %zu", r, a->nfds, b->nfds);
	for (size_t i = 0; i < a->nfds && i < b->nfds; i++) {
		const struct ck_fd *x = &a->fds[i], *y = &b->fds[i];

		check(x->fd == y->fd && x->flags == y->flags && x->offset == y->offset &&
		      x->kind == y->kind && x->data_offset == y->data_offset &&
		      x->data_len == y->data_len && same_string(x->path, y->path),
		      "rank %d: fd %zu differs", r, i);
	}
	check(a->memory_bytes == b->memory_bytes && a->filedata_bytes == b->filedata_bytes,
	      "rank %d: %llu/%llu bytes of pages/file data, read %llu/%llu", r,
	      (unsigned long long)a->memory_bytes, (unsigned long long)a->filedata_bytes,
	      (unsigned long long)b->memory_bytes, (unsigned long long)b->filedata_bytes);
}

static void on_progress(uint64_t done, uint64_t total)
{
	check(done <= total, "progress %llu of %llu", (unsigned long long)done,
	      (unsigned long long)total);
	progress_last = done;
	progress_total = total;
	progress_calls++;
}

static void gen_path(char *out, size_t len, const char *dir, uint64_t gen)
{
	int n = snprintf(out, len, "%s/ckpt-%06llu.h5", dir, (unsigned long long)gen);

	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		die(dir);
	}
}

/* No temporary files left in dir (rank 0 looks). */
static int temporaries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		die(dir);
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, ".ckpt-", 6))
			n++;
	closedir(d);
	return n;
}

static int all_ok(int ok)
{
	int all = 0;

	MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
	return all;
}

/* Write and commit generation gen; 0 when every rank succeeded. */
static int write_commit(const char *dir, struct ck_image *img, uint64_t gen, int expect_direct)
{
	struct ck_generation_info info;
	char tmp[4096], final[4096];
	struct stat st;
	int rc;

	build_info(&info, gen);
	progress_calls = 0;
	progress_last = progress_total = 1;
	rc = container_write_mpi(MPI_COMM_WORLD, dir, &info, img, on_progress, tmp, sizeof tmp);
	check(!rc, "generation %llu: container_write_mpi: %s", (unsigned long long)gen,
	      container_error());
	if (!all_ok(!rc))
		return -1;
	check(progress_calls > 0 && progress_last == img->memory_bytes &&
	      progress_total == img->memory_bytes,
	      "generation %llu: progress ended at %llu of %llu, expected %llu",
	      (unsigned long long)gen, (unsigned long long)progress_last,
	      (unsigned long long)progress_total, (unsigned long long)img->memory_bytes);
	check(ck_mpio_direct_last == expect_direct, "generation %llu: /memory %s, expected %s",
	      (unsigned long long)gen, ck_mpio_direct_last ? "placed directly" : "through H5Dwrite",
	      expect_direct ? "directly" : "through H5Dwrite");
	check(stat(tmp, &st) == 0 && (st.st_mode & 0777) == 0600,
	      "generation %llu: temporary %s missing or not mode 0600", (unsigned long long)gen, tmp);
	rc = container_commit_mpi(MPI_COMM_WORLD, dir, gen, tmp);
	check(!rc, "generation %llu: container_commit_mpi: %s", (unsigned long long)gen,
	      container_error());
	gen_path(final, sizeof final, dir, gen);
	check(access(tmp, F_OK) < 0 && access(final, R_OK) == 0,
	      "generation %llu: commit left %s or made no %s", (unsigned long long)gen, tmp, final);
	return all_ok(!rc) ? 0 : -1;
}

/* Every rank opens the file at once and reads its own slice back: tables,
 * pages only verified, pages into a scratch mapping; and every rank's
 * tables, as restarts and tools do. */
static void read_back(const char *dir, uint64_t gen, const struct ck_image *orig,
                      const struct ck_counts *all)
{
	struct container_reader *r;
	struct ck_generation_info info;
	struct ck_image back;
	char final[4096];

	gen_path(final, sizeof final, dir, gen);
	MPI_Barrier(MPI_COMM_WORLD);
	if (!(r = container_open(final))) {
		check(0, "generation %llu: container_open: %s", (unsigned long long)gen,
		      container_error());
		return;
	}
	check(!container_info(r, &info) && info.nranks == (uint64_t)size &&
	      info.generation == gen && !strcmp(info.reason, "command") &&
	      info.argv_len == sizeof "prog\0--size\0 12 \0",
	      "generation %llu: attributes differ", (unsigned long long)gen);
	if (container_read_image(r, (uint64_t)rank, &back)) {
		check(0, "generation %llu: container_read_image: %s", (unsigned long long)gen,
		      container_error());
		container_close(r);
		return;
	}
	compare_images(orig, &back, rank);

	/* verified only, and the deleted file's contents */
	check(!container_read_pages(r, (uint64_t)rank, &back, 0, NULL),
	      "generation %llu: container_read_pages (verify): %s", (unsigned long long)gen,
	      container_error());
	for (size_t i = 0; i < back.nfds && i < orig->nfds; i++)
		check(orig->fds[i].kind != CK_FD_DELETED ||
		      (back.fds[i].data && !memcmp(back.fds[i].data, orig->fds[i].data,
		                                   orig->fds[i].data_len)),
		      "generation %llu: fd %zu contents differ", (unsigned long long)gen, i);

	/* into a scratch mapping at other addresses */
	if (back.memory_bytes) {
		uint8_t *scratch = mmap(NULL, back.memory_bytes, PROT_READ | PROT_WRITE,
		                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		uint64_t at = 0;

		if (scratch == MAP_FAILED)
			die("mmap");
		memset(scratch, 0x5a, back.memory_bytes);
		for (size_t i = 0; i < back.nruns; i++) {
			back.runs[i].addr = (uint64_t)(uintptr_t)(scratch + at);
			at += back.runs[i].npages * CK_PAGE_SIZE;
		}
		check(!container_read_pages(r, (uint64_t)rank, &back, 1, NULL),
		      "generation %llu: container_read_pages (to memory): %s", (unsigned long long)gen,
		      container_error());
		at = 0;
		for (size_t i = 0; i < back.nruns; i++) {
			uint64_t n = back.runs[i].npages * CK_PAGE_SIZE;

			check(!memcmp(scratch + at, (void *)(uintptr_t)orig->runs[i].addr, n),
			      "generation %llu: pages of run %zu differ", (unsigned long long)gen, i);
			at += n;
		}
		munmap(scratch, back.memory_bytes);
	}
	ck_image_free(&back);

	for (int k = 0; k < size; k++) {
		if (container_read_image(r, (uint64_t)k, &back)) {
			check(0, "generation %llu: rank %d's tables: %s", (unsigned long long)gen, k,
			      container_error());
			continue;
		}
		check(back.nregions == all[k].regions && back.nruns == all[k].runs &&
		      back.nthreads == all[k].threads && back.nfds == all[k].fds &&
		      back.ntimers == all[k].timers && back.memory_bytes == all[k].memory,
		      "generation %llu: rank %d's tables have other sizes", (unsigned long long)gen, k);
		ck_image_free(&back);
	}
	container_close(r);
}

/* A write that must fail on every rank with the same message naming
 * `bad_rank` and `needle`, leaving no file of that generation. */
static void expect_failure(const char *what, const char *dir, const char *mydir,
                           struct ck_image *img, struct ck_generation_info *info, int bad_rank,
                           const char *needle)
{
	char tmp[4096], final[4096], want[64], msg[1024], first[1024];
	int rc = container_write_mpi(MPI_COMM_WORLD, mydir, info, img, NULL, tmp, sizeof tmp);

	snprintf(msg, sizeof msg, "%s", container_error());
	check(rc == -1, "%s: container_write_mpi succeeded", what);
	snprintf(want, sizeof want, "rank %d of %d", bad_rank, size);
	check(strstr(msg, want) && strstr(msg, needle), "%s: message \"%s\" lacks \"%s\" or \"%s\"",
	      what, msg, want, needle);
	snprintf(first, sizeof first, "%s", msg);
	MPI_Bcast(first, sizeof first, MPI_CHAR, 0, MPI_COMM_WORLD);
	check(!strcmp(first, msg), "%s: ranks got different messages: \"%s\" here, \"%s\" on rank 0",
	      what, msg, first);
	MPI_Barrier(MPI_COMM_WORLD);
	if (!rank) {
		gen_path(final, sizeof final, dir, info->generation);
		check(access(final, F_OK) < 0, "%s: %s exists", what, final);
		check(!temporaries(dir), "%s: a temporary file was left in %s", what, dir);
	}
	if (!rank)
		printf("storage_mpi: %s: every rank failed with: %s\n", what, msg);
}

static void failures_cases(const char *dir, struct ck_image *img)
{
	struct ck_generation_info info;
	char other[4096], tmp[4096];
	uint64_t saved;
	int bad = size - 1, rc;

	/* one rank's image is invalid */
	build_info(&info, 10);
	saved = img->nruns ? img->runs[0].addr : 0;
	if (rank == bad && img->nruns)
		img->runs[0].addr = 0;
	expect_failure("invalid image on one rank", dir, dir, img, &info, bad, "run 0 is invalid");
	if (rank == bad && img->nruns)
		img->runs[0].addr = saved;

	/* one rank cannot reach the file: its DIR is elsewhere */
	snprintf(other, sizeof other, "%s/elsewhere", dir);
	if (!rank && mkdir(other, 0700) < 0)
		die(other);
	MPI_Barrier(MPI_COMM_WORLD);
	build_info(&info, 11);
	expect_failure("file not reachable from one rank", dir, rank == bad ? other : dir, img, &info,
	               bad, "cannot open the file rank 0 created");
	if (!rank)
		check(!temporaries(other), "a temporary was left in %s", other);

	/* ranks disagree on the generation */
	build_info(&info, rank == bad ? 13 : 12);
	rc = container_write_mpi(MPI_COMM_WORLD, dir, &info, img, NULL, tmp, sizeof tmp);
	check(rc == -1 && strstr(container_error(), "different generations"),
	      "disagreeing generations: rc %d, \"%s\"", rc, container_error());

	/* nranks other than the communicator's size */
	build_info(&info, 14);
	info.nranks = (uint64_t)size + 1;
	rc = container_write_mpi(MPI_COMM_WORLD, dir, &info, img, NULL, tmp, sizeof tmp);
	check(rc == -1 && strstr(container_error(), "communicator has"),
	      "wrong nranks: rc %d, \"%s\"", rc, container_error());

	/* an existing generation is never replaced; its temporary stays for
	 * the caller (as container_commit does) */
	build_info(&info, 1);
	rc = container_write_mpi(MPI_COMM_WORLD, dir, &info, img, NULL, tmp, sizeof tmp);
	check(!rc, "rewriting generation 1: %s", container_error());
	if (!all_ok(!rc))
		return;
	rc = container_commit_mpi(MPI_COMM_WORLD, dir, 1, tmp);
	check(rc == -1 && strstr(container_error(), "already exists") &&
	      strstr(container_error(), "rank 0 of"),
	      "committing over generation 1: rc %d, \"%s\"", rc, container_error());
	MPI_Barrier(MPI_COMM_WORLD);
	if (!rank && unlink(tmp) < 0)
		die(tmp);
	MPI_Barrier(MPI_COMM_WORLD);
	if (!rank)
		check(!temporaries(dir), "temporaries left in %s", dir);
}

/* DIR/window: a generation whose last rank has a region in the runtime's
 * memory window. DIR/corrupt: generation 1 with a byte of the last rank's
 * page data flipped (located through HDF5, as a reader would). */
static void files_for_verify(const char *dir, struct ck_image *img)
{
	char sub[4096], src[4096], dst[4096], tmp[4096];
	struct ck_generation_info info;
	struct ck_region *saved = img->regions;
	size_t nsaved = img->nregions;
	int rc;

	snprintf(sub, sizeof sub, "%s/window", dir);
	if (!rank && mkdir(sub, 0700) < 0)
		die(sub);
	MPI_Barrier(MPI_COMM_WORLD);
	if (rank == size - 1) {
		img->regions = xcalloc(nsaved + 1, sizeof *img->regions);
		memcpy(img->regions, saved, nsaved * sizeof *saved);
		img->regions[nsaved] = (struct ck_region){ .start = LOWMEM_WINDOW_BASE,
		                                           .end = LOWMEM_WINDOW_BASE + 0x1000,
		                                           .prot = 3, .kind = CK_REGION_ANON,
		                                           .run_first = img->nruns };
		img->nregions = nsaved + 1;
	}
	build_info(&info, 1);
	rc = container_write_mpi(MPI_COMM_WORLD, sub, &info, img, NULL, tmp, sizeof tmp);
	check(!rc, "window generation: %s", container_error());
	if (all_ok(!rc))
		check(!container_commit_mpi(MPI_COMM_WORLD, sub, 1, tmp), "window commit: %s",
		      container_error());
	if (rank == size - 1) {
		free(img->regions);
		img->regions = saved;
		img->nregions = nsaved;
	}

	if (!rank) {
		hid_t f, ds, sp;
		hsize_t dims = 0, off;
		haddr_t addr = HADDR_UNDEF;
		unsigned mask;
		hsize_t csize;
		int in, out;
		char buf[1 << 16];
		ssize_t n;
		uint8_t b;

		snprintf(sub, sizeof sub, "%s/corrupt", dir);
		gen_path(src, sizeof src, dir, 1);
		gen_path(dst, sizeof dst, sub, 1);
		if (mkdir(sub, 0700) < 0 || (in = open(src, O_RDONLY)) < 0 ||
		    (out = open(dst, O_RDWR | O_CREAT | O_EXCL, 0600)) < 0)
			die(dst);
		while ((n = read(in, buf, sizeof buf)) > 0)
			if (write(out, buf, (size_t)n) != n)
				die(dst);
		close(in);
		/* the last chunk of /memory is the last rank's */
		if ((f = H5Fopen(dst, H5F_ACC_RDONLY, H5P_DEFAULT)) < 0 ||
		    (ds = H5Dopen2(f, "/memory", H5P_DEFAULT)) < 0 || (sp = H5Dget_space(ds)) < 0 ||
		    H5Sget_simple_extent_dims(sp, &dims, NULL) != 1 || dims < CK_MEMORY_CHUNK)
			die("locating /memory");
		off = dims - CK_MEMORY_CHUNK;
		if (H5Dget_chunk_info_by_coord(ds, &off, &mask, &addr, &csize) < 0 ||
		    addr == HADDR_UNDEF)
			die("locating the last chunk");
		H5Sclose(sp);
		H5Dclose(ds);
		H5Fclose(f);
		if (pread(out, &b, 1, (off_t)addr + 100) != 1)
			die(dst);
		b ^= 0x40;
		if (pwrite(out, &b, 1, (off_t)addr + 100) != 1 || close(out) < 0)
			die(dst);
	}
	MPI_Barrier(MPI_COMM_WORLD);
}

int main(int argc, char **argv)
{
	struct ck_image img;
	struct pages pg;
	struct ck_counts mine, *all;
	const char *dir;
	int ok;

	if (MPI_Init(&argc, &argv) != MPI_SUCCESS)
		return 2;
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (argc != 2 || size < 2) {
		if (!rank)
			fprintf(stderr, "usage: mpirun -np N storage_mpi_test DIR (N >= 2)\n");
		MPI_Finalize();
		return 2;
	}
	dir = argv[1];
	if (!rank && mkdir(dir, 0700) < 0 && errno != EEXIST)
		die(dir);
	if (storage_init())
		die("storage_init");
	build_image(&img, &pg, rank);
	all = xcalloc((size_t)size, sizeof *all);

	/* generation 1: /memory placed directly (one host here) */
	if (!write_commit(dir, &img, 1, 1)) {
		memset(&mine, 0, sizeof mine);
		mine = (struct ck_counts){ img.nregions, img.nruns, img.nthreads, img.nfds,
		                           img.ntimers, img.memory_bytes, img.filedata_bytes, 0 };
		MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, MPI_COMM_WORLD);
		read_back(dir, 1, &img, all);
	}
	/* 2: collective H5Dwrite calls */
	if (!rank)
		setenv("CKPTMPI_MPIO_DIRECT", "0", 1);
	if (!write_commit(dir, &img, 2, 0))
		read_back(dir, 2, &img, all);
	if (!rank)
		unsetenv("CKPTMPI_MPIO_DIRECT");
	/* 3: deflate (rank 0's setting rules) */
	if (!rank)
		setenv("CKPTMPI_COMPRESS", "deflate", 1);
	if (!write_commit(dir, &img, 3, 0))
		read_back(dir, 3, &img, all);
	/* 4, 5: zstd and lz4, HDF5's registered filters (ckptmpi's own) */
	if (!rank)
		setenv("CKPTMPI_COMPRESS", "zstd", 1);
	if (!write_commit(dir, &img, 4, 0))
		read_back(dir, 4, &img, all);
	if (!rank)
		setenv("CKPTMPI_COMPRESS", "lz4", 1);
	if (!write_commit(dir, &img, 5, 0))
		read_back(dir, 5, &img, all);
	/* 6: blosc, shuffled by 8-byte elements through HDF5's pipeline */
	if (!rank)
		setenv("CKPTMPI_COMPRESS", "blosc", 1);
	if (!write_commit(dir, &img, 6, 0))
		read_back(dir, 6, &img, all);
	if (!rank)
		unsetenv("CKPTMPI_COMPRESS");

	failures_cases(dir, &img);
	files_for_verify(dir, &img);

	ok = all_ok(!failures);
	if (!rank)
		printf("storage_mpi: %s (%d ranks)\n", ok ? "ok" : "FAILED", size);
	if (pg.map)
		munmap(pg.map, pg.len);
	ck_image_free(&img);
	free(all);
	MPI_Finalize();
	return ok ? 0 : 1;
}
