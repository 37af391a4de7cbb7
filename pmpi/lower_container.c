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
#endif
