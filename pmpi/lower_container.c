/* Lower half: the shared container of an MPI job, written by every rank
 * together over the runtime's own communicator (storage/, parallel HDF5). */
#include <mpi.h>
#include <stdlib.h>

#include "pmpi/lower_job.h"
#include "storage/container.h"

MPI_Comm runtime_mpi_ctl(void);

#ifdef CKPTMPI_STORAGE_MPI

int runtime_mpi_write(const char *dir, const struct ck_generation_info *info, struct ck_image *img,
                      container_progress_fn progress, char *tmp, size_t tmplen)
{
	return container_write_mpi(runtime_mpi_ctl(), dir, info, img, progress, tmp, tmplen);
}

int runtime_mpi_commit(const char *dir, uint64_t gen, const char *tmp)
{
	return container_commit_mpi(runtime_mpi_ctl(), dir, gen, tmp);
}

/* what this rank's writer, forked at the cut, needs to write its page
 * data behind the program: the places of its chunks (the plan) */
static void *plan_behind;

int runtime_mpi_write_behind_possible(const char *dir, struct ck_image *img)
{
	int rank = 0, size = 0;

	/* the layout behind the program is made over MPI beside it */
	if (runtime_mpi_thread_level() < MPI_THREAD_MULTIPLE)
		return 0;
	if (MPI_Comm_rank(runtime_mpi_ctl(), &rank) != MPI_SUCCESS ||
	    MPI_Comm_size(runtime_mpi_ctl(), &size) != MPI_SUCCESS)
		return 0;
	return container_mpi_pages_possible(dir, (uint64_t)rank, (uint64_t)size, img);
}

int runtime_mpi_write_begin(const char *dir, const struct ck_generation_info *info,
                            struct ck_image *img, container_progress_fn progress, char *tmp,
                            size_t tmplen, const void **plan, size_t *planlen)
{
	struct container_mpi_pages *pages = NULL;
	int rc = container_write_mpi_begin(runtime_mpi_ctl(), dir, info, img, progress, tmp,
	                                   tmplen, &pages);

	/* every rank has its pages, or has failed with the others (rank 0
	 * removed the temporary) */
	if (!rc)
		rc = container_mpi_pages_pack(pages, &plan_behind, planlen);
	container_mpi_pages_free(pages);
	*plan = plan_behind;
	return rc;
}

int runtime_mpi_write_pages(const void *plan, size_t planlen, const struct ck_image *img,
                            container_progress_fn progress)
{
	struct container_mpi_pages *pages;
	int rc = container_mpi_pages_unpack(plan, planlen, img, &pages);

	if (!rc)
		rc = container_mpi_pages_write(pages, progress);
	container_mpi_pages_free(pages);
	return rc;
}

void runtime_mpi_write_end(void)
{
	free(plan_behind);
	plan_behind = NULL;
}
#else
/* built without the flavour's parallel HDF5 */
#include "core/log.h"
int runtime_mpi_write(const char *dir, const struct ck_generation_info *info, struct ck_image *img,
                      container_progress_fn progress, char *tmp, size_t tmplen)
{
	(void)dir, (void)info, (void)img, (void)progress, (void)tmp, (void)tmplen;
	log_error("this runtime was built without parallel HDF5: cannot write MPI checkpoints");
	return -1;
}
int runtime_mpi_commit(const char *dir, uint64_t gen, const char *tmp)
{
	(void)dir, (void)gen, (void)tmp;
	return -1;
}
/* never called: nothing is possible behind the program here */
int runtime_mpi_write_behind_possible(const char *dir, struct ck_image *img)
{
	(void)dir, (void)img;
	return 0;
}
int runtime_mpi_write_begin(const char *dir, const struct ck_generation_info *info,
                            struct ck_image *img, container_progress_fn progress, char *tmp,
                            size_t tmplen, const void **plan, size_t *planlen)
{
	(void)dir, (void)info, (void)img, (void)progress, (void)tmp, (void)tmplen;
	(void)plan, (void)planlen;
	return -1;
}
int runtime_mpi_write_pages(const void *plan, size_t planlen, const struct ck_image *img,
                            container_progress_fn progress)
{
	(void)plan, (void)planlen, (void)img, (void)progress;
	return -1;
}
void runtime_mpi_write_end(void) {}
#endif
