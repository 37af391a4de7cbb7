/* Incremental generations (storage/image_chain.c): which pages each
 * ancestor gives, and a chain written and read back through the
 * container: the child's pages over its parent's, a missing or damaged
 * parent refused with its name, retention keeping parents. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "storage/container.h"
#include "storage/image_chain.h"

#define P ((uint64_t)CK_PAGE_SIZE)

static void expect_need(const struct chain_need *n, const uint64_t *pairs, size_t count)
{
	assert_int_equal(n->n, count);
	for (size_t i = 0; i < count; i++) {
		assert_int_equal(n->v[i].start, pairs[2 * i]);
		assert_int_equal(n->v[i].end, pairs[2 * i + 1]);
	}
}

/* child: an inherited region [0, 10) with pages 2 and 5-6 stored, a
 * region saved whole [20, 30) (not needed from anyone) */
static void needed_is_inherited_minus_own_runs(void **state)
{
	struct ck_page_run runs[] = { { 5 * P, 2, 4096 }, { 2 * P, 1, 0 }, { 21 * P, 1, 8192 } };
	struct ck_region regs[] = {
		{ .start = 20 * P, .end = 30 * P, .run_first = 2, .run_count = 1 },
		{ .start = 0, .end = 10 * P, .run_first = 0, .run_count = 2, .inherit = 1 },
	};
	struct ck_image img = { .regions = regs, .nregions = 2, .runs = runs, .nruns = 3 };
	struct chain_need need = {0};

	(void)state;
	assert_int_equal(chain_needed(&img, &need), 0);
	expect_need(&need, (uint64_t[]){ 0, 2 * P, 3 * P, 5 * P, 7 * P, 10 * P }, 3);
	chain_need_free(&need);
}

/* a full ancestor gives the pieces of its runs inside the need, with
 * their data offsets; what it did not store is its default (zero or the
 * file's): nothing is left for anyone older */
static void take_from_full_ancestor(void **state)
{
	struct ck_page_run runs[] = { { 0, 1, 0 }, { 4 * P, 4, 4096 } };
	struct ck_region regs[] = { { .start = 0, .end = 10 * P, .run_first = 0, .run_count = 2 } };
	struct ck_image anc = { .regions = regs, .nregions = 1, .runs = runs, .nruns = 2 };
	struct chain_need need = {0};
	struct ck_page_run *out;
	size_t n;

	(void)state;
	need.cap = 4;
	need.v = calloc(4, sizeof *need.v);
	need.v[need.n++] = (struct chain_span){ 0, 2 * P };
	need.v[need.n++] = (struct chain_span){ 3 * P, 5 * P };
	need.v[need.n++] = (struct chain_span){ 7 * P, 10 * P };
	assert_int_equal(chain_take(&anc, &need, &out, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].addr, 0);
	assert_int_equal(out[0].npages, 1);
	assert_int_equal(out[0].data_offset, 0);
	assert_int_equal(out[1].addr, 4 * P);
	assert_int_equal(out[1].npages, 1);
	assert_int_equal(out[1].data_offset, 4096);
	assert_int_equal(out[2].addr, 7 * P);
	assert_int_equal(out[2].npages, 1);
	assert_int_equal(out[2].data_offset, 4096 + 3 * P);
	assert_int_equal(need.n, 0);
	free(out);
	chain_need_free(&need);
}

/* an incremental ancestor passes what it does not hold up the chain;
 * pages outside its regions (mapped since, untouched) are nobody's */
static void take_passes_gaps_of_inherited_regions(void **state)
{
	struct ck_page_run runs[] = { { 3 * P, 2, 0 } };
	struct ck_region regs[] = {
		{ .start = 2 * P, .end = 6 * P, .run_first = 0, .run_count = 1, .inherit = 1 },
		{ .start = 8 * P, .end = 9 * P, .run_first = 1, .run_count = 0, .inherit = 0 },
	};
	struct ck_image anc = { .regions = regs, .nregions = 2, .runs = runs, .nruns = 1 };
	struct chain_need need = {0};
	struct ck_page_run *out;
	size_t n;

	(void)state;
	need.cap = 2;
	need.v = calloc(2, sizeof *need.v);
	need.v[need.n++] = (struct chain_span){ 0, 6 * P };
	need.v[need.n++] = (struct chain_span){ 7 * P, 12 * P };
	assert_int_equal(chain_take(&anc, &need, &out, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].addr, 3 * P);
	assert_int_equal(out[0].npages, 2);
	/* [0, 2) outside any region: dropped; [2, 3) and [5, 6) inherited
	 * gaps: the parent's; [8, 9) a region saved whole: its default */
	expect_need(&need, (uint64_t[]){ 2 * P, 3 * P, 5 * P, 6 * P }, 2);
	free(out);
	chain_need_free(&need);
}

