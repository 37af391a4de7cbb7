/* Placement of every rank's slices in the shared datasets (the logic the
 * serial and the parallel writer share) and the fletcher32 the writers
 * compute themselves, against HDF5's definition. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/container.h"
#include "storage/container_internal.h"
#include "storage/fletcher32.h"

static uint64_t rnd_state = 88172645463325252ull;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state;
}

/* ---- placement ---- */

static void check_placement(const struct ck_counts *c, uint64_t n, const struct ck_rank_row *rows,
                            const struct ck_extents *e)
{
	uint64_t max_fd = 0, max_str = 0, rows_at[5] = { 0 }, mem = 0, fd = 0, str = 0;

	for (uint64_t r = 0; r < n; r++) {
		max_fd = c[r].filedata > max_fd ? c[r].filedata : max_fd;
		max_str = c[r].strings > max_str ? c[r].strings : max_str;
	}
	assert_int_equal(e->filedata_chunk, ck_small_chunk(max_fd));
	assert_int_equal(e->strings_chunk, ck_small_chunk(max_str));
	for (uint64_t r = 0; r < n; r++) {
		const struct ck_rank_row *w = &rows[r];

		assert_int_equal(w->rank, r);
		/* tables: consecutive slices in rank order */
		assert_int_equal(w->region_first, rows_at[0]);
		assert_int_equal(w->run_first, rows_at[1]);
		assert_int_equal(w->thread_first, rows_at[2]);
		assert_int_equal(w->fd_first, rows_at[3]);
		assert_int_equal(w->timer_first, rows_at[4]);
		assert_int_equal(w->region_count, c[r].regions);
		assert_int_equal(w->run_count, c[r].runs);
		assert_int_equal(w->thread_count, c[r].threads);
		assert_int_equal(w->fd_count, c[r].fds);
		assert_int_equal(w->timer_count, c[r].timers);
		rows_at[0] += c[r].regions;
		rows_at[1] += c[r].runs;
		rows_at[2] += c[r].threads;
		rows_at[3] += c[r].fds;
		rows_at[4] += c[r].timers;
		/* blobs: each slice on a chunk boundary of its own */
		assert_int_equal(w->memory_offset % CK_MEMORY_CHUNK, 0);
		assert_int_equal(w->memory_offset, mem);
		assert_int_equal(w->memory_len, c[r].memory);
		mem += (c[r].memory + CK_MEMORY_CHUNK - 1) / CK_MEMORY_CHUNK * CK_MEMORY_CHUNK;
		assert_int_equal(w->filedata_offset % e->filedata_chunk, 0);
		assert_int_equal(w->filedata_offset, fd);
		assert_int_equal(w->filedata_len, c[r].filedata);
		fd += (c[r].filedata + e->filedata_chunk - 1) / e->filedata_chunk * e->filedata_chunk;
		assert_int_equal(w->strings_offset % e->strings_chunk, 0);
		assert_int_equal(w->strings_offset, str);
		assert_int_equal(w->strings_len, c[r].strings);
		str += (c[r].strings + e->strings_chunk - 1) / e->strings_chunk * e->strings_chunk;
		/* no two ranks in one chunk: the slice's last chunk is before
		 * the chunk the next slice starts in */
		if (c[r].memory)
			assert_true((w->memory_offset + w->memory_len - 1) / CK_MEMORY_CHUNK <
			            mem / CK_MEMORY_CHUNK);
	}
	assert_int_equal(e->nregions, rows_at[0]);
	assert_int_equal(e->nruns, rows_at[1]);
	assert_int_equal(e->nthreads, rows_at[2]);
	assert_int_equal(e->nfds, rows_at[3]);
	assert_int_equal(e->ntimers, rows_at[4]);
	assert_int_equal(e->memory_bytes, mem);
	assert_int_equal(e->filedata_bytes, fd);
	assert_int_equal(e->strings_bytes, str);
}

static void test_place_random(void **state)
{
	(void)state;
	for (int iter = 0; iter < 200; iter++) {
		uint64_t n = 1 + rnd() % 40;
		struct ck_counts *c = calloc(n, sizeof *c);
		struct ck_rank_row *rows = calloc(n, sizeof *rows);
		struct ck_extents e;

		assert_non_null(c);
		assert_non_null(rows);
		for (uint64_t r = 0; r < n; r++) {
			/* some ranks with nothing at all */
			if (rnd() % 5 == 0)
				continue;
			c[r] = (struct ck_counts){ rnd() % 100, rnd() % 1000, 1 + rnd() % 8, rnd() % 20,
			                           rnd() % 3, (rnd() % 5000) * CK_PAGE_SIZE,
			                           rnd() % 3 ? 0 : rnd() % 3000000, rnd() % 9000 };
		}
		assert_int_equal(ck_layout_place("/d", c, n, rows, &e), 0);
		check_placement(c, n, rows, &e);
		/* ranks placing themselves from the same counts agree */
		{
			struct ck_rank_row *again = calloc(n, sizeof *again);
			struct ck_extents e2;

			assert_non_null(again);
			assert_int_equal(ck_layout_place("/d", c, n, again, &e2), 0);
			assert_memory_equal(again, rows, n * sizeof *rows);
			assert_memory_equal(&e2, &e, sizeof e);
			free(again);
		}
		free(c);
		free(rows);
	}
}

