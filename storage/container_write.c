/* Writing a generation: a temporary file filled table by table, page data
 * streamed through one staging buffer, then committed by rename. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/container.h"
#include "storage/container_internal.h"

struct writer {
	const char *path;           /* the temporary file, for messages */
	hid_t file;
	struct ck_types t;
	int deflate;                /* level for /memory, or -1 */
	uint8_t *stage;
	int fd;                     /* our descriptor of the file HDF5 writes */
	container_progress_fn progress;
	uint64_t done, total, reported;
};

/* Where every rank's data goes: rows of /ranks plus the rows and blobs
 * that differ from the image structs. */
struct layout {
	struct ck_rank_row *rows;
	uint64_t nregions, nruns, nthreads, nfds, ntimers;
	uint64_t memory_bytes, filedata_bytes, strings_bytes;  /* dataset extents */
	uint64_t filedata_chunk, strings_chunk;
	struct ck_region_row *regions;
	struct ck_fd_row *fds;
	uint8_t *strings;
};

/* Parse CKPTMPI_COMPRESS: -1 for none, else the deflate level. */
static int compress_level(const char *dir, int *level)
{
	const char *v = getenv("CKPTMPI_COMPRESS");

	*level = -1;
	if (!v || !*v)
		return 0;
	if (!strcmp(v, "deflate"))
		*level = 1;
	else if (!strncmp(v, "deflate:", 8) && v[8] >= '0' && v[8] <= '9' && !v[9])
		*level = v[8] - '0';
	else {
		ck_set_error("%s: CKPTMPI_COMPRESS=%s not understood (use deflate or deflate:0..9)", dir, v);
		return -1;
	}
	if (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0) {
		ck_set_error("%s: CKPTMPI_COMPRESS=%s but this HDF5 has no deflate filter", dir, v);
		return -1;
	}
	return 0;
}

/* Smallest power of two >= n within [CK_SMALL_CHUNK_MIN, CK_MEMORY_CHUNK]:
 * small blobs should not cost a 1 MiB chunk, and every such chunk divides
 * the staging buffer. */
static uint64_t small_chunk(uint64_t n)
{
	uint64_t c = CK_SMALL_CHUNK_MIN;

	while (c < n && c < CK_MEMORY_CHUNK)
		c <<= 1;
	return c;
}

static uint64_t put_string(uint8_t *blob, uint64_t *pos, const char *s)
{
	uint64_t off = *pos, len = strlen(s) + 1;

	if (blob)
		memcpy(blob + off, s, len);
	*pos += len;
	return off;
}

/* The rank's /strings slice. With blob == NULL only measures; otherwise
 * fills blob and the string offsets of the rows. Both passes must take the
 * same path, hence one function. */
static uint64_t rank_strings(const struct ck_image *img, uint8_t *blob, struct ck_rank_row *row,
                             struct ck_region_row *rr, struct ck_fd_row *fr)
{
	uint64_t pos = 0, off = 0;
	int64_t cwd = -1;

	if (img->proc.cwd)
		cwd = (int64_t)put_string(blob, &pos, img->proc.cwd);
	if (blob)
		row->cwd = cwd;
	for (size_t i = 0; i < img->nregions; i++) {
		const char *p = img->regions[i].path;
		const char *prev = i ? img->regions[i - 1].path : NULL;
		int64_t v = -1;

		/* consecutive mappings of one file share its path */
		if (p && prev && !strcmp(p, prev))
			v = (int64_t)off;
		else if (p)
			v = (int64_t)(off = put_string(blob, &pos, p));
		if (blob)
			rr[i].path = v;
	}
	for (size_t i = 0; i < img->nfds; i++) {
		int64_t v = -1;

		if (img->fds[i].path)
			v = (int64_t)put_string(blob, &pos, img->fds[i].path);
		if (blob)
			fr[i].path = v;
	}
	return pos;
}

static void layout_free(struct layout *l)
{
	free(l->rows);
	free(l->regions);
	free(l->fds);
	free(l->strings);
	memset(l, 0, sizeof *l);
}

static int add_ok(uint64_t *acc, uint64_t v)
{
	if (*acc + v < *acc)
		return 0;
	*acc += v;
	return 1;
}

/* Check the images and place every rank's slices; fills runs[].data_offset,
 * fds[].data_offset, memory_bytes and filedata_bytes of the images. */
static int layout_build(const char *dir, const struct ck_generation_info *info,
                        struct ck_image *images, struct layout *l)
{
	uint64_t nranks = info->nranks, max_fd = 0, max_str = 0;

