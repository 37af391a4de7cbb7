/* Checkpoint and restart of the verbs shadow (shadow_ckpt.c): the
 * functions the runtime calls through the summary (summary.h). */
#ifndef CKPTMPI_IBSHADOW_SHADOW_CKPT_H
#define CKPTMPI_IBSHADOW_SHADOW_CKPT_H

#include <stddef.h>

int shadow_ckpt_cut(char *err, size_t len);
void shadow_ckpt_cut_done(void);
/* phase 0: io gets the ids this process's virtual QP numbers use
 * (IBSHADOW_IDS_LEN bytes). phase 1: all holds n such (every member's):
 * the device gives none of them now; every resource is re-created; io
 * (cap bytes) gets this process's translation table, *used its size. phase 2: all holds n tables of cap
 * bytes each (in member order): the peers' values, QPs walked back,
 * receives posted again, CQs armed, events given back. phase 3: the sends
 * that had not run posted again. 0, or -1 with err. */
int shadow_ckpt_restart(int phase, void *io, size_t cap, size_t *used, const void *all, int n,
                        char *err, size_t len);

#endif
