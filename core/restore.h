/* Rebuilding the upper half from a generation in this fresh process. */
#ifndef CKPTMPI_CORE_RESTORE_H
#define CKPTMPI_CORE_RESTORE_H

#include <stdint.h>

/* Restore generation file `path` and resume its threads on this thread
 * and new ones. Returns only on failure (message printed). */
int restore_from(const char *path);
/* The line a successful restart says on stderr (rank 0), whatever the
 * verbosity; made before the runtime's memory is fixed. */
void restore_set_notice(const char *line);

#endif
