/* The HDF5 container: round trip of every table and of page data, and the
 * refusal of corrupt, truncated, foreign, incomplete and clashing files. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hdf5.h>

#include "storage/container.h"

/* sizes chosen to cover small runs (staged) and runs of several chunks
 * (read straight into place), spanning several 1 MiB chunks */
static const uint64_t run_pages[] = { 1, 3, 700, 5, 1100, 2 };
#define NRUNS (sizeof run_pages / sizeof run_pages[0])
#define FD_DATA_LEN 10000u

struct fixture {
	char dir[64];
	struct ck_generation_info info;
	struct ck_image img;
	void *bufs[NRUNS];
	unsigned progress_calls;
};

static struct fixture *current;

static void fill_random(void *p, size_t n, uint64_t seed)
{
	uint8_t *b = p;
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

	assert_non_null(p);
	return p;
}

static void build_image(struct fixture *f)
{
	struct ck_image *img = &f->img;

	memset(img, 0, sizeof *img);
	img->proc.pid = 4242;
	img->proc.umask = 022;
	img->proc.tid_offset = 0x2d0;
	img->proc.rseq_offset = -192;
	img->proc.rseq_size = 32;
	img->proc.vdso_start = 0x7fff0000;
	img->proc.vdso_end = 0x7fff2000;
	img->proc.link_epoch = 3;
	img->proc.upper_size = 1ull << 30;
	for (unsigned i = 0; i < CK_NSIG; i++)
		img->proc.sig[i] = (struct ck_sigaction){ 0x1000 + i, i * 3, 0x2000 + i, 1ull << (i % 64) };
	for (unsigned i = 0; i < CK_NRLIMITS; i++)
		img->proc.rlim[i] = (struct ck_rlimit){ 100 + i, UINT64_MAX - i };
	for (unsigned i = 0; i < 3; i++)
		img->proc.itimer[i] = (struct ck_itimer){ 1000 * i, 7 * i };
	img->proc.cwd = xstrdup("/home/user/work dir");
	img->proc.host = xstrdup("node-17.cluster.example");

	img->nruns = NRUNS;
	img->runs = calloc(NRUNS, sizeof *img->runs);
	assert_non_null(img->runs);
	for (size_t i = 0; i < NRUNS; i++) {
		size_t len = run_pages[i] * CK_PAGE_SIZE;

		f->bufs[i] = aligned_alloc(CK_PAGE_SIZE, len);
		assert_non_null(f->bufs[i]);
		fill_random(f->bufs[i], len, i + 1);
		img->runs[i] = (struct ck_page_run){ (uint64_t)(uintptr_t)f->bufs[i], run_pages[i], 0 };
	}

	img->nregions = 2;
	img->regions = calloc(2, sizeof *img->regions);
	assert_non_null(img->regions);
	img->regions[0] = (struct ck_region){ .start = 0x10000000, .end = 0x20000000, .prot = 3,
	                                      .kind = CK_REGION_ANON, .run_first = 0, .run_count = 3 };
	img->regions[1] = (struct ck_region){ .start = 0x7f0000000000, .end = 0x7f0000400000,
	                                      .prot = 5, .kind = CK_REGION_FILE_PRIVATE,
	                                      .file_offset = 8192, .file_size = 123456,
	                                      .file_mtime_ns = 1700000000123456789ull,
	                                      .run_first = 3, .run_count = 3,
	                                      .path = xstrdup("/usr/lib/libfoo.so.1") };

	img->nthreads = 1;
	img->threads = calloc(1, sizeof *img->threads);
	assert_non_null(img->threads);
	img->threads[0] = (struct ck_thread){ .tid = 4242, .is_main = 1, .fs_base = 0x7f1234,
	                                      .gs_base = 0, .uc_addr = 0x7ffe0000,
	                                      .robust_head = 0x7f5678, .robust_len = 24 };
	for (unsigned i = 0; i < CK_NGREGS; i++)
		img->threads[0].gregs[i] = 0xabc000 + i;

	img->nfds = 3;
	img->fds = calloc(3, sizeof *img->fds);
	assert_non_null(img->fds);
	img->fds[0] = (struct ck_fd){ .fd = 0, .flags = 2, .offset = 0, .kind = CK_FD_DEVICE,
	                              .path = xstrdup("/dev/null") };
	img->fds[1] = (struct ck_fd){ .fd = 3, .flags = 02, .offset = 777, .kind = CK_FD_DELETED,
	                              .data_len = FD_DATA_LEN, .path = xstrdup("/tmp/scratch (deleted)") };
	img->fds[1].data = malloc(FD_DATA_LEN);
	assert_non_null(img->fds[1].data);
	fill_random(img->fds[1].data, FD_DATA_LEN, 99);
	/* a regular file: data_len is only its size, nothing is saved */
	img->fds[2] = (struct ck_fd){ .fd = 5, .flags = 0100002, .offset = -1, .kind = CK_FD_FILE,
	                              .data_len = 12345, .path = xstrdup("/var/log/app.log") };

	img->ntimers = 1;
	img->timers = calloc(1, sizeof *img->timers);
	assert_non_null(img->timers);
	img->timers[0] = (struct ck_posix_timer){ .id = 1, .clock = 1, .notify = 4, .signo = 14,
	                                          .target_tid = 4242, .sigval = 0xdead,
	                                          .interval_ns = 5000000, .value_ns = 1234 };
}