	memset(l, 0, sizeof *l);
	if (!(l->rows = calloc(nranks, sizeof *l->rows))) {
		ck_set_error("%s: out of memory", dir);
		return -1;
	}
	for (uint64_t r = 0; r < nranks; r++) {
		struct ck_image *img = &images[r];
		struct ck_rank_row *row = &l->rows[r];
		uint64_t mem = 0, fdata = 0;

		for (size_t i = 0; i < img->nregions; i++) {
			const struct ck_region *g = &img->regions[i];

			if (g->run_first > img->nruns || g->run_count > img->nruns - g->run_first) {
				ck_set_error("%s: rank %llu region %zu names runs beyond the run table",
				             dir, (unsigned long long)r, i);
				return -1;
			}
		}
		for (size_t i = 0; i < img->nruns; i++) {
			struct ck_page_run *run = &img->runs[i];

			if (run->npages > UINT64_MAX / CK_PAGE_SIZE || (run->npages && !run->addr)) {
				ck_set_error("%s: rank %llu run %zu is invalid", dir, (unsigned long long)r, i);
				return -1;
			}
			run->data_offset = mem;
			if (!add_ok(&mem, run->npages * CK_PAGE_SIZE)) {
				ck_set_error("%s: rank %llu page data overflows", dir, (unsigned long long)r);
				return -1;
			}
		}
		for (size_t i = 0; i < img->nfds; i++) {
			struct ck_fd *f = &img->fds[i];

			/* other kinds use data_len for the file's size alone */
			if (f->kind != CK_FD_DELETED) {
				f->data_offset = 0;
				continue;
			}
			if (f->data_len && !f->data) {
				ck_set_error("%s: rank %llu fd %lld has %llu bytes of data but no buffer",
				             dir, (unsigned long long)r, (long long)f->fd,
				             (unsigned long long)f->data_len);
				return -1;
			}
			f->data_offset = fdata;
			if (!add_ok(&fdata, f->data_len)) {
				ck_set_error("%s: rank %llu file data overflows", dir, (unsigned long long)r);
				return -1;
			}
		}
		if (img->proc.host && strlen(img->proc.host) > CK_HOST_LEN) {
			ck_set_error("%s: rank %llu host name longer than %d characters", dir,
			             (unsigned long long)r, CK_HOST_LEN);
			return -1;
		}
		img->memory_bytes = mem;
		img->filedata_bytes = fdata;

		row->rank = r;
		row->pid = img->proc.pid;
		if (img->proc.host)
			memcpy(row->host, img->proc.host, strlen(img->proc.host));
		row->umask = img->proc.umask;
		row->tid_offset = img->proc.tid_offset;
		row->rseq_offset = img->proc.rseq_offset;
		row->rseq_size = img->proc.rseq_size;
		row->vdso_start = img->proc.vdso_start;
		row->vdso_end = img->proc.vdso_end;
		row->link_epoch = img->proc.link_epoch;
		row->upper_size = img->proc.upper_size;
		row->region_first = l->nregions;
		row->region_count = img->nregions;
		row->run_first = l->nruns;
		row->run_count = img->nruns;
		row->thread_first = l->nthreads;
		row->thread_count = img->nthreads;
		row->fd_first = l->nfds;
		row->fd_count = img->nfds;
		row->timer_first = l->ntimers;
		row->timer_count = img->ntimers;
		l->nregions += img->nregions;
		l->nruns += img->nruns;
		l->nthreads += img->nthreads;
		l->nfds += img->nfds;
		l->ntimers += img->ntimers;

		/* every rank's slice starts on a chunk of its own, so that ranks
		 * writing in parallel never share a chunk */
		row->memory_offset = l->memory_bytes;
		row->memory_len = mem;
		if (!add_ok(&l->memory_bytes, ck_align_up(mem, CK_MEMORY_CHUNK))) {
			ck_set_error("%s: page data overflows", dir);
			return -1;
		}
		row->filedata_len = fdata;
		row->strings_len = rank_strings(img, NULL, NULL, NULL, NULL);
		if (fdata > max_fd)
			max_fd = fdata;
		if (row->strings_len > max_str)
			max_str = row->strings_len;
	}

