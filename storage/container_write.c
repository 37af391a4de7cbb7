/* Writing a generation: a temporary file filled table by table, page data
 * streamed through one staging buffer, then committed by rename. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/codec.h"
#include "storage/container.h"
#include "storage/container_internal.h"
#include "storage/fletcher32.h"
#include "storage/parallel.h"

#define CK_STAGE_CHUNKS (CK_STAGE_BYTES / CK_MEMORY_CHUNK)

struct writer {
	const char *path;           /* the temporary file, for messages */
	hid_t file;
	struct ck_types t;
	struct ck_compress comp;    /* of /memory */
	uint8_t *stage;             /* being filled */
	/* compression: a stage's chunks are compressed on every core while
	 * the next stage is filled and the previous one written */
	unsigned nworkers;
	size_t slot_size;
	struct batch {
		struct writer *w;
		const struct ck_compress *comp;
		struct ck_codec_ctx *ctx[8];    /* a worker's; the two batches may overlap */
		uint8_t *stage;             /* CK_STAGE_BYTES + 4 */
		/* chunk i is read from src[i] when set (a whole chunk of a run,
		 * not copied to the stage), else from the stage */
		const uint8_t *src[CK_STAGE_CHUNKS];
		uint8_t *packed;            /* CK_STAGE_CHUNKS slots of slot_size */
		uint32_t len[CK_STAGE_CHUNKS], mask[CK_STAGE_CHUNKS];
		unsigned nchunks;
		size_t chunk;
		uint64_t pos;               /* dataset offset of stage[0] */
		volatile unsigned next;
		pthread_t thread;
		int running;
	} batch[2];
	unsigned filling;           /* batch[filling].stage == stage */
	int fd;                     /* our descriptor of the file HDF5 writes */
	container_progress_fn progress;
	uint64_t done, total, reported;
};

/* Where every rank's data goes: rows of /ranks plus the rows and blobs
 * that differ from the image structs. */
struct layout {
	struct ck_rank_row *rows;
	struct ck_extents e;
	struct ck_region_row *regions;
	struct ck_fd_row *fds;
	uint8_t *strings;
};

static void layout_free(struct layout *l)
{
	free(l->rows);
	free(l->regions);
	free(l->fds);
	free(l->strings);
	memset(l, 0, sizeof *l);
}

/* Check the images and place every rank's slices; fills runs[].data_offset,
 * fds[].data_offset, memory_bytes and filedata_bytes of the images. */
static int layout_build(const char *dir, const struct ck_generation_info *info,
                        struct ck_image *images, struct layout *l)
{
	uint64_t nranks = info->nranks;
	struct ck_counts *c;
	int rc = -1;

	memset(l, 0, sizeof *l);
	if (!(c = calloc(nranks, sizeof *c)) || !(l->rows = calloc(nranks, sizeof *l->rows))) {
		ck_set_error("%s: out of memory", dir);
		goto out;
	}
	for (uint64_t r = 0; r < nranks; r++)
		if (ck_rank_measure(dir, r, &images[r], &c[r]))
			goto out;
	if (ck_layout_place(dir, c, nranks, l->rows, &l->e))
		goto out;
	l->regions = calloc(l->e.nregions ? l->e.nregions : 1, sizeof *l->regions);
	l->fds = calloc(l->e.nfds ? l->e.nfds : 1, sizeof *l->fds);
	l->strings = calloc(l->e.strings_bytes ? l->e.strings_bytes : 1, 1);
	if (!l->regions || !l->fds || !l->strings) {
		ck_set_error("%s: out of memory", dir);
		goto out;
	}
	for (uint64_t r = 0; r < nranks; r++) {
		struct ck_rank_row *row = &l->rows[r];

		ck_rank_fill(&images[r], row, l->regions + row->region_first, l->fds + row->fd_first,
		             l->strings + row->strings_offset);
	}
	rc = 0;
out:
	free(c);
	return rc;
}