/* ---- through the container ---- */

#define NPAGES 64u
static uint8_t *mem;   /* the "process" memory: NPAGES pages */
static char dir[64];

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 12));
}

/* generation gen: with parent 0 every page, else the pages listed */
static void write_gen(uint64_t gen, uint64_t parent, const unsigned *pages, size_t npages)
{
	struct ck_generation_info info;
	struct ck_image img;
	struct ck_region reg = { .start = (uint64_t)(uintptr_t)mem,
	                         .end = (uint64_t)(uintptr_t)mem + NPAGES * P,
	                         .prot = 3, .kind = CK_REGION_ANON, .inherit = parent != 0 };
	struct ck_page_run runs[NPAGES];
	struct ck_thread th = { .tid = 1, .is_main = 1 };
	char tmp[4096];

	memset(&info, 0, sizeof info);
	info.generation = gen;
	info.pages_parent = parent;
	info.chain_depth = parent ? gen - 1 : 0;
	info.nranks = 1;
	snprintf(info.reason, sizeof info.reason, "command");
	snprintf(info.mpi_flavour, sizeof info.mpi_flavour, "none");
	snprintf(info.program, sizeof info.program, "/bin/true");
	memset(&img, 0, sizeof img);
	img.proc.pid = 1;
	img.threads = &th;
	img.nthreads = 1;
	img.regions = &reg;
	img.nregions = 1;
	img.runs = runs;
	if (!parent) {
		runs[0] = (struct ck_page_run){ reg.start, NPAGES, 0 };
		img.nruns = 1;
	} else {
		/* as the capture names them: zero pages store nothing */
		for (size_t i = 0; i < npages; i++) {
			const uint8_t *pg = mem + pages[i] * P;
			int zero = pg[0] == 0 && !memcmp(pg, pg + 1, P - 1);
			runs[i] = (struct ck_page_run){ reg.start + pages[i] * P, 1,
			                                zero ? CK_RUN_ZEROS : 0 };
		}
		img.nruns = npages;
	}
	reg.run_count = img.nruns;
	if (container_write(dir, &info, &img, NULL, tmp, sizeof tmp) ||
	    container_commit(dir, gen, tmp))
		fail_msg("generation %llu: %s", (unsigned long long)gen, container_error());
}

