/* Sections of the verbs shadow: a thread inside a verbs operation that
 * changes the device's state (a post running the send queue, a poll
 * taking completions, creating, modifying or destroying a resource) is
 * never parked half-way, so the cut (shadow_ckpt.c) sees the device's
 * rings, completions and tables, and the shadow's log, whole.
 *
 * The word is the same {depth, pending} as the MPI shim's (pmpi/call.h)
 * and the runtime's park handler honours both (core/park.h, one word per
 * layer, found at the same offset from every thread's FS base): a thread
 * met inside a section gets `pending` and parks itself when it leaves its
 * outermost section. Blocking waits (the read of ibv_get_cq_event and of
 * ibv_get_async_event) stay outside: they never hold up a checkpoint. */
#ifndef CKPTMPI_IBSHADOW_SHADOW_SECTION_H
#define CKPTMPI_IBSHADOW_SHADOW_SECTION_H

#include <stdint.h>

struct ibs_section_word {
	volatile int32_t depth;
	volatile int32_t pending;
};
extern __thread struct ibs_section_word ibs_section __attribute__((tls_model("initial-exec")));
void ibs_section_park_now(void);
/* the word's offset from the FS base (the same for every thread) */
int64_t ibs_section_offset(void);

static inline __attribute__((always_inline)) int ibs_section_enter(void)
{
	ibs_section.depth++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return 0;
}

static inline __attribute__((always_inline)) void ibs_section_leave(int *unused)
{
	(void)unused;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	ibs_section.depth--;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (__builtin_expect(ibs_section.pending, 0) && !ibs_section.depth)
		ibs_section_park_now();
}

/* the rest of the enclosing block (a function body) is a section, left
 * on every return */
#define IBS_SECTION() \
	int ibs__section __attribute__((cleanup(ibs_section_leave), unused)) = ibs_section_enter()

#endif
