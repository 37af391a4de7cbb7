/* Lower half: the shared container of an MPI job, written by every rank
 * together (storage/, parallel HDF5). With the programs parked the ranks
 * write it over the runtime's own communicator; beside the running
 * programs (the layout of a write behind them, the commit) they take their
 * steps over the control network (core/ctl_net.h), so that MPI is not
 * used beside the program's threads. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ctl_net.h"
#include "pmpi/lower_job.h"
#include "storage/container.h"

MPI_Comm runtime_mpi_ctl(void);

#ifdef CKPTMPI_STORAGE_MPI

/* ---- the writer's steps over the control network (struct ck_ranks) ---- */

static int net_failed(const char *what)
{
	char m[200];
	snprintf(m, sizeof m, "rank %d: the control network's %s failed (see the first rank's "
	         "message)", runtime_mpi_rank(), what);
	container_set_error(m);
	return -1;
}

static int net_bcast(void *ctx, void *buf, size_t len)
{
	(void)ctx;
	return len <= UINT32_MAX && !ctlnet_bcast(buf, (uint32_t)len, 1) ? 0 : net_failed("broadcast");
}

static int net_allgather(void *ctx, const void *mine, size_t len, void *all)
{
	(void)ctx;
	return len <= UINT32_MAX / (size_t)runtime_mpi_size() &&
	       !ctlnet_allgather(mine, (uint32_t)len, all) ? 0 : net_failed("allgather");
}

static int net_gatherv(void *ctx, const void *mine, size_t len, void *all,
                       const uint64_t *counts, const uint64_t *displs)
{
	int n = runtime_mpi_size(), ok = len <= UINT32_MAX, r;
	uint32_t *lens = calloc((size_t)n, sizeof *lens);
	void *got = NULL;
	(void)ctx;

	r = ctlnet_gatherv(mine, ok ? (uint32_t)len : 0, ok && lens, &got, lens);
	if (!r && runtime_mpi_rank() == 0) {
		const char *p = got;
		for (int k = 0; k < n; p += lens[k], k++) {
			if (lens[k] != counts[k]) {
				r = -1;
				break;
			}
			memcpy((char *)all + displs[k], p, lens[k]);
		}
	}
	free(got);
	free(lens);
	return r ? net_failed("gather") : 0;
}

static int net_scatterv(void *ctx, const void *all, const uint64_t *counts,
                        const uint64_t *displs, void *mine, size_t len)
{
	int n = runtime_mpi_size(), ok = 1, r;
	const void **parts = NULL;
	uint32_t *lens = NULL, got_len = 0;
	void *got = NULL;
	(void)ctx;

	if (runtime_mpi_rank() == 0) {
		parts = calloc((size_t)n, sizeof *parts);
		lens = calloc((size_t)n, sizeof *lens);
		ok = parts && lens;
		for (int k = 0; ok && k < n; k++) {
			ok = counts[k] <= UINT32_MAX;
			parts[k] = (const char *)all + displs[k];
			lens[k] = (uint32_t)counts[k];
		}
	}
	r = ctlnet_scatterv(parts, lens, ok, &got, &got_len);
	if (!r && got_len != len)
		r = -1;
	if (!r)
		memcpy(mine, got, len);
	free(got);
	free(parts);
	free(lens);
	return r ? net_failed("scatter") : 0;
}

static int net_first_failed(void *ctx, int ok, char *msg, size_t msglen)
{
	int n = runtime_mpi_size(), first = n;
	uint32_t *lens = calloc((size_t)n, sizeof *lens);
	void *all = NULL;
	size_t mine = ok ? 0 : strnlen(msg, msglen - 1) + 1;
	(void)ctx;

	/* the failing ranks' messages: every rank takes the step, and a
	 * rank without memory for it fails it for all */
	if (ctlnet_allgatherv(msg, (uint32_t)mine, lens != NULL, &all, lens)) {
		free(lens);
		net_failed("vote");
		return -1;
	}
	for (int k = 0, off = 0; k < n; off += (int)lens[k], k++)
		if (lens[k]) {
			first = k;
			snprintf(msg, msglen, "%s", (char *)all + off);
			break;
		}
	free(all);
	free(lens);
	return first;
}

static int net_barrier(void *ctx)
{
	int32_t v = 1;
	(void)ctx;
	return ctlnet_allreduce(&v, 1, CTLNET_MIN) ? net_failed("barrier") : 0;
}

static const struct ck_ranks *net_ranks(void)
{
	static struct ck_ranks r = {.bcast = net_bcast, .allgather = net_allgather,
	                            .gatherv = net_gatherv, .scatterv = net_scatterv,
	                            .first_failed = net_first_failed, .barrier = net_barrier};
	r.rank = runtime_mpi_rank();
	r.size = runtime_mpi_size();
	return &r;
}

int runtime_mpi_write(const char *dir, const struct ck_generation_info *info, struct ck_image *img,
                      container_progress_fn progress, char *tmp, size_t tmplen)
{
	return container_write_mpi(runtime_mpi_ctl(), dir, info, img, progress, tmp, tmplen);
}

int runtime_mpi_commit(const char *dir, uint64_t gen, const char *tmp)
{
	/* after a write behind the program, beside it */
	return container_commit_ranks(net_ranks(), dir, gen, tmp);
}

/* what this rank's writer, forked at the cut, needs to write its page
 * data behind the program: the places of its chunks (the plan) */
static void *plan_behind;

int runtime_mpi_write_behind_possible(const char *dir, struct ck_image *img)
{
	int rank = 0, size = 0;

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
	int rc = container_write_mpi_begin(net_ranks(), dir, info, img, progress, tmp,
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
