/* What UCX (under MPICH and OpenMPI) must find in the environment before
 * its library constructors run: it would otherwise patch mmap/munmap in
 * place to watch memory. The lower half's memory is routed by ckptmpi,
 * and the copy of UCX that an unmodified binary drags into the upper half
 * must not patch anything either. One list for the runtime
 * (pmpi/lower_mpi.c, which re-executes itself when it had to set one) and
 * for the shim's re-execution of a linked program through the runtime
 * (pmpi/shim_init.c, which sets them first, so the runtime need not). */
#ifndef CKPTMPI_PMPI_UCX_ENV_H
#define CKPTMPI_PMPI_UCX_ENV_H

#include <stddef.h>
#include <stdlib.h>

/* 1 when one had to be set */
static inline int ckpt_ucx_env_set(void)
{
	static const char *const vars[][2] = {
		{"UCX_MEM_MALLOC_HOOKS", "no"},
		{"UCX_MEM_MMAP_HOOK_MODE", "none"},
		{"UCX_MEM_EVENTS", "no"},
	};
	int changed = 0;

	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
		if (!getenv(vars[i][0])) {
			setenv(vars[i][0], vars[i][1], 1);
			changed = 1;
		}
	return changed;
}

#endif
