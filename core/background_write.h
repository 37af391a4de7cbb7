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
 * err. `progress` reports to the parent. plan: what the parent sent
 * (background_write_send_plan), or NULL for a writer started at once. */
typedef int (*background_write_fn)(void *ctx, const void *plan, size_t planlen,
                                   container_progress_fn progress, char *tmp, size_t tmplen,
                                   uint64_t *stored, char *err, size_t errlen);

struct background_write {
	pid_t pid;
	int fd;      /* read end of the child's reports */
	int plan_fd; /* where its plan goes, or -1 */
};

/* Fork the writer. 0 (the parent returns at once), or -1 (fork or pipe
 * failed, logged): nothing started, the caller writes itself. With
 * wait_for_plan the child holds the image as it is now but writes only
 * once the parent has worked out how (an MPI job's layout, made with
 * the program running again) and sent it the plan. */
int background_write_start(struct background_write *bw, background_write_fn fn, void *ctx,
                           int wait_for_plan);

/* The plan, to a writer started with wait_for_plan: 0, or -1 logged (the
 * writer is gone; background_write_wait says how). */
int background_write_send_plan(struct background_write *bw, const void *plan, size_t len);

/* A writer that waits for its plan is told there is none: it ends
 * without writing, and is reaped. */
void background_write_cancel(struct background_write *bw);

/* Wait for the writer: `progress` for each of its reports, `idle` at
 * least every 100 ms (serving requests meanwhile). 0 with tmp and
 * *stored set, or -1 with err naming what happened to the writer. */
int background_write_wait(struct background_write *bw, container_progress_fn progress,
                          void (*idle)(void), char *tmp, size_t tmplen, uint64_t *stored,
                          char *err, size_t errlen);

#endif
