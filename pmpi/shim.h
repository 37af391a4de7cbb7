/* Upper half: what the shim's hand-written parts share. */
#ifndef CKPTMPI_PMPI_SHIM_H
#define CKPTMPI_PMPI_SHIM_H

#include <stdint.h>

#include "core/link.h"
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
struct ckpt_vh *ckpt_vh_alloc(uint32_t kind, uint64_t real, uint32_t fn, uint32_t *idx);
void ckpt_vh_release(uint32_t idx);
/* the entry of a communicator (MPI_COMM_WORLD: entry 0), NULL for
 * MPI_COMM_SELF and null */
struct ckpt_vh *ckpt_comm_entry(uint64_t comm);

#pragma GCC visibility pop

#endif
