/* Describing the stopped upper half as a ck_image. */
#ifndef CKPTMPI_CORE_CAPTURE_H
#define CKPTMPI_CORE_CAPTURE_H

#include "core/image.h"
#include "core/park.h"

/* Build img from the parked threads and the current address space. Page
 * runs point at live memory; the upper half must stay parked until the
 * image is written. Returns 0 or -1 with a message printed. */
int capture_image(const struct park_result *parked, struct ck_image *img);
/* 1: regions tracked since the last checkpoint (core/dirty_pages.h) are
 * captured incrementally: only their pages written since, the region
 * marked `inherit`. 0: everything whole. Tracking is reset either way. */
void capture_set_incremental(int on);
/* Who looks for zero pages, which are not stored. */
enum capture_zero {
	CAPTURE_ZERO_AT_CUT,    /* the capture, reading every saved page */
	CAPTURE_ZERO_BY_WRITER, /* capture_settle_zero_pages, which the writer
	                           calls before writing (a writer behind the
	                           program looks at its copy) */
	CAPTURE_ZERO_KEPT,      /* nobody: present zero pages are stored (a job
	                           member's layout is fixed at the cut) */
};
/* In every mode a page the page table cannot tell from an unpopulated
 * one (swapped out, or a write-tracking marker) is looked at by the
 * capture unless the writer does. */
void capture_defer_zero_pages(enum capture_zero mode);
int capture_settle_zero_pages(struct ck_image *img);
/* Ranges of the address space that belong to no one's image (a device's
 * memory, re-created at a restart: the verbs device's segments), set by a
 * plugin at its cut and cleared when the threads run on. */
#define CAPTURE_MAX_EXCLUDED 64
int capture_exclude(uint64_t start, uint64_t len);
void capture_exclude_clear(void);
/* Give back read access borrowed from unreadable regions. Call after the
 * image is written, before the upper half runs again. */
void capture_unborrow(void);

#endif