	l->filedata_chunk = small_chunk(max_fd);
	l->strings_chunk = small_chunk(max_str);
	for (uint64_t r = 0; r < nranks; r++) {
		struct ck_rank_row *row = &l->rows[r];

		row->filedata_offset = l->filedata_bytes;
		row->strings_offset = l->strings_bytes;
		if (!add_ok(&l->filedata_bytes, ck_align_up(row->filedata_len, l->filedata_chunk)) ||
		    !add_ok(&l->strings_bytes, ck_align_up(row->strings_len, l->strings_chunk))) {
			ck_set_error("%s: file data overflows", dir);
			return -1;
		}
	}

	l->regions = calloc(l->nregions ? l->nregions : 1, sizeof *l->regions);
	l->fds = calloc(l->nfds ? l->nfds : 1, sizeof *l->fds);
	l->strings = calloc(l->strings_bytes ? l->strings_bytes : 1, 1);
	if (!l->regions || !l->fds || !l->strings) {
		ck_set_error("%s: out of memory", dir);
		return -1;
	}
	for (uint64_t r = 0; r < nranks; r++) {
		const struct ck_image *img = &images[r];
		struct ck_rank_row *row = &l->rows[r];
		struct ck_region_row *rr = l->regions + row->region_first;
		struct ck_fd_row *fr = l->fds + row->fd_first;

		for (size_t i = 0; i < img->nregions; i++) {
			const struct ck_region *g = &img->regions[i];

			rr[i].start = g->start;
			rr[i].end = g->end;
			rr[i].prot = g->prot;
			rr[i].kind = g->kind;
			rr[i].file_offset = g->file_offset;
			rr[i].file_size = g->file_size;
			rr[i].file_mtime_ns = g->file_mtime_ns;
			rr[i].run_first = g->run_first;
			rr[i].run_count = g->run_count;
		}
		for (size_t i = 0; i < img->nfds; i++) {
			const struct ck_fd *f = &img->fds[i];

			fr[i].fd = f->fd;
			fr[i].flags = f->flags;
			fr[i].offset = f->offset;
			fr[i].kind = f->kind;
			fr[i].data_offset = f->data_offset;
			fr[i].data_len = f->data_len;
		}
		rank_strings(img, l->strings + row->strings_offset, row, rr, fr);
	}
	return 0;
}

