/* Parsing /proc/self/maps. */
#ifndef CKPTMPI_CORE_MAPS_H
#define CKPTMPI_CORE_MAPS_H

#include <stddef.h>
#include <stdint.h>

#include "core/intervals.h"

struct map_entry {
	uint64_t start, end;
	uint64_t offset;
	uint32_t prot;        /* PROT_* */
	uint32_t shared;      /* 's' in the flags column */
	uint64_t inode;
	char path[512];       /* "" for anonymous, "[heap]", "/lib/...", "... (deleted)" */
};

struct map_list {
	struct map_entry *v;
	size_t n;
};

/* Parse maps text (one line per mapping, as the kernel prints it). */
int maps_parse(const char *text, struct map_list *out);
/* Read and parse /proc/self/maps. */
int maps_read_self(struct map_list *out);
/* The address ranges of all entries. */
int maps_to_intervals(const struct map_list *m, struct interval_set *out);
void maps_free(struct map_list *m);

#endif
