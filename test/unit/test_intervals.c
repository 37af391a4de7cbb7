#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/intervals.h"

static void expect_set(const struct interval_set *s, const uint64_t *pairs, size_t n)
{
	assert_int_equal(s->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(s->v[i].start, pairs[2 * i]);
		assert_int_equal(s->v[i].end, pairs[2 * i + 1]);
	}
}

static void add_merges_touching_and_overlapping(void **state)
{
	struct interval_set s = {0};
	(void)state;
	assert_int_equal(intervals_add(&s, 100, 200), 0);
	assert_int_equal(intervals_add(&s, 300, 400), 0);
	assert_int_equal(intervals_add(&s, 0, 10), 0);
	expect_set(&s, (uint64_t[]){0, 10, 100, 200, 300, 400}, 3);
	assert_int_equal(intervals_add(&s, 200, 300), 0); /* touches both */
	expect_set(&s, (uint64_t[]){0, 10, 100, 400}, 2);
	assert_int_equal(intervals_add(&s, 5, 150), 0);
	expect_set(&s, (uint64_t[]){0, 400}, 1);
	assert_int_equal(intervals_add(&s, 50, 50), 0); /* empty: no-op */
	expect_set(&s, (uint64_t[]){0, 400}, 1);
	intervals_free(&s);
}

static void remove_splits_and_trims(void **state)
{
	struct interval_set s = {0};
	(void)state;
	intervals_add(&s, 0, 1000);
	assert_int_equal(intervals_remove(&s, 100, 200), 0);
	expect_set(&s, (uint64_t[]){0, 100, 200, 1000}, 2);
	assert_int_equal(intervals_remove(&s, 50, 250), 0);
	expect_set(&s, (uint64_t[]){0, 50, 250, 1000}, 2);
	assert_int_equal(intervals_remove(&s, 0, 2000), 0);
	assert_int_equal(s.n, 0);
	intervals_free(&s);
}

static void contains_and_subtract(void **state)
{
	struct interval_set s = {0}, out = {0};
	(void)state;
	intervals_add(&s, 10, 20);
	intervals_add(&s, 30, 40);
	assert_true(intervals_contains(&s, 10));
	assert_true(intervals_contains(&s, 19));
	assert_false(intervals_contains(&s, 20));
	assert_false(intervals_contains(&s, 25));
	assert_false(intervals_contains(&s, 9));
	assert_int_equal(intervals_subtract(&s, 0, 50, &out), 0);
	expect_set(&out, (uint64_t[]){0, 10, 20, 30, 40, 50}, 3);
	intervals_free(&out);
	assert_int_equal(intervals_subtract(&s, 12, 18, &out), 0);
	assert_int_equal(out.n, 0);
	intervals_free(&out);
	assert_int_equal(intervals_subtract(&s, 15, 35, &out), 0);
	expect_set(&out, (uint64_t[]){20, 30}, 1);
	intervals_free(&out);
	intervals_free(&s);
}

static void many_random_operations_match_a_bitmap(void **state)
{
	enum { N = 4096 };
	static unsigned char bits[N];
	struct interval_set s = {0};
	unsigned seed = 12345;
	(void)state;
	for (int it = 0; it < 3000; it++) {
		unsigned a, b;
		seed = seed * 1103515245u + 12345u;
		a = (seed >> 8) % N;
		seed = seed * 1103515245u + 12345u;
		b = a + (seed >> 8) % 64;
		if (b > N)
			b = N;
		if (it % 3 == 2) {
			intervals_remove(&s, a, b);
			for (unsigned i = a; i < b; i++)
				bits[i] = 0;
		} else {
			intervals_add(&s, a, b);
			for (unsigned i = a; i < b; i++)
				bits[i] = 1;
		}
	}
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(intervals_contains(&s, i), bits[i]);
	for (size_t i = 1; i < s.n; i++)
		assert_true(s.v[i - 1].end < s.v[i].start); /* disjoint, not touching */
	intervals_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(add_merges_touching_and_overlapping),
		cmocka_unit_test(remove_splits_and_trims),
		cmocka_unit_test(contains_and_subtract),
		cmocka_unit_test(many_random_operations_match_a_bitmap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
