#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>
#include <sys/mman.h>

#include "core/maps.h"

static const char sample[] =
	"555555554000-555555556000 r--p 00000000 fd:00 1234   /usr/bin/cat\n"
	"7ffff7dd3000-7ffff7df9000 r-xp 00026000 fd:00 99     /usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7ffff7fc1000-7ffff7fc5000 rw-s 00000000 00:01 7      /dev/zero (deleted)\n"
	"7ffff7fc5000-7ffff7fc7000 rw-p 00000000 00:00 0 \n"
	"7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0      [stack]\n"
	"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]\n";

static void parses_every_field(void **state)
{
	struct map_list m;
	(void)state;
	assert_int_equal(maps_parse(sample, &m), 0);
	assert_int_equal(m.n, 6);
	assert_int_equal(m.v[0].start, 0x555555554000ull);
	assert_int_equal(m.v[0].end, 0x555555556000ull);
	assert_int_equal(m.v[0].prot, PROT_READ);
	assert_string_equal(m.v[0].path, "/usr/bin/cat");
	assert_int_equal(m.v[1].offset, 0x26000);
	assert_int_equal(m.v[1].prot, PROT_READ | PROT_EXEC);
	assert_int_equal(m.v[1].inode, 99);
	assert_true(m.v[2].shared);
	assert_string_equal(m.v[2].path, "/dev/zero (deleted)");
	assert_string_equal(m.v[3].path, "");
	assert_int_equal(m.v[3].prot, PROT_READ | PROT_WRITE);
	assert_string_equal(m.v[4].path, "[stack]");
	assert_int_equal(m.v[5].prot, PROT_EXEC);
	maps_free(&m);
}

static void reads_own_maps_and_finds_a_fresh_mapping(void **state)
{
	struct map_list m;
	struct interval_set s = {0};
	void *p = mmap(NULL, 3 * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	(void)state;
	assert_true(p != MAP_FAILED);
	assert_int_equal(maps_read_self(&m), 0);
	assert_true(m.n > 5);
	assert_int_equal(maps_to_intervals(&m, &s), 0);
	assert_true(intervals_contains(&s, (uint64_t)p));
	assert_true(intervals_contains(&s, (uint64_t)p + 3 * 4096 - 1));
	munmap(p, 3 * 4096);
	intervals_free(&s);
	maps_free(&m);
}

static void skips_garbage_lines(void **state)
{
	struct map_list m;
	(void)state;
	assert_int_equal(maps_parse("not a line\n\n1000-2000 r--p 0 0:0 0\n", &m), 0);
	assert_int_equal(m.n, 1);
	assert_int_equal(m.v[0].start, 0x1000);
	maps_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_every_field),
		cmocka_unit_test(reads_own_maps_and_finds_a_fresh_mapping),
		cmocka_unit_test(skips_garbage_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
