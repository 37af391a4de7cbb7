#include "core/intervals.h"

#include <stdlib.h>
#include <string.h>

static int reserve(struct interval_set *s, size_t need)
{
	struct interval *nv;
	size_t cap;

	if (need <= s->cap)
		return 0;
	cap = s->cap ? s->cap * 2 : 64;
	while (cap < need)
		cap *= 2;
	nv = realloc(s->v, cap * sizeof *nv);
	if (!nv)
		return -1;
	s->v = nv;
	s->cap = cap;
	return 0;
}

/* first index whose end > addr */
static size_t lower_bound(const struct interval_set *s, uint64_t addr)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->v[mid].end > addr)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int intervals_add(struct interval_set *s, uint64_t start, uint64_t end)
{
	size_t i, j;

	if (start >= end)
		return 0;
	/* merge with everything touching [start, end] */
	i = start ? lower_bound(s, start - 1) : 0;
	if (i < s->n && s->v[i].end < start)
		i++;
	j = i;
	while (j < s->n && s->v[j].start <= end) {
		if (s->v[j].start < start)
			start = s->v[j].start;
		if (s->v[j].end > end)
			end = s->v[j].end;
		j++;
	}
	if (j == i) {
		if (reserve(s, s->n + 1))
			return -1;
		memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
		s->n++;
	} else if (j > i + 1) {
		memmove(&s->v[i + 1], &s->v[j], (s->n - j) * sizeof *s->v);
		s->n -= j - i - 1;
	}
	s->v[i].start = start;
	s->v[i].end = end;
	return 0;
}

int intervals_remove(struct interval_set *s, uint64_t start, uint64_t end)
{
	size_t i;

	if (start >= end)
		return 0;
	i = lower_bound(s, start);
	while (i < s->n && s->v[i].start < end) {
		struct interval cur = s->v[i];
		if (cur.start < start && cur.end > end) {
			/* split in two */
			if (reserve(s, s->n + 1))
				return -1;
			memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof *s->v);
			s->n++;
			s->v[i].end = start;
			s->v[i + 1].start = end;
			return 0;
		}
		if (cur.start < start) {
			s->v[i].end = start;
			i++;
		} else if (cur.end > end) {
			s->v[i].start = end;
			return 0;
		} else {
			memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
			s->n--;
		}
	}
	return 0;
}

int intervals_contains(const struct interval_set *s, uint64_t addr)
{
	size_t i = lower_bound(s, addr);
	return i < s->n && s->v[i].start <= addr;
}

int intervals_subtract(const struct interval_set *s, uint64_t start, uint64_t end,
                       struct interval_set *out)
{
	size_t i = lower_bound(s, start);
	uint64_t cur = start;

	for (; i < s->n && s->v[i].start < end; i++) {
		if (s->v[i].start > cur && intervals_add(out, cur, s->v[i].start))
			return -1;
		if (s->v[i].end > cur)
			cur = s->v[i].end;
	}
	if (cur < end && intervals_add(out, cur, end))
		return -1;
	return 0;
}

void intervals_free(struct interval_set *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}
