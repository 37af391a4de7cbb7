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
};

#endif
