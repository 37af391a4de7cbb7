/* MPI functions the shim implements by hand: the real MPI was initialised
 * by the runtime before the application started, so the application's
 * MPI_Init only records that it happened. */
#include <mpi.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "pmpi/call.h"
#include "pmpi/mpi_index.h"
#include "pmpi/vstate.h"

int ckpt_lower_provided(void);

static int app_initialized, app_finalized;

int PMPI_Init(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (app_initialized)
		return MPI_ERR_OTHER;
	app_initialized = 1;
	return MPI_SUCCESS;
}
#pragma weak MPI_Init = PMPI_Init

int PMPI_Init_thread(int *argc, char ***argv, int required, int *provided)
{
	int have = ckpt_lower_provided();
	int rc = PMPI_Init(argc, argv);
	*provided = required < have ? required : have;
	return rc;
}
#pragma weak MPI_Init_thread = PMPI_Init_thread

int PMPI_Initialized(int *flag)
{
	*flag = app_initialized;
	return MPI_SUCCESS;
}
#pragma weak MPI_Initialized = PMPI_Initialized

/* MPI_Finalize ends the runtime's use of MPI too: no checkpoint may start
 * (rank 0 starts them), one under way completes, the control thread is
 * out of MPI, and every rank is here (a barrier, itself cut like any
 * collective) before the real MPI_Finalize. */
int PMPI_Finalize(void)
{
	typedef int (*fn_t)(void);
	int rc;

	/* MPI-3.1 8.7.1: MPI_COMM_SELF's attributes go first, as if freed */
	ckpt_attr_freeing(CKPT_HVAL(MPI_COMM_SELF));
	__atomic_store_n(&ckpt_st->finalizing, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&ckpt_st->ctl_busy, __ATOMIC_SEQ_CST))
		usleep(200);
	PMPI_Barrier(MPI_COMM_WORLD);
	for (;;) {
		int32_t seq = __atomic_load_n(&ckpt_st->cut_seq, __ATOMIC_ACQUIRE);
		if (__atomic_load_n(&ckpt_st->cut, __ATOMIC_ACQUIRE) == CKPT_CUT_RUN)
			break;
		syscall(SYS_futex, &ckpt_st->cut_seq, FUTEX_WAIT_PRIVATE, seq, NULL, NULL, 0);
	}
	__atomic_store_n(&ckpt_st->finalizing, 2, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&ckpt_st->ctl_busy, __ATOMIC_SEQ_CST))
		usleep(200);
	rc = CKPT_CALL(CKPT_MPI_MPI_Finalize, fn_t);
	if (rc == MPI_SUCCESS)
		app_finalized = 1;
	return rc;
}
#pragma weak MPI_Finalize = PMPI_Finalize

int PMPI_Finalized(int *flag)
{
	*flag = app_finalized;
	return MPI_SUCCESS;
}
#pragma weak MPI_Finalized = PMPI_Finalized

int PMPI_Pcontrol(const int level, ...)
{
	(void)level;
	return MPI_SUCCESS;
}
#pragma weak MPI_Pcontrol = PMPI_Pcontrol

/* MPI_Comm_idup as MPI_Comm_dup (a collective that completes at once is a
 * correct non-blocking one): the new communicator is then complete when it
 * gets its virtual handle, its log record and its shadow. */
int PMPI_Comm_idup(MPI_Comm comm, MPI_Comm *newcomm, MPI_Request *request)
{
	int rc = PMPI_Comm_dup(comm, newcomm);
	*request = MPI_REQUEST_NULL;
	return rc;
}
#pragma weak MPI_Comm_idup = PMPI_Comm_idup
