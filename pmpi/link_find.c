/* Finding the runtime's link from the upper half (core/link.h). */
#include "pmpi/link_find.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

struct ckptmpi_link *ckpt_find_link(void)
{
	const char *s = getenv("CKPTMPI_LINK");
	struct ckptmpi_link *l;
	char *end;

	if (!s)
		return NULL;
	l = (struct ckptmpi_link *)strtoull(s, &end, 16);
	if (*end || !l)
		return NULL;
	/* a child of the application inherits the variable but not the
	 * runtime: check the page is there before reading it */
	if (msync((void *)((uintptr_t)l & ~(uintptr_t)4095), 4096, MS_ASYNC))
		return NULL;
	if (l->magic != CKPTMPI_LINK_MAGIC || l->pid != getpid())
		return NULL;
	return l;
}
