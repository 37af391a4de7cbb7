/* Lower-half memory: what belongs to the runtime and must never be saved.
 *
 * Every mapping the lower half's libc makes (malloc, thread stacks, stdio,
 * HDF5, and later MPI) is routed into a reserved window by patching the
 * entry of the lower libc's mmap/munmap/mremap, so lower memory is
 * recognised by address alone, also while upper threads run. What exists
 * before the router is installed (the runtime's binary, its loader and
 * libraries, its stack) is recorded by a snapshot; mappings the lower half
 * makes outside the window are recorded too. */
#ifndef CKPTMPI_CORE_LOWMEM_H
#define CKPTMPI_CORE_LOWMEM_H

#include <stdint.h>

#include "core/intervals.h"

#define LOWMEM_WINDOW_BASE 0x100000000000ull  /* 16 TiB */
#define LOWMEM_WINDOW_SIZE 0x040000000000ull  /*  4 TiB */

/* Reserve the window and install the router. Once per process. */
int lowmem_init(void);
/* Record every mapping present now as lower-half memory. */
int lowmem_mark_all_current(void);
/* Account for what the lower half mapped and unmapped between two looks at
 * the address space taken while the upper half was stopped. */
int lowmem_account_change(const struct interval_set *before, const struct interval_set *after);
/* Memory the runtime maps on behalf of the upper half while it is parked
 * (messages drained at a checkpoint): upper memory, saved with the image,
 * never taken for the lower half's by lowmem_account_change. */
void *lowmem_map_upper(size_t len);
/* All lower-half intervals (snapshot, window, extras). */
int lowmem_intervals(struct interval_set *out);
/* Pin the program break: later brk calls of either half fail and both
 * libcs fall back to mmap, so the break area never mixes halves. */
int lowmem_block_brk(void);

#endif
