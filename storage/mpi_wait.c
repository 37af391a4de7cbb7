/* Waiting for MPI without holding a core (storage/mpi_wait.h). */
#include "storage/mpi_wait.h"

#include <time.h>

void mpi_poll_backoff(unsigned *polls)
{
	/* 50 µs: a waiter takes a few percent of its core. A step that grew
	 * to 500 µs after 1000 polls made the pause of 4 ranks on 2 cores
	 * 0.06-0.13 s against 0.05-0.07 s */
	struct timespec pause = {0, 50000};

	if (++*polls > 100)
		nanosleep(&pause, NULL);
}

int mpi_wait_quietly(MPI_Request *req)
{
	unsigned polls = 0;
	int done = 0, e;

	for (;;) {
		if ((e = MPI_Test(req, &done, MPI_STATUS_IGNORE)) != MPI_SUCCESS || done)
			return e;
		mpi_poll_backoff(&polls);
	}
}
