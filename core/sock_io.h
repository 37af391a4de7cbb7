/* Whole messages over stream sockets, for the runtime's own transports
 * (core/job_group.c between the members of a job on one host,
 * core/ctl_net.c between the ranks of an MPI job). */
#ifndef CKPTMPI_CORE_SOCK_IO_H
#define CKPTMPI_CORE_SOCK_IO_H

#include <stddef.h>

/* CLOCK_MONOTONIC in seconds */
double sock_now(void);
/* All n bytes, or -1 (the peer gone; no SIGPIPE). */
int sock_send_all(int fd, const void *p, size_t n);
/* Exactly n bytes by `deadline` (sock_now() time; 0: none): 0, -1 closed
 * or error, -2 timed out. */
int sock_recv_all(int fd, void *p, size_t n, double deadline);

#endif
