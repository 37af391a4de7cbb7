/* The fast paths of blocking point-to-point calls and of waits, run in
 * the lower half (pmpi/lower_fast.c), called by the shim (pmpi/p2p.c)
 * through the same function table as MPI itself, in the slots after MPI's
 * functions.
 *
 * Posting and testing there costs the upper half one switch of the thread
 * pointer for the whole blocking call, not one per MPI call (a wrfsbase
 * costs ~18 ns on the machines measured: bench/overhead_results.md). */
#ifndef CKPTMPI_PMPI_LOWER_FAST_H
#define CKPTMPI_PMPI_LOWER_FAST_H

#include <sched.h>
#include <stdint.h>
#include <mpi.h>

#include "pmpi/mpi_index.h"

/* slots of the function table after MPI's */
#define CKPT_LOWER_P2P_FAST CKPT_MPI_NFUNCS
#define CKPT_LOWER_WAIT_FAST (CKPT_MPI_NFUNCS + 1)
#define CKPT_LOWER_NSLOTS (CKPT_MPI_NFUNCS + 2)

/* A spinning wait's pause, in both halves: as MPI's own waits, yield now
 * and then for oversubscribed nodes. */
static inline void ckpt_spin_relax(unsigned *spins)
{
	if (++*spins % 1024 == 0)
		sched_yield();
}

/* what an operation's state says on return */
enum ckpt_fast_state {
	CKPT_FAST_FAILED = 0, /* not posted (its post failed, or an earlier one's) */
	CKPT_FAST_DONE,       /* posted and complete */
	CKPT_FAST_PENDING,    /* posted, `req` live: a checkpoint began (*cut left RUN) */
};

/* One standard-mode send or receive; handles are the lower half's. */
struct ckpt_fast_op {
	void *buf;
	MPI_Datatype dt;
	int n, peer, tag, recv;
	MPI_Request req; /* out */
	int state;       /* out: enum ckpt_fast_state */
};

/* Blocking point-to-point (MPI_Send, MPI_Recv; MPI_Sendrecv is its
 * receive, then its send): MPI_Irecv/MPI_Isend each operation in order,
 * then MPI_Test them until all are complete or *cut is no longer
 * CKPT_CUT_RUN. A receive's status goes to ST. Returns the first error. */
typedef int (*ckpt_lower_p2p_fast_fn)(struct ckpt_fast_op *ops, int nops, MPI_Comm comm,
                                      MPI_Status *st, const volatile int32_t *cut);
/* (lower half) */
int ckpt_lower_p2p_fast(struct ckpt_fast_op *ops, int nops, MPI_Comm comm, MPI_Status *st,
                        const volatile int32_t *cut);

struct ckpt_vh;
/* A wait (MPI_Wait, MPI_Waitall, MPI_Waitany, MPI_Waitsome) on requests
 * the shim follows: MPI_Test each entry of ES (ACTIVE, not yet complete:
 * its real request, flag and status, pmpi/vstate.h) until NEED of them
 * are complete or *cut is no longer CKPT_CUT_RUN. A failed test marks its
 * entry complete. Returns the first error. */
typedef int (*ckpt_lower_wait_fast_fn)(struct ckpt_vh *const *es, int n, int need,
                                       const volatile int32_t *cut);
/* (lower half) */
int ckpt_lower_wait_fast(struct ckpt_vh *const *es, int n, int need, const volatile int32_t *cut);

#endif
