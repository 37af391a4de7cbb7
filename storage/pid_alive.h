/* Is a process of this host still running? (For files in a checkpoint
 * directory named after their writer: temporaries, shared-memory ledgers.) */
#ifndef CKPTMPI_STORAGE_PID_ALIVE_H
#define CKPTMPI_STORAGE_PID_ALIVE_H

#include <sys/types.h>

/* 1 while PID runs (or cannot be told: EPERM, unreadable), 0 once it has
 * died, zombies included: a zombie holds no file and writes nothing more
 * (a killed job's ranks are zombies until whoever inherits them reaps
 * them). */
int pid_alive(pid_t pid);

#endif
