/* The MPI build's part of the runtime (pmpi/lower_mpi.c, pmpi/lower_cut.c),
 * as the core sees it: weak, so the plain runtime has none of it. */
#ifndef CKPTMPI_CORE_RUNTIME_MPI_H
#define CKPTMPI_CORE_RUNTIME_MPI_H

#include <stddef.h>
#include <stdint.h>

#include "core/image.h"
#include "core/park.h"
#include "storage/container.h"

#define RUNTIME_WEAK __attribute__((weak))

/* MPI_Init in the lower half (before the program starts) */
RUNTIME_WEAK int runtime_mpi_init(void);
RUNTIME_WEAK int runtime_mpi_rank(void);
RUNTIME_WEAK int runtime_mpi_size(void);
RUNTIME_WEAK const char *runtime_mpi_flavour(void);

/* bracket every use of MPI by the control thread: 0 once the program
 * has begun MPI_Finalize */
RUNTIME_WEAK int runtime_mpi_usable(void);
RUNTIME_WEAK void runtime_mpi_done(void);
RUNTIME_WEAK int runtime_mpi_may_begin(void);

/* Starting a checkpoint: a rank asks rank 0 (why: a CKPTMPI_REQ_* byte,
 * last_gen: the last generation it saw), rank 0 tells every rank. */
RUNTIME_WEAK void runtime_mpi_request(int why, uint64_t last_gen);
RUNTIME_WEAK void runtime_mpi_begin(uint64_t gen, int why);
/* 1 when a checkpoint starts: rank 0 got a request to act on (*gen 0:
 * rank 0 chooses), another rank got rank 0's begin (*gen, *why) */
RUNTIME_WEAK int runtime_mpi_poll(uint64_t last_gen, uint64_t *gen, int *why);
/* every rank says ok: 1 if all did */
RUNTIME_WEAK int runtime_mpi_agree(int ok);

/* The consistent cut: on success every upper thread is parked and MPI is
 * quiet (nothing in flight); on failure nothing is parked. */
RUNTIME_WEAK int runtime_mpi_quiesce(struct park_result *parked, char *err, size_t len);
/* receives cancelled by the cut are posted again; collectives open */
RUNTIME_WEAK void runtime_mpi_resume(void);
/* restart: the image's MPI objects re-created (before threads run) */
RUNTIME_WEAK int runtime_mpi_restore(const struct ck_image *img);

/* the shared container, written by every rank together */
RUNTIME_WEAK int runtime_mpi_write(const char *dir, const struct ck_generation_info *info,
                                   struct ck_image *img, container_progress_fn progress,
                                   char *tmp, size_t tmplen);
RUNTIME_WEAK int runtime_mpi_commit(const char *dir, uint64_t gen, const char *tmp);

#endif