static void build_info(struct ck_generation_info *info, uint64_t gen)
{
	static const char argv[] = "prog\0--size\0 12 \0";

	memset(info, 0, sizeof *info);
	info->generation = gen;
	info->parent = gen ? gen - 1 : 0;
	info->nranks = 1;
	info->created_unix = 1700000000;
	strcpy(info->reason, "interval");
	strcpy(info->mpi_flavour, "none");
	strcpy(info->program, "/usr/bin/prog");
	strcpy(info->runtime, "/usr/lib/ckptmpi/runtime");
	info->runtime_id = 0x1234567890abcdefull;
	memcpy(info->argv, argv, sizeof argv);
	info->argv_len = sizeof argv;
	info->interval = 60;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	strcpy(f->dir, "/tmp/ckptmpi-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	build_info(&f->info, 3);
	build_image(f);
	current = f;
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

	/* the page buffers are not the image's: ck_image_free must not see them */
	for (size_t i = 0; i < NRUNS; i++)
		free(f->bufs[i]);
	ck_image_free(&f->img);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	current = NULL;
	return 0;
}

static void on_progress(uint64_t done, uint64_t total)
{
	assert_true(done <= total);
	current->progress_calls++;
}

/* write and commit generation gen; returns the committed path */
static void write_commit(struct fixture *f, uint64_t gen, char *final, size_t len)
{
	char tmp[4096];

	f->info.generation = gen;
	if (container_write(f->dir, &f->info, &f->img, on_progress, tmp, sizeof tmp))
		fail_msg("container_write: %s", container_error());
	if (container_commit(f->dir, gen, tmp))
		fail_msg("container_commit: %s", container_error());
	snprintf(final, len, "%s/ckpt-%06llu.h5", f->dir, (unsigned long long)gen);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(access(final, R_OK), 0);
}

static void assert_error_mentions(const char *a, const char *b)
{
	const char *e = container_error();

	if (!strstr(e, a) || (b && !strstr(e, b)))
		fail_msg("error \"%s\" does not mention \"%s\"%s%s", e, a, b ? " and " : "", b ? b : "");
}

static void assert_same_string(const char *a, const char *b)
{
	if (a)
		assert_string_equal(a, b);
	else
		assert_null(b);
}

static void compare_images(const struct ck_image *a, const struct ck_image *b)
{
	assert_int_equal(a->proc.pid, b->proc.pid);
	assert_int_equal(a->proc.umask, b->proc.umask);
	assert_int_equal(a->proc.tid_offset, b->proc.tid_offset);
	assert_int_equal(a->proc.rseq_offset, b->proc.rseq_offset);
	assert_int_equal(a->proc.rseq_size, b->proc.rseq_size);
	assert_int_equal(a->proc.vdso_start, b->proc.vdso_start);
	assert_int_equal(a->proc.vdso_end, b->proc.vdso_end);
	assert_int_equal(a->proc.link_epoch, b->proc.link_epoch);
	assert_int_equal(a->proc.upper_size, b->proc.upper_size);
	assert_memory_equal(a->proc.sig, b->proc.sig, sizeof a->proc.sig);
	assert_memory_equal(a->proc.rlim, b->proc.rlim, sizeof a->proc.rlim);
	assert_memory_equal(a->proc.itimer, b->proc.itimer, sizeof a->proc.itimer);
	assert_same_string(a->proc.cwd, b->proc.cwd);
	assert_same_string(a->proc.host, b->proc.host);

	assert_int_equal(a->nregions, b->nregions);
	for (size_t i = 0; i < a->nregions; i++) {
		const struct ck_region *x = &a->regions[i], *y = &b->regions[i];

		assert_int_equal(x->start, y->start);
		assert_int_equal(x->end, y->end);
		assert_int_equal(x->prot, y->prot);
		assert_int_equal(x->kind, y->kind);
		assert_int_equal(x->file_offset, y->file_offset);
		assert_int_equal(x->file_size, y->file_size);
		assert_int_equal(x->file_mtime_ns, y->file_mtime_ns);
		assert_int_equal(x->run_first, y->run_first);
		assert_int_equal(x->run_count, y->run_count);
		assert_same_string(x->path, y->path);
	}
	assert_int_equal(a->nruns, b->nruns);
	if (a->nruns)
		assert_memory_equal(a->runs, b->runs, a->nruns * sizeof *a->runs);
	assert_int_equal(a->nthreads, b->nthreads);
	if (a->nthreads)
		assert_memory_equal(a->threads, b->threads, a->nthreads * sizeof *a->threads);
	assert_int_equal(a->ntimers, b->ntimers);
	if (a->ntimers)
		assert_memory_equal(a->timers, b->timers, a->ntimers * sizeof *a->timers);
	assert_int_equal(a->nfds, b->nfds);
	for (size_t i = 0; i < a->nfds; i++) {
		const struct ck_fd *x = &a->fds[i], *y = &b->fds[i];

		assert_int_equal(x->fd, y->fd);
		assert_int_equal(x->flags, y->flags);
		assert_int_equal(x->offset, y->offset);
		assert_int_equal(x->kind, y->kind);
		assert_int_equal(x->data_offset, y->data_offset);
		assert_int_equal(x->data_len, y->data_len);
		assert_same_string(x->path, y->path);
	}
	assert_int_equal(a->memory_bytes, b->memory_bytes);
	assert_int_equal(a->filedata_bytes, b->filedata_bytes);
}

/* Read the pages of `back` into fresh buffers and compare with the
 * originals; frees the buffers. */
static void check_pages(struct fixture *f, struct container_reader *r, struct ck_image *back)
{
	void *dst[NRUNS];

	for (size_t i = 0; i < back->nruns; i++) {
		dst[i] = aligned_alloc(CK_PAGE_SIZE, back->runs[i].npages * CK_PAGE_SIZE);
		assert_non_null(dst[i]);
		memset(dst[i], 0x5a, back->runs[i].npages * CK_PAGE_SIZE);
		back->runs[i].addr = (uint64_t)(uintptr_t)dst[i];
	}
	if (container_read_pages(r, 0, back, 1, on_progress))
		fail_msg("container_read_pages: %s", container_error());
	for (size_t i = 0; i < back->nruns; i++) {
		assert_memory_equal(dst[i], f->bufs[i], run_pages[i] * CK_PAGE_SIZE);
		free(dst[i]);
		back->runs[i].addr = 0;
	}
	assert_non_null(back->fds[1].data);
	assert_memory_equal(back->fds[1].data, f->img.fds[1].data, FD_DATA_LEN);
	assert_null(back->fds[0].data);
	assert_null(back->fds[2].data);
	assert_int_equal(back->fds[2].data_len, 12345);
}

static void test_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct generation_entry *list;
	struct ck_generation_info info;
	struct ck_image back;
	struct container_reader *r;
	char tmp[4096], final[4096];
	struct stat st;
	mode_t old = umask(0);
	size_t n;
	int rc;

	/* a permissive umask must not make the image readable by others */
	rc = container_write(f->dir, &f->info, &f->img, on_progress, tmp, sizeof tmp);
	umask(old);
	if (rc)
		fail_msg("container_write: %s", container_error());
	assert_int_equal(stat(tmp, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_non_null(strstr(tmp, "/.ckpt-000003.h5.tmp."));
	assert_true(f->progress_calls > 0);

	/* offsets of the data streams, in order */
	uint64_t off = 0;
	for (size_t i = 0; i < NRUNS; i++) {
		assert_int_equal(f->img.runs[i].data_offset, off);
		off += run_pages[i] * CK_PAGE_SIZE;
	}
	assert_int_equal(f->img.memory_bytes, off);
	assert_int_equal(f->img.fds[1].data_offset, 0);
	assert_int_equal(f->img.filedata_bytes, FD_DATA_LEN);

	if (container_commit(f->dir, 3, tmp))
		fail_msg("container_commit: %s", container_error());
	snprintf(final, sizeof final, "%s/ckpt-000003.h5", f->dir);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(stat(final, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);

	assert_int_equal(generations_list(f->dir, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].generation, 3);
	assert_string_equal(list[0].path, final);
	free(list);
	assert_int_equal(generations_latest(f->dir), 3);

	r = container_open(final);
	if (!r)
		fail_msg("container_open: %s", container_error());
	assert_int_equal(container_info(r, &info), 0);
	assert_int_equal(info.generation, 3);
	assert_int_equal(info.parent, 2);
	assert_int_equal(info.nranks, 1);
	assert_int_equal(info.created_unix, f->info.created_unix);
	assert_string_equal(info.reason, f->info.reason);
	assert_string_equal(info.mpi_flavour, f->info.mpi_flavour);
	assert_string_equal(info.program, f->info.program);
	assert_string_equal(info.runtime, f->info.runtime);
	assert_int_equal(info.runtime_id, f->info.runtime_id);
	assert_int_equal(info.argv_len, f->info.argv_len);
	assert_memory_equal(info.argv, f->info.argv, f->info.argv_len);
	assert_int_equal(info.interval, f->info.interval);

	assert_int_equal(container_read_image(r, 1, &back), -1);
	assert_error_mentions(final, "rank 1");

	if (container_read_image(r, 0, &back))
		fail_msg("container_read_image: %s", container_error());
	compare_images(&f->img, &back);

	f->progress_calls = 0;
	check_pages(f, r, &back);
	assert_true(f->progress_calls > 0);
	/* verification only: nothing written anywhere */
	if (container_read_pages(r, 0, &back, 0, NULL))
		fail_msg("container_read_pages (verify): %s", container_error());
	assert_memory_equal(back.fds[1].data, f->img.fds[1].data, FD_DATA_LEN);
	ck_image_free(&back);
	assert_int_equal(back.nruns, 0);
	assert_null(back.runs);
	container_close(r);
}

static void test_empty_tables(void **state)
{
	struct fixture *f = *state;
	struct ck_image empty = { 0 }, back;
	struct container_reader *r;
	char tmp[4096], final[4096];

	if (container_write(f->dir, &f->info, &empty, NULL, tmp, sizeof tmp) ||
	    container_commit(f->dir, 3, tmp))
		fail_msg("write: %s", container_error());
	snprintf(final, sizeof final, "%s/ckpt-000003.h5", f->dir);
	if (!(r = container_open(final)) || container_read_image(r, 0, &back))
		fail_msg("read: %s", container_error());
	compare_images(&empty, &back);
	assert_null(back.proc.cwd);
	assert_null(back.proc.host);
	assert_int_equal(container_read_pages(r, 0, &back, 1, NULL), 0);
	assert_int_equal(container_read_pages(r, 0, &back, 0, NULL), 0);
	ck_image_free(&back);
	container_close(r);
}

/* offset in the file of a byte sequence, which must occur exactly once */
static off_t find_in_file(const char *path, const void *needle, size_t len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t *buf;
	const uint8_t *hit;
	off_t at;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	close(fd);
	hit = memmem(buf, (size_t)st.st_size, needle, len);
	assert_non_null(hit);
	at = hit - buf;
	assert_null(memmem(hit + 1, (size_t)st.st_size - (size_t)at - 1, needle, len));
	free(buf);
	return at;
}

static void flip_byte(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, at), 1);
	b ^= 0x10;
	assert_int_equal(pwrite(fd, &b, 1, at), 1);
	assert_int_equal(close(fd), 0);
}

static void test_corrupt_byte(void **state)
{
	struct fixture *f = *state;
	struct container_reader *r;
	struct ck_image back;
	char final[4096];
	/* 64 bytes from the middle of the largest run's page data */
	const uint8_t *mid = (const uint8_t *)f->bufs[4] + run_pages[4] * CK_PAGE_SIZE / 2;
	void *dst;

	write_commit(f, 3, final, sizeof final);
	flip_byte(final, find_in_file(final, mid, 64) + 32);

	/* the tables are intact; the page data are not */
	if (!(r = container_open(final)) || container_read_image(r, 0, &back))
		fail_msg("tables: %s", container_error());
	assert_int_equal(container_read_pages(r, 0, &back, 0, NULL), -1);
	assert_error_mentions(final, "checksum");
	assert_error_mentions("/memory", "corrupt");

	dst = aligned_alloc(CK_PAGE_SIZE, run_pages[4] * CK_PAGE_SIZE);
	assert_non_null(dst);
	for (size_t i = 0; i < back.nruns; i++)
		back.runs[i].addr = (uint64_t)(uintptr_t)dst;   /* only run 4 is big enough */
	for (size_t i = 0; i < back.nruns; i++)
		if (i != 4)
			back.runs[i].npages = 0;
	assert_int_equal(container_read_pages(r, 0, &back, 1, NULL), -1);
	assert_error_mentions(final, "checksum");
	free(dst);
	ck_image_free(&back);
	container_close(r);
}

static void copy_file(const char *from, const char *to, off_t len)
{
	int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	char buf[65536];
	off_t done = 0;

	assert_true(in >= 0 && out >= 0);
	while (done < len) {
		size_t want = (size_t)(len - done) < sizeof buf ? (size_t)(len - done) : sizeof buf;
		ssize_t n = read(in, buf, want);

		assert_true(n > 0);
		assert_int_equal(write(out, buf, (size_t)n), n);
		done += n;
	}
	close(in);
	assert_int_equal(close(out), 0);
}

static void test_truncated(void **state)
{
	struct fixture *f = *state;
	char final[4096], cut[4096];
	struct stat st;

	write_commit(f, 3, final, sizeof final);
	assert_int_equal(stat(final, &st), 0);
	snprintf(cut, sizeof cut, "%s/ckpt-000004.h5", f->dir);
	copy_file(final, cut, st.st_size / 2);
	assert_null(container_open(cut));
	assert_error_mentions(cut, "truncated");

	copy_file(final, cut, 100);
	assert_null(container_open(cut));
	assert_error_mentions(cut, "not an HDF5 file");

	copy_file(final, cut, 0);
	assert_null(container_open(cut));
	assert_error_mentions(cut, "truncated");
}

static void test_not_hdf5(void **state)
{
	struct fixture *f = *state;
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof path, "%s/ckpt-000001.h5", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 1000; i++)
		fputs("this is not an HDF5 file\n", fp);
	assert_int_equal(fclose(fp), 0);
	assert_null(container_open(path));
	assert_error_mentions(path, "not an HDF5 file");

	snprintf(path, sizeof path, "%s/missing.h5", f->dir);
	assert_null(container_open(path));
	assert_error_mentions(path, "no such file");
}

