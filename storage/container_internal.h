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
	uint64_t inherit;           /* appended: 0 when read from older files */
};

struct ck_fd_row {
	int64_t fd, flags, offset, kind;
	uint64_t data_offset, data_len;
	int64_t path;               /* offset into the rank's /strings or -1 */
	uint64_t dev, ino, uid;     /* appended: 0 when read from older files */
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

/* ---- layout (container_layout.c): where each rank's slices go ---- */

/* What one rank contributes: rows of each table, bytes of each blob. */
struct ck_counts {
	uint64_t regions, runs, threads, fds, timers;
	uint64_t memory, filedata, strings;
};

/* Extents of the shared datasets and the chunk sizes of the small blobs. */
struct ck_extents {
	uint64_t nregions, nruns, nthreads, nfds, ntimers;
	uint64_t memory_bytes, filedata_bytes, strings_bytes;
	uint64_t filedata_chunk, strings_chunk;
};

/* Smallest power of two >= n within [CK_SMALL_CHUNK_MIN, CK_MEMORY_CHUNK]:
 * small blobs should not cost a 1 MiB chunk, and every such chunk divides
 * the staging buffer. */
uint64_t ck_small_chunk(uint64_t n);

/* Check rank r's image and count what it contributes; sets the image's
 * runs[].data_offset, fds[].data_offset, memory_bytes, filedata_bytes. */
int ck_rank_measure(const char *dir, uint64_t r, struct ck_image *img, struct ck_counts *c);

/* Place the slices of nranks ranks: the offset fields of rows[] (rank,
 * *_first, *_count, memory/filedata/strings offset and length) and the
 * dataset extents. Each rank's /memory, /filedata and /strings slice
 * starts on a chunk boundary, so no two ranks share a chunk. */
int ck_layout_place(const char *dir, const struct ck_counts *c, uint64_t nranks,
                    struct ck_rank_row *rows, struct ck_extents *e);

/* The rest of a placed row (process facts, cwd), the rank's region and fd
 * rows and its /strings slice (row->strings_len bytes at `strings`). */
void ck_rank_fill(const struct ck_image *img, struct ck_rank_row *row, struct ck_region_row *rr,
                  struct ck_fd_row *fr, uint8_t *strings);

/* Bytes the file will take, roughly: data with their checksums, table
 * rows, and slack for HDF5's own metadata. */
uint64_t ck_estimate_size(const struct ck_extents *e, uint64_t nranks, uint64_t argv_len);

/* ---- writer pieces shared by the serial and the parallel writer ---- */

int ck_check_info(const char *dir, const struct ck_generation_info *info);
/* Hex digits of the random part of a temporary's name. */
#define CK_TOKEN_LEN 16
/* A fresh random part: CK_TOKEN_LEN hex digits and a NUL. */
void ck_new_token(char token[CK_TOKEN_LEN + 1]);
/* DIR/.ckpt-NNNNNN.h5.tmp.HOST.PID.TOKEN into out[len]; its length or -1. */
int ck_temp_path(char *out, size_t len, const char *dir, uint64_t generation, const char *host,
                 long pid, const char *token);
/* The same for this host and process, with a fresh token. */
int ck_host_temp_path(char *out, size_t len, const char *dir, uint64_t generation);
/* The file access properties of every container this process writes
 * (negative on failure; the caller closes them). */
hid_t ck_file_access(void);
/* HDF5 opens by name: 0 if `file` is the file `fd` is, else -1 with the
 * message that `path` was replaced while being `doing` ("created", ...). */
int ck_same_file(hid_t file, int fd, const char *path, const char *doing);
/* Create `path` (which ends in a token) mode 0600 whatever the umask,
 * O_EXCL|O_NOFOLLOW: a name that exists (planted, a symbolic link) is
 * neither followed nor removed, the token is drawn again in place.
 * Returns the descriptor. */
int ck_create_private(const char *dir, char *path);
/* fallocate: 0 reserved, 1 not supported here, -1 no room (message set). */
int ck_reserve_space(int fd, const char *path, uint64_t bytes);
int ck_attr_u64(hid_t file, const char *path, const char *name, hid_t ftype, uint64_t v);
/* The root attributes but `complete`. */
int ck_write_attrs(hid_t file, const char *path, const struct ck_generation_info *info);
/* 1-D, chunked, fletcher32 (after comp's compressor; comp may be NULL),
 * extendible. */
struct ck_compress;
hid_t ck_dataset_create(hid_t file, const char *path, const char *name, hid_t ftype, uint64_t n,
                        uint64_t chunk, const struct ck_compress *comp, hid_t dapl);
/* A table of nrows rows of memtype, stored packed, chunks up to
 * CK_TABLE_CHUNK_BYTES. */
hid_t ck_table_create(hid_t file, const char *path, const char *name, hid_t memtype,
                      size_t rowsize, uint64_t nrows);

#ifdef CKPTMPI_STORAGE_MPI
/* Whether the last container_write_mpi of this process placed /memory's
 * chunks itself (1) or wrote them with H5Dwrite (0); for the tests. */
extern int ck_mpio_direct_last;
#endif

#endif