int ck_attr_u64(hid_t file, const char *path, const char *name, hid_t ftype, uint64_t v)
{
	hid_t sp = H5Screate(H5S_SCALAR), a = -1;
	int rc = -1;

	if (sp >= 0 && (a = H5Acreate2(file, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
	    H5Awrite(a, H5T_NATIVE_UINT64, &v) >= 0)
		rc = 0;
	else
		ck_set_h5_error(path, "write", name);
	if (a >= 0)
		H5Aclose(a);
	if (sp >= 0)
		H5Sclose(sp);
	return rc;
}

static int attr_str(hid_t file, const char *path, const char *name, const char *s)
{
	hid_t sp = H5Screate(H5S_SCALAR), ty = H5Tcopy(H5T_C_S1), a = -1;
	int rc = -1;

	if (sp >= 0 && ty >= 0 && H5Tset_size(ty, strlen(s) + 1) >= 0 &&
	    H5Tset_strpad(ty, H5T_STR_NULLTERM) >= 0 &&
	    (a = H5Acreate2(file, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
	    H5Awrite(a, ty, s) >= 0)
		rc = 0;
	else
		ck_set_h5_error(path, "write", name);
	if (a >= 0)
		H5Aclose(a);
	if (ty >= 0)
		H5Tclose(ty);
	if (sp >= 0)
		H5Sclose(sp);
	return rc;
}

/* 1-D, chunked, checksummed and extendible, so that empty tables work and
 * every read is verified. */
hid_t ck_dataset_create(hid_t file, const char *path, const char *name, hid_t ftype, uint64_t n,
                        uint64_t chunk, const struct ck_compress *comp, hid_t dapl)
{
	hsize_t dims = n, maxd = H5S_UNLIMITED, ch = chunk;
	hid_t sp = H5Screate_simple(1, &dims, &maxd);
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), ds = -1;

	if (sp >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 1, &ch) >= 0 &&
	    ck_compress_set_filter(dcpl, comp) >= 0 &&
	    H5Pset_fletcher32(dcpl) >= 0)
		ds = H5Dcreate2(file, name, ftype, sp, H5P_DEFAULT, dcpl, dapl);
	if (ds < 0)
		ck_set_h5_error(path, "create", name);
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (sp >= 0)
		H5Sclose(sp);
	return ds;
}

static int rows_write(struct writer *w, hid_t ds, const char *name, hid_t memtype,
                      uint64_t first, uint64_t count, const void *rows)
{
	hsize_t off = first, n = count;
	hid_t fs = -1, ms = -1;
	int rc = -1;

	if (!count)
		return 0;
	if ((fs = H5Dget_space(ds)) >= 0 && (ms = H5Screate_simple(1, &n, NULL)) >= 0 &&
	    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &n, NULL) >= 0 &&
	    H5Dwrite(ds, memtype, ms, fs, H5P_DEFAULT, rows) >= 0)
		rc = 0;
	else
		ck_set_h5_error(w->path, "write", name);
	if (ms >= 0)
		H5Sclose(ms);
	if (fs >= 0)
		H5Sclose(fs);
	return rc;
}

hid_t ck_table_create(hid_t file, const char *path, const char *name, hid_t memtype,
                      size_t rowsize, uint64_t nrows)
{
	uint64_t chunk = CK_TABLE_CHUNK_BYTES / rowsize;
	hid_t ftype = H5Tcopy(memtype), ds = -1;

	if (chunk > nrows)
		chunk = nrows;
	if (!chunk)
		chunk = 1;
	/* no padding in the file; the reader converts by member name */
	if (ftype < 0 || H5Tpack(ftype) < 0)
		ck_set_h5_error(path, "create", name);
	else
		ds = ck_dataset_create(file, path, name, ftype, nrows, chunk, NULL, H5P_DEFAULT);
	if (ftype >= 0)
		H5Tclose(ftype);
	return ds;
}

/* A whole table, written in one piece. */
static int table_write(struct writer *w, const char *name, hid_t memtype, size_t rowsize,
                       uint64_t nrows, const void *rows)
{
	hid_t ds = ck_table_create(w->file, w->path, name, memtype, rowsize, nrows);
	int rc;

	if (ds < 0)
		return -1;
	rc = rows_write(w, ds, name, memtype, 0, nrows, rows);
	if (H5Dclose(ds) < 0 && !rc) {
		ck_set_h5_error(w->path, "write", name);
		rc = -1;
	}
	return rc;
}

/* Where one rank's rows of a table live in memory and in the file. */
typedef void (*slice_fn)(const struct ck_image *img, const struct ck_rank_row *row,
                         const void **rows, uint64_t *first, uint64_t *count);

static void runs_of(const struct ck_image *img, const struct ck_rank_row *row,
                    const void **rows, uint64_t *first, uint64_t *count)
{
	*rows = img->runs, *first = row->run_first, *count = img->nruns;
}

static void threads_of(const struct ck_image *img, const struct ck_rank_row *row,
                       const void **rows, uint64_t *first, uint64_t *count)
{
	*rows = img->threads, *first = row->thread_first, *count = img->nthreads;
}

static void timers_of(const struct ck_image *img, const struct ck_rank_row *row,
                      const void **rows, uint64_t *first, uint64_t *count)
{
	*rows = img->timers, *first = row->timer_first, *count = img->ntimers;
}

static void sigactions_of(const struct ck_image *img, const struct ck_rank_row *row,
                          const void **rows, uint64_t *first, uint64_t *count)
{
	*rows = img->proc.sig, *first = row->rank * CK_NSIG, *count = CK_NSIG;
}

static void rlimits_of(const struct ck_image *img, const struct ck_rank_row *row,
                       const void **rows, uint64_t *first, uint64_t *count)
{
	*rows = img->proc.rlim, *first = row->rank * CK_NRLIMITS, *count = CK_NRLIMITS;
}

static void itimers_of(const struct ck_image *img, const struct ck_rank_row *row,
                       const void **rows, uint64_t *first, uint64_t *count)
{
	*rows = img->proc.itimer, *first = row->rank * 3, *count = 3;
}

/* A table whose rows stay in the images: each rank's slice is written
 * from where it lies, as ranks will do for themselves in parallel. */
static int table_write_ranks(struct writer *w, const char *name, hid_t memtype, size_t rowsize,
                             uint64_t total, const struct ck_image *images,
                             const struct layout *l, uint64_t nranks, slice_fn slice)
{
	hid_t ds = ck_table_create(w->file, w->path, name, memtype, rowsize, total);
	int rc = ds < 0 ? -1 : 0;

	for (uint64_t r = 0; !rc && r < nranks; r++) {
		const void *rows;
		uint64_t first, count;

		slice(&images[r], &l->rows[r], &rows, &first, &count);
		rc = rows_write(w, ds, name, memtype, first, count, rows);
	}
	if (ds >= 0 && H5Dclose(ds) < 0 && !rc) {
		ck_set_h5_error(w->path, "write", name);
		rc = -1;
	}
	return rc;
}

/* Byte datasets (/memory, /filedata, /strings) are written through the
 * staging buffer in whole chunks: with checksums a partial chunk write
 * would cost a read-modify-write. */
struct stream {
	struct writer *w;
	const char *name;
	hid_t ds, fs;
	uint64_t chunk;
	uint64_t pos;               /* dataset offset of stage[0] */
	size_t fill;
	size_t limit;               /* flush when fill reaches it */
	uint64_t unsynced;          /* bytes since the last writeback hint */
	const struct ck_compress *comp;     /* NULL: checksum only */
	int counts;                 /* contributes to progress */
};

/* Checksummed chunks go straight to the file, one at a time while they
 * are still in the CPU cache: H5Dwrite would copy each chunk into a fresh
 * buffer and again into the filter's output, costing more than the disk.
 * A chunk is stored as its bytes followed by the little-endian checksum,
 * in the 4 spare bytes after it in the stage. */
static int write_direct(struct stream *s)
{
	for (size_t at = 0; at < s->fill; at += s->chunk) {
		uint8_t *c = s->w->stage + at, save[4];
		uint32_t f = ck_fletcher32(c, s->chunk);
		hsize_t off = s->pos + at;
		herr_t e;

		memcpy(save, c + s->chunk, 4);
		c[s->chunk] = (uint8_t)f;
		c[s->chunk + 1] = (uint8_t)(f >> 8);
		c[s->chunk + 2] = (uint8_t)(f >> 16);
		c[s->chunk + 3] = (uint8_t)(f >> 24);
		e = H5Dwrite_chunk(s->ds, H5P_DEFAULT, 0, &off, s->chunk + 4, c);
		memcpy(c + s->chunk, save, 4);
		if (e < 0) {
			ck_set_h5_error(s->w->path, "write", s->name);
			return -1;
		}
	}
	return 0;
}

/* Compressed chunks are made on every core, each stored with its
 * checksum (of the stored bytes, as HDF5's pipeline would: compressor,
 * then fletcher32), and written in order with H5Dwrite_chunk: HDF5's own
 * pipeline would compress them one at a time in this thread. Two batches
 * take turns: while the cores compress one, this thread fills the other
 * and writes the one before (HDF5 is called from this thread only). */
static int pack_chunks(void *arg, unsigned worker)
{
	struct batch *b = arg;
	struct writer *w = b->w;
	unsigned i;

	while ((i = __atomic_fetch_add(&b->next, 1, __ATOMIC_RELAXED)) < b->nchunks) {
		const uint8_t *in = b->src[i] ? b->src[i] : b->stage + (size_t)i * b->chunk;
		uint8_t *out = b->packed + (size_t)i * w->slot_size;
		size_t n = ck_chunk_compress(b->ctx[worker], b->comp, in, b->chunk, out);
		uint32_t f;

		/* a chunk that does not shrink is stored as it is, the
		 * compressor (filter 0) marked as skipped */
		b->mask[i] = n ? 0 : 1;
		if (!n) {
			memcpy(out, in, b->chunk);
			n = b->chunk;
		}
		f = ck_fletcher32(out, n);
		out[n] = (uint8_t)f;
		out[n + 1] = (uint8_t)(f >> 8);
		out[n + 2] = (uint8_t)(f >> 16);
		out[n + 3] = (uint8_t)(f >> 24);
		b->len[i] = (uint32_t)(n + 4);
	}
	return 0;
}

static void *batch_run(void *arg)
{
	struct batch *b = arg;

	ck_parallel(b->w->nworkers, pack_chunks, b);
	return NULL;
}

/* Wait for batch b if it is being compressed, and write it if it has not
 * been (write = 0: only wait, after a failure). */
static int batch_finish(struct stream *s, struct batch *b, int write)
{
	struct writer *w = s->w;
	unsigned n = b->nchunks;

	if (b->running)
		pthread_join(b->thread, NULL);
	b->running = 0;
	b->nchunks = 0;
	for (unsigned i = 0; write && i < n; i++) {
		hsize_t off = b->pos + (uint64_t)i * b->chunk;

		if (H5Dwrite_chunk(s->ds, H5P_DEFAULT, b->mask[i], &off, b->len[i],
		                   b->packed + (size_t)i * w->slot_size) < 0) {
			ck_set_h5_error(w->path, "write", s->name);
			return -1;
		}
	}
	return 0;
}

static int write_compressed(struct stream *s)
{
	struct writer *w = s->w;
	unsigned f = w->filling;
	struct batch *b = &w->batch[f];
	sigset_t all, old;
	int rc;

	b->w = w;
	b->comp = s->comp;
	b->chunk = s->chunk;
	b->nchunks = (unsigned)(s->fill / s->chunk);
	b->pos = s->pos;
	b->next = 0;
	/* the helpers take no signal (the program's and the runtime's) */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	b->running = !pthread_create(&b->thread, NULL, batch_run, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!b->running)
		ck_parallel(w->nworkers, pack_chunks, b);
	/* the batch before is written while this one compresses, and its
	 * stage is filled next; this one is written after the next flush,
	 * or by stream_close */
	w->filling = !f;
	w->stage = w->batch[!f].stage;
	rc = batch_finish(s, &w->batch[!f], 1);
	memset(w->batch[!f].src, 0, sizeof w->batch[!f].src);
	return rc;
}

static int stream_flush(struct stream *s)
{
	struct writer *w = s->w;

	if (!s->fill)
		return 0;
	/* slices are padded and the stage is a multiple of every chunk */
	if (s->fill % s->chunk) {
		ck_set_error("%s: internal error: partial chunk of %s", w->path, s->name);
		return -1;
	}
	if (s->comp ? write_compressed(s) : write_direct(s))
		return -1;
	s->pos += s->fill;
	s->unsynced += s->fill;
	s->fill = 0;
	/* start writeback now so the disk works while we copy, rather than
	 * all at once in the final fsync; only a hint, failures are fsync's */
	if (s->unsynced >= CK_STAGE_BYTES) {
		s->unsynced = 0;
		if (w->fd >= 0)
			(void)sync_file_range(w->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	}
	if (s->counts && w->progress && w->done - w->reported >= CK_PROGRESS_STEP) {
		w->reported = w->done;
		w->progress(w->done, w->total);
	}
	return 0;
}

static int stream_put(struct stream *s, const void *src, uint64_t len)
{
	const uint8_t *p = src;

	while (len) {
		size_t n = s->limit - s->fill;

		if (n > len)
			n = (size_t)len;
		if (s->comp && !(s->fill % s->chunk) && n >= s->chunk) {
			/* a whole chunk of a run: compressed from where it lies
			 * (the program is stopped), not copied first */
			n = (size_t)s->chunk;
			s->w->batch[s->w->filling].src[s->fill / s->chunk] = p;
		} else
			memcpy(s->w->stage + s->fill, p, n);
		s->fill += n;
		p += n;
		len -= n;
		if (s->counts)
			s->w->done += n;
		if (s->fill == s->limit && stream_flush(s) < 0)
			return -1;
	}
	return 0;
}

/* Pad the rank's slice to its chunk boundary and write it out. */
static int stream_end_slice(struct stream *s)
{
	size_t padded = (size_t)ck_align_up(s->fill, s->chunk);

	memset(s->w->stage + s->fill, 0, padded - s->fill);
	s->fill = padded;
	return stream_flush(s);
}

static int stream_open(struct stream *s, struct writer *w, const char *name, uint64_t bytes,
                       uint64_t chunk, const struct ck_compress *comp)
{
	hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);

	memset(s, 0, sizeof *s);
	s->w = w;
	s->name = name;
	s->chunk = chunk;
	s->comp = comp && comp->codec != CK_CODEC_NONE ? comp : NULL;
	/* one chunk while it is hot in the cache; compression shares a
	 * whole stage of chunks out to the cores */
	s->limit = s->comp ? CK_STAGE_BYTES : (size_t)chunk;
	s->fs = -1;
	/* whole chunks are written once: caching them only adds copies */
	if (dapl < 0 || H5Pset_chunk_cache(dapl, 0, 0, 1.0) < 0) {
		ck_set_h5_error(w->path, "create", name);
		s->ds = -1;
	} else
		s->ds = ck_dataset_create(w->file, w->path, name, H5T_STD_U8LE, bytes, chunk, s->comp,
		                          dapl);
	if (dapl >= 0)
		H5Pclose(dapl);
	if (s->ds < 0)
		return -1;
	if ((s->fs = H5Dget_space(s->ds)) < 0) {
		ck_set_h5_error(w->path, "write", name);
		return -1;
	}
	return 0;
}

static int stream_close(struct stream *s, int rc)
{
	if (s->comp) {
		/* the last batch, maybe still compressing */
		if (batch_finish(s, &s->w->batch[!s->w->filling], !rc))
			rc = -1;
		s->w->filling = 0;
		s->w->stage = s->w->batch[0].stage;
		memset(s->w->batch[0].src, 0, sizeof s->w->batch[0].src);
		memset(s->w->batch[1].src, 0, sizeof s->w->batch[1].src);
	}
	if (s->fs >= 0)
		H5Sclose(s->fs);
	if (s->ds >= 0 && H5Dclose(s->ds) < 0 && !rc) {
		ck_set_h5_error(s->w->path, "write", s->name);
		rc = -1;
	}
	s->ds = s->fs = -1;
	return rc;
}

static int write_strings(struct writer *w, const struct layout *l)
{
	struct stream s;
	int rc = stream_open(&s, w, "/strings", l->e.strings_bytes, l->e.strings_chunk, NULL);

	/* the blob is already padded per rank */
	if (!rc)
		rc = stream_put(&s, l->strings, l->e.strings_bytes);
	if (!rc)
		rc = stream_flush(&s);
	return stream_close(&s, rc);
}

static int write_filedata(struct writer *w, const struct ck_image *images, uint64_t nranks,
                          const struct layout *l)
{
	struct stream s;
	int rc = stream_open(&s, w, "/filedata", l->e.filedata_bytes, l->e.filedata_chunk, NULL);

	for (uint64_t r = 0; !rc && r < nranks; r++) {
		for (size_t i = 0; !rc && i < images[r].nfds; i++)
			if (ck_fd_has_data(images[r].fds[i].kind))
				rc = stream_put(&s, images[r].fds[i].data, images[r].fds[i].data_len);
		if (!rc)
			rc = stream_end_slice(&s);
	}
	return stream_close(&s, rc);
}

static int write_memory(struct writer *w, const struct ck_image *images, uint64_t nranks,
                        const struct layout *l)
{
	struct stream s;
	int rc = stream_open(&s, w, "/memory", l->e.memory_bytes, CK_MEMORY_CHUNK, &w->comp);

	s.counts = 1;
	for (uint64_t r = 0; !rc && r < nranks; r++) {
		const struct ck_image *img = &images[r];

		/* the runs are live pages of this process */
		for (size_t i = 0; !rc && i < img->nruns; i++)
			if (ck_run_bytes(&img->runs[i]))
				rc = stream_put(&s, (const void *)(uintptr_t)img->runs[i].addr,
				                ck_run_bytes(&img->runs[i]));
		if (!rc)
			rc = stream_end_slice(&s);
	}
	return stream_close(&s, rc);
}

static int write_tables(struct writer *w, const struct ck_generation_info *info,
                        const struct ck_image *images, const struct layout *l)
{
	uint64_t nranks = info->nranks;
	const struct ck_types *t = &w->t;
	hsize_t argv_chunk = info->argv_len ? info->argv_len : 1;
	hid_t ds;
	int rc;

	ds = ck_dataset_create(w->file, w->path, "/argv", H5T_STD_U8LE, info->argv_len, argv_chunk, NULL,
	                       H5P_DEFAULT);
	if (ds < 0)
		return -1;
	rc = rows_write(w, ds, "/argv", H5T_NATIVE_UINT8, 0, info->argv_len, info->argv);
	if (H5Dclose(ds) < 0 && !rc) {
		ck_set_h5_error(w->path, "write", "/argv");
		rc = -1;
	}
	if (rc ||
	    table_write(w, "/ranks", t->rank, sizeof *l->rows, nranks, l->rows) ||
	    table_write(w, "/regions", t->region, sizeof *l->regions, l->e.nregions, l->regions) ||
	    table_write(w, "/fds", t->fd, sizeof *l->fds, l->e.nfds, l->fds) ||
	    table_write_ranks(w, "/runs", t->run, sizeof(struct ck_page_run), l->e.nruns, images, l,
	                      nranks, runs_of) ||
	    table_write_ranks(w, "/threads", t->thread, sizeof(struct ck_thread), l->e.nthreads, images,
	                      l, nranks, threads_of) ||
	    table_write_ranks(w, "/timers", t->timer, sizeof(struct ck_posix_timer), l->e.ntimers,
	                      images, l, nranks, timers_of) ||
	    table_write_ranks(w, "/sigactions", t->sigaction, sizeof(struct ck_sigaction),
	                      nranks * CK_NSIG, images, l, nranks, sigactions_of) ||
	    table_write_ranks(w, "/rlimits", t->rlimit, sizeof(struct ck_rlimit),
	                      nranks * CK_NRLIMITS, images, l, nranks, rlimits_of) ||
	    table_write_ranks(w, "/itimers", t->itimer, sizeof(struct ck_itimer), nranks * 3, images,
	                      l, nranks, itimers_of))
		return -1;
	return 0;
}

int ck_write_attrs(hid_t file, const char *path, const struct ck_generation_info *info)
{
	uint64_t created = info->created_unix ? info->created_unix : (uint64_t)time(NULL);
	/* for people reading the file with h5dump: the time and the command
	 * line as text (the program reads `created` and /argv) */
	char when[32] = "?", cmdline[sizeof info->argv + 1];
	time_t t = (time_t)created;
	struct tm tm;
	size_t n = info->argv_len < sizeof info->argv ? info->argv_len : sizeof info->argv;

	if (gmtime_r(&t, &tm))
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	memcpy(cmdline, info->argv, n);
	cmdline[n] = 0;
	for (size_t i = 0; n && i < n - 1; i++)
		if (!cmdline[i])
			cmdline[i] = ' ';
	if (ck_attr_u64(file, path, "format_version", H5T_STD_U32LE,
	                info->pages_parent ? CK_FORMAT_VERSION_INCREMENTAL : CK_FORMAT_VERSION) ||
	    ck_attr_u64(file, path, "pages_parent", H5T_STD_U64LE, info->pages_parent) ||
	    ck_attr_u64(file, path, "chain_depth", H5T_STD_U64LE, info->chain_depth) ||
	    attr_str(file, path, "ckptmpi_version", CKPTMPI_VERSION_STRING) ||
	    attr_str(file, path, "mpi_flavour", info->mpi_flavour) ||
	    ck_attr_u64(file, path, "nranks", H5T_STD_U64LE, info->nranks) ||
	    ck_attr_u64(file, path, "generation", H5T_STD_U64LE, info->generation) ||
	    ck_attr_u64(file, path, "parent", H5T_STD_U64LE, info->parent) ||
	    ck_attr_u64(file, path, "created", H5T_STD_U64LE, created) ||
	    attr_str(file, path, "created_utc", when) ||
	    attr_str(file, path, "reason", info->reason) ||
	    attr_str(file, path, "command_line", cmdline) ||
	    attr_str(file, path, "program", info->program) ||
	    attr_str(file, path, "runtime", info->runtime) ||
	    ck_attr_u64(file, path, "runtime_id", H5T_STD_U64LE, info->runtime_id) ||
	    ck_attr_u64(file, path, "interval", H5T_STD_U64LE, info->interval))
		return -1;
	return 0;
}

int ck_check_info(const char *dir, const struct ck_generation_info *info)
{
	if (!info->nranks) {
		ck_set_error("%s: generation %llu has no ranks", dir,
		             (unsigned long long)info->generation);
		return -1;
	}
	if (info->nranks > SIZE_MAX / sizeof(struct ck_rank_row)) {
		ck_set_error("%s: too many ranks", dir);
		return -1;
	}
	if (info->argv_len > sizeof info->argv) {
		ck_set_error("%s: argv_len %llu exceeds %zu", dir,
		             (unsigned long long)info->argv_len, sizeof info->argv);
		return -1;
	}
	if (!memchr(info->reason, 0, sizeof info->reason) ||
	    !memchr(info->mpi_flavour, 0, sizeof info->mpi_flavour) ||
	    !memchr(info->program, 0, sizeof info->program) ||
	    !memchr(info->runtime, 0, sizeof info->runtime)) {
		ck_set_error("%s: unterminated string in generation info", dir);
		return -1;
	}
	return 0;
}

void ck_new_token(char token[CK_TOKEN_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[CK_TOKEN_LEN / 2];
	ssize_t n;

	while ((n = getrandom(b, sizeof b, GRND_NONBLOCK)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof b) {
		/* no entropy yet (early boot) or no getrandom: still unlikely
		 * to be guessed, and O_EXCL keeps a guess harmless */
		struct timespec ts;
		uint64_t x;

		clock_gettime(CLOCK_REALTIME, &ts);
		x = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec << 20 ^
		    (uint64_t)getpid() << 40 ^ (uint64_t)(uintptr_t)&x;
		for (size_t i = 0; i < sizeof b; i++, x = x * 6364136223846793005ull + 1442695040888963407ull)
			b[i] = (unsigned char)(x >> 56);
	}
	for (size_t i = 0; i < sizeof b; i++) {
		token[2 * i] = hex[b[i] >> 4];
		token[2 * i + 1] = hex[b[i] & 15];
	}
	token[CK_TOKEN_LEN] = 0;
}

/* The file exists with mode 0600 before HDF5 opens it: HDF5 would create
 * it 0666 & ~umask, readable by others for a moment or for good. Its name
 * ends in a random token: in a shared directory nobody can plant it in
 * advance, and what is there already is never followed nor removed. */
int ck_create_private(const char *dir, char *path)
{
	size_t len = strlen(path);
	int fd = -1;

	for (int tries = 0; tries < 16; tries++) {
		if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) >= 0 ||
		    errno != EEXIST || len < CK_TOKEN_LEN)
			break;
		ck_new_token(path + len - CK_TOKEN_LEN);
	}
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			ck_set_error("%s: no such directory", dir);
		else
			ck_set_error("%s: cannot create: %s", path, strerror(errno));
		return -1;
	}
	/* the umask may have taken the owner's bits away */
	if (fchmod(fd, 0600) < 0) {
		ck_set_error("%s: cannot chmod: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/* Reserve the file's blocks so that a full disk or quota shows up now,
 * cleanly, rather than in the middle of HDF5: 1.10 does not survive a
 * failed H5Fclose (the next close or exit crashes). 0 reserved, 1 not
 * supported by the file system, -1 no room. */
int ck_reserve_space(int fd, const char *path, uint64_t bytes)
{
	int rc;

	while ((rc = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)bytes)) < 0 && errno == EINTR)
		;
	if (!rc)
		return 0;
	if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL)
		return 1;
	ck_set_error("%s: cannot reserve %llu bytes: %s", path, (unsigned long long)bytes,
	             strerror(errno));
	return -1;
}

