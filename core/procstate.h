/* Process-wide state of the upper half: signal dispositions, rlimits,
 * interval timers, umask, cwd, host, and open files. */
#ifndef CKPTMPI_CORE_PROCSTATE_H
#define CKPTMPI_CORE_PROCSTATE_H

#include "core/image.h"
#include "core/intervals.h"

/* fds the lower half keeps open (never saved, never clobbered) */
void procstate_register_lower_fd(int fd);
void procstate_unregister_lower_fd(int fd);
/* Move a lower-half fd out of the application's way (>= 900, cloexec). */
int procstate_move_lower_fd(int fd);

/* Remember the fds the runtime was started with (call first thing). */
void procstate_note_inherited_fds(void);
/* every fd open now (beyond the inherited ones) is the runtime's */
void procstate_register_open_fds(void);

/* A job's sockets (core/job_sockets.c): called for every socket of the
 * program at a checkpoint; 1: f is filled (kind CK_FD_SOCKET), 0: not the
 * job's (refused as before), -1: error (logged). */
extern int (*procstate_socket_hook)(int fd, struct ck_fd *f);
/* 1 when fd is the program's (not the runtime's, not inherited, not 0-2) */
int procstate_program_fd(int fd);

int procstate_capture(struct ck_image *img);
/* Restore everything but threads and memory. lower: lower-half intervals;
 * the runtime's own signal handlers stay as the fresh runtime installed them. */
int procstate_restore(const struct ck_image *img, const struct interval_set *lower);

/* set in MPI jobs: fds the MPI library opens later (sockets, event
 * queues, shared memory) are not the application's */
extern int procstate_mpi_job;

#endif
