/* One rank's /memory read chunk by chunk on every core.
 *
 * HDF5's H5Dread reads each chunk into a buffer of its own, checks it
 * with its own (slow) fletcher32, decompresses it in the calling thread
 * and copies it to the destination. Here HDF5 only says where each chunk
 * lies (H5Dget_chunk_info_by_coord, in this thread: HDF5 is not
 * thread-safe); the threads then read the chunks with pread: a whole
 * uncompressed chunk that lands in one run goes straight to its address
 * (its checksum into 4 bytes aside), is checked there while it is still
 * in the cache, and is never copied again; a compressed one is read into
 * the thread's buffer, checked, and decoded straight to its address.
 * Chunks that straddle runs (small runs, the slice's padding) go through
 * a bounce buffer. Nothing is used before its checksum passed: a failure
 * fails the read. At a lazy restart (storage/lazy_read.h) the chunks
 * whose bytes all go to memory read behind the program are kept for the
 * loader, and bytes of the others that go there are placed by it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "storage/chunk_read.h"
#include "storage/chunk_job.h"
#include "storage/lazy_read.h"
#include "storage/codec.h"
#include "storage/container_internal.h"
#include "storage/fletcher32.h"
#include "storage/parallel.h"

#define GROUP 4u                    /* chunks a thread takes at a time */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23      /* Linux 5.14 */
#endif                    /* chunks a thread takes at a time */

static void job_fail(struct ck_chunk_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void job_fail(struct ck_chunk_job *j, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&j->lock);
	if (!j->failed) {
		va_start(ap, fmt);
		vsnprintf(j->msg, sizeof j->msg, fmt, ap);
		va_end(ap);
		j->failed = 1;
	}
	pthread_mutex_unlock(&j->lock);
}

