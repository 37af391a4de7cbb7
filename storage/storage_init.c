/* HDF5's set-up, behind storage/ so that no other part includes hdf5.h
 * (the MPI runtimes link a parallel HDF5, the plain one the serial). */
#include "storage/container.h"
#include "storage/container_internal.h"

int storage_init(void)
{
	if (H5open() < 0) {
		ck_set_error("HDF5: library initialisation failed");
		return -1;
	}
	return 0;
}
