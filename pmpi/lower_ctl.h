/* The runtime's collectives over its own communicator (`ctl`), waited for
 * without holding a core (storage/mpi_wait.h): a rank that reaches a
 * round first sleeps in short steps, so that the ranks it waits for (their
 * capture, their fork, on the cores it shares with them when ranks
 * outnumber cores) are not slowed by its polling. Same arguments and
 * results as MPI's blocking collectives. */
#ifndef CKPTMPI_PMPI_LOWER_CTL_H
#define CKPTMPI_PMPI_LOWER_CTL_H

#include <mpi.h>

int ctl_allreduce(const void *in, void *out, int n, MPI_Datatype t, MPI_Op op, MPI_Comm c);
int ctl_allgather(const void *in, int n, MPI_Datatype t, void *out, MPI_Comm c);
int ctl_allgatherv(const void *in, int n, MPI_Datatype t, void *out, const int *counts,
                   const int *displs, MPI_Comm c);
int ctl_alltoall(const void *in, void *out, int n, MPI_Datatype t, MPI_Comm c);

#endif