int ck_temp_path(char *out, size_t len, const char *dir, uint64_t generation, const char *host,
                 long pid, const char *token)
{
	int n = snprintf(out, len, "%s/.ckpt-%06llu.h5.tmp.%s.%ld.%s", dir,
	                 (unsigned long long)generation, host, pid, token);

	if (n < 0 || (size_t)n >= len) {
		ck_set_error("%s: path of the temporary file is too long", dir);
		return -1;
	}
	return n;
}

int container_path(char *out, size_t len, const char *dir, uint64_t generation)
{
	int n = snprintf(out, len, "%s/ckpt-%06llu.h5", dir, (unsigned long long)generation);

	if (n < 0 || (size_t)n >= len) {
		ck_set_error("%s: path too long", dir);
		return -1;
	}
	return 0;
}

int ck_host_temp_path(char *out, size_t len, const char *dir, uint64_t generation)
{
	char host[HOST_NAME_MAX + 1], token[CK_TOKEN_LEN + 1];

	if (gethostname(host, sizeof host) < 0) {
		ck_set_error("%s: gethostname: %s", dir, strerror(errno));
		return -1;
	}
	host[sizeof host - 1] = 0;
	ck_new_token(token);
	return ck_temp_path(out, len, dir, generation, host, (long)getpid(), token);
}

