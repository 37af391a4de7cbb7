/* Upper half: what the shim's hand-written parts share. */
#ifndef CKPTMPI_PMPI_SHIM_H
#define CKPTMPI_PMPI_SHIM_H

#include <stdint.h>

#include "core/link.h"
#include "pmpi/call.h"
#include "pmpi/vstate.h"

/* the shim's internals are its own: calls and loads stay inside the
 * library (no PLT, no GOT), the application sees only MPI's names */
#pragma GCC visibility push(hidden)

int ckpt_state_init(struct ckptmpi_link *link);
/* publish the section word's place to the park handler (pmpi/section.c) */
void ckpt_section_init(struct ckptmpi_link *link);
/* the state's one lock: entries, the log and the drained queue */
void ckpt_state_lock(void);
void ckpt_state_unlock(void);
/* A new entry of the table (*idx its index), its kind's part cleared. */
struct ckpt_vh *ckpt_vh_alloc(uint32_t kind, uint64_t real, uint32_t fn, uint32_t *idx);
/* (the free list with the lock, or the table's first use) */
uint32_t ckpt_vh_get_slow(void);
void ckpt_vh_put_slow(uint32_t idx);

/* The same, its kind's part left as it was (the caller sets every field):
 * a request's post. Inline, and without the lock while the program's
 * threads are not in the shim at once (pmpi/vtable.c) */
static inline __attribute__((always_inline)) struct ckpt_vh *
ckpt_vh_take(uint32_t kind, uint64_t real, uint32_t fn, uint32_t *idx)
{
	struct ckpt_mpi_state *st = ckpt_st;
	uint32_t i = st->free_head;
	struct ckpt_vh *e;

	if (__builtin_expect(!ckpt_app_concurrent && i, 1))
		st->free_head = st->vt[i].next_free;
	else
		i = ckpt_vh_get_slow();
	e = &st->vt[i];
	e->real = real;
	e->fn = fn;
	e->log = -1;
	e->kind = kind;
	*idx = i;
	return e;
}

static inline __attribute__((always_inline)) void ckpt_vh_release(uint32_t i)
{
	struct ckpt_mpi_state *st = ckpt_st;
	if (i < CKPT_VT_FIRST)
		return;
	if (__builtin_expect(ckpt_app_concurrent, 0)) {
		ckpt_vh_put_slow(i);
		return;
	}
	st->vt[i].kind = CKPT_VK_FREE;
	st->vt[i].next_free = st->free_head;
	st->free_head = i;
}
/* the entry of a communicator (MPI_COMM_WORLD: entry 0), NULL for
 * MPI_COMM_SELF and null */
struct ckpt_vh *ckpt_comm_entry(uint64_t comm);

#pragma GCC visibility pop

#endif