static int full_pread(int fd, void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, buf, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -1 : (errno = 0, -1);
		buf = (uint8_t *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Data chunk and checksum read into two places. */
static int pread2(int fd, void *a, size_t alen, void *b, size_t blen, uint64_t off)
{
	struct iovec v[2] = { { a, alen }, { b, blen } };
	ssize_t n;

	while ((n = preadv(fd, v, 2, (off_t)off)) < 0 && errno == EINTR)
		;
	if (n == (ssize_t)(alen + blen))
		return 0;
	if (n >= 0 && (size_t)n >= alen)
		return full_pread(fd, (uint8_t *)b + (n - (ssize_t)alen), alen + blen - (size_t)n,
		                  off + (uint64_t)n);
	if (n >= 0)
		return full_pread(fd, (uint8_t *)a + n, alen - (size_t)n, off + (uint64_t)n) ||
		       full_pread(fd, b, blen, off + alen);
	return -1;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The run holding slice byte `off`, or the first after it. */
size_t ck_chunk_job_span_at(const struct ck_chunk_job *j, uint64_t off)
{
	size_t lo = 0, hi = j->nspans;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (j->spans[mid].off + j->spans[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Bytes [off, off + CHUNK) of the slice, now at src, to their runs. */
static int scatter(const struct ck_chunk_job *j, uint64_t off, const uint8_t *src)
{
	uint64_t end = off + CK_MEMORY_CHUNK;

	for (size_t i = ck_chunk_job_span_at(j, off); i < j->nspans && j->spans[i].off < end; i++) {
		const struct ck_span *s = &j->spans[i];
		uint64_t a = s->off > off ? s->off : off;
		uint64_t b = s->off + s->len < end ? s->off + s->len : end;

		if (ck_lazy_place(s->dst + (a - s->off), src + (a - off), b - a))
			return -1;
	}
	return 0;
}

int ck_chunk_job_read(struct ck_chunk_job *j, struct ck_chunk_worker *wk, uint64_t k)
{
	const struct ck_chunk *ch = &j->chunks[k];
	uint64_t off = k * CK_MEMORY_CHUNK;
	uint8_t *direct = NULL, sum[4];
	int raw = j->codec == CK_CODEC_NONE || (ch->mask & 1);
	size_t data;
	char why[160];

	if (j->nspans) {
		size_t i = ck_chunk_job_span_at(j, off);

		if (i < j->nspans && j->spans[i].off <= off &&
		    j->spans[i].off + j->spans[i].len >= off + CK_MEMORY_CHUNK)
			direct = j->spans[i].dst + (off - j->spans[i].off);
		/* memory read behind the program takes whole checked pages */
		if (direct && ck_lazy_covers((uint64_t)(uintptr_t)direct, CK_MEMORY_CHUNK))
			direct = NULL;
	}
	if (ch->size < 4 || ch->size > ck_chunk_bound(CK_MEMORY_CHUNK) ||
	    (raw && ch->size != CK_MEMORY_CHUNK + 4)) {
		job_fail(j, "%s: /memory chunk %llu of rank %llu has %u bytes stored (corrupt file)",
		         j->path, (unsigned long long)k, (unsigned long long)j->rank, ch->size);
		return -1;
	}
	data = ch->size - 4;
	/* the destination's pages are fresh: fault them in one call rather
	 * than one page at a time inside the copy (a hint; old kernels
	 * refuse it, the read then faults them) */
	if (direct)
		(void)madvise(direct, CK_MEMORY_CHUNK, MADV_POPULATE_WRITE);
	if (raw && direct ? pread2(j->fd, direct, data, sum, 4, ch->addr)
	                  : full_pread(j->fd, wk->buf, ch->size, ch->addr)) {
		job_fail(j, "%s: cannot read /memory chunk %llu of rank %llu: %s", j->path,
		         (unsigned long long)k, (unsigned long long)j->rank,
		         errno ? strerror(errno) : "beyond the end of the file (truncated file)");
		return -1;
	}
	if (!(raw && direct))
		memcpy(sum, wk->buf + data, 4);
	if (ck_fletcher32(raw && direct ? direct : wk->buf, data) != le32(sum)) {
		job_fail(j, "%s: checksum mismatch in /memory (corrupt file): chunk %llu of rank %llu",
		         j->path, (unsigned long long)k, (unsigned long long)j->rank);
		return -1;
	}
	if (raw) {
		if (!direct && j->nspans && scatter(j, off, wk->buf))
			goto unplaced;
		return 0;
	}
	if (ck_chunk_decompress(wk->ctx, j->codec, wk->buf, data, direct ? direct : wk->bounce,
	                        CK_MEMORY_CHUNK, why, sizeof why)) {
		job_fail(j, "%s: /memory chunk %llu of rank %llu does not decode: %s (corrupt file)",
		         j->path, (unsigned long long)k, (unsigned long long)j->rank, why);
		return -1;
	}
	if (!direct && j->nspans && scatter(j, off, wk->bounce))
		goto unplaced;
	return 0;
unplaced:
	job_fail(j, "%s: /memory chunk %llu of rank %llu cannot be placed in memory: %s", j->path,
	         (unsigned long long)k, (unsigned long long)j->rank, strerror(errno));
	return -1;
}

int ck_chunk_worker_init(struct ck_chunk_worker *wk)
{
	memset(wk, 0, sizeof *wk);
	if (!(wk->buf = malloc(ck_chunk_bound(CK_MEMORY_CHUNK))) ||
	    !(wk->bounce = malloc(CK_MEMORY_CHUNK)) || !(wk->ctx = ck_codec_ctx_new())) {
		ck_chunk_worker_free(wk);
		return -1;
	}
	return 0;
}

void ck_chunk_worker_free(struct ck_chunk_worker *wk)
{
	free(wk->buf);
	free(wk->bounce);
	ck_codec_ctx_free(wk->ctx);
	memset(wk, 0, sizeof *wk);
}

static int work(void *arg, unsigned w)
{
	struct ck_chunk_job *j = arg;
	const struct ck_chunk_read *c = j->c;
	struct ck_chunk_worker wk;
	uint64_t k, reported = 0;
	int rc = 0;

	if (ck_chunk_worker_init(&wk)) {
		job_fail(j, "%s: out of memory for reading /memory", j->path);
		rc = -1;
	}
	while (!rc && !j->failed &&
	       (k = __atomic_fetch_add(&j->next, GROUP, __ATOMIC_RELAXED)) < j->norder) {
		uint64_t n = j->norder - k < GROUP ? j->norder - k : GROUP;

		for (uint64_t i = 0; !rc && i < n; i++)
			rc = ck_chunk_job_read(j, &wk, j->order ? j->order[k + i] : k + i);
		__atomic_fetch_add(&j->done, n * CK_MEMORY_CHUNK, __ATOMIC_RELAXED);
		/* the caller's thread reports: the callback logs */
		if (!w && c->progress && j->done - reported >= CK_PROGRESS_STEP) {
			reported = j->done;
			c->progress(reported < c->total ? reported : c->total, c->total);
		}
	}
	ck_chunk_worker_free(&wk);
	return rc;
}

/* At a lazy restart: the chunks whose bytes all go to memory read behind
 * the program are kept for it, the others read now (j->order). 0, or -1
 * (out of memory). */
static int split_lazy(struct ck_chunk_job *j, uint64_t **kept, uint64_t *nkept)
{
	if (!(j->order = malloc((j->nchunks ? j->nchunks : 1) * sizeof *j->order)) ||
	    !(*kept = malloc((j->nchunks ? j->nchunks : 1) * sizeof **kept)))
		return -1;
	j->norder = 0;
	for (uint64_t k = 0; k < j->nchunks; k++) {
		uint64_t off = k * CK_MEMORY_CHUNK, end = off + CK_MEMORY_CHUNK;
		int lazy = 0, eager = 0;

		for (size_t i = ck_chunk_job_span_at(j, off); i < j->nspans && j->spans[i].off < end;
		     i++) {
			const struct ck_span *s = &j->spans[i];
			uint64_t a = s->off > off ? s->off : off;
			uint64_t b = s->off + s->len < end ? s->off + s->len : end;
			int cv = ck_lazy_covers((uint64_t)(uintptr_t)(s->dst + (a - s->off)), b - a);

			lazy |= cv != 0;
			eager |= cv != 1;
		}
		if (lazy && !eager)
			(*kept)[(*nkept)++] = k;
		else if (eager)
			j->order[j->norder++] = k;
		/* (neither: the slice's padding) */
	}
	return 0;
}

static int cmp_span(const void *a, const void *b)
{
	const struct ck_span *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* 1 if /memory's pipeline is [codec,] fletcher32, with *codec set. */
static int pipeline_known(hid_t ds, int *codec)
{
	hid_t dcpl = H5Dget_create_plist(ds);
	int n, ok = 0;

	*codec = CK_CODEC_NONE;
	if (dcpl < 0)
		return 0;
	n = H5Pget_nfilters(dcpl);
	if (n >= 1 && n <= 2) {
		unsigned flags, cd[8];
		size_t ncd = 8;
		H5Z_filter_t last = H5Pget_filter2(dcpl, (unsigned)n - 1, &flags, &ncd, cd, 0, NULL, NULL);

		ok = last == H5Z_FILTER_FLETCHER32;
		if (ok && n == 2) {
			H5Z_filter_t first;

			ncd = 8;
			first = H5Pget_filter2(dcpl, 0, &flags, &ncd, cd, 0, NULL, NULL);
			*codec = first >= 0 ? ck_codec_of_filter((int)first) : -1;
			ok = *codec > 0;
		}
	}
	H5Pclose(dcpl);
	return ok;
}

int ck_memory_filters_available(const char *path, hid_t ds)
{
	hid_t dcpl = H5Dget_create_plist(ds);
	int n, rc = 0;

	if (dcpl < 0) {
		ck_set_h5_error(path, "read", "/memory");
		return -1;
	}
	n = H5Pget_nfilters(dcpl);
	for (int i = 0; i < n && !rc; i++) {
		unsigned flags, cd[8];
		size_t ncd = 8;
		char name[128] = "";
		H5Z_filter_t f = H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, sizeof name, name,
		                                NULL);

		if (f < 0) {
			ck_set_h5_error(path, "read", "/memory's filters");
			rc = -1;
		} else if (H5Zfilter_avail(f) <= 0) {
			H5Eclear2(H5E_DEFAULT);
			ck_set_error("%s: /memory is compressed with HDF5 filter %d (%s), which this "
			             "ckptmpi cannot decode: it has deflate, zstd (32015), lz4 (32004) and "
			             "blosc (32001); other filters are loaded from HDF5_PLUGIN_PATH",
			             path, (int)f, name[0] ? name : "no name");
			rc = -1;
		}
	}
	H5Pclose(dcpl);
	return rc;
}

int ck_chunks_read(const struct ck_chunk_read *c)
{
	struct ck_chunk_job j;
	void *h = NULL;
	uint64_t *kept = NULL, nkept = 0;
	int rc = -1, lazy = c->img && ck_lazy_keeping();

	memset(&j, 0, sizeof j);
	j.c = c;
	j.path = c->path;
	j.rank = c->rank;
	if (!pipeline_known(c->ds, &j.codec) || c->end % CK_MEMORY_CHUNK ||
	    H5Fget_vfd_handle(c->file, H5P_DEFAULT, &h) < 0 || !h) {
		H5Eclear2(H5E_DEFAULT);
		/* not the sec2 driver, or filters HDF5 must apply */
		goto not_mine;
	}
	j.fd = *(int *)h;
	j.nchunks = c->end / CK_MEMORY_CHUNK;
	if (!(j.chunks = malloc((j.nchunks ? j.nchunks : 1) * sizeof *j.chunks))) {
		ck_set_error("%s: out of memory", c->path);
		return -1;
	}
	for (uint64_t k = 0; k < j.nchunks; k++) {
		hsize_t coord = c->base + k * CK_MEMORY_CHUNK, size = 0;
		haddr_t addr = HADDR_UNDEF;
		unsigned mask = 0;

		if (H5Dget_chunk_info_by_coord(c->ds, &coord, &mask, &addr, &size) < 0) {
			ck_set_h5_error(c->path, "read", "/memory's chunk index");
			goto out;
		}
		if (addr == HADDR_UNDEF || size > UINT32_MAX) {
			free(j.chunks);
			goto not_mine; /* a chunk never written (fill value): HDF5 knows */
		}
		j.chunks[k] = (struct ck_chunk){ addr, (uint32_t)size, mask };
	}
	{
		/* the file's pages of this slice asked for at once: from a cold
		 * cache the device gets deep queues rather than each thread's
		 * 1 MiB reads in turn (a hint) */
		uint64_t lo = UINT64_MAX, hi = 0;

		for (uint64_t k = 0; k < j.nchunks; k++) {
			if (j.chunks[k].addr < lo)
				lo = j.chunks[k].addr;
			if (j.chunks[k].addr + j.chunks[k].size > hi)
				hi = j.chunks[k].addr + j.chunks[k].size;
		}
		if (hi > lo)
			(void)posix_fadvise(j.fd, (off_t)lo, (off_t)(hi - lo), POSIX_FADV_WILLNEED);
	}
	if (c->img) {
		const struct ck_image *img = c->img;

		if (!(j.spans = malloc((img->nruns ? img->nruns : 1) * sizeof *j.spans))) {
			ck_set_error("%s: out of memory", c->path);
			goto out;
		}
		for (size_t i = 0; i < img->nruns; i++)
			if (ck_run_bytes(&img->runs[i]))
				j.spans[j.nspans++] = (struct ck_span){ img->runs[i].data_offset,
				                                     ck_run_bytes(&img->runs[i]),
				                                     (uint8_t *)(uintptr_t)img->runs[i].addr };
		qsort(j.spans, j.nspans, sizeof *j.spans, cmp_span);
	}
	j.norder = j.nchunks;
	if (lazy && split_lazy(&j, &kept, &nkept)) {
		ck_set_error("%s: out of memory", c->path);
		goto out;
	}
	pthread_mutex_init(&j.lock, NULL);
	rc = ck_parallel(ck_workers(), work, &j);
	if (rc) {
		ck_set_error("%s", j.msg[0] ? j.msg : "reading /memory failed");
		rc = -1;
	} else if (nkept) {
		/* the loader's now: chunks, spans, a file descriptor of its own */
		free(j.order);
		j.order = NULL;
		if (ck_lazy_keep(&j, kept, nkept)) {
			ck_set_error("%s: cannot keep /memory for reading behind the program: %s",
			             c->path, strerror(errno));
			rc = -1;
		} else {
			j.chunks = NULL;
			j.spans = NULL;
		}
	}
	pthread_mutex_destroy(&j.lock);
out:
	free(kept);
	free(j.order);
	free(j.chunks);
	free(j.spans);
	return rc;
not_mine:
	if (!lazy)
		return 1;
	ck_lazy_refuse();
	ck_set_error("%s: its /memory cannot be read behind the program (filters or chunks HDF5 "
	             "must read)", c->path);
	return -1;
}
