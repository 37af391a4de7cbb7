/* POSIX timers (timer_create) of the upper half: read from
 * /proc/self/timers and timer_gettime at a checkpoint, re-created with the
 * same ids at restart (PR_TIMER_CREATE_RESTORE_IDS where the kernel has
 * it, creation in id order otherwise). */
#ifndef CKPTMPI_CORE_TIMERS_H
#define CKPTMPI_CORE_TIMERS_H

#include "core/image.h"

int timers_capture(struct ck_image *img);
/* tid_map: pairs (old tid, new tid), n of them, for thread-directed timers. */
int timers_restore(const struct ck_image *img, const int64_t (*tid_map)[2], size_t n);

#endif
