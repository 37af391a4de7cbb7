/* The MPI build's part of the runtime (pmpi/lower_mpi.c, lower_cut.c,
 * lower_container.c), as pmpi/lower_hooks.c hands it to core through the
 * hook table (core/hooks.h). */
#ifndef CKPTMPI_PMPI_LOWER_JOB_H
#define CKPTMPI_PMPI_LOWER_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "core/image.h"
#include "core/park.h"
#include "storage/container.h"

/* start-up (lower_mpi.c) */
int runtime_mpi_env(void);
void runtime_mpi_upper_preload(void);
int runtime_mpi_init(void);
const char *runtime_mpi_flavour(void);
/* 1 once MPI and the control network (core/ctl_net.h) are up */
int runtime_mpi_active(void);
int runtime_mpi_check(char *err, size_t len);

/* the job (lower_cut.c) */
int runtime_mpi_rank(void);
int runtime_mpi_size(void);
int runtime_mpi_usable(void);
void runtime_mpi_done(void);
int runtime_mpi_may_begin(void);
void runtime_mpi_request(int why, uint64_t last_gen);
void runtime_mpi_begin(uint64_t gen, int why);
int runtime_mpi_poll(uint64_t last_gen, uint64_t *gen, int *why);
int runtime_mpi_agree(int ok);
int runtime_mpi_exchange(const void *mine, size_t len, void *all);
int runtime_mpi_quiesce(struct park_result *parked, char *err, size_t len);
void runtime_mpi_resume(void);
int runtime_mpi_restore(const struct ck_image *img);
/* every plugin restored: the control thread may use the job again */
void runtime_mpi_restored(void);

/* the shared container (lower_container.c) */
int runtime_mpi_write(const char *dir, const struct ck_generation_info *info,
                      struct ck_image *img, container_progress_fn progress, char *tmp,
                      size_t tmplen);
int runtime_mpi_commit(const char *dir, uint64_t gen, const char *tmp);
int runtime_mpi_write_behind_possible(const char *dir, struct ck_image *img);
int runtime_mpi_write_begin(const char *dir, const struct ck_generation_info *info,
                            struct ck_image *img, container_progress_fn progress, char *tmp,
                            size_t tmplen, const void **plan, size_t *planlen);
int runtime_mpi_write_pages(const void *plan, size_t planlen, const struct ck_image *img,
                            container_progress_fn progress);
void runtime_mpi_write_end(void);

#endif
