/* Lower half: helpers of the generated log replay (lower_replay.c). */
#ifndef CKPTMPI_PMPI_LOWER_REPLAY_H
#define CKPTMPI_PMPI_LOWER_REPLAY_H

#include <stdint.h>

#include "pmpi/vstate.h"

#ifdef CKPTMPI_HANDLES_ARE_POINTERS
#define CKPT_HVAL(x) ((uint64_t)(uintptr_t)(x))
#define CKPT_HCAST(T, v) ((T)(uintptr_t)(v))
#else
#define CKPT_HVAL(x) ((uint64_t)(uint32_t)(x))
#define CKPT_HCAST(T, v) ((T)(uint32_t)(v))
#endif

/* a logged input handle -> the real handle now */
uint64_t ckpt_rp_in(uint64_t v);
/* a logged output handle (virtual) is now `real` */
void ckpt_rp_out(uint64_t v, uint64_t real);
/* replay one record; MPI's return code, -1 for a record of no known call */
int ckpt_replay_record(uint32_t fn, const uint64_t *p);

#endif
