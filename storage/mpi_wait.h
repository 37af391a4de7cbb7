/* Waiting for MPI without holding a core: with more ranks than cores on a
 * node, a rank that polls busily (MPICH does, in its blocking calls) takes
 * the CPU from the ranks it waits for. The runtime's own collectives (the
 * container's writer, the cut's rounds and votes) wait this way. */
#ifndef CKPTMPI_STORAGE_MPI_WAIT_H
#define CKPTMPI_STORAGE_MPI_WAIT_H

#include <mpi.h>

/* MPI_Wait, polling 100 times, then sleeping 50 µs between polls. */
int mpi_wait_quietly(MPI_Request *req);

/* One pass of a polling loop of one's own (*polls 0 at its start): the
 * same steps. */
void mpi_poll_backoff(unsigned *polls);

#endif