static void test_place_exact(void **state)
{
	/* rank 1: nothing; rank 0 ends one byte into a chunk */
	struct ck_counts c[3] = {
		{ 2, 3, 1, 2, 0, CK_MEMORY_CHUNK + CK_PAGE_SIZE, 10000, 50 },
		{ 0, 0, 1, 0, 0, 0, 0, 0 },
		{ 1, 1, 2, 1, 1, 3 * CK_PAGE_SIZE, 0, 5000 },
	};
	struct ck_rank_row rows[3];
	struct ck_extents e;

	(void)state;
	memset(rows, 0xff, sizeof rows);
	assert_int_equal(ck_layout_place("/d", c, 3, rows, &e), 0);
	assert_int_equal(rows[0].memory_offset, 0);
	assert_int_equal(rows[1].memory_offset, 2 * CK_MEMORY_CHUNK);
	assert_int_equal(rows[1].memory_len, 0);
	assert_int_equal(rows[2].memory_offset, 2 * CK_MEMORY_CHUNK);
	assert_int_equal(e.memory_bytes, 3 * CK_MEMORY_CHUNK);
	assert_int_equal(e.filedata_chunk, 16384);
	assert_int_equal(rows[2].filedata_offset, 16384);
	assert_int_equal(e.filedata_bytes, 16384);
	assert_int_equal(e.strings_chunk, 8192);
	assert_int_equal(rows[2].strings_offset, 8192);
	assert_int_equal(e.strings_bytes, 16384);
	assert_int_equal(rows[2].run_first, 3);
	assert_int_equal(rows[2].thread_first, 2);
	assert_int_equal(e.nthreads, 4);
	check_placement(c, 3, rows, &e);
}

static void test_place_overflow(void **state)
{
	struct ck_counts c[2] = { { .memory = UINT64_MAX - 10 }, { .memory = CK_PAGE_SIZE } };
	struct ck_rank_row rows[2];
	struct ck_extents e;

	(void)state;
	assert_int_equal(ck_layout_place("/d", c, 2, rows, &e), -1);
	assert_non_null(strstr(container_error(), "overflows"));
	memset(c, 0, sizeof c);
	c[0].runs = UINT64_MAX;
	c[1].runs = 2;
	assert_int_equal(ck_layout_place("/d", c, 2, rows, &e), -1);
	assert_non_null(strstr(container_error(), "rank 1"));
}

static void test_small_chunk(void **state)
{
	(void)state;
	assert_int_equal(ck_small_chunk(0), CK_SMALL_CHUNK_MIN);
	assert_int_equal(ck_small_chunk(CK_SMALL_CHUNK_MIN), CK_SMALL_CHUNK_MIN);
	assert_int_equal(ck_small_chunk(CK_SMALL_CHUNK_MIN + 1), 2 * CK_SMALL_CHUNK_MIN);
	assert_int_equal(ck_small_chunk(UINT64_MAX), CK_MEMORY_CHUNK);
}

/* ---- one rank's image ---- */

