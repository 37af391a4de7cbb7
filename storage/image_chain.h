/* Incremental generations: a generation whose regions are marked
 * `inherit` stores only the pages written since its parent generation
 * (root attribute pages_parent); its other pages come from the nearest
 * ancestor that stored them (docs/container.md, "Incremental
 * generations"). */
#ifndef CKPTMPI_STORAGE_IMAGE_CHAIN_H
#define CKPTMPI_STORAGE_IMAGE_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/image.h"
#include "storage/container.h"

/* Page ranges [start, end), sorted, disjoint. */
struct chain_span { uint64_t start, end; };
struct chain_need {
	struct chain_span *v;
	size_t n, cap;
};
void chain_need_free(struct chain_need *need);

/* What the ancestors of `child` must give: the inherited regions' pages
 * that child's own runs do not hold. 0, or -1 (out of memory). */
int chain_needed(const struct ck_image *child, struct chain_need *need);

/* Ancestor `anc`'s share of `need`: the pieces of its runs inside need
 * (runs with their addresses and data offsets in anc's page data) to
 * *out (malloc'd, *nout of them, in address order); need becomes what is
 * left for anc's own parent: the rest of need that lies in anc's
 * inherited regions. Needed pages in anc's other regions (never saved
 * there: zero or the file's) or outside any region of anc (mapped since,
 * untouched) are dropped. 0, or -1 (out of memory). */
int chain_take(const struct ck_image *anc, struct chain_need *need, struct ck_page_run **out,
               size_t *nout);

/* Rank `rank`'s pages of generation `info` (the file at `path`) that its
 * ancestors hold, read and checked into place; container_read_pages()
 * calls it before it reads the generation's own pages. `own`: ancestors
 * must be this user's own files. 0, or -1 with a message naming the
 * generation, the ancestor and its file. */
int chain_read_ancestors(const char *path, int own, const struct ck_generation_info *info,
                         uint64_t rank, const struct ck_image *img,
                         container_progress_fn progress);

/* Every generation the pages of generation `info` (at `path`) depend on
 * is there, complete, of the same job, and reads back: its tables for
 * every rank, and with `pages` its page data too (checksums). 0, or -1
 * with a message naming the generation and the ancestor's file. */
int chain_check(const char *path, const struct ck_generation_info *info, int pages);

/* The generations `gen`'s pages depend on, nearest first, into deps[]
 * (at most max; *n of them): read from their files in DIR. 0, or -1 with
 * a message (an ancestor that cannot be read ends the list there). */
int chain_parents(const char *dir, uint64_t gen, uint64_t *deps, size_t max, size_t *n);

#endif
