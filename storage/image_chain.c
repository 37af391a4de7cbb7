/* Reading through a chain of incremental generations: which pages each
 * ancestor gives (chain_needed, chain_take: pure, unit-tested) and the
 * ancestors' files opened, checked and read. */
#include "storage/image_chain.h"
#include "storage/lazy_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/container_internal.h"

#define PAGE ((uint64_t)CK_PAGE_SIZE)

void chain_need_free(struct chain_need *need)
{
	free(need->v);
	need->v = NULL;
	need->n = need->cap = 0;
}

/* Append [start, end), after everything already there. */
static int need_add(struct chain_need *need, uint64_t start, uint64_t end)
{
	if (start >= end)
		return 0;
	if (need->n && need->v[need->n - 1].end == start) {
		need->v[need->n - 1].end = end;
		return 0;
	}
	if (need->n == need->cap) {
		size_t cap = need->cap ? need->cap * 2 : 16;
		struct chain_span *v = realloc(need->v, cap * sizeof *v);
		if (!v)
			return -1;
		need->v = v;
		need->cap = cap;
	}
	need->v[need->n++] = (struct chain_span){ start, end };
	return 0;
}

static int cmp_region(const void *a, const void *b)
{
	const struct ck_region *x = *(const struct ck_region *const *)a;
	const struct ck_region *y = *(const struct ck_region *const *)b;
	return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_run(const void *a, const void *b)
{
	const struct ck_page_run *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* The image's regions in address order (pointers into img). */
static const struct ck_region **sorted_regions(const struct ck_image *img)
{
	const struct ck_region **v = malloc((img->nregions ? img->nregions : 1) * sizeof *v);

	if (!v)
		return NULL;
	for (size_t i = 0; i < img->nregions; i++)
		v[i] = &img->regions[i];
	qsort(v, img->nregions, sizeof *v, cmp_region);
	return v;
}

/* Region g's runs, in address order (a malloc'd copy). */
static struct ck_page_run *sorted_runs(const struct ck_image *img, const struct ck_region *g)
{
	struct ck_page_run *v = malloc((g->run_count ? g->run_count : 1) * sizeof *v);

	if (!v)
		return NULL;
	if (g->run_count)
		memcpy(v, img->runs + g->run_first, g->run_count * sizeof *v);
	qsort(v, g->run_count, sizeof *v, cmp_run);
	return v;
}

int chain_needed(const struct ck_image *child, struct chain_need *need)
{
	const struct ck_region **regs = sorted_regions(child);
	int rc = 0;

	need->n = 0;
	if (!regs)
		return -1;
	for (size_t i = 0; !rc && i < child->nregions; i++) {
		const struct ck_region *g = regs[i];
		struct ck_page_run *runs;
		uint64_t at = g->start;

		if (!g->inherit)
			continue;
		if (!(runs = sorted_runs(child, g))) {
			rc = -1;
			break;
		}
		for (uint64_t k = 0; !rc && k < g->run_count; k++) {
			rc = need_add(need, at, runs[k].addr);
			if (runs[k].addr + runs[k].npages * PAGE > at)
				at = runs[k].addr + runs[k].npages * PAGE;
		}
		if (!rc && at < g->end)
			rc = need_add(need, at, g->end);
		free(runs);
	}
	free(regs);
	return rc;
}

struct take {
	struct ck_page_run *v;
	size_t n, cap;
};

static int take_add(struct take *t, uint64_t addr, uint64_t npages, uint64_t data_offset)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		struct ck_page_run *v = realloc(t->v, cap * sizeof *v);
		if (!v)
			return -1;
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = (struct ck_page_run){ addr, npages, data_offset };
	return 0;
}

/* [s, e) of region g (runs sorted): its runs' pieces to t, the gaps to
 * next when g inherits. */
static int take_piece(const struct ck_region *g, const struct ck_page_run *runs, uint64_t s,
                      uint64_t e, struct take *t, struct chain_need *next)
{
	uint64_t at = s;

	for (uint64_t k = 0; k < g->run_count && at < e; k++) {
		uint64_t rs = runs[k].addr, re = rs + runs[k].npages * PAGE;

		if (re <= at)
			continue;
		if (rs >= e)
			break;
		if (rs > at) {
			if (g->inherit && need_add(next, at, rs))
				return -1;
			at = rs;
		}
		{
			uint64_t pe = re < e ? re : e;
			uint64_t off = runs[k].data_offset == CK_RUN_ZEROS ? CK_RUN_ZEROS :
			               runs[k].data_offset + (at - rs);
			if (take_add(t, at, (pe - at) / PAGE, off))
				return -1;
			at = pe;
		}
	}
	if (at < e && g->inherit && need_add(next, at, e))
		return -1;
	return 0;
}

int chain_take(const struct ck_image *anc, struct chain_need *need, struct ck_page_run **out,
               size_t *nout)
{
	const struct ck_region **regs = sorted_regions(anc);
	struct chain_need next = {0};
	struct take t = {0};
	size_t q = 0;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	if (!regs)
		return -1;
	for (size_t i = 0; !rc && i < anc->nregions && q < need->n; i++) {
		const struct ck_region *g = regs[i];
		struct ck_page_run *runs = NULL;

		/* need spans wholly before this region lie in none: dropped */
		while (q < need->n && need->v[q].end <= g->start)
			q++;
		for (size_t k = q; !rc && k < need->n && need->v[k].start < g->end; k++) {
			uint64_t s = need->v[k].start > g->start ? need->v[k].start : g->start;
			uint64_t e = need->v[k].end < g->end ? need->v[k].end : g->end;

			if (!runs && !(runs = sorted_runs(anc, g)))
				rc = -1;
			else
				rc = take_piece(g, runs, s, e, &t, &next);
		}
		free(runs);
	}
	free(regs);
	if (rc) {
		free(t.v);
		chain_need_free(&next);
		return -1;
	}
	chain_need_free(need);
	*need = next;
	*out = t.v;
	*nout = t.n;
	return 0;
}

/* DIR of a generation's path, into out. */
static void dir_of(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(out, len, ".");
	else if (slash == path)
		snprintf(out, len, "/");
	else
		snprintf(out, len, "%.*s", (int)(slash - path), path);
}

/* Open ancestor `gen` of generation `child` (the file at `path`), check
 * that it is what the child needs. NULL with a message naming both. */
static struct container_reader *open_ancestor(const char *path, uint64_t child, uint64_t gen,
                                              uint64_t nranks, int own,
                                              struct ck_generation_info *ainfo, char *apath,
                                              size_t alen)
{
	char dir[4096];
	struct container_reader *a;

	dir_of(path, dir, sizeof dir);
	if (container_path(apath, alen, dir, gen))
		return NULL;
	a = own ? container_open_own(apath) : container_open(apath);
	if (!a) {
		char why[1400];
		snprintf(why, sizeof why, "%s", container_error());
		ck_set_error("%s: generation %llu's pages depend on generation %llu (%s), which cannot "
		             "be used: %s", path, (unsigned long long)child, (unsigned long long)gen,
		             apath, why);
		return NULL;
	}
	if (container_info(a, ainfo) || ainfo->generation != gen || ainfo->nranks != nranks) {
		ck_set_error("%s: generation %llu's pages depend on generation %llu, but %s is "
		             "generation %llu of %llu rank(s), not of this job's %llu", path,
		             (unsigned long long)child, (unsigned long long)gen, apath,
		             (unsigned long long)ainfo->generation,
		             (unsigned long long)ainfo->nranks, (unsigned long long)nranks);
		container_close(a);
		return NULL;
	}
	return a;
}

static void blame(const char *path, uint64_t child, uint64_t gen, const char *apath)
{
	char why[1400];

	snprintf(why, sizeof why, "%s", container_error());
	ck_set_error("%s: generation %llu's pages depend on generation %llu (%s), which does not "
	             "read back: %s", path, (unsigned long long)child, (unsigned long long)gen,
	             apath, why);
}

static int cmp_span(const void *a, const void *b)
{
	const struct chain_span *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* Add runs' pages to the set s (kept sorted and merged). */
static int cover_add(struct chain_need *s, const struct ck_page_run *runs, size_t n)
{
	size_t m = 0;

	if (s->n + n > s->cap) {
		size_t cap = s->n + n + 16;
		struct chain_span *v = realloc(s->v, cap * sizeof *v);
		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	for (size_t i = 0; i < n; i++)
		if (runs[i].npages)
			s->v[s->n++] = (struct chain_span){ runs[i].addr,
			                                    runs[i].addr + runs[i].npages * PAGE };
	qsort(s->v, s->n, sizeof *s->v, cmp_span);
	for (size_t i = 0; i < s->n; i++) {
		if (m && s->v[i].start <= s->v[m - 1].end) {
			if (s->v[i].end > s->v[m - 1].end)
				s->v[m - 1].end = s->v[i].end;
		} else {
			s->v[m++] = s->v[i];
		}
	}
	s->n = m;
	return 0;
}

/* [start, end) lies in the set (empty: yes). */
static int covered(const struct chain_need *s, uint64_t start, uint64_t end)
{
	size_t lo = 0, hi = s->n;

	if (start >= end)
		return 1;
	while (lo < hi) {  /* the last span starting at or before start */
		size_t mid = (lo + hi) / 2;
		if (s->v[mid].start <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && s->v[lo - 1].end >= end;
}

/* Join pieces of one ancestor run across gaps that newer generations
 * write anyway (read later, they overwrite): whole chunks then go
 * straight to their place instead of through a bounce buffer. */
static void widen(struct ck_page_run *v, size_t *n, const struct chain_need *newer)
{
	size_t o = 0;

	for (size_t i = 1; i < *n; i++) {
		struct ck_page_run *p = &v[o];
		uint64_t pend = p->addr + p->npages * PAGE;

		if (p->data_offset != CK_RUN_ZEROS && v[i].data_offset != CK_RUN_ZEROS &&
		    v[i].addr >= pend && v[i].data_offset - p->data_offset == v[i].addr - p->addr &&
		    covered(newer, pend, v[i].addr))
			p->npages = (v[i].addr + v[i].npages * PAGE - p->addr) / PAGE;
		else
			v[++o] = v[i];
	}
	if (*n)
		*n = o + 1;
}

struct level {
	struct container_reader *a;
	struct ck_page_run *runs;
	size_t n;
	uint64_t gen;
	char path[4200];
};

int chain_read_ancestors(const char *path, int own, const struct ck_generation_info *info,
                         uint64_t rank, const struct ck_image *img,
                         container_progress_fn progress)
{
	struct chain_need need = {0};
	struct level *lv = NULL;
	size_t nlv = 0;
	uint64_t gen = info->pages_parent;
	int rc = 0;

	(void)progress;
	if (chain_needed(img, &need)) {
		ck_set_error("%s: out of memory", path);
		return -1;
	}
	/* what each ancestor gives, nearest first */
	while (!rc && need.n && gen) {
		struct ck_generation_info ainfo;
		struct ck_image anc;
		struct level *l;

		if (!(l = realloc(lv, (nlv + 1) * sizeof *lv))) {
			ck_set_error("%s: out of memory", path);
			rc = -1;
			break;
		}
		lv = l;
		l = &lv[nlv];
		memset(l, 0, sizeof *l);
		l->gen = gen;
		if (!(l->a = open_ancestor(path, info->generation, gen, info->nranks, own, &ainfo,
		                           l->path, sizeof l->path))) {
			rc = -1;
			break;
		}
		nlv++;
		if (container_read_image(l->a, rank, &anc)) {
			blame(path, info->generation, gen, l->path);
			rc = -1;
			break;
		}
		if (chain_take(&anc, &need, &l->runs, &l->n)) {
			ck_set_error("%s: out of memory", path);
			rc = -1;
		}
		ck_image_free(&anc);
		gen = ainfo.pages_parent;
	}
	if (!rc && need.n) {
		/* an inherited region in a full generation */
		ck_set_error("%s: generation %llu: rank %llu has inherited pages no ancestor holds "
		             "(corrupt file)", path, (unsigned long long)info->generation,
		             (unsigned long long)rank);
		rc = -1;
	}
	/* read oldest first: a newer generation's pages land over an older
	 * one's, so each ancestor's pieces may be joined across what the
	 * newer ones (and the child, read last) write */
	for (size_t i = nlv; !rc && i-- > 0;) {
		struct ck_image part;
		struct chain_need newer_than_i = {0};

		/* the pages of the child and of the levels nearer than i */
		if (cover_add(&newer_than_i, img->runs, img->nruns)) {
			rc = -1;
		} else {
			for (size_t k = 0; !rc && k < i; k++)
				rc = cover_add(&newer_than_i, lv[k].runs, lv[k].n);
		}
		if (rc) {
			ck_set_error("%s: out of memory", path);
			chain_need_free(&newer_than_i);
			break;
		}
		/* (not when pages are placed behind the program: placed once,
		 * the first there stays, so no generation may cover another's) */
		if (!ck_lazy_keeping())
			widen(lv[i].runs, &lv[i].n, &newer_than_i);
		chain_need_free(&newer_than_i);
		memset(&part, 0, sizeof part);
		part.runs = lv[i].runs;
		part.nruns = lv[i].n;
		if (part.nruns && container_read_pages(lv[i].a, rank, &part, 1, NULL)) {
			blame(path, info->generation, lv[i].gen, lv[i].path);
			rc = -1;
		}
	}
	for (size_t i = 0; i < nlv; i++) {
		free(lv[i].runs);
		container_close(lv[i].a);
	}
	free(lv);
	chain_need_free(&need);
	return rc;
}

int chain_check(const char *path, const struct ck_generation_info *info, int pages)
{
	uint64_t gen = info->pages_parent;

	while (gen) {
		struct ck_generation_info ainfo;
		struct container_reader *a;
		char apath[4200];

		if (!(a = open_ancestor(path, info->generation, gen, info->nranks, 0, &ainfo, apath,
		                        sizeof apath)))
			return -1;
		for (uint64_t k = 0; k < ainfo.nranks; k++) {
			struct ck_image img;
			int bad = container_read_image(a, k, &img) != 0;

			if (!bad) {
				bad = pages && container_read_pages(a, k, &img, 0, NULL);
				ck_image_free(&img);
			}
			if (bad) {
				blame(path, info->generation, gen, apath);
				container_close(a);
				return -1;
			}
		}
		container_close(a);
		gen = ainfo.pages_parent;
	}
	return 0;
}

int chain_parents(const char *dir, uint64_t gen, uint64_t *deps, size_t max, size_t *n)
{
	char path[4200];

	*n = 0;
	while (gen) {
		struct container_reader *r;
		struct ck_generation_info info;

		if (container_path(path, sizeof path, dir, gen) || !(r = container_open(path)))
			return -1;
		if (container_info(r, &info)) {
			container_close(r);
			return -1;
		}
		container_close(r);
		gen = info.pages_parent;
		if (gen && *n < max)
			deps[(*n)++] = gen;
	}
	return 0;
}