/* Edit a committed file with HDF5 itself, as a foreign or damaged writer
 * would have left it. */
static void edit_attr(const char *path, const char *name, int delete, unsigned value)
{
	hid_t file, a;

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
	assert_true(file >= 0);
	if (delete) {
		assert_true(H5Adelete(file, name) >= 0);
	} else {
		a = H5Aopen(file, name, H5P_DEFAULT);
		assert_true(a >= 0);
		assert_true(H5Awrite(a, H5T_NATIVE_UINT, &value) >= 0);
		H5Aclose(a);
	}
	assert_true(H5Fclose(file) >= 0);
}

static void test_foreign_containers(void **state)
{
	struct fixture *f = *state;
	char final[4096], other[4096];
	struct stat st;

	write_commit(f, 3, final, sizeof final);
	assert_int_equal(stat(final, &st), 0);
	snprintf(other, sizeof other, "%s/other.h5", f->dir);

	copy_file(final, other, st.st_size);
	edit_attr(other, "complete", 1, 0);
	assert_null(container_open(other));
	assert_error_mentions(other, "incomplete generation");

	copy_file(final, other, st.st_size);
	edit_attr(other, "format_version", 0, 7);
	assert_null(container_open(other));
	assert_error_mentions(other, "format version 7, this ckptmpi reads 1");

	copy_file(final, other, st.st_size);
	edit_attr(other, "format_version", 1, 0);
	assert_null(container_open(other));
	assert_error_mentions(other, "not a ckptmpi container");
}

