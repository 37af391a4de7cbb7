/* The container of a job without MPI (storage/container_write_group.c):
 * three members' images written in turn into one file, read back member by
 * member (tables, page data, a deleted file's and a socket's data), with
 * and without compression; a slice is refused into a file that is not the
 * one member 0 created. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/container.h"

#define NMEMBERS 3
#define MAXRUNS 4

/* per member: run sizes in pages (a member without page data, too) */
static const uint64_t pages[NMEMBERS][MAXRUNS] = {{3, 300, 1, 0}, {0, 0, 0, 0}, {700, 2, 257, 9}};

struct member {
	struct ck_image img;
	void *bufs[MAXRUNS];
	uint8_t sock[777];
};

struct fixture {
	char dir[64];
	struct ck_generation_info info;
	struct member m[NMEMBERS];
};

static void fill(void *p, size_t n, uint64_t seed)
{
	uint8_t *b = p;
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 7;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (uint8_t)(x >> 32);
	}
}

static void build_member(struct member *m, int k)
{
	struct ck_image *img = &m->img;
	size_t nruns = 0;

	memset(img, 0, sizeof *img);
	img->proc.pid = 1000 + (uint64_t)k;
	img->proc.umask = 022;
	img->proc.link_epoch = (uint64_t)k;
	img->proc.upper_size = (uint64_t)(k + 1) << 30;
	for (unsigned i = 0; i < CK_NSIG; i++)
		img->proc.sig[i] = (struct ck_sigaction){ 0x1000 + i + (uint64_t)k, i, 0, (uint64_t)k };
	for (unsigned i = 0; i < CK_NRLIMITS; i++)
		img->proc.rlim[i] = (struct ck_rlimit){ 100 + i + (uint64_t)k, 1000 };
	img->proc.cwd = strdup(k == 1 ? "/home/u/member one" : "/home/u/w");
	img->proc.host = strdup("hostname");
	img->runs = calloc(MAXRUNS, sizeof *img->runs);
	assert_non_null(img->runs);
	for (size_t i = 0; i < MAXRUNS; i++) {
		if (!pages[k][i])
			continue;
		m->bufs[i] = aligned_alloc(CK_PAGE_SIZE, pages[k][i] * CK_PAGE_SIZE);
		assert_non_null(m->bufs[i]);
		fill(m->bufs[i], pages[k][i] * CK_PAGE_SIZE, (uint64_t)(10 * k) + i);
		img->runs[nruns++] = (struct ck_page_run){ (uint64_t)(uintptr_t)m->bufs[i], pages[k][i], 0 };
	}
	img->nruns = nruns;
	img->nregions = 1;
	img->regions = calloc(1, sizeof *img->regions);
	assert_non_null(img->regions);
	img->regions[0] = (struct ck_region){ .start = 0x10000000, .end = 0x20000000, .prot = 3,
	                                      .kind = CK_REGION_ANON, .run_first = 0,
	                                      .run_count = nruns };
	img->nthreads = 1 + (size_t)k;
	img->threads = calloc(img->nthreads, sizeof *img->threads);
	assert_non_null(img->threads);
	for (size_t t = 0; t < img->nthreads; t++)
		img->threads[t] = (struct ck_thread){ .tid = 1000 + (uint64_t)(k * 10) + t,
		                                      .is_main = t == 0 };
	/* a socket between members: its data are the bytes to send again */
	img->nfds = 2;
	img->fds = calloc(2, sizeof *img->fds);
	assert_non_null(img->fds);
	img->fds[0] = (struct ck_fd){ .fd = 0, .flags = 2, .kind = CK_FD_DEVICE,
	                              .path = strdup("/dev/null") };
	fill(m->sock, sizeof m->sock, 500 + (uint64_t)k);
	img->fds[1] = (struct ck_fd){ .fd = 7, .flags = 04002, .kind = CK_FD_SOCKET,
	                              .data_len = k == 1 ? 0 : sizeof m->sock,
	                              .path = strdup("job-socket:00") };
	if (k != 1) {
		img->fds[1].data = malloc(sizeof m->sock);
		assert_non_null(img->fds[1].data);
		memcpy(img->fds[1].data, m->sock, sizeof m->sock);
	}
}