/* read generation gen back into mem (zeroed first): 0 or -1 */
static int read_gen(uint64_t gen)
{
	char path[4200];
	struct container_reader *r;
	struct ck_image img;
	int rc;

	memset(mem, 0, NPAGES * P);
	assert_int_equal(container_path(path, sizeof path, dir, gen), 0);
	if (!(r = container_open(path)))
		return -1;
	rc = container_read_image(r, 0, &img);
	if (!rc) {
		rc = container_read_pages(r, 0, &img, 1, NULL);
		ck_image_free(&img);
	}
	container_close(r);
	return rc;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/ckptmpi-chain-XXXXXX");
	assert_non_null(mkdtemp(dir));
	mem = mmap(NULL, NPAGES * P, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(mem != MAP_FAILED);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	munmap(mem, NPAGES * P);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void chain_through_the_container(void **state)
{
	static uint8_t want[NPAGES * 4096];
	const unsigned p2[] = { 3, 40 }, p3[] = { 40, 41, 63 };
	char path[4200];
	uint64_t deps[8];
	size_t nd;
	struct container_reader *r;
	struct ck_generation_info info;

	(void)state;
	fill(mem, NPAGES * P, 1);
	memcpy(want, mem, sizeof want);
	write_gen(1, 0, NULL, 0);
	fill(mem + 3 * P, P, 2);
	fill(mem + 40 * P, P, 2);
	write_gen(2, 1, p2, 2);
	memset(mem + 41 * P, 0, P); /* a page written to zeros: named, over gen 1's bytes */
	fill(mem + 40 * P, P, 3);
	fill(mem + 63 * P, P, 3);
	write_gen(3, 2, p3, 3);
	memcpy(want + 3 * P, mem + 3 * P, P);
	memcpy(want + 40 * P, mem + 40 * P, 2 * P);
	memcpy(want + 63 * P, mem + 63 * P, P);

	assert_int_equal(read_gen(3), 0);
	assert_memory_equal(mem, want, sizeof want);
	/* generation 3 stores two pages' bytes: 40 and 63 (41 is zeros) */
	{
		struct container_reader *r3;
		struct ck_image i3;
		assert_int_equal(container_path(path, sizeof path, dir, 3), 0);
		assert_non_null(r3 = container_open(path));
		assert_int_equal(container_read_image(r3, 0, &i3), 0);
		assert_int_equal(i3.memory_bytes, 2 * P);
		ck_image_free(&i3);
		container_close(r3);
	}
	assert_int_equal(chain_parents(dir, 3, deps, 8, &nd), 0);
	assert_int_equal(nd, 2);
	assert_int_equal(deps[0], 2);
	assert_int_equal(deps[1], 1);

	/* retention keeps what the newest depends on */
	assert_int_equal(generations_retain(dir, 1), 0);
	for (uint64_t g = 1; g <= 3; g++) {
		assert_int_equal(container_path(path, sizeof path, dir, g), 0);
		assert_int_equal(access(path, F_OK), 0);
	}

	/* the parent gone: the child refuses, naming it */
	assert_int_equal(container_path(path, sizeof path, dir, 3), 0);
	assert_non_null(r = container_open(path));
	assert_int_equal(container_info(r, &info), 0);
	container_close(r);
	assert_int_equal(chain_check(path, &info, 1), 0);
	{
		char p1[4200], moved[4300];
		assert_int_equal(container_path(p1, sizeof p1, dir, 1), 0);
		snprintf(moved, sizeof moved, "%s.away", p1);
		assert_int_equal(rename(p1, moved), 0);
		assert_int_equal(read_gen(3), -1);
		assert_non_null(strstr(container_error(), "depend on generation 1"));
		assert_non_null(strstr(container_error(), "ckpt-000001.h5"));
		assert_int_equal(chain_check(path, &info, 0), -1);
		assert_non_null(strstr(container_error(), "no such file"));
		/* generation 2 alone is still refused: it needs 1 too */
		assert_int_equal(read_gen(2), -1);
		assert_int_equal(rename(moved, p1), 0);
	}
	assert_int_equal(read_gen(2), 0);
}

/* A child whose middle region was remapped since its parent (saved
 * whole, page 20 its only non-zero page) between two inherited ones: the
 * parent's run spans all three, but its bytes must not land in the
 * middle (the restart joins an ancestor's pieces only across pages a
 * newer generation writes). */
static void remapped_middle_stays_zero(void **state)
{
	struct ck_generation_info info;
	struct ck_image img;
	uint64_t base = (uint64_t)(uintptr_t)mem;
	struct ck_region regs[3] = {
		{ .start = base, .end = base + 16 * P, .prot = 3, .inherit = 1 },
		{ .start = base + 16 * P, .end = base + 48 * P, .prot = 3 },
		{ .start = base + 48 * P, .end = base + 64 * P, .prot = 3, .inherit = 1 },
	};
	struct ck_page_run runs[] = { { base + 5 * P, 1, 0 }, { base + 20 * P, 1, 0 } };
	struct ck_thread th = { .tid = 1, .is_main = 1 };
	static uint8_t want[NPAGES * 4096];
	char tmp[4096];

	(void)state;
	fill(mem, NPAGES * P, 1);
	write_gen(1, 0, NULL, 0);
	memcpy(want, mem, sizeof want);
	memset(want + 16 * P, 0, 32 * P);
	fill(mem + 5 * P, P, 7);
	fill(mem + 20 * P, P, 8);
	memcpy(want + 5 * P, mem + 5 * P, P);
	memcpy(want + 20 * P, mem + 20 * P, P);
	memset(&info, 0, sizeof info);
	info.generation = 2;
	info.pages_parent = 1;
	info.chain_depth = 1;
	info.nranks = 1;
	snprintf(info.reason, sizeof info.reason, "command");
	snprintf(info.mpi_flavour, sizeof info.mpi_flavour, "none");
	snprintf(info.program, sizeof info.program, "/bin/true");
	memset(&img, 0, sizeof img);
	img.proc.pid = 1;
	img.threads = &th;
	img.nthreads = 1;
	img.regions = regs;
	img.nregions = 3;
	img.runs = runs;
	img.nruns = 2;
	regs[0].run_first = 0;
	regs[0].run_count = 1;
	regs[1].run_first = 1;
	regs[1].run_count = 1;
	regs[2].run_first = 2;
	if (container_write(dir, &info, &img, NULL, tmp, sizeof tmp) ||
	    container_commit(dir, 2, tmp))
		fail_msg("generation 2: %s", container_error());
	assert_int_equal(read_gen(2), 0);
	assert_memory_equal(mem, want, sizeof want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(needed_is_inherited_minus_own_runs),
		cmocka_unit_test(take_from_full_ancestor),
		cmocka_unit_test(take_passes_gaps_of_inherited_regions),
		cmocka_unit_test_setup_teardown(chain_through_the_container, setup, teardown),
		cmocka_unit_test_setup_teardown(remapped_middle_stays_zero, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
