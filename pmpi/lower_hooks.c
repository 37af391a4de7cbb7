/* The MPI runtime's hooks into core (core/hooks.h): the ranks of an MPI
 * job act together through the runtime's own communicator, and the MPI
 * objects of the upper half are drained at the cut and re-created at a
 * restart. */
#include <mpi.h>

#include "core/hooks.h"
#include "core/log.h"
#include "pmpi/lower_job.h"

/* Every rank's start outcome (core/runtime_main.c), over MPI's own world:
 * the runtime's communicator stands for the program's world */
static int mpi_start_agree(int mine, int *all)
{
	int e = MPI_Allgather(&mine, 1, MPI_INT, all, 1, MPI_INT, MPI_COMM_WORLD);
	if (e != MPI_SUCCESS) {
		log_error("MPI_Allgather of the ranks' start failed (error %d)", e);
		return -1;
	}
	return 0;
}

static const struct ckpt_job_ops mpi_job = {
	.active = runtime_mpi_active,
	.rank = runtime_mpi_rank,
	.size = runtime_mpi_size,
	.flavour = runtime_mpi_flavour,
	.enter = runtime_mpi_usable,
	.leave = runtime_mpi_done,
	.may_begin = runtime_mpi_may_begin,
	.request = runtime_mpi_request,
	.begin = runtime_mpi_begin,
	.poll = runtime_mpi_poll,
	.agree = runtime_mpi_agree,
	.quiesce = runtime_mpi_quiesce,
	.write = runtime_mpi_write,
	.commit = runtime_mpi_commit,
	.write_behind_possible = runtime_mpi_write_behind_possible,
	.write_begin = runtime_mpi_write_begin,
	.write_pages = runtime_mpi_write_pages,
	.write_end = runtime_mpi_write_end,
	.exchange = runtime_mpi_exchange,
	.start_agree = mpi_start_agree,
};

/* the cut's receives posted again: only after a cut of this job */
static void mpi_resume(void)
{
	if (runtime_mpi_active())
		runtime_mpi_resume();
}

/* A rank's memory may come in behind it (core/lazy_restore.h): the
 * program's threads make a system call at their first MPI call after a
 * restart (a new lower context), where they wait until it is all in; the
 * receives posted again at the restart have their buffers read in first
 * (lower_cut.c, repost), as a peer may write them through the kernel. */
static int mpi_lazy_ok(const struct ck_image *img)
{
	(void)img;
	return 1;
}

static const struct ckpt_hooks mpi_hooks = {
	.name = "MPI",
	.lazy_ok = mpi_lazy_ok,
	.env = runtime_mpi_env,
	.upper_preload = runtime_mpi_upper_preload,
	.init = runtime_mpi_init,
	.job = &mpi_job,
	.check = runtime_mpi_check,
	.resume = mpi_resume,
	.restore = runtime_mpi_restore,
	.restored = runtime_mpi_restored,
};

static __attribute__((constructor)) void mpi_hooks_register(void) { hooks_register(&mpi_hooks); }
