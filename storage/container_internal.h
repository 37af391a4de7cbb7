/* Private to storage/: error reporting, row layouts and HDF5 types shared
 * by the container writer and reader. */
#ifndef CKPTMPI_STORAGE_CONTAINER_INTERNAL_H
#define CKPTMPI_STORAGE_CONTAINER_INTERNAL_H

#include <stdint.h>
#include <hdf5.h>

#include "core/image.h"

#ifndef CKPTMPI_VERSION_STRING
#define CKPTMPI_VERSION_STRING "0.1.0"
#endif

#define CK_MEMORY_CHUNK (1u << 20)          /* /memory chunk, bytes */
#define CK_STAGE_BYTES (32u << 20)          /* staging buffer, a multiple of every chunk */
#define CK_SMALL_CHUNK_MIN 4096u            /* smallest chunk of /filedata, /strings */
#define CK_TABLE_CHUNK_BYTES (256u << 10)   /* upper bound of a table chunk */
#define CK_PROGRESS_STEP (64ull << 20)
#define CK_HOST_LEN 64

/* Set the thread's message (one line; newlines are flattened). */
void ck_set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Set the message for a failed HDF5 call on object `what` of file `path`,
 * classifying the fault from the HDF5 error stack: call it right after the
 * failing call, before any other HDF5 call clears the stack. `verb` is
 * "read", "write", "create" ... */
void ck_set_h5_error(const char *path, const char *verb, const char *what);

/* One row of /ranks. Offsets of the other tables are rows, of /memory,
 * /filedata and /strings bytes; cwd is an offset into the rank's slice of
 * /strings or -1. Regions' run_first and the data_offset of runs and fds
 * stay relative to the rank's own slices, as in struct ck_image. */
struct ck_rank_row {
	uint64_t rank, pid;
	char host[CK_HOST_LEN];     /* NUL-padded, not necessarily terminated */
	uint64_t umask, tid_offset;
	int64_t rseq_offset;
	uint64_t rseq_size, vdso_start, vdso_end, link_epoch, upper_size;
	uint64_t region_first, region_count, run_first, run_count;
	uint64_t thread_first, thread_count, fd_first, fd_count;
	uint64_t timer_first, timer_count;
	uint64_t memory_offset, memory_len;
	uint64_t filedata_offset, filedata_len;
	uint64_t strings_offset, strings_len;
	int64_t cwd;
};

struct ck_region_row {
	uint64_t start, end;
	uint32_t prot, kind;
	uint64_t file_offset, file_size, file_mtime_ns, run_first, run_count;
	int64_t path;               /* offset into the rank's /strings or -1 */
};

struct ck_fd_row {
	int64_t fd, flags, offset, kind;
	uint64_t data_offset, data_len;
	int64_t path;               /* offset into the rank's /strings or -1 */
};

/* Memory types of every table row; runs, threads, timers and the
 * per-rank fixed tables use the image structs themselves. */
struct ck_types {
	hid_t rank, region, run, thread, fd, timer, sigaction, rlimit, itimer;
};

int ck_types_create(struct ck_types *t);
void ck_types_close(struct ck_types *t);

static inline uint64_t ck_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

#endif
