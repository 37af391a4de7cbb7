/* What the program writes to its stdout and stderr after a SIGTERM, held
 * for the restart.
 *
 * A SIGTERM ends the job after a checkpoint, and until the checkpoint's
 * cut the program runs on (an MPI job's ranks run to a consistent cut:
 * tens of milliseconds). Launchers that got the same SIGTERM drop what
 * their processes write from then on (mpirun, of both MPIs, does), so the
 * lines of that window were lost: the restarted run resumes after them.
 * From the SIGTERM on, what the program writes to a stdout or stderr that
 * is a launcher's (a pipe, a socket) goes to a memory file instead; the
 * generation keeps it (fd kind CK_FD_HELD), and a restart of that
 * generation writes it first, before the program runs again. With no
 * generation to keep it, it goes where it was going, at the exit. A pty
 * that is not the process's controlling terminal counts as a pipe (Open
 * MPI gives its ranks' stdout one); a file, /dev/null or the user's own
 * terminal is left alone. */
#ifndef CKPTMPI_CORE_HELD_OUTPUT_H
#define CKPTMPI_CORE_HELD_OUTPUT_H

#include "core/image.h"

/* Control's start (SIGTERM checkpoints on): the memory files and the fds
 * the handler needs, made now (it may make none). 0, or -1 (logged). */
int held_output_init(void);
/* The first SIGTERM: holding begins. Async-signal-safe (raw syscalls). */
void held_output_begin(void);
/* Every program thread parked: what is held so far joins img as fds 1
 * and 2 of kind CK_FD_HELD. 0, or -1 (logged). */
int held_output_capture(struct ck_image *img);
/* The process ends and no generation keeps what is held: written where
 * it was going, and the program's fds given back. */
void held_output_release(void);

/* A restart: keep what img held (copied), for held_output_print. */
int held_output_restored(const struct ck_image *img);
/* Write it, once, to this run's stdout and stderr (before the program
 * runs again). */
void held_output_print(void);

#endif
