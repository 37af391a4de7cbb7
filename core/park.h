/* Parking the upper half's threads at a safe point.
 *
 * Each upper thread is sent PARK_SIGNAL; its handler (lower-half code that
 * runs on the upper thread with the upper TLS, so raw syscalls only)
 * records where its signal frame is and sleeps on a futex until released.
 * The frame holds every register, the xsave area and the signal mask; it
 * lies on the thread's own stack, so it is saved with the memory, and a
 * restart resumes each thread by rt_sigreturn on it. */
#ifndef CKPTMPI_CORE_PARK_H
#define CKPTMPI_CORE_PARK_H

#include <stdint.h>

#define PARK_SIGNAL (SIGRTMIN + 6)
#define PARK_MAX 1024

struct park_slot {
	int64_t tid;
	uint64_t uc;
	uint64_t fs_base, gs_base;
	uint64_t robust_head, robust_len;
};

struct park_result {
	int n;
	struct park_slot *slot;   /* points into static storage */
};

int park_install(void);
/* Threads of the lower half (never parked). */
void park_register_lower_thread(int64_t tid);
/* A lower thread pointer upper threads borrow for calls into the lower
 * half: such a thread is asked again later, never parked mid-call. */
void park_register_lower_context(uint64_t fs);
/* An interposition layer of the upper half (pmpi/, ibshadow/) keeps a
 * per-thread word at *off from each thread's FS base: {depth, pending}.
 * A thread whose depth is above 0 is mid-way through a transition of
 * state the runtime reads at a checkpoint; the handler sets pending and
 * leaves it, and the thread raises PARK_SIGNAL itself when depth drops
 * to 0. *off is read at every signal (0: no such layer). */
void park_set_section_word(volatile int64_t *off);
/* Another layer's word (the verbs shadow's): the handler honours every
 * layer's, so a thread inside any layer's section is not parked there.
 * Idempotent; at most PARK_MAX_LAYERS - 1 besides pmpi's. */
#define PARK_MAX_LAYERS 4
void park_add_section_word(volatile int64_t *off);
/* A word that is nonzero while park_all runs (core/link.h, parking): the
 * layers read it on leaving their outermost section. */
void park_set_parking_word(volatile int32_t *w);
/* Stop every upper thread; 0 on success, -1 with a message on timeout. */
int park_all(struct park_result *res);
void park_release(void);
/* When the last successful park_all began (CLOCK_MONOTONIC seconds): the
 * program has been stopping since then */
double park_started(void);

#endif
