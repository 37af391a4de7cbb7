/* What the runtime (lower half) reads of the verbs shadow (upper half).
 *
 * The shadow publishes the address of one of these through the runtime's
 * link (core/link.h, verbs_summary) and keeps it current; the runtime reads
 * it only while every program thread is parked, so no lock is needed. */
#ifndef CKPTMPI_IBSHADOW_SUMMARY_H
#define CKPTMPI_IBSHADOW_SUMMARY_H

#include <stdint.h>

#define IBSHADOW_SUMMARY_MAGIC 0x6962736861646f77ull /* "ibshadow" */
/* The summary lives on a page of its own at this address (as the MPI
 * shim's state does, pmpi/vstate.h), so a restarted runtime finds it in
 * the restored memory without being told. */
#define IBSHADOW_SUMMARY_ADDR 0x0e8000000000ull

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
	/* resources the checkpoint cannot carry yet (XRC, memory windows,
	 * parent domains): the checkpoint is refused, naming the first */
	volatile uint32_t unsupported;
	/* 1 when the summary is at IBSHADOW_SUMMARY_ADDR (a restart finds it) */
	uint32_t at_fixed;
	char unsupported_desc[128];
	/* the shadow's section word, from each thread's FS base (0: none) */
	volatile int64_t section_tls_off;
	/* Upper-half functions the runtime calls from its control thread,
	 * under the thread pointer of a parked program thread, with signals
	 * blocked (shadow_ckpt.c says what they may and may not touch):
	 *   cut(err, len): every member parked, agreed: record what lives
	 *     only in the device, in upper-half memory (0, or -1 with err);
	 *   cut_done(): the program runs on (no restart): drop the record;
	 *   restart(phase, io, cap, all, n, err, len): see shadow_ckpt.c. */
	uint64_t cut, cut_done, restart;
};

/* a restart's phase 0: each member's ids (the process parts of its
 * virtual QP numbers) in this many bytes: a count, then uint16_t each */
#define IBSHADOW_IDS_LEN (4 + 2 * 1024)


struct ibshadow_range {
	uint64_t start, len;
};

#endif
