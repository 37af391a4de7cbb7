/* Shared bits of the MPI checkpoint test programs (mpi_p2p, mpi_comms,
 * mpi_types_ops, mpi_colls, mpi_threads_ckpt).
 *
 * Every program is run as `PROGRAM [NITER] [SLEEP_MS]` and prints, from
 * rank 0 only, one line per iteration that begins with the iteration
 * number and a space ("7 ... h=0123456789abcdef"), flushed at once, then
 * "NITER+1 final <checksum>".  Line 0 describes the run.  Everything
 * printed is computed from data received through MPI, so a lost,
 * duplicated or misordered message changes the output; nothing printed
 * depends on timing, addresses or pids. */
#ifndef CKPT_COMMON_H
#define CKPT_COMMON_H

#include <errno.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../programs/hold_end.h"

static inline uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	h *= 0x100000001b3ULL;
	return h ^ (h >> 29);
}

static inline uint64_t mix_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return mix(h, n);
}

/* Sleep MS milliseconds (restarted when a signal interrupts it, so that a
 * checkpoint signal does not shorten an iteration). */
static inline void sleep_ms(long ms)
{
	struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
	if (ms <= 0)
		return;
	while (nanosleep(&t, &t) == -1 && errno == EINTR)
		;
}

/* Abort the job with a message: a check inside the program failed. */
#define CHECK(cond, ...)                                                                    \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                        \
			fprintf(stderr, "\n");                                               \
			fflush(stderr);                                                      \
			MPI_Abort(MPI_COMM_WORLD, 3);                                        \
		}                                                                            \
	} while (0)

/* MPI call that must succeed (the default error handler aborts anyway;
 * this also catches communicators set to MPI_ERRORS_RETURN). */
#define MPI_OK(call)                                                                        \
	do {                                                                                 \
		int rc_ = (call);                                                            \
		CHECK(rc_ == MPI_SUCCESS, "%s returned %d", #call, rc_);                     \
	} while (0)

static inline void parse_args(int argc, char **argv, int *niter, long *ms, int def_iter,
                              long def_ms)
{
	*niter = argc > 1 ? atoi(argv[1]) : def_iter;
	*ms = argc > 2 ? atol(argv[2]) : def_ms;
	if (*niter < 1)
		*niter = 1;
	if (*ms < 0)
		*ms = 0;
}

/* Gather one value per rank to rank 0 and fold them in rank order. */
static inline uint64_t gather_fold(uint64_t v, MPI_Comm comm)
{
	int rank, size;
	uint64_t h = 0, *all = NULL;

	MPI_Comm_rank(comm, &rank);
	MPI_Comm_size(comm, &size);
	if (rank == 0) {
		all = malloc(sizeof *all * (size_t)size);
		CHECK(all != NULL, "out of memory");
	}
	MPI_OK(MPI_Gather(&v, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, 0, comm));
	if (rank == 0) {
		for (int i = 0; i < size; i++)
			h = mix(h, all[i]);
		free(all);
	}
	return h;
}

#endif
