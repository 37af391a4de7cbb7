/* Private to storage/: one file's /memory chunks and where their bytes
 * go, shared by the chunk reader (chunk_read.c, at once) and the lazy
 * loader (lazy_read.c, behind the program). */
#ifndef CKPTMPI_STORAGE_CHUNK_JOB_H
#define CKPTMPI_STORAGE_CHUNK_JOB_H

#include <pthread.h>
#include <stdint.h>

#include "storage/chunk_read.h"

struct ck_chunk {
	uint64_t addr;              /* in the file */
	uint32_t size;              /* stored, checksum included */
	uint32_t mask;              /* filters skipped */
};

/* runs ordered by where their bytes are in the slice */
struct ck_span {
	uint64_t off, len;
	uint8_t *dst;
};

struct ck_chunk_job {
	const struct ck_chunk_read *c; /* NULL once kept for the lazy loader */
	const char *path;
	uint64_t rank;
	int fd, codec;              /* codec of filter 0, or CK_CODEC_NONE */
	struct ck_chunk *chunks;
	uint64_t nchunks;
	struct ck_span *spans;
	size_t nspans;
	uint64_t *order;            /* the chunks to read now (NULL: all) */
	uint64_t norder;
	volatile uint64_t next, done;
	volatile int failed;
	pthread_mutex_t lock;
	char msg[512];
};

struct ck_chunk_worker {
	uint8_t *buf;               /* a stored chunk */
	uint8_t *bounce;            /* a decoded one */
	struct ck_codec_ctx *ctx;
};

int ck_chunk_worker_init(struct ck_chunk_worker *wk);
void ck_chunk_worker_free(struct ck_chunk_worker *wk);
/* Chunk k read, checked and its bytes placed. 0, or -1 (j->msg). */
int ck_chunk_job_read(struct ck_chunk_job *j, struct ck_chunk_worker *wk, uint64_t k);
/* The span holding slice byte `off`, or the first after it. */
size_t ck_chunk_job_span_at(const struct ck_chunk_job *j, uint64_t off);

/* lazy_read.c's side */
/* 0: no byte of [addr, addr+len) is to be read later; 1: all; 2: some */
int ck_lazy_covers(uint64_t addr, uint64_t len);
/* len bytes at src to dst: memcpy, or (a lazy range) UFFDIO_COPY; 0 or -1 (errno) */
int ck_lazy_place(uint8_t *dst, const uint8_t *src, uint64_t len);
/* job j's chunks kept[0..n) are left for later: j is the loader's now */
int ck_lazy_keep(struct ck_chunk_job *j, const uint64_t *kept, uint64_t n);
/* a read that cannot be kept: refused */
void ck_lazy_refuse(void);

#endif