hid_t ck_file_access(void)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);

	/* v2 superblock and object headers: metadata carries checksums;
	 * STRONG: closing the file closes whatever an error path left open;
	 * locks are advisory here (the rename protocol protects readers) and
	 * must not fail on file systems without flock */
	if (fapl >= 0 && (H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0 ||
	                  H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 ||
	                  H5Pset_file_locking(fapl, 1, 1) < 0)) {
		H5Pclose(fapl);
		fapl = -1;
	}
	return fapl;
}

static hid_t file_create(const char *path)
{
	hid_t fapl = ck_file_access(), f = -1;

	if (fapl >= 0)
		f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
	if (f < 0)
		ck_set_h5_error(path, "create", "the HDF5 file");
	if (fapl >= 0)
		H5Pclose(fapl);
	return f;
}

int ck_same_file(hid_t file, int fd, const char *path, const char *doing)
{
	struct stat a, b;
	void *h = NULL;

	if (H5Fget_vfd_handle(file, H5P_DEFAULT, &h) < 0 || !h) {
		ck_set_h5_error(path, "open", "the HDF5 file's descriptor");
		return -1;
	}
	if (fstat(fd, &a) < 0 || fstat(*(int *)h, &b) < 0) {
		ck_set_error("%s: fstat: %s", path, strerror(errno));
		return -1;
	}
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		ck_set_error("%s: replaced while being %s (someone else writes in this "
		             "directory)", path, doing);
		return -1;
	}
	return 0;
}

