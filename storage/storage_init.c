/* HDF5's set-up, behind storage/ so that no other part includes hdf5.h
 * (the MPI runtimes link a parallel HDF5, the plain one the serial). */
#include "storage/codec.h"
#include "storage/container.h"
#include "storage/container_internal.h"

int storage_init(void)
{
	if (H5open() < 0) {
		ck_set_error("HDF5: library initialisation failed");
		return -1;
	}
	/* zstd and lz4 are ours: a restart must not depend on a plugin */
	return ck_codecs_register();
}