static int attr_u64(struct writer *w, const char *name, hid_t ftype, uint64_t v)
{
	hid_t sp = H5Screate(H5S_SCALAR), a = -1;
	int rc = -1;

	if (sp >= 0 && (a = H5Acreate2(w->file, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
	    H5Awrite(a, H5T_NATIVE_UINT64, &v) >= 0)
		rc = 0;
	else
		ck_set_h5_error(w->path, "write", name);
	if (a >= 0)
		H5Aclose(a);
	if (sp >= 0)
		H5Sclose(sp);
	return rc;
}

static int attr_str(struct writer *w, const char *name, const char *s)
{
	hid_t sp = H5Screate(H5S_SCALAR), ty = H5Tcopy(H5T_C_S1), a = -1;
	int rc = -1;

	if (sp >= 0 && ty >= 0 && H5Tset_size(ty, strlen(s) + 1) >= 0 &&
	    H5Tset_strpad(ty, H5T_STR_NULLTERM) >= 0 &&
	    (a = H5Acreate2(w->file, name, ty, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
	    H5Awrite(a, ty, s) >= 0)
		rc = 0;
	else
		ck_set_h5_error(w->path, "write", name);
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
static hid_t dataset_create(struct writer *w, const char *name, hid_t ftype, uint64_t n,
                            uint64_t chunk, int deflate, hid_t dapl)
{
	hsize_t dims = n, maxd = H5S_UNLIMITED, ch = chunk;
	hid_t sp = H5Screate_simple(1, &dims, &maxd);
	hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), ds = -1;

	if (sp >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 1, &ch) >= 0 &&
	    (deflate < 0 || H5Pset_deflate(dcpl, (unsigned)deflate) >= 0) &&
	    H5Pset_fletcher32(dcpl) >= 0)
		ds = H5Dcreate2(w->file, name, ftype, sp, H5P_DEFAULT, dcpl, dapl);
	if (ds < 0)
		ck_set_h5_error(w->path, "create", name);
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

static hid_t table_create(struct writer *w, const char *name, hid_t memtype, size_t rowsize,
                          uint64_t nrows)
{
	uint64_t chunk = CK_TABLE_CHUNK_BYTES / rowsize;
	hid_t ftype = H5Tcopy(memtype), ds = -1;

	if (chunk > nrows)
		chunk = nrows;
	if (!chunk)
		chunk = 1;
	/* no padding in the file; the reader converts by member name */
	if (ftype < 0 || H5Tpack(ftype) < 0)
		ck_set_h5_error(w->path, "create", name);
	else
		ds = dataset_create(w, name, ftype, nrows, chunk, -1, H5P_DEFAULT);
	if (ftype >= 0)
		H5Tclose(ftype);
	return ds;
}

/* A whole table, written in one piece. */
static int table_write(struct writer *w, const char *name, hid_t memtype, size_t rowsize,
                       uint64_t nrows, const void *rows)
{
	hid_t ds = table_create(w, name, memtype, rowsize, nrows);
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
	hid_t ds = table_create(w, name, memtype, rowsize, total);
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
	int deflate;                /* level, or -1 for checksum only */
	int counts;                 /* contributes to progress */
};

/* HDF5's fletcher32 (H5_checksum_fletcher32): big-endian 16-bit words,
 * both sums folded to 16 bits after every 360 words, the most that cannot
 * overflow. The same folding schedule gives bit-identical results, which
 * the filter compares on every read. */
static uint32_t fletcher32(const uint8_t *p, size_t len)
{
	size_t words = len / 2;
	uint32_t sum1 = 0, sum2 = 0;

	while (words) {
		size_t n = words > 360 ? 360 : words;

		words -= n;
		do {
			sum1 += (uint32_t)p[0] << 8 | p[1];
			sum2 += sum1;
			p += 2;
		} while (--n);
		sum1 = (sum1 & 0xffff) + (sum1 >> 16);
		sum2 = (sum2 & 0xffff) + (sum2 >> 16);
	}
	if (len % 2) {
		sum1 += (uint32_t)p[0] << 8;
		sum2 += sum1;
		sum1 = (sum1 & 0xffff) + (sum1 >> 16);
		sum2 = (sum2 & 0xffff) + (sum2 >> 16);
	}
	sum1 = (sum1 & 0xffff) + (sum1 >> 16);
	sum2 = (sum2 & 0xffff) + (sum2 >> 16);
	return sum2 << 16 | sum1;
}

/* Checksummed chunks go straight to the file, one at a time while they
 * are still in the CPU cache: H5Dwrite would copy each chunk into a fresh
 * buffer and again into the filter's output, costing more than the disk.
 * A chunk is stored as its bytes followed by the little-endian checksum,
 * in the 4 spare bytes after it in the stage. */
static int write_direct(struct stream *s)
{
	for (size_t at = 0; at < s->fill; at += s->chunk) {
		uint8_t *c = s->w->stage + at, save[4];
		uint32_t f = fletcher32(c, s->chunk);
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

/* Through HDF5's filter pipeline, for compressed datasets. */
static int write_filtered(struct stream *s)
{
	hsize_t off = s->pos, n = s->fill;
	hid_t ms;
	int rc = -1;

	if ((ms = H5Screate_simple(1, &n, NULL)) >= 0 &&
	    H5Sselect_hyperslab(s->fs, H5S_SELECT_SET, &off, NULL, &n, NULL) >= 0 &&
	    H5Dwrite(s->ds, H5T_NATIVE_UINT8, ms, s->fs, H5P_DEFAULT, s->w->stage) >= 0)
		rc = 0;
	else
		ck_set_h5_error(s->w->path, "write", s->name);
	if (ms >= 0)
		H5Sclose(ms);
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
	if (s->deflate >= 0 ? write_filtered(s) : write_direct(s))
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
                       uint64_t chunk, int deflate)
{
	hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);

	memset(s, 0, sizeof *s);
	s->w = w;
	s->name = name;
	s->chunk = chunk;
	s->deflate = deflate;
	/* one chunk while it is hot in the cache; the filter pipeline does
	 * better with many chunks per call */
	s->limit = deflate >= 0 ? CK_STAGE_BYTES : (size_t)chunk;
	s->fs = -1;
	/* whole chunks are written once: caching them only adds copies */
	if (dapl < 0 || H5Pset_chunk_cache(dapl, 0, 0, 1.0) < 0) {
		ck_set_h5_error(w->path, "create", name);
		s->ds = -1;
	} else
		s->ds = dataset_create(w, name, H5T_STD_U8LE, bytes, chunk, deflate, dapl);
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
	int rc = stream_open(&s, w, "/strings", l->strings_bytes, l->strings_chunk, -1);

	/* the blob is already padded per rank */
	if (!rc)
		rc = stream_put(&s, l->strings, l->strings_bytes);
	if (!rc)
		rc = stream_flush(&s);
	return stream_close(&s, rc);
}

static int write_filedata(struct writer *w, const struct ck_image *images, uint64_t nranks,
                          const struct layout *l)
{
	struct stream s;
	int rc = stream_open(&s, w, "/filedata", l->filedata_bytes, l->filedata_chunk, -1);

	for (uint64_t r = 0; !rc && r < nranks; r++) {
		for (size_t i = 0; !rc && i < images[r].nfds; i++)
			if (images[r].fds[i].kind == CK_FD_DELETED)
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
	int rc = stream_open(&s, w, "/memory", l->memory_bytes, CK_MEMORY_CHUNK, w->deflate);

	s.counts = 1;
	for (uint64_t r = 0; !rc && r < nranks; r++) {
		const struct ck_image *img = &images[r];

		/* the runs are live pages of this process */
		for (size_t i = 0; !rc && i < img->nruns; i++)
			rc = stream_put(&s, (const void *)(uintptr_t)img->runs[i].addr,
			                img->runs[i].npages * CK_PAGE_SIZE);
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

	ds = dataset_create(w, "/argv", H5T_STD_U8LE, info->argv_len, argv_chunk, -1, H5P_DEFAULT);
	if (ds < 0)
		return -1;
	rc = rows_write(w, ds, "/argv", H5T_NATIVE_UINT8, 0, info->argv_len, info->argv);
	if (H5Dclose(ds) < 0 && !rc) {
		ck_set_h5_error(w->path, "write", "/argv");
		rc = -1;
	}
	if (rc ||
	    table_write(w, "/ranks", t->rank, sizeof *l->rows, nranks, l->rows) ||
	    table_write(w, "/regions", t->region, sizeof *l->regions, l->nregions, l->regions) ||
	    table_write(w, "/fds", t->fd, sizeof *l->fds, l->nfds, l->fds) ||
	    table_write_ranks(w, "/runs", t->run, sizeof(struct ck_page_run), l->nruns, images, l,
	                      nranks, runs_of) ||
	    table_write_ranks(w, "/threads", t->thread, sizeof(struct ck_thread), l->nthreads, images,
	                      l, nranks, threads_of) ||
	    table_write_ranks(w, "/timers", t->timer, sizeof(struct ck_posix_timer), l->ntimers,
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

static int write_attrs(struct writer *w, const struct ck_generation_info *info)
{
	uint64_t created = info->created_unix ? info->created_unix : (uint64_t)time(NULL);

	if (attr_u64(w, "format_version", H5T_STD_U32LE, CK_FORMAT_VERSION) ||
	    attr_str(w, "ckptmpi_version", CKPTMPI_VERSION_STRING) ||
	    attr_str(w, "mpi_flavour", info->mpi_flavour) ||
	    attr_u64(w, "nranks", H5T_STD_U64LE, info->nranks) ||
	    attr_u64(w, "generation", H5T_STD_U64LE, info->generation) ||
	    attr_u64(w, "parent", H5T_STD_U64LE, info->parent) ||
	    attr_u64(w, "created", H5T_STD_U64LE, created) ||
	    attr_str(w, "reason", info->reason) ||
	    attr_str(w, "program", info->program) ||
	    attr_str(w, "runtime", info->runtime) ||
	    attr_u64(w, "runtime_id", H5T_STD_U64LE, info->runtime_id) ||
	    attr_u64(w, "interval", H5T_STD_U64LE, info->interval))
		return -1;
	return 0;
}

static int check_info(const char *dir, const struct ck_generation_info *info)
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

/* The file exists with mode 0600 before HDF5 opens it: HDF5 would create
 * it 0666 & ~umask, readable by others for a moment or for good. */
static int create_private(const char *dir, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0 && errno == EEXIST) {
		/* same host and pid: a leftover of an earlier failed attempt of
		 * this process or of a dead one with a recycled pid */
		if (unlink(path) < 0) {
			ck_set_error("%s: cannot remove stale file: %s", path, strerror(errno));
			return -1;
		}
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
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

/* Bytes the file will take, roughly: data with their checksums, table
 * rows, and slack for HDF5's own metadata. */
static uint64_t estimate_size(const struct layout *l, const struct ck_generation_info *info)
{
	uint64_t data = l->memory_bytes + l->filedata_bytes + l->strings_bytes + info->argv_len;
	uint64_t rows = info->nranks * (sizeof(struct ck_rank_row) +
	                                CK_NSIG * sizeof(struct ck_sigaction) +
	                                CK_NRLIMITS * sizeof(struct ck_rlimit) +
	                                3 * sizeof(struct ck_itimer)) +
	                l->nregions * sizeof(struct ck_region_row) +
	                l->nruns * sizeof(struct ck_page_run) +
	                l->nthreads * sizeof(struct ck_thread) + l->nfds * sizeof(struct ck_fd_row) +
	                l->ntimers * sizeof(struct ck_posix_timer);
	uint64_t est = data + rows;

	if (est < data || est > (uint64_t)INT64_MAX / 2)
		return (uint64_t)INT64_MAX / 2;
	return est + est / 64 + (1u << 20);
}

/* Reserve the file's blocks so that a full disk or quota shows up now,
 * cleanly, rather than in the middle of HDF5: 1.10 does not survive a
 * failed H5Fclose (the next close or exit crashes). 0 reserved, 1 not
 * supported by the file system, -1 no room. */
static int reserve_space(int fd, const char *path, uint64_t bytes)
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

static hid_t file_create(const char *path)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), f = -1;

	/* v2 superblock and object headers: metadata carries checksums;
	 * STRONG: closing the file closes whatever an error path left open;
	 * locks are advisory here (the rename protocol protects readers) and
	 * must not fail on file systems without flock */
	if (fapl >= 0 && H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) >= 0 &&
	    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0 &&
	    H5Pset_file_locking(fapl, 1, 1) >= 0)
		f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
	if (f < 0)
		ck_set_h5_error(path, "create", "the HDF5 file");
	if (fapl >= 0)
		H5Pclose(fapl);
	return f;
}

int container_write(const char *dir, const struct ck_generation_info *info,
                    struct ck_image *images, container_progress_fn progress,
                    char *tmp_path_out, size_t tmp_path_len)
{
	struct writer w = { .file = -1, .fd = -1, .progress = progress, .deflate = -1 };
	struct layout l = { 0 };
	char host[HOST_NAME_MAX + 1], path[PATH_MAX];
	uint64_t estimate;
	struct stat st;
	int fd = -1, n, reserved;

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	w.t = (struct ck_types){ -1, -1, -1, -1, -1, -1, -1, -1, -1 };
	if (!dir || !info || !images) {
		ck_set_error("container_write: missing argument");
		return -1;
	}
	if (check_info(dir, info) || compress_level(dir, &w.deflate))
		return -1;
	if (gethostname(host, sizeof host) < 0) {
		ck_set_error("%s: gethostname: %s", dir, strerror(errno));
		return -1;
	}
	host[sizeof host - 1] = 0;
	n = snprintf(path, sizeof path, "%s/.ckpt-%06llu.h5.tmp.%s.%ld", dir,
	             (unsigned long long)info->generation, host, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof path || (tmp_path_out && (size_t)n >= tmp_path_len)) {
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
	if (ck_types_create(&w.t) < 0) {
		ck_set_h5_error(path, "create", "table types");
		goto fail_early;
	}
	if ((fd = create_private(dir, path)) < 0)
		goto fail_early;
	w.fd = fd;
	/* probe before HDF5 holds any state for the file, then reserve for
	 * real: H5Fcreate truncates the file and frees the probe */
	estimate = estimate_size(&l, info);
	if ((reserved = reserve_space(fd, path, estimate)) < 0)
		goto fail;
	if ((w.file = file_create(path)) < 0)
		goto fail;
	if (!reserved && (reserved = reserve_space(fd, path, estimate)) < 0)
		goto fail;

	if (write_attrs(&w, info) || write_tables(&w, info, images, &l) ||
	    write_strings(&w, &l) || write_filedata(&w, images, info->nranks, &l) ||
	    write_memory(&w, images, info->nranks, &l))
		goto fail;
	/* last: a reader trusts nothing without it */
	if (attr_u64(&w, "complete", H5T_STD_U32LE, 1))
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
	free(w.stage);
	return -1;
}

int container_commit(const char *dir, uint64_t generation, const char *tmp_path)
{
	char final[PATH_MAX];
	int n, dfd;

	if (!dir || !tmp_path) {
		ck_set_error("container_commit: missing argument");
		return -1;
	}
	n = snprintf(final, sizeof final, "%s/ckpt-%06llu.h5", dir, (unsigned long long)generation);
	if (n < 0 || (size_t)n >= sizeof final) {
		ck_set_error("%s: path too long", dir);
		return -1;
	}
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
