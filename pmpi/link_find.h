/* The runtime's link as the upper half sees it, or NULL when this process
 * does not run under the runtime. */
#ifndef CKPTMPI_PMPI_LINK_FIND_H
#define CKPTMPI_PMPI_LINK_FIND_H

#include "core/link.h"

struct ckptmpi_link *ckpt_find_link(void);

#endif