static void test_no_overwrite(void **state)
{
	struct fixture *f = *state;
	char final[4096], tmp[4096];
	struct container_reader *r;
	struct stat before, after;

	write_commit(f, 3, final, sizeof final);
	assert_int_equal(stat(final, &before), 0);
	f->info.interval = 999;
	if (container_write(f->dir, &f->info, &f->img, NULL, tmp, sizeof tmp))
		fail_msg("container_write: %s", container_error());
	assert_int_equal(container_commit(f->dir, 3, tmp), -1);
	assert_error_mentions(final, "exists");
	/* the temporary stays, the generation is untouched */
	assert_int_equal(access(tmp, F_OK), 0);
	assert_int_equal(stat(final, &after), 0);
	assert_int_equal(before.st_ino, after.st_ino);
	r = container_open(final);
	assert_non_null(r);
	struct ck_generation_info info;
	assert_int_equal(container_info(r, &info), 0);
	assert_int_equal(info.interval, 60);
	container_close(r);
	assert_int_equal(unlink(tmp), 0);
}

static void touch(const char *dir, const char *name)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
}

static int exists(const char *dir, const char *name)
{
	char path[4096];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static void test_retain(void **state)
{
	struct fixture *f = *state;
	struct generation_entry *list;
	char final[4096], host[256], dead[512], alive[512];
	size_t n;
	pid_t pid;

	for (uint64_t g = 1; g <= 4; g++)
		write_commit(f, g, final, sizeof final);
	/* names that are not generations are left alone */
	touch(f->dir, "ckpt-5.h5x");
	touch(f->dir, "ckpt-.h5");
	touch(f->dir, "notes.txt");

	/* a writer that died, one that lives (us), one on another host */
	assert_int_equal(gethostname(host, sizeof host), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	snprintf(dead, sizeof dead, ".ckpt-000005.h5.tmp.%s.%d", host, (int)pid);
	snprintf(alive, sizeof alive, ".ckpt-000006.h5.tmp.%s.%d", host, (int)getpid());
	touch(f->dir, dead);
	touch(f->dir, alive);
	touch(f->dir, ".ckpt-000007.h5.tmp.some.other.host.1");

	assert_int_equal(generations_retain(f->dir, 0), -1);
	if (generations_retain(f->dir, 2))
		fail_msg("generations_retain: %s", container_error());
	assert_int_equal(generations_list(f->dir, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].generation, 3);
	assert_int_equal(list[1].generation, 4);
	free(list);
	assert_false(exists(f->dir, dead));
	assert_true(exists(f->dir, alive));
	assert_true(exists(f->dir, ".ckpt-000007.h5.tmp.some.other.host.1"));
	assert_true(exists(f->dir, "ckpt-5.h5x"));
	assert_true(exists(f->dir, "ckpt-.h5"));
	assert_true(exists(f->dir, "notes.txt"));
	assert_int_equal(generations_latest(f->dir), 4);
}

static int is_zombie(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *fp;
	size_t n;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (!(fp = fopen(path, "r")))
		return 0;
	n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'Z';
}

/* Names planted in a shared directory: a symbolic link (to one of our
 * own generations) and a directory under generation numbers. They are
 * listed as foreign, never picked for a restart, numbered around, and
 * neither counted nor removed by retention; our temporaries of dead
 * writers (random-token names too, a zombie's, and what MPI-IO left
 * beside them) go. */
static void test_foreign_names(void **state)
{
	struct fixture *f = *state;
	struct generation_entry *list, pick;
	char final[4096], sym[4096], link_path[4096], host[256], dead[512], locktest[600];
	char zombie_tmp[512];
	size_t n;
	pid_t pid, zombie;

	for (uint64_t g = 1; g <= 3; g++)
		write_commit(f, g, final, sizeof final);
	snprintf(sym, sizeof sym, "%s/ckpt-000009.h5", f->dir);
	assert_int_equal(symlink(final, sym), 0);
	snprintf(link_path, sizeof link_path, "%s/ckpt-000004.h5", f->dir);
	assert_int_equal(mkdir(link_path, 0700), 0);

	assert_int_equal(generations_list(f->dir, &list, &n), 0);
	assert_int_equal(n, 5);
	assert_false(list[2].foreign);
	assert_true(list[3].foreign);
	assert_non_null(strstr(list[3].why, "not a regular file"));
	assert_true(list[4].foreign);
	assert_non_null(strstr(list[4].why, "symbolic link"));
	free(list);

	/* 4 is taken: the next generation is 5, not 10 */
	assert_int_equal(generations_latest(f->dir), 4);
	assert_int_equal(generations_pick(f->dir, 0, &pick, NULL), 0);
	assert_int_equal(pick.generation, 3);
	assert_int_equal(generations_pick(f->dir, 9, &pick, NULL), -1);
	assert_non_null(strstr(container_error(), "ckpt-000009.h5: a symbolic link"));
	assert_null(container_open(sym));
	assert_non_null(strstr(container_error(), "a symbolic link, not followed"));
	assert_null(container_open(link_path));

	assert_int_equal(gethostname(host, sizeof host), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	snprintf(dead, sizeof dead, ".ckpt-000005.h5.tmp.%s.%d.0123456789abcdef", host, (int)pid);
	touch(f->dir, dead);
	/* what Open MPI's MPI-IO left beside it (its locking test) */
	snprintf(locktest, sizeof locktest, "%s.locktest.3", dead);
	touch(f->dir, locktest);
	/* a writer that died but was not reaped yet (a zombie) */
	zombie = fork();
	assert_true(zombie >= 0);
	if (!zombie)
		_exit(0);
	for (int i = 0; i < 1000 && !is_zombie(zombie); i++)
		usleep(1000);
	assert_true(is_zombie(zombie));
	snprintf(zombie_tmp, sizeof zombie_tmp, ".ckpt-000006.h5.tmp.%s.%d.0123456789abcdef", host,
	         (int)zombie);
	touch(f->dir, zombie_tmp);

	if (generations_retain(f->dir, 1))
		fail_msg("generations_retain: %s", container_error());
	assert_false(exists(f->dir, locktest));
	assert_false(exists(f->dir, zombie_tmp));
	assert_int_equal(waitpid(zombie, NULL, 0), zombie);
	assert_int_equal(generations_list(f->dir, &list, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(list[0].generation, 3);
	assert_false(list[0].foreign);
	free(list);
	assert_false(exists(f->dir, dead));
	assert_true(exists(f->dir, "ckpt-000004.h5"));
	assert_int_equal(rmdir(link_path), 0);
}

/* How /memory is stored: its first filter (0 if only the checksum),
 * how many of its chunks are compressed and how many stored as they are
 * (compressor skipped in the filter mask), and where one compressed chunk
 * lies. */
struct stored {
	int filter;
	unsigned compressed, raw;
	haddr_t some_addr;
	hsize_t some_size;
};

static struct stored memory_stored(const char *path)
{
	struct stored st = { 0 };
	hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), ds, dcpl, sp;
	hsize_t dims;
	unsigned flags, cd[8];
	size_t ncd = 8;

	assert_true(file >= 0);
	assert_true((ds = H5Dopen2(file, "/memory", H5P_DEFAULT)) >= 0);
	assert_true((dcpl = H5Dget_create_plist(ds)) >= 0);
	if (H5Pget_nfilters(dcpl) == 2)
		st.filter = (int)H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, NULL, NULL);
	if (st.filter == 32001) {
		/* the hdf5-blosc plugin's parameters: revision 2, element size
		 * 8 (not the dataset's 1), the chunk's bytes, byte shuffle */
		assert_int_equal(ncd, 7);
		assert_int_equal(cd[0], 2);
		assert_int_equal(cd[2], 8);
		assert_int_equal(cd[3], 1u << 20);
		assert_int_equal(cd[5], 1);
	}
	assert_true((sp = H5Dget_space(ds)) >= 0);
	assert_int_equal(H5Sget_simple_extent_dims(sp, &dims, NULL), 1);
	for (hsize_t off = 0; off < dims; off += 1u << 20) {
		unsigned mask;
		haddr_t addr;
		hsize_t size;

		assert_true(H5Dget_chunk_info_by_coord(ds, &off, &mask, &addr, &size) >= 0);
		if (st.filter && !(mask & 1) && size < (1u << 20)) {
			st.compressed++;
			st.some_addr = addr;
			st.some_size = size;
		} else if (!st.filter || (mask & 1))
			st.raw++;
	}
	H5Sclose(sp);
	H5Pclose(dcpl);
	H5Dclose(ds);
	H5Fclose(file);
	return st;
}

static void read_back(struct fixture *f, const char *final)
{
	struct container_reader *r;
	struct ck_image back;

	if (!(r = container_open(final)) || container_read_image(r, 0, &back))
		fail_msg("read %s: %s", final, container_error());
	check_pages(f, r, &back);
	if (container_read_pages(r, 0, &back, 0, NULL))
		fail_msg("verify %s: %s", final, container_error());
	ck_image_free(&back);
	container_close(r);
}

static void test_compression(void **state)
{
	static const struct { const char *value; int filter; } codecs[] = {
		{ "deflate:3", 1 }, { "zstd", 32015 }, { "zstd:7", 32015 }, { "lz4", 32004 },
		{ "blosc", 32001 }, { "blosc-lz4:9", 32001 }, { "blosc-zstd:1", 32001 }, { "none", 0 },
	};
	static const char *const bad[] = { "brotli", "zstd:", "zstd:abc", "zstd:99", "deflate:10",
		                           "lz4:0", "zstd:1x", "blosc:0", "blosc:10", "blosc-lz5",
		                           "blosc-" };
	struct fixture *f = *state;
	struct generation_entry *list;
	char final[4096], tmp[4096];
	uint32_t *smooth = f->bufs[4];
	size_t n;
	uint64_t gen = 3;

	/* run 4 (four chunks' worth) compresses, the others are random:
	 * chunks of both kinds, and chunks that straddle runs */
	for (size_t i = 0; i < run_pages[4] * CK_PAGE_SIZE / 4; i++)
		smooth[i] = (uint32_t)(i / 100);
	for (size_t c = 0; c < sizeof codecs / sizeof codecs[0]; c++, gen++) {
		struct stored st;

		setenv("CKPTMPI_COMPRESS", codecs[c].value, 1);
		write_commit(f, gen, final, sizeof final);
		read_back(f, final);
		st = memory_stored(final);
		assert_int_equal(st.filter, codecs[c].filter);
		if (codecs[c].filter) {
			/* random chunks are kept as they are, the rest shrinks */
			if (st.compressed < 3 || st.raw < 1)
				fail_msg("%s: %u chunks compressed, %u stored as they are", codecs[c].value,
				         st.compressed, st.raw);
		}
	}

	/* a damaged compressed chunk is caught by its checksum */
	setenv("CKPTMPI_COMPRESS", "zstd", 1);
	write_commit(f, gen, final, sizeof final);
	{
		struct stored st = memory_stored(final);
		struct container_reader *r;
		struct ck_image back;

		assert_true(st.compressed > 0);
		flip_byte(final, (off_t)(st.some_addr + st.some_size / 2));
		if (!(r = container_open(final)) || container_read_image(r, 0, &back))
			fail_msg("tables: %s", container_error());
		assert_int_equal(container_read_pages(r, 0, &back, 0, NULL), -1);
		assert_error_mentions(final, "checksum mismatch in /memory");
		ck_image_free(&back);
		container_close(r);
	}

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char want[64];

		setenv("CKPTMPI_COMPRESS", bad[i], 1);
		assert_int_equal(container_write(f->dir, &f->info, &f->img, NULL, tmp, sizeof tmp), -1);
		snprintf(want, sizeof want, "CKPTMPI_COMPRESS=%s", bad[i]);
		assert_error_mentions(want, f->dir);
	}
	unsetenv("CKPTMPI_COMPRESS");
	/* nothing left behind by the refusals */
	assert_int_equal(generations_list(f->dir, &list, &n), 0);
	assert_int_equal(n, sizeof codecs / sizeof codecs[0] + 1);
	free(list);
}

static void test_missing_dir(void **state)
{
	struct fixture *f = *state;
	struct generation_entry *list;
	char dir[256], tmp[4096];
	size_t n;

	snprintf(dir, sizeof dir, "%s/nope", f->dir);
	assert_int_equal(container_write(dir, &f->info, &f->img, NULL, tmp, sizeof tmp), -1);
	assert_error_mentions(dir, "no such directory");
	assert_int_equal(generations_list(dir, &list, &n), -1);
	assert_error_mentions(dir, "no such directory");
	assert_int_equal(generations_latest(dir), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_hdf5, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_containers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_overwrite, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compression, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
