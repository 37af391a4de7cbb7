/* Lower half: the shared container of an MPI job, written by every rank
 * together over the runtime's own communicator (storage/, parallel HDF5). */
#include <mpi.h>

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

/* this rank's page data while it is written behind the program */
static struct container_mpi_pages *pages_behind;

int runtime_mpi_write_begin(const char *dir, const struct ck_generation_info *info,
                            struct ck_image *img, container_progress_fn progress, char *tmp,
                            size_t tmplen, int *behind)
{
	int rc = container_write_mpi_begin(runtime_mpi_ctl(), dir, info, img, progress, tmp,
	                                   tmplen, &pages_behind);
	*behind = !rc && pages_behind;
	return rc;
}

int runtime_mpi_write_pages(container_progress_fn progress)
{
	return container_mpi_pages_write(pages_behind, progress);
}

void runtime_mpi_write_end(void)
{
	container_mpi_pages_free(pages_behind);
	pages_behind = NULL;
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
int runtime_mpi_write_begin(const char *dir, const struct ck_generation_info *info,
                            struct ck_image *img, container_progress_fn progress, char *tmp,
                            size_t tmplen, int *behind)
{
	*behind = 0;
	return runtime_mpi_write(dir, info, img, progress, tmp, tmplen);
}
int runtime_mpi_write_pages(container_progress_fn progress)
{
	(void)progress;
	return -1;
}
void runtime_mpi_write_end(void) {}
#endif
