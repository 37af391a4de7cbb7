/* Upper half: what pmpi/upper_special.c, pmpi/vtable.c and pmpi/attrs.c
 * share besides pmpi/shim.h. */
#ifndef CKPTMPI_PMPI_UPPER_SPECIAL_H
#define CKPTMPI_PMPI_UPPER_SPECIAL_H

#include <stdint.h>

/* a stub of upper_unsupported.c was called: say so, end the job */
__attribute__((noreturn)) void ckpt_unsupported(const char *name);
/* a checkpoint is refused from now on: FN moved messages behind the shim */
void ckpt_refuse_call(uint32_t fn);
/* MPI_Comm_idup: the entry of the new communicator REAL (groups as its
 * parent's), named after the parent's name and the idup's place SEQ among
 * the parent's collectives */
uint64_t ckpt_vh_new_idup(uint64_t real, uint64_t parent_real, uint64_t parent_name,
                          uint64_t seq, uint32_t fn);
/* MPI_Comm_free: the cut keeps the communicator's count (pmpi/vtable.c) */
void ckpt_comm_freeing(uint64_t comm);
/* attributes (pmpi/attrs.c): a dup's copy callbacks and a free's delete
 * callbacks, returning the first callback's error */
int ckpt_attr_copy_rc(uint64_t from, uint64_t to);
int ckpt_attr_freeing_rc(uint64_t obj);
/* a dup whose copy callback failed: free *NEWOBJ (an MPI_Comm or an
 * MPI_Datatype, by KIND), make it null */
void ckpt_attr_dup_failed(int kind, void *newobj);

#endif
