/* Rebuilding the upper half from a generation in this fresh process. */
#ifndef CKPTMPI_CORE_RESTORE_H
#define CKPTMPI_CORE_RESTORE_H

#include <stdint.h>

/* CKPTMPI_INSPECT_RANK=R (ckptmpi debug/bisect --rank): a restart of
 * member R's slice of a job's generation in this process alone, for a
 * debugger to read; no plugin (MPI) is started or restored, so the
 * program must not run on. -1 when unset, -2 (logged) when malformed. */
int restore_inspect_rank(void);
/* Restore generation file `path` and resume its threads on this thread
 * and new ones; lazy: its large regions may be read behind the program
 * (CKPTMPI_RESTART_LAZY, as control_config_from_env read it). Returns
 * only on failure (message printed). */
int restore_from(const char *path, int lazy);
/* The line a successful restart says on stderr (rank 0), whatever the
 * verbosity; made before the runtime's memory is fixed. */
void restore_set_notice(const char *line);

#endif
