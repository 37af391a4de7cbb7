/* What the runtime (lower half) reads of the verbs shadow (upper half).
 *
 * The shadow publishes the address of one of these through the runtime's
 * link (core/link.h, verbs_summary) and keeps it current; the runtime reads
 * it only while every program thread is parked, so no lock is needed. */
#ifndef CKPTMPI_IBSHADOW_SUMMARY_H
#define CKPTMPI_IBSHADOW_SUMMARY_H

#include <stdint.h>

#define IBSHADOW_SUMMARY_MAGIC 0x6962736861646f77ull /* "ibshadow" */

struct ibshadow_summary {
	uint64_t magic;
	/* verbs resources alive: contexts, PDs, MRs, CQs, completion
	 * channels, QPs, SRQs, AHs */
	volatile uint32_t live;
	uint32_t pad;
	/* the oldest live resource, for messages: for example
	 * "QP 0x000123 (RC, RTS) on ckptmpi_sw0" */
	char oldest[128];
	/* the software device's own mappings (its registry, segments and
	 * private arena: the "HCA's memory"), to be left out of an image and
	 * re-created; dev_nmaps entries of struct ibshadow_range at dev_maps,
	 * those with len 0 unused; 0 before the device is opened */
	volatile uint64_t dev_maps;
	volatile uint32_t dev_nmaps;
	uint32_t pad2;
	/* the device's directory: every fd of the device (the async event and
	 * completion channel FIFOs) is a file in it, part of the "HCA" like
	 * the mappings ("" before the device is opened) */
	char dev_dir[112];
};

struct ibshadow_range {
	uint64_t start, len;
};

#endif
