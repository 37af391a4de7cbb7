/* The runtime's collectives over its own communicator (`ctl`) with the
 * program parked (the drain; the rest goes over the control network,
 * core/ctl_net.h), waited for
 * without holding a core (storage/mpi_wait.h): a rank that reaches a
 * round first sleeps in short steps, so that the ranks it waits for (their
 * capture, their fork, on the cores it shares with them when ranks
 * outnumber cores) are not slowed by its polling. Same arguments and
 * results as MPI's blocking collectives. */
#ifndef CKPTMPI_PMPI_LOWER_CTL_H
#define CKPTMPI_PMPI_LOWER_CTL_H

#include <mpi.h>

int ctl_alltoall(const void *in, void *out, int n, MPI_Datatype t, MPI_Comm c);

#endif