static int setup(void **state)
{
	static const char argv[] = "prog\0a\0";
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	strcpy(f->dir, "/tmp/ckptmpi-group-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->info.generation = 5;
	f->info.nranks = NMEMBERS;
	f->info.created_unix = 1700000000;
	strcpy(f->info.reason, "signal");
	strcpy(f->info.mpi_flavour, "job");
	strcpy(f->info.program, "/usr/bin/prog");
	memcpy(f->info.argv, argv, sizeof argv);
	f->info.argv_len = sizeof argv;
	for (int k = 0; k < NMEMBERS; k++)
		build_member(&f->m[k], k);
	*state = f;
	return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	for (int k = 0; k < NMEMBERS; k++) {
		for (size_t i = 0; i < MAXRUNS; i++)
			free(f->m[k].bufs[i]);
		ck_image_free(&f->m[k].img);
	}
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	unsetenv("CKPTMPI_COMPRESS");
	free(f);
	return 0;
}

/* the members' turns, as core/job_group.c takes them */
static void write_job(struct fixture *f, char *final, size_t len)
{
	struct container_counts all[NMEMBERS];
	char tmp[4096];
	uint64_t ino = 0;

	for (int k = 0; k < NMEMBERS; k++)
		if (container_group_measure(f->dir, (uint64_t)k, &f->m[k].img, &all[k]))
			fail_msg("measure member %d: %s", k, container_error());
	if (container_group_create(f->dir, &f->info, all, tmp, sizeof tmp, &ino))
		fail_msg("create: %s", container_error());
	assert_true(ino != 0);
	for (int k = 0; k < NMEMBERS; k++)
		if (container_group_write_slice(tmp, ino, NMEMBERS, (uint64_t)k, all, &f->m[k].img, NULL))
			fail_msg("slice of member %d: %s", k, container_error());
	/* not complete before member 0 finishes: a reader refuses it */
	{
		struct container_reader *r = container_open(tmp);
		assert_null(r);
	}
	if (container_group_finish(tmp, ino))
		fail_msg("finish: %s", container_error());
	if (container_commit(f->dir, f->info.generation, tmp))
		fail_msg("commit: %s", container_error());
	snprintf(final, len, "%s/ckpt-%06llu.h5", f->dir, (unsigned long long)f->info.generation);
}

static void check_job(struct fixture *f, const char *path)
{
	struct container_reader *r = container_open(path);
	struct ck_generation_info info;

	if (!r)
		fail_msg("open: %s", container_error());
	assert_int_equal(container_info(r, &info), 0);
	assert_int_equal(info.nranks, NMEMBERS);
	assert_string_equal(info.mpi_flavour, "job");
	assert_int_equal(info.generation, f->info.generation);
	for (int k = 0; k < NMEMBERS; k++) {
		struct member *m = &f->m[k];
		struct ck_image back;
		void *dst[MAXRUNS] = {0};

		if (container_read_image(r, (uint64_t)k, &back))
			fail_msg("member %d: %s", k, container_error());
		assert_int_equal(back.proc.pid, m->img.proc.pid);
		assert_int_equal(back.proc.upper_size, m->img.proc.upper_size);
		assert_memory_equal(back.proc.sig, m->img.proc.sig, sizeof back.proc.sig);
		assert_memory_equal(back.proc.rlim, m->img.proc.rlim, sizeof back.proc.rlim);
		assert_string_equal(back.proc.cwd, m->img.proc.cwd);
		assert_int_equal(back.nthreads, m->img.nthreads);
		assert_memory_equal(back.threads, m->img.threads, back.nthreads * sizeof *back.threads);
		assert_int_equal(back.nruns, m->img.nruns);
		assert_int_equal(back.nfds, 2);
		assert_int_equal(back.fds[1].kind, CK_FD_SOCKET);
		assert_int_equal(back.fds[1].flags, 04002);
		assert_string_equal(back.fds[1].path, "job-socket:00");
		for (size_t i = 0; i < back.nruns; i++) {
			dst[i] = aligned_alloc(CK_PAGE_SIZE, back.runs[i].npages * CK_PAGE_SIZE);
			assert_non_null(dst[i]);
			memset(dst[i], 0x5a, back.runs[i].npages * CK_PAGE_SIZE);
			back.runs[i].addr = (uint64_t)(uintptr_t)dst[i];
		}
		if (container_read_pages(r, (uint64_t)k, &back, 1, NULL))
			fail_msg("pages of member %d: %s", k, container_error());
		for (size_t i = 0; i < back.nruns; i++) {
			assert_memory_equal(dst[i], (void *)(uintptr_t)m->img.runs[i].addr,
			                    back.runs[i].npages * CK_PAGE_SIZE);
			free(dst[i]);
			back.runs[i].addr = 0;
		}
		if (k == 1) {
			assert_int_equal(back.fds[1].data_len, 0);
		} else {
			assert_int_equal(back.fds[1].data_len, sizeof m->sock);
			assert_non_null(back.fds[1].data);
			assert_memory_equal(back.fds[1].data, m->sock, sizeof m->sock);
		}
		ck_image_free(&back);
	}
	container_close(r);
}

static void test_roundtrip(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	write_job(f, path, sizeof path);
	check_job(f, path);
}

static void test_roundtrip_deflate(void **state)
{
	struct fixture *f = *state;
	char path[4096];

	setenv("CKPTMPI_COMPRESS", "deflate", 1);
	write_job(f, path, sizeof path);
	check_job(f, path);
}

/* A member is handed a file that is not the temporary member 0 made. */
static void test_wrong_file(void **state)
{
	struct fixture *f = *state;
	struct container_counts all[NMEMBERS];
	char tmp[4096];
	uint64_t ino = 0;

	for (int k = 0; k < NMEMBERS; k++)
		assert_int_equal(container_group_measure(f->dir, (uint64_t)k, &f->m[k].img, &all[k]), 0);
	assert_int_equal(container_group_create(f->dir, &f->info, all, tmp, sizeof tmp, &ino), 0);
	assert_int_equal(container_group_write_slice(tmp, ino + 1, NMEMBERS, 1, all, &f->m[1].img,
	                                             NULL), -1);
	if (!strstr(container_error(), "not the temporary member 0 created"))
		fail_msg("unexpected error: %s", container_error());
	assert_int_equal(container_group_write_slice(tmp, ino, NMEMBERS, NMEMBERS, all,
	                                             &f->m[1].img, NULL), -1);
	unlink(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_deflate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_file, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