static void test_measure(void **state)
{
	uint8_t pages[3 * CK_PAGE_SIZE], data[100];
	struct ck_page_run runs[2] = { { (uint64_t)(uintptr_t)pages, 1, 99 },
	                               { (uint64_t)(uintptr_t)pages + CK_PAGE_SIZE, 2, 99 } };
	struct ck_region regions[2] = { { .run_first = 0, .run_count = 2, .path = "/lib/a.so" },
	                                { .run_first = 2, .run_count = 0, .path = "/lib/a.so" } };
	struct ck_fd fds[2] = { { .fd = 3, .kind = CK_FD_DELETED, .data_len = 100, .data = data,
	                          .path = "/tmp/x (deleted)" },
	                        { .fd = 4, .kind = CK_FD_FILE, .data_len = 7777, .path = "/etc/y" } };
	struct ck_image img = { .regions = regions, .nregions = 2, .runs = runs, .nruns = 2,
	                        .fds = fds, .nfds = 2 };
	struct ck_counts c;
	struct ck_rank_row row = { 0 };
	struct ck_region_row rr[2];
	struct ck_fd_row fr[2];
	uint8_t strings[256];

	(void)state;
	img.proc.cwd = "/home";
	img.proc.host = "h";
	assert_int_equal(ck_rank_measure("/d", 5, &img, &c), 0);
	assert_int_equal(runs[0].data_offset, 0);
	assert_int_equal(runs[1].data_offset, CK_PAGE_SIZE);
	assert_int_equal(img.memory_bytes, 3 * CK_PAGE_SIZE);
	assert_int_equal(c.memory, 3 * CK_PAGE_SIZE);
	assert_int_equal(fds[0].data_offset, 0);
	assert_int_equal(img.filedata_bytes, 100);
	/* cwd, one copy of the shared region path, two fd paths */
	assert_int_equal(c.strings, sizeof "/home" + sizeof "/lib/a.so" + sizeof "/tmp/x (deleted)" +
	                                sizeof "/etc/y");
	assert_true(c.strings <= sizeof strings);
	row.strings_len = c.strings;
	ck_rank_fill(&img, &row, rr, fr, strings);
	assert_int_equal(row.cwd, 0);
	assert_int_equal(rr[0].path, rr[1].path);
	assert_string_equal((char *)strings + rr[0].path, "/lib/a.so");
	assert_string_equal((char *)strings + fr[1].path, "/etc/y");
	assert_int_equal(fr[1].data_len, 7777);
	assert_string_equal(row.host, "h");

	/* faults name the rank */
	runs[1].addr = 0;
	assert_int_equal(ck_rank_measure("/d", 5, &img, &c), -1);
	assert_non_null(strstr(container_error(), "rank 5 run 1 is invalid"));
	runs[1].addr = (uint64_t)(uintptr_t)pages;
	regions[1].run_first = 3;
	assert_int_equal(ck_rank_measure("/d", 5, &img, &c), -1);
	assert_non_null(strstr(container_error(), "rank 5 region 1"));
	regions[1].run_first = 2;
	fds[0].data = NULL;
	assert_int_equal(ck_rank_measure("/d", 5, &img, &c), -1);
	assert_non_null(strstr(container_error(), "no buffer"));
}

/* ---- fletcher32 ---- */

/* H5_checksum_fletcher32, as HDF5 1.10 writes it */
static uint32_t reference(const uint8_t *p, size_t len)
{
	size_t words = len / 2;
	uint32_t s1 = 0, s2 = 0;

	while (words) {
		size_t n = words > 360 ? 360 : words;

		words -= n;
		do {
			s1 += (uint32_t)p[0] << 8 | p[1];
			s2 += s1;
			p += 2;
		} while (--n);
		s1 = (s1 & 0xffff) + (s1 >> 16);
		s2 = (s2 & 0xffff) + (s2 >> 16);
	}
	if (len % 2) {
		s1 += (uint32_t)p[0] << 8;
		s2 += s1;
		s1 = (s1 & 0xffff) + (s1 >> 16);
		s2 = (s2 & 0xffff) + (s2 >> 16);
	}
	s1 = (s1 & 0xffff) + (s1 >> 16);
	s2 = (s2 & 0xffff) + (s2 >> 16);
	return s2 << 16 | s1;
}

static void test_fletcher32(void **state)
{
	size_t max = (1u << 20) + 64;
	uint8_t *b = malloc(max + 8);

	(void)state;
	assert_non_null(b);
	for (int iter = 0; iter < 3000; iter++) {
		size_t len = iter < 2000 ? rnd() % 5000 : rnd() % max;
		size_t off = rnd() % 8, cut;
		int kind = (int)(rnd() % 4);
		struct ck_fletcher f;

		for (size_t i = 0; i < len; i++)
			b[off + i] = kind == 0 ? (uint8_t)rnd() : kind == 1 ? 0xff : kind == 2 ? 0
			           : rnd() % 11 ? 0 : (uint8_t)rnd();
		assert_int_equal(ck_fletcher32(b + off, len), reference(b + off, len));
		/* in pieces of even length, as the writers feed it */
		cut = len / 2 ? rnd() % (len / 2 + 1) * 2 : 0;
		ck_fletcher_init(&f);
		ck_fletcher_update(&f, b + off, cut);
		ck_fletcher_update(&f, b + off + cut, len - cut);
		assert_int_equal(ck_fletcher_final(&f), reference(b + off, len));
	}
	/* the sums wrap to exactly 65535 (not 0): 0xffff words */
	memset(b, 0xff, 4096);
	assert_int_equal(ck_fletcher32(b, 4096), reference(b, 4096));
	assert_int_equal(ck_fletcher32(b, 0), 0);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_place_random),
		cmocka_unit_test(test_place_exact),
		cmocka_unit_test(test_place_overflow),
		cmocka_unit_test(test_small_chunk),
		cmocka_unit_test(test_measure),
		cmocka_unit_test(test_fletcher32),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
