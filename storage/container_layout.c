/* Where every rank's rows and bytes go in the shared datasets. Pure
 * computation, shared by the serial writer (all ranks in one process) and
 * the parallel one (each rank its own image, counts exchanged), so both
 * place slices identically. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/container_internal.h"

static int add_ok(uint64_t *acc, uint64_t v)
{
	if (*acc + v < *acc)
		return 0;
	*acc += v;
	return 1;
}

uint64_t ck_small_chunk(uint64_t n)
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

int ck_rank_measure(const char *dir, uint64_t r, struct ck_image *img, struct ck_counts *c)
{
	uint64_t mem = 0, fdata = 0;

	memset(c, 0, sizeof *c);
	for (size_t i = 0; i < img->nregions; i++) {
		const struct ck_region *g = &img->regions[i];

		if (g->run_first > img->nruns || g->run_count > img->nruns - g->run_first) {
			ck_set_error("%s: rank %llu region %zu names runs beyond the run table", dir,
			             (unsigned long long)r, i);
			return -1;
		}
	}
	for (size_t i = 0; i < img->nruns; i++) {
		struct ck_page_run *run = &img->runs[i];

		if (run->npages > UINT64_MAX / CK_PAGE_SIZE || (run->npages && !run->addr)) {
			ck_set_error("%s: rank %llu run %zu is invalid", dir, (unsigned long long)r, i);
			return -1;
		}
		if (run->data_offset == CK_RUN_ZEROS)
			continue; /* named, not stored */
		run->data_offset = mem;
		if (!add_ok(&mem, run->npages * CK_PAGE_SIZE)) {
			ck_set_error("%s: rank %llu page data overflows", dir, (unsigned long long)r);
			return -1;
		}
	}
	for (size_t i = 0; i < img->nfds; i++) {
		struct ck_fd *f = &img->fds[i];

		/* other kinds use data_len for the file's size alone */
		if (!ck_fd_has_data(f->kind)) {
			f->data_offset = 0;
			continue;
		}
		if (f->data_len && !f->data) {
			ck_set_error("%s: rank %llu fd %lld has %llu bytes of data but no buffer", dir,
			             (unsigned long long)r, (long long)f->fd,
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
	c->regions = img->nregions;
	c->runs = img->nruns;
	c->threads = img->nthreads;
	c->fds = img->nfds;
	c->timers = img->ntimers;
	c->memory = mem;
	c->filedata = fdata;
	c->strings = rank_strings(img, NULL, NULL, NULL, NULL);
	return 0;
}

int ck_layout_place(const char *dir, const struct ck_counts *c, uint64_t nranks,
                    struct ck_rank_row *rows, struct ck_extents *e)
{
	uint64_t max_fd = 0, max_str = 0;

	memset(e, 0, sizeof *e);
	for (uint64_t r = 0; r < nranks; r++) {
		struct ck_rank_row *row = &rows[r];

		row->rank = r;
		row->region_first = e->nregions;
		row->region_count = c[r].regions;
		row->run_first = e->nruns;
		row->run_count = c[r].runs;
		row->thread_first = e->nthreads;
		row->thread_count = c[r].threads;
		row->fd_first = e->nfds;
		row->fd_count = c[r].fds;
		row->timer_first = e->ntimers;
		row->timer_count = c[r].timers;
		if (!add_ok(&e->nregions, c[r].regions) || !add_ok(&e->nruns, c[r].runs) ||
		    !add_ok(&e->nthreads, c[r].threads) || !add_ok(&e->nfds, c[r].fds) ||
		    !add_ok(&e->ntimers, c[r].timers)) {
			ck_set_error("%s: table rows overflow at rank %llu", dir, (unsigned long long)r);
			return -1;
		}
		/* every rank's slice starts on a chunk of its own, so that ranks
		 * writing in parallel never share a chunk */
		row->memory_offset = e->memory_bytes;
		row->memory_len = c[r].memory;
		if (c[r].memory > UINT64_MAX - CK_MEMORY_CHUNK ||
		    !add_ok(&e->memory_bytes, ck_align_up(c[r].memory, CK_MEMORY_CHUNK))) {
			ck_set_error("%s: page data overflows at rank %llu", dir, (unsigned long long)r);
			return -1;
		}
		row->filedata_len = c[r].filedata;
		row->strings_len = c[r].strings;
		if (c[r].filedata > max_fd)
			max_fd = c[r].filedata;
		if (c[r].strings > max_str)
			max_str = c[r].strings;
	}

	e->filedata_chunk = ck_small_chunk(max_fd);
	e->strings_chunk = ck_small_chunk(max_str);
	for (uint64_t r = 0; r < nranks; r++) {
		struct ck_rank_row *row = &rows[r];

		row->filedata_offset = e->filedata_bytes;
		row->strings_offset = e->strings_bytes;
		if (row->filedata_len > UINT64_MAX - e->filedata_chunk ||
		    row->strings_len > UINT64_MAX - e->strings_chunk ||
		    !add_ok(&e->filedata_bytes, ck_align_up(row->filedata_len, e->filedata_chunk)) ||
		    !add_ok(&e->strings_bytes, ck_align_up(row->strings_len, e->strings_chunk))) {
			ck_set_error("%s: file data overflows at rank %llu", dir, (unsigned long long)r);
			return -1;
		}
	}
	return 0;
}

void ck_rank_fill(const struct ck_image *img, struct ck_rank_row *row, struct ck_region_row *rr,
                  struct ck_fd_row *fr, uint8_t *strings)
{
	row->pid = img->proc.pid;
	memset(row->host, 0, sizeof row->host);
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
		rr[i].inherit = g->inherit;
	}
	for (size_t i = 0; i < img->nfds; i++) {
		const struct ck_fd *f = &img->fds[i];

		fr[i].fd = f->fd;
		fr[i].flags = f->flags;
		fr[i].offset = f->offset;
		fr[i].kind = f->kind;
		fr[i].data_offset = f->data_offset;
		fr[i].data_len = f->data_len;
		fr[i].dev = f->dev;
		fr[i].ino = f->ino;
		fr[i].uid = f->uid;
	}
	rank_strings(img, strings, row, rr, fr);
}

uint64_t ck_estimate_size(const struct ck_extents *e, uint64_t nranks, uint64_t argv_len)
{
	uint64_t data = e->memory_bytes, rows, est;

	/* saturating: an estimate only decides how much to reserve */
	if (!add_ok(&data, e->filedata_bytes) || !add_ok(&data, e->strings_bytes) ||
	    !add_ok(&data, argv_len))
		return (uint64_t)INT64_MAX / 2;
	rows = nranks * (sizeof(struct ck_rank_row) + CK_NSIG * sizeof(struct ck_sigaction) +
	                 CK_NRLIMITS * sizeof(struct ck_rlimit) + 3 * sizeof(struct ck_itimer)) +
	       e->nregions * sizeof(struct ck_region_row) + e->nruns * sizeof(struct ck_page_run) +
	       e->nthreads * sizeof(struct ck_thread) + e->nfds * sizeof(struct ck_fd_row) +
	       e->ntimers * sizeof(struct ck_posix_timer);
	est = data + rows;
	if (est < data || est > (uint64_t)INT64_MAX / 2)
		return (uint64_t)INT64_MAX / 2;
	/* checksums (4 bytes a chunk, at least 1 KiB chunks: under 1/64)
	 * and HDF5's own metadata */
	return est + est / 64 + (1u << 20);
}