/* Per-core codec state and a stage's worth of output slots. */
static int compress_setup(const char *dir, struct writer *w)
{
	if (w->comp.codec == CK_CODEC_NONE)
		return 0;
	w->nworkers = ck_workers();
	w->slot_size = ck_chunk_bound(CK_MEMORY_CHUNK);
	w->batch[0].stage = w->stage;
	w->filling = 0;
	if (!(w->batch[1].stage = malloc(CK_STAGE_BYTES + 4)))
		goto oom;
	for (unsigned i = 0; i < 2; i++)
		if (!(w->batch[i].packed = malloc(w->slot_size * CK_STAGE_CHUNKS)))
			goto oom;
	for (unsigned b = 0; b < 2; b++)
		for (unsigned i = 0; i < w->nworkers; i++)
			if (!(w->batch[b].ctx[i] = ck_codec_ctx_new()))
				goto oom;
	return 0;
oom:
	ck_set_error("%s: out of memory for compression", dir);
	return -1;
}

static void compress_free(struct writer *w)
{
	for (unsigned b = 0; b < 2; b++)
		for (unsigned i = 0; i < sizeof w->batch[b].ctx / sizeof w->batch[b].ctx[0]; i++) {
			ck_codec_ctx_free(w->batch[b].ctx[i]);
			w->batch[b].ctx[i] = NULL;
		}
	for (unsigned i = 0; i < 2; i++) {
		free(w->batch[i].packed);
		w->batch[i].packed = NULL;
	}
	free(w->batch[1].stage);
	w->batch[1].stage = NULL;
}

