/* MPI functions the shim implements by hand: the real MPI was initialised
 * by the runtime before the application started, so the application's
 * MPI_Init only records that it happened. */
#include <mpi.h>
#include <stdarg.h>

#include "pmpi/call.h"
#include "pmpi/mpi_index.h"

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

int PMPI_Finalize(void)
{
	typedef int (*fn_t)(void);
	int rc = CKPT_CALL(CKPT_MPI_MPI_Finalize, fn_t);
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
