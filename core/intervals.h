/* A set of disjoint address intervals [start, end), kept sorted. Used to
 * track which parts of the address space belong to the lower half. */
#ifndef CKPTMPI_CORE_INTERVALS_H
#define CKPTMPI_CORE_INTERVALS_H

#include <stddef.h>
#include <stdint.h>

struct interval { uint64_t start, end; };

struct interval_set {
	struct interval *v;
	size_t n, cap;
};

int intervals_add(struct interval_set *s, uint64_t start, uint64_t end);
int intervals_remove(struct interval_set *s, uint64_t start, uint64_t end);
int intervals_contains(const struct interval_set *s, uint64_t addr);
/* Pieces of [start, end) not covered by s, appended to out. */
int intervals_subtract(const struct interval_set *s, uint64_t start, uint64_t end,
                       struct interval_set *out);
void intervals_free(struct interval_set *s);

#endif
