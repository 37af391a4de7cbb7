#ifndef CKPTMPI_CORE_BACKGROUND_WRITE_H
#define CKPTMPI_CORE_BACKGROUND_WRITE_H
/* A generation written behind the running program (issue 11: the pause).
 * With every program thread parked, a child is forked: it holds the
 * address space as it was at the cut (copy-on-write), writes the
 * generation's temporary file from it and says so through a pipe, while
 * the parent releases the program at once. The parent commits (renames)
 * once the child reports, so the directory's state is decided by the
 * process that owns it. The child dies with the control thread
 * (PR_SET_PDEATHSIG): a job killed during the write leaves a temporary
 * that retention removes, never a generation committed after the job. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "storage/container.h"

/* The write, run in the child: 0 with the temporary's path in tmp and
 * the bytes of page data it stored in *stored, or -1 with the reason in
 * err. `progress` reports to the parent. */
typedef int (*background_write_fn)(void *ctx, container_progress_fn progress, char *tmp,
                                   size_t tmplen, uint64_t *stored, char *err, size_t errlen);

struct background_write {
	pid_t pid;
	int fd; /* read end of the child's reports */
};

/* Fork the writer. 0 (the parent returns at once), or -1 (fork or pipe
 * failed, logged): nothing started, the caller writes itself. */
int background_write_start(struct background_write *bw, background_write_fn fn, void *ctx);

/* Wait for the writer: `progress` for each of its reports, `idle` at
 * least every 100 ms (serving requests meanwhile). 0 with tmp and
 * *stored set, or -1 with err naming what happened to the writer. */
int background_write_wait(struct background_write *bw, container_progress_fn progress,
                          void (*idle)(void), char *tmp, size_t tmplen, uint64_t *stored,
                          char *err, size_t errlen);

#endif
