/* Private to storage/: one rank's /memory read chunk by chunk on every
 * core, without HDF5's copies (container_read.c falls back to H5Dread for
 * what this does not handle). */
#ifndef CKPTMPI_STORAGE_CHUNK_READ_H
#define CKPTMPI_STORAGE_CHUNK_READ_H

#include <stdint.h>
#include <hdf5.h>

#include "core/image.h"
#include "storage/container.h"

struct ck_chunk_read {
	const char *path;           /* for messages */
	uint64_t rank;
	hid_t file, ds;             /* /memory, open */
	uint64_t base;              /* dataset offset of the rank's slice */
	uint64_t end;               /* bytes of the slice, whole chunks */
	const struct ck_image *img; /* runs go to their addresses; NULL: only verify */
	container_progress_fn progress;
	uint64_t total;             /* what progress counts to */
};

/* 0 read and verified, -1 failed (message set), 1 this file's /memory is
 * not one this reader handles (other filters, chunks not all stored):
 * read it through HDF5. */
int ck_chunks_read(const struct ck_chunk_read *c);

/* The first of /memory's filters that this HDF5 cannot apply: 0 if every
 * one can be, else -1 with a message naming the filter. */
int ck_memory_filters_available(const char *path, hid_t ds);

#endif