int container_write(const char *dir, const struct ck_generation_info *info,
                    struct ck_image *images, container_progress_fn progress,
                    char *tmp_path_out, size_t tmp_path_len)
{
	struct writer w = { .file = -1, .fd = -1, .progress = progress };
	struct layout l = { 0 };
	char path[PATH_MAX];
	uint64_t estimate;
	struct stat st;
	int fd = -1, n, reserved;

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	w.t = (struct ck_types){ -1, -1, -1, -1, -1, -1, -1, -1, -1 };
	if (!dir || !info || !images) {
		ck_set_error("container_write: missing argument");
		return -1;
	}
	if (ck_check_info(dir, info) || ck_compress_from_env(dir, &w.comp))
		return -1;
	if ((n = ck_host_temp_path(path, sizeof path, dir, info->generation)) < 0)
		return -1;
	if (tmp_path_out && (size_t)n >= tmp_path_len) {
		ck_set_error("%s: path of the temporary file is too long", dir);
		return -1;
	}
	w.path = path;

	if (layout_build(dir, info, images, &l) < 0)
		goto fail_early;
	for (uint64_t r = 0; r < info->nranks; r++)
		w.total += images[r].memory_bytes;
	/* 4 spare bytes for the checksum of the last chunk */
	if (!(w.stage = malloc(CK_STAGE_BYTES + 4))) {
		ck_set_error("%s: out of memory for the staging buffer", dir);
		goto fail_early;
	}
	if (compress_setup(dir, &w))
		goto fail_early;
	if (ck_types_create(&w.t) < 0) {
		ck_set_h5_error(path, "create", "table types");
		goto fail_early;
	}
	if ((fd = ck_create_private(dir, path)) < 0)
		goto fail_early;
	w.fd = fd;
	/* probe before HDF5 holds any state for the file, then reserve for
	 * real: H5Fcreate truncates the file and frees the probe */
	estimate = ck_estimate_size(&l.e, info->nranks, info->argv_len);
	if ((reserved = ck_reserve_space(fd, path, estimate)) < 0)
		goto fail;
	if ((w.file = file_create(path)) < 0 || ck_same_file(w.file, fd, path, "created"))
		goto fail;
	if (!reserved && (reserved = ck_reserve_space(fd, path, estimate)) < 0)
		goto fail;

	if (ck_write_attrs(w.file, path, info) || write_tables(&w, info, images, &l) ||
	    write_strings(&w, &l) || write_filedata(&w, images, info->nranks, &l) ||
	    write_memory(&w, images, info->nranks, &l))
		goto fail;
	/* last: a reader trusts nothing without it */
	if (ck_attr_u64(w.file, path, "complete", H5T_STD_U32LE, 1))
		goto fail;
	if (H5Fclose(w.file) < 0) {
		w.file = -1;
		ck_set_h5_error(path, "write", "the HDF5 file");
		goto fail;
	}
	w.file = -1;
	/* give back what the estimate reserved beyond the end */
	if (!reserved && (fstat(fd, &st) < 0 || ftruncate(fd, st.st_size) < 0)) {
		ck_set_error("%s: cannot release reserved space: %s", path, strerror(errno));
		goto fail;
	}
	if (fsync(fd) < 0) {
		ck_set_error("%s: fsync: %s", path, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		ck_set_error("%s: close: %s", path, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (progress)
		progress(w.total, w.total);
	if (tmp_path_out)
		memcpy(tmp_path_out, path, (size_t)n + 1);
	ck_types_close(&w.t);
	layout_free(&l);
	compress_free(&w);
	free(w.stage);
	return 0;

fail:
	if (w.file >= 0) {
		/* H5Fclose flushes metadata, and a failed H5Fclose leaves HDF5
		 * unusable: free the blocks of this doomed file first, so that a
		 * full disk has room for the flush */
		if (fd >= 0)
			(void)ftruncate(fd, 0);
		H5Fclose(w.file);
	}
	if (fd >= 0)
		close(fd);
	/* a failed generation leaves nothing behind */
	unlink(path);
fail_early:
	ck_types_close(&w.t);
	layout_free(&l);
	compress_free(&w);
	free(w.stage);
	return -1;
}

int container_commit(const char *dir, uint64_t generation, const char *tmp_path)
{
	char final[PATH_MAX];
	int dfd;

	if (!dir || !tmp_path) {
		ck_set_error("container_commit: missing argument");
		return -1;
	}
	if (container_path(final, sizeof final, dir, generation))
		return -1;
	if (renameat2(AT_FDCWD, tmp_path, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
		if (errno == EEXIST) {
			ck_set_error("%s: generation %llu already exists, not replaced", final,
			             (unsigned long long)generation);
			return -1;
		}
		if (errno != EINVAL && errno != ENOSYS) {
			ck_set_error("%s: cannot rename to %s: %s", tmp_path, final, strerror(errno));
			return -1;
		}
		/* no RENAME_NOREPLACE here: link() refuses existing names too */
		if (link(tmp_path, final) < 0) {
			if (errno == EEXIST)
				ck_set_error("%s: generation %llu already exists, not replaced",
				             final, (unsigned long long)generation);
			else
				ck_set_error("%s: cannot link to %s: %s", tmp_path, final,
				             strerror(errno));
			return -1;
		}
		if (unlink(tmp_path) < 0) {
			ck_set_error("%s: committed as %s but cannot remove: %s", tmp_path, final,
			             strerror(errno));
			return -1;
		}
	}
	/* the rename is durable only once the directory is */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		ck_set_error("%s: cannot open directory: %s", dir, strerror(errno));
		return -1;
	}
	if (fsync(dfd) < 0 && errno != EINVAL) {
		/* EINVAL: the file system cannot sync directories at all */
		ck_set_error("%s: fsync: %s", dir, strerror(errno));
		close(dfd);
		return -1;
	}
	if (close(dfd) < 0) {
		ck_set_error("%s: close: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}
