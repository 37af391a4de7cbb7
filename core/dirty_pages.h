/* Pages the program wrote since the last checkpoint (incremental
 * generations, docs/container.md "Incremental generations").
 *
 * Tracked with userfaultfd's asynchronous write protection
 * (UFFD_FEATURE_WP_ASYNC, opened UFFD_USER_MODE_ONLY so that it works
 * unprivileged) and read back with the PAGEMAP_SCAN ioctl on
 * /proc/self/pagemap, which also protects the written pages again in the
 * same call. Soft-dirty bits are not built into this kernel
 * (CONFIG_MEM_SOFT_DIRTY unset). Called with the program stopped. */
#ifndef CKPTMPI_CORE_DIRTY_PAGES_H
#define CKPTMPI_CORE_DIRTY_PAGES_H

#include <stdint.h>

/* A range [start, end) of written pages; non-zero stops the scan. */
typedef int (*dirty_range_fn)(void *ctx, uint64_t start, uint64_t end);

/* The written pages of [start, end), in address order, to fn; they are
 * write-protected again. Returns 0 when the whole range has been tracked
 * since the last scan (or dirty_track), 1 when some of it has not (a new,
 * moved or remapped mapping: nothing is reported), -1 on failure (logged).
 * Unless 0 the caller saves the range whole and then calls dirty_track:
 * tracking leaves a marker on every unpopulated page, which
 * /proc/self/pagemap shows as a swapped page, so the caller looks at the
 * pages first. */
int dirty_scan(uint64_t start, uint64_t end, dirty_range_fn fn, void *ctx);

/* Start tracking [start, end) (a restart, after the pages were read):
 * 0, or -1 (logged once; the next generation is then full there). */
int dirty_track(uint64_t start, uint64_t end);

/* The same for memory whose pages come in behind the running program (a
 * lazy restart): registered for missing pages too, on the same
 * userfaultfd (dirty_uffd), before any of them is there. 0, or -1. */
int dirty_track_missing(uint64_t start, uint64_t end);
int dirty_uffd(void);

/* Whether tracking works in this process (opened on first use). */
int dirty_available(void);
/* 0: no tracking at all (CKPTMPI_FULL_EVERY=1: every generation full,
 * and no write faults after each checkpoint); dirty_scan then says 1 and
 * dirty_track fails, doing nothing. */
void dirty_enable(int on);

/* The chain: the generation the tracked pages are relative to (the last
 * one committed, or the one restored; 0: none, the next is full) and how
 * many incremental generations lead to it from its full one. */
void dirty_set_base(uint64_t generation, uint64_t depth);
uint64_t dirty_base(void);
uint64_t dirty_depth(void);

/* The generation the next one's pages may depend on, for a full
 * generation every `full_every` (1: always full): 0 for a full one. */
uint64_t dirty_next_parent(unsigned full_every);

#endif
