/* Facts about this runtime process shared by its modules. */
#ifndef CKPTMPI_CORE_RUNTIME_INFO_H
#define CKPTMPI_CORE_RUNTIME_INFO_H

#include <stdint.h>

#include "core/image.h"

/* Identity of the runtime binary: a restart must use the same one, since
 * the lower half's layout must not move. */
uint64_t runtime_identity(void);
uint64_t getauxval_vdso(void);
/* The program this runtime starts, or the restarted generation's (its
 * path as the checkpoint recorded it): known before the plugins' init
 * ("" when not). */
const char *runtime_program(void);
/* After a restore: continue numbering, remember the parent. */
void runtime_set_restored(const struct ck_generation_info *info, const struct ck_image *img);

#endif
