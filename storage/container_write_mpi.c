/* Writing a generation of an MPI job: every rank writes its own slices of
 * one shared file with parallel HDF5 (MPI-IO driver).
 *
 * The collective road: parallel HDF5 creates objects collectively, so
 * every rank creates every dataset with the same arguments (extents from
 * an exchange of counts), and with filters it writes only with collective
 * transfers: every H5Dwrite is made by all ranks, the same number of
 * times, ranks without data selecting nothing. Taken with compression
 * (chunk sizes unknown in advance), an HDF5 whose driver interface
 * differs, a job whose rows and small blobs exceed CK_GATHER_MAX, or
 * CKPTMPI_MPIO_DIRECT=0. It costs several collective rounds per dataset:
 * about 1.2 s for 4 ranks on 2 cores, with the program stopped.
 *
 * Either way each rank's slices of /memory, /filedata and /strings start
 * on chunk boundaries (ck_layout_place), so no two ranks share a chunk.
 *
 * The direct road writes the same file with three collective calls:
 * every rank sends its rows (tables, /strings, /filedata) to rank 0
 * (MPI_Gatherv); rank 0 alone creates the whole file serially, through a
 * pass-through file driver that drops /memory's raw data: each /memory
 * chunk is allocated with H5Dwrite_chunk of a placeholder, so HDF5
 * records its place and stored size (1 MiB + 4 bytes of fletcher32) in its
 * index and the file holds a hole there (HDF5 1.10 in parallel would
 * allocate every chunk at creation and write it full of fill values
 * first); rank 0 sends each rank its chunks' places (MPI_Scatterv); each
 * rank fills them itself with pwrite, checksum computed as HDF5 would,
 * straight from the process memory, with the program stopped or, for a
 * checkpoint written behind the program, from its forked writer.
 *
 * Every step that can fail on one rank is followed by agree(): all ranks
 * learn that some rank failed, with its message, and stop together, since
 * a rank that left would leave the others waiting in a collective call. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "storage/container.h"
#include "storage/codec.h"
#include "storage/container_internal.h"
#include "storage/fletcher32.h"
#include "storage/mpi_wait.h"

#define CK_MPI_STAGE_BYTES (64u << 20)  /* staging buffer per rank */
#define CK_MSG_LEN 1024

int ck_mpio_direct_last;

struct mwriter {
	MPI_Comm comm;              /* parallel HDF5's (the collective road) */
	const struct ck_ranks *r;   /* the writer's own steps */
	int rank, size;
	uint64_t generation;
	const char *dir;            /* this rank's name of the directory */
	char path[PATH_MAX];        /* this rank's name of the temporary */
	hid_t file, dxpl;
	struct ck_types t;
	int fd;                     /* own descriptor of the temporary */
	struct ck_compress comp;    /* of /memory */
	int direct;                 /* /memory laid out by rank 0, filled by all */
	uint64_t *addr, nchunks;    /* file places of this rank's /memory chunks */
	uint64_t estimate;          /* bytes the file will take, roughly */
	uint8_t *stage;
	struct ck_generation_info info;  /* rank 0's: the same everywhere */
	struct ck_counts *counts;   /* every rank's */
	struct ck_rank_row *rows;   /* every rank's placement, own row whole */
	struct ck_extents e;
	struct ck_region_row *rr;   /* this rank's rows of /regions, /fds */
	struct ck_fd_row *fr;
	uint8_t *strings;           /* this rank's /strings slice, padded */
	const struct ck_image *img;
	container_progress_fn progress;
	uint64_t done, total, reported;
	int defer;                  /* /memory's chunks left to container_mpi_pages_write */
};

/* This rank's /memory chunks, left to be written behind the program: the
 * writer's own fields that write_direct reads, and the descriptor */
struct container_mpi_pages {
	struct mwriter w;
	uint64_t ino;               /* of the temporary */
};

/* Rank 0's decisions, which every rank must follow identically. */
struct decisions {
	struct ck_compress comp;
	int direct;
	long pid;
	char host[HOST_NAME_MAX + 1];
	char token[CK_TOKEN_LEN + 1];/* random part of the temporary's name */
	uint64_t ino;               /* of the temporary, as rank 0 created it */
};

/* ---- the ranks' steps over MPI (struct ck_ranks) ---- */

static int mpi_said(MPI_Comm c, const char *call, int code)
{
	char s[MPI_MAX_ERROR_STRING];
	int len = 0, rank = -1;

	if (MPI_Error_string(code, s, &len) != MPI_SUCCESS)
		snprintf(s, sizeof s, "error %d", code);
	MPI_Comm_rank(c, &rank);
	ck_set_error("rank %d: %s failed: %s", rank, call, s);
	return -1;
}

static int mpi_bcast(void *ctx, void *buf, size_t len)
{
	MPI_Comm c = *(MPI_Comm *)ctx;
	int e = len > INT_MAX ? MPI_ERR_COUNT : MPI_Bcast(buf, (int)len, MPI_BYTE, 0, c);
	return e == MPI_SUCCESS ? 0 : mpi_said(c, "MPI_Bcast", e);
}

static int mpi_allgather(void *ctx, const void *mine, size_t len, void *all)
{
	MPI_Comm c = *(MPI_Comm *)ctx;
	int e = len > INT_MAX ? MPI_ERR_COUNT
	                      : MPI_Allgather(mine, (int)len, MPI_BYTE, all, (int)len, MPI_BYTE, c);
	return e == MPI_SUCCESS ? 0 : mpi_said(c, "MPI_Allgather", e);
}

/* MPI counts in ints: the byte counts and places of every rank */
static int *int_array(MPI_Comm c, const uint64_t *v)
{
	int size = 0, *a;
	MPI_Comm_size(c, &size);
	if (!v || !(a = malloc((size_t)size * sizeof *a)))
		return NULL;
	for (int r = 0; r < size; r++) {
		if (v[r] > INT_MAX) {
			free(a);
			return NULL;
		}
		a[r] = (int)v[r];
	}
	return a;
}

static int mpi_gatherv(void *ctx, const void *mine, size_t len, void *all, const uint64_t *counts,
                       const uint64_t *displs)
{
	MPI_Comm c = *(MPI_Comm *)ctx;
	int *n = int_array(c, counts), *d = int_array(c, displs), e;
	e = len > INT_MAX ? MPI_ERR_COUNT
	                  : MPI_Gatherv(mine, (int)len, MPI_BYTE, all, n, d, MPI_BYTE, 0, c);
	free(n);
	free(d);
	return e == MPI_SUCCESS ? 0 : mpi_said(c, "MPI_Gatherv", e);
}

static int mpi_scatterv(void *ctx, const void *all, const uint64_t *counts,
                        const uint64_t *displs, void *mine, size_t len)
{
	MPI_Comm c = *(MPI_Comm *)ctx;
	int *n = int_array(c, counts), *d = int_array(c, displs), e;
	e = len > INT_MAX ? MPI_ERR_COUNT
	                  : MPI_Scatterv(all, n, d, MPI_BYTE, mine, (int)len, MPI_BYTE, 0, c);
	free(n);
	free(d);
	return e == MPI_SUCCESS ? 0 : mpi_said(c, "MPI_Scatterv", e);
}

static int mpi_first_failed(void *ctx, int ok, char *msg, size_t msglen)
{
	MPI_Comm c = *(MPI_Comm *)ctx;
	int rank = 0, size = 0, mine, first = 0, e;
	MPI_Request req;

	MPI_Comm_rank(c, &rank);
	MPI_Comm_size(c, &size);
	mine = ok ? size : rank;
	e = MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c, &req);
	if (e == MPI_SUCCESS)
		e = mpi_wait_quietly(&req);
	if (e != MPI_SUCCESS)
		return mpi_said(c, "MPI_Iallreduce", e);
	if (first != size && (e = MPI_Bcast(msg, (int)msglen, MPI_CHAR, first, c)) != MPI_SUCCESS)
		return mpi_said(c, "MPI_Bcast", e);
	return first;
}

static int mpi_barrier(void *ctx)
{
	MPI_Comm c = *(MPI_Comm *)ctx;
	int e = MPI_Barrier(c);
	return e == MPI_SUCCESS ? 0 : mpi_said(c, "MPI_Barrier", e);
}

int container_ranks_mpi(MPI_Comm *comm, struct ck_ranks *out)
{
	int e;
	memset(out, 0, sizeof *out);
	if ((e = MPI_Comm_rank(*comm, &out->rank)) != MPI_SUCCESS ||
	    (e = MPI_Comm_size(*comm, &out->size)) != MPI_SUCCESS) {
		ck_set_error("not a usable communicator (%d)", e);
		return -1;
	}
	out->ctx = comm;
	out->bcast = mpi_bcast;
	out->allgather = mpi_allgather;
	out->gatherv = mpi_gatherv;
	out->scatterv = mpi_scatterv;
	out->first_failed = mpi_first_failed;
	out->barrier = mpi_barrier;
	return 0;
}

/* ---- the writer ---- */

/* container_error() prefixed: copied first (it is the buffer written) */
static int said_with(const char *what, uint64_t generation, int rank)
{
	char why[CK_MSG_LEN];
	snprintf(why, sizeof why, "%s", container_error());
	ck_set_error("%s: generation %llu: rank %d: %s", what, (unsigned long long)generation, rank,
	             why);
	return -1;
}

static int step_failed(struct mwriter *w)
{
	return said_with(w->dir, w->generation, w->rank);
}

/* The outcome of a step every rank took: 0 on all ranks if it succeeded
 * on all, else -1 on all with the message of the lowest failing rank. */
static int agree_on(const struct ck_ranks *r, uint64_t generation, int rc)
{
	char msg[CK_MSG_LEN] = "";
	int first;

	if (rc)
		snprintf(msg, sizeof msg, "%s", container_error());
	first = r->first_failed(r->ctx, rc == 0, msg, sizeof msg);
	if (first < 0)
		return said_with("the ranks cannot agree", generation, r->rank);
	if (first >= r->size)
		return 0;
	msg[sizeof msg - 1] = 0;
	ck_set_error("%s (rank %d of %d, generation %llu)", msg, first, r->size,
	             (unsigned long long)generation);
	return -1;
}

static int agree(struct mwriter *w, int rc)
{
	return agree_on(w->r, w->generation, rc);
}

/* One collective write: this rank's `count` elements at `first` (nothing
 * when count is 0); every rank calls it. */
static int coll_write(struct mwriter *w, hid_t ds, const char *name, hid_t memtype,
                      uint64_t first, uint64_t count, const void *buf)
{
	static const uint64_t nothing;
	hsize_t off = first, n = count ? count : 1;
	hid_t fs = H5Dget_space(ds), ms = H5Screate_simple(1, &n, NULL);
	int rc = -1;

	if (fs >= 0 && ms >= 0 &&
	    (count ? H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &n, NULL) >= 0
	           : H5Sselect_none(fs) >= 0 && H5Sselect_none(ms) >= 0))
		rc = 0;
	else
		ck_set_h5_error(w->path, "write", name);
	if (!(rc = agree(w, rc))) {
		if (H5Dwrite(ds, memtype, ms, fs, w->dxpl, count ? buf : &nothing) < 0) {
			ck_set_h5_error(w->path, "write", name);
			rc = -1;
		}
		rc = agree(w, rc);
	}
	if (ms >= 0)
		H5Sclose(ms);
	if (fs >= 0)
		H5Sclose(fs);
	return rc;
}

static int ds_close(struct mwriter *w, hid_t ds, const char *name, int rc)
{
	int c = 0;

	if (ds >= 0 && H5Dclose(ds) < 0) {
		ck_set_h5_error(w->path, "write", name);
		c = -1;
	}
	/* after a failure the message of the first one stands */
	if (rc)
		return -1;
	return agree(w, c);
}

/* A table of `total` rows, this rank's `count` rows going to `first`. */
static int table(struct mwriter *w, const char *name, hid_t memtype, size_t rowsize,
                 uint64_t total, uint64_t first, uint64_t count, const void *rows)
{
	hid_t ds = ck_table_create(w->file, w->path, name, memtype, rowsize, total);
	int rc = agree(w, ds < 0 ? -1 : 0);

	if (!rc && total)
		rc = coll_write(w, ds, name, memtype, first, count, rows);
	return ds_close(w, ds, name, rc);
}

static int write_tables(struct mwriter *w)
{
	const struct ck_image *img = w->img;
	const struct ck_rank_row *row = &w->rows[w->rank];
	const struct ck_types *t = &w->t;
	uint64_t n = (uint64_t)w->size, r = (uint64_t)w->rank;
	uint64_t argv_len = w->info.argv_len;
	hid_t ds;
	int rc;

	ds = ck_dataset_create(w->file, w->path, "/argv", H5T_STD_U8LE, argv_len,
	                       argv_len ? argv_len : 1, NULL, H5P_DEFAULT);
	rc = agree(w, ds < 0 ? -1 : 0);
	if (!rc && argv_len)
		rc = coll_write(w, ds, "/argv", H5T_NATIVE_UINT8, 0, r ? 0 : argv_len, w->info.argv);
	if (ds_close(w, ds, "/argv", rc) ||
	    table(w, "/ranks", t->rank, sizeof *row, n, r, 1, row) ||
	    table(w, "/regions", t->region, sizeof *w->rr, w->e.nregions, row->region_first,
	          img->nregions, w->rr) ||
	    table(w, "/fds", t->fd, sizeof *w->fr, w->e.nfds, row->fd_first, img->nfds, w->fr) ||
	    table(w, "/runs", t->run, sizeof *img->runs, w->e.nruns, row->run_first, img->nruns,
	          img->runs) ||
	    table(w, "/threads", t->thread, sizeof *img->threads, w->e.nthreads, row->thread_first,
	          img->nthreads, img->threads) ||
	    table(w, "/timers", t->timer, sizeof *img->timers, w->e.ntimers, row->timer_first,
	          img->ntimers, img->timers) ||
	    table(w, "/sigactions", t->sigaction, sizeof(struct ck_sigaction), n * CK_NSIG,
	          r * CK_NSIG, CK_NSIG, img->proc.sig) ||
	    table(w, "/rlimits", t->rlimit, sizeof(struct ck_rlimit), n * CK_NRLIMITS,
	          r * CK_NRLIMITS, CK_NRLIMITS, img->proc.rlim) ||
	    table(w, "/itimers", t->itimer, sizeof(struct ck_itimer), n * 3, r * 3, 3,
	          img->proc.itimer))
		return -1;
	return 0;
}

/* A byte dataset whose chunks are written once, whole: no chunk cache. */
static hid_t blob_create(struct mwriter *w, const char *name, uint64_t bytes, uint64_t chunk,
                         const struct ck_compress *comp)
{
	hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS), ds = -1;

	if (dapl < 0 || H5Pset_chunk_cache(dapl, 0, 0, 1.0) < 0)
		ck_set_h5_error(w->path, "create", name);
	else
		ds = ck_dataset_create(w->file, w->path, name, H5T_STD_U8LE, bytes, chunk, comp,
		                       dapl);
	if (dapl >= 0)
		H5Pclose(dapl);
	return ds;
}

/* The pieces a rank's byte stream is made of: its runs (live pages of
 * this process) or the contents of its deleted files. */
struct source {
	const struct ck_image *img;
	int memory;
	size_t i;                   /* current piece */
	uint64_t at;                /* bytes of it already taken */
};

static int source_piece(struct source *s, const uint8_t **p, uint64_t *len)
{
	const struct ck_image *img = s->img;

	for (;;) {
		const uint8_t *base;
		uint64_t n;

		if (s->memory) {
			if (s->i >= img->nruns)
				return 0;
			base = (const uint8_t *)(uintptr_t)img->runs[s->i].addr;
			n = ck_run_bytes(&img->runs[s->i]);
		} else {
			if (s->i >= img->nfds)
				return 0;
			base = img->fds[s->i].data;
			n = ck_fd_has_data(img->fds[s->i].kind) ? img->fds[s->i].data_len : 0;
		}
		if (s->at < n) {
			*p = base + s->at;
			*len = n - s->at;
			return 1;
		}
		s->i++;
		s->at = 0;
	}
}

/* Up to `room` bytes of the stream into the stage. */
static size_t source_copy(struct source *s, uint8_t *dst, size_t room)
{
	size_t got = 0;
	const uint8_t *p;
	uint64_t len;

	while (got < room && source_piece(s, &p, &len)) {
		size_t n = len < room - got ? (size_t)len : room - got;

		memcpy(dst + got, p, n);
		got += n;
		s->at += n;
	}
	return got;
}

static void progress_add(struct mwriter *w, uint64_t n)
{
	w->done += n;
	if (w->progress && w->done - w->reported >= CK_PROGRESS_STEP) {
		w->reported = w->done;
		w->progress(w->done, w->total);
	}
}

/* A rank's slice of a byte dataset streamed through the stage in
 * collective rounds: as many rounds on every rank as the largest slice
 * needs, each slice padded with zeros to its chunk boundary. */
static int stream_rounds(struct mwriter *w, hid_t ds, const char *name, int memory,
                         uint64_t chunk)
{
	struct source src = { .img = w->img, .memory = memory };
	uint64_t rounds = 0, pos = 0, offset, len, padded;

	for (int r = 0; r < w->size; r++) {
		const struct ck_rank_row *row = &w->rows[r];
		uint64_t l = memory ? row->memory_len : row->filedata_len;
		uint64_t k = (ck_align_up(l, chunk) + CK_MPI_STAGE_BYTES - 1) / CK_MPI_STAGE_BYTES;

		if (k > rounds)
			rounds = k;
	}
	offset = memory ? w->rows[w->rank].memory_offset : w->rows[w->rank].filedata_offset;
	len = memory ? w->rows[w->rank].memory_len : w->rows[w->rank].filedata_len;
	padded = ck_align_up(len, chunk);
	for (uint64_t k = 0; k < rounds; k++) {
		size_t n = padded - pos < CK_MPI_STAGE_BYTES ? (size_t)(padded - pos)
		                                             : CK_MPI_STAGE_BYTES;
		size_t got = n ? source_copy(&src, w->stage, n) : 0;

		/* the end of the slice: zeros up to the chunk boundary */
		memset(w->stage + got, 0, n - got);
		if (coll_write(w, ds, name, H5T_NATIVE_UINT8, offset + pos, n, w->stage))
			return -1;
		pos += n;
		if (memory)
			progress_add(w, got);
	}
	return 0;
}

static int write_strings(struct mwriter *w)
{
	const struct ck_rank_row *row = &w->rows[w->rank];
	hid_t ds = blob_create(w, "/strings", w->e.strings_bytes, w->e.strings_chunk, NULL);
	int rc = agree(w, ds < 0 ? -1 : 0);

	if (!rc && w->e.strings_bytes)
		rc = coll_write(w, ds, "/strings", H5T_NATIVE_UINT8, row->strings_offset,
		                ck_align_up(row->strings_len, w->e.strings_chunk), w->strings);
	return ds_close(w, ds, "/strings", rc);
}

static int write_filedata(struct mwriter *w)
{
	hid_t ds = blob_create(w, "/filedata", w->e.filedata_bytes, w->e.filedata_chunk, NULL);
	int rc = agree(w, ds < 0 ? -1 : 0);

	if (!rc)
		rc = stream_rounds(w, ds, "/filedata", 0, w->e.filedata_chunk);
	return ds_close(w, ds, "/filedata", rc);
}

/* ---- the direct road: rank 0 gathers the rows ---- */

/* At most this much is gathered to rank 0 (its rows, /strings and
 * /filedata of every rank); beyond it the collective road is taken */
#define CK_GATHER_MAX (256ull << 20)

/* the parts of a rank's packed rows, in order */
enum { PART_ROW, PART_REGIONS, PART_FDS, PART_RUNS, PART_THREADS, PART_TIMERS, PART_SIG,
       PART_RLIM, PART_ITIMER, PART_STRINGS, PART_FILEDATA, NPARTS };

/* What rank r sends rank 0: its whole /ranks row, its rows of every
 * table, its /strings and /filedata slices (unpadded), in this order:
 * the bytes of each part, from its counts. */
static void part_sizes(const struct ck_counts *c, uint64_t size[NPARTS])
{
	size[PART_ROW] = sizeof(struct ck_rank_row);
	size[PART_REGIONS] = c->regions * sizeof(struct ck_region_row);
	size[PART_FDS] = c->fds * sizeof(struct ck_fd_row);
	size[PART_RUNS] = c->runs * sizeof(struct ck_page_run);
	size[PART_THREADS] = c->threads * sizeof(struct ck_thread);
	size[PART_TIMERS] = c->timers * sizeof(struct ck_posix_timer);
	size[PART_SIG] = CK_NSIG * sizeof(struct ck_sigaction);
	size[PART_RLIM] = CK_NRLIMITS * sizeof(struct ck_rlimit);
	size[PART_ITIMER] = 3 * sizeof(struct ck_itimer);
	size[PART_STRINGS] = c->strings;
	size[PART_FILEDATA] = c->filedata;
}

static uint64_t packed_bytes(const struct ck_counts *c)
{
	uint64_t size[NPARTS], n = 0;

	part_sizes(c, size);
	for (int i = 0; i < NPARTS; i++)
		n += size[i];
	return n;
}

static uint64_t gathered_bytes(const struct mwriter *w)
{
	uint64_t n = 0;

	for (int r = 0; r < w->size; r++)
		n += packed_bytes(&w->counts[r]);
	return n;
}

/* Rank 0's copy of every rank's packed rows: rank r's at buf + at[r] */
struct gathered {
	uint8_t *buf;
	uint64_t *at;
	const struct ck_counts *counts; /* every rank's: the sizes of its parts */
};

static void put(uint8_t **p, const void *src, uint64_t n)
{
	if (n)
		memcpy(*p, src, n);
	*p += n;
}

static int gather_rows(struct mwriter *w, struct gathered *g)
{
	const struct ck_rank_row *row = &w->rows[w->rank];
	const struct ck_image *img = w->img;
	uint64_t len = packed_bytes(&w->counts[w->rank]);
	struct source src = { .img = img, .memory = 0 };
	uint64_t *counts = NULL, *displs = NULL;
	int rc = 0;
	uint8_t *mine = malloc(len), *p = mine;

	if (!w->rank && (!(g->at = calloc((size_t)w->size, sizeof *g->at)) ||
	                 !(g->buf = malloc(gathered_bytes(w))) ||
	                 !(counts = malloc((size_t)w->size * sizeof *counts)) ||
	                 !(displs = malloc((size_t)w->size * sizeof *displs))))
		rc = -1;
	if (!mine || rc) {
		ck_set_error("%s: out of memory for the rows of generation %llu", w->path,
		             (unsigned long long)w->generation);
		rc = -1;
	} else if (row->region_count != img->nregions || row->fd_count != img->nfds) {
		ck_set_error("%s: internal error: rank %d's rows do not match its image", w->path,
		             w->rank);
		rc = -1;
	} else {
		put(&p, row, sizeof *row);
		put(&p, w->rr, img->nregions * sizeof *w->rr);
		put(&p, w->fr, img->nfds * sizeof *w->fr);
		put(&p, img->runs, img->nruns * sizeof *img->runs);
		put(&p, img->threads, img->nthreads * sizeof *img->threads);
		put(&p, img->timers, img->ntimers * sizeof *img->timers);
		put(&p, img->proc.sig, sizeof img->proc.sig);
		put(&p, img->proc.rlim, sizeof img->proc.rlim);
		put(&p, img->proc.itimer, sizeof img->proc.itimer);
		put(&p, w->strings, row->strings_len);
		p += source_copy(&src, p, row->filedata_len);
		if ((uint64_t)(p - mine) != len) {
			ck_set_error("%s: internal error: rank %d packed %llu bytes of rows, not %llu",
			             w->path, w->rank, (unsigned long long)(p - mine),
			             (unsigned long long)len);
			rc = -1;
		}
	}
	if (!w->rank && !rc) {
		uint64_t at = 0;

		for (int r = 0; r < w->size; r++) {
			g->at[r] = at;
			displs[r] = at;
			counts[r] = packed_bytes(&w->counts[r]);
			at += counts[r];
		}
	}
	g->counts = w->counts;
	if (!(rc = agree(w, rc)) &&
	    w->r->gatherv(w->r->ctx, mine, len, g->buf, counts, displs))
		rc = step_failed(w);
	free(mine);
	free(counts);
	free(displs);
	return rc;
}

/* Part `which` of rank r's packed rows */
static const uint8_t *part(const struct gathered *g, int r, unsigned which)
{
	const uint8_t *p = g->buf + g->at[r];
	uint64_t size[NPARTS];

	part_sizes(&g->counts[r], size);
	for (unsigned i = 0; i < which; i++)
		p += size[i];
	return p;
}

/* Dataset ds (`name`, `total` elements of `size` bytes) written whole:
 * each rank's part `which` at its place, zeros between (the padding of
 * the byte blobs' slices to their chunks). Closes ds. */
static int whole_dataset(struct mwriter *w, const struct gathered *g, hid_t ds,
                         const char *name, hid_t memtype, size_t size, uint64_t total,
                         unsigned which)
{
	uint8_t *all = total ? calloc(total, size) : NULL;
	int rc = 0;

	if (ds < 0)
		return -1;
	if (total && !all) {
		ck_set_error("%s: out of memory for %s", w->path, name);
		rc = -1;
	}
	for (int r = 0; !rc && r < w->size; r++) {
		const struct ck_rank_row *row = (const struct ck_rank_row *)part(g, r, PART_ROW);
		uint64_t first = 0, n = 0;

		switch (which) {
		case PART_ROW: first = (uint64_t)r, n = 1; break;
		case PART_REGIONS: first = row->region_first, n = row->region_count; break;
		case PART_FDS: first = row->fd_first, n = row->fd_count; break;
		case PART_RUNS: first = row->run_first, n = row->run_count; break;
		case PART_THREADS: first = row->thread_first, n = row->thread_count; break;
		case PART_TIMERS: first = row->timer_first, n = row->timer_count; break;
		case PART_SIG: first = (uint64_t)r * CK_NSIG, n = CK_NSIG; break;
		case PART_RLIM: first = (uint64_t)r * CK_NRLIMITS, n = CK_NRLIMITS; break;
		case PART_ITIMER: first = (uint64_t)r * 3, n = 3; break;
		case PART_STRINGS: first = row->strings_offset, n = row->strings_len; break;
		case PART_FILEDATA: first = row->filedata_offset, n = row->filedata_len; break;
		}
		if (first + n > total) {
			ck_set_error("%s: internal error: rank %d's part of %s lies beyond its end",
			             w->path, r, name);
			rc = -1;
		} else if (n)
			memcpy(all + first * size, part(g, r, which), n * size);
	}
	if (!rc && total && H5Dwrite(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, all) < 0) {
		ck_set_h5_error(w->path, "write", name);
		rc = -1;
	}
	if (H5Dclose(ds) < 0 && !rc) {
		ck_set_h5_error(w->path, "write", name);
		rc = -1;
	}
	free(all);
	return rc;
}

/* Rank 0, in the skeleton: the root attributes, /argv, every table,
 * /strings and /filedata */
static int small_datasets(struct mwriter *w, hid_t f, const struct gathered *g)
{
	const struct ck_types *t = &w->t;
	uint64_t n = (uint64_t)w->size, argv_len = w->info.argv_len;
	hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS), ds;
	int rc = -1;

	if (ck_write_attrs(f, w->path, &w->info))
		goto out;
	ds = ck_dataset_create(f, w->path, "/argv", H5T_STD_U8LE, argv_len,
	                       argv_len ? argv_len : 1, NULL, H5P_DEFAULT);
	if (ds < 0)
		goto out;
	if (argv_len && H5Dwrite(ds, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT,
	                         w->info.argv) < 0) {
		ck_set_h5_error(w->path, "write", "/argv");
		H5Dclose(ds);
		goto out;
	}
	if (H5Dclose(ds) < 0) {
		ck_set_h5_error(w->path, "write", "/argv");
		goto out;
	}
	/* blobs are written once, whole: no chunk cache */
	if (dapl < 0 || H5Pset_chunk_cache(dapl, 0, 0, 1.0) < 0) {
		ck_set_h5_error(w->path, "create", "the dataset access properties");
		goto out;
	}
#define TABLE(name, type, size, total, which)                                                 \
	whole_dataset(w, g, ck_table_create(f, w->path, name, type, size, total), name, type, \
	              size, total, which)
	if (TABLE("/ranks", t->rank, sizeof(struct ck_rank_row), n, PART_ROW) ||
	    TABLE("/regions", t->region, sizeof(struct ck_region_row), w->e.nregions,
	          PART_REGIONS) ||
	    TABLE("/fds", t->fd, sizeof(struct ck_fd_row), w->e.nfds, PART_FDS) ||
	    TABLE("/runs", t->run, sizeof(struct ck_page_run), w->e.nruns, PART_RUNS) ||
	    TABLE("/threads", t->thread, sizeof(struct ck_thread), w->e.nthreads, PART_THREADS) ||
	    TABLE("/timers", t->timer, sizeof(struct ck_posix_timer), w->e.ntimers, PART_TIMERS) ||
	    TABLE("/sigactions", t->sigaction, sizeof(struct ck_sigaction), n * CK_NSIG,
	          PART_SIG) ||
	    TABLE("/rlimits", t->rlimit, sizeof(struct ck_rlimit), n * CK_NRLIMITS, PART_RLIM) ||
	    TABLE("/itimers", t->itimer, sizeof(struct ck_itimer), n * 3, PART_ITIMER))
		goto out;
#undef TABLE
	if (whole_dataset(w, g,
	                  ck_dataset_create(f, w->path, "/strings", H5T_STD_U8LE, w->e.strings_bytes,
	                                    w->e.strings_chunk, NULL, dapl),
	                  "/strings", H5T_NATIVE_UINT8, 1, w->e.strings_bytes, PART_STRINGS) ||
	    whole_dataset(w, g,
	                  ck_dataset_create(f, w->path, "/filedata", H5T_STD_U8LE,
	                                    w->e.filedata_bytes, w->e.filedata_chunk, NULL, dapl),
	                  "/filedata", H5T_NATIVE_UINT8, 1, w->e.filedata_bytes, PART_FILEDATA))
		goto out;
	rc = 0;
out:
	if (dapl >= 0)
		H5Pclose(dapl);
	return rc;
}

/* ---- /memory laid out by rank 0, filled by every rank ---- */

/* never written; not const, so that it costs bss and not 1 MiB of binary */
static uint8_t zeros[CK_MEMORY_CHUNK + 4];

#if H5_VERS_MAJOR == 1 && H5_VERS_MINOR <= 12
#define CK_HAVE_SKELETON 1
/* The skeleton driver: sec2 underneath (through the public H5FD calls),
 * raw data writes dropped, so that allocating a chunk costs its index
 * entry and not its bytes. Used by rank 0 alone, on the temporary, while
 * nobody else has it open. The file it leaves is an ordinary one (no
 * driver information in the superblock) with holes where the chunks go. */
struct skel {
	H5FD_t pub;                 /* first: HDF5 fills it in */
	H5FD_t *in;
};

/* Where the driver was asked to put /memory's placeholder chunks, in the
 * order they came (rank 0's control thread alone lays a file out) */
static struct {
	uint64_t *addr;
	uint64_t n, cap;
} skel_placed;

static H5FD_t *skel_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr)
{
	hid_t sec2 = H5Pcreate(H5P_FILE_ACCESS);
	struct skel *f = NULL;
	H5FD_t *in = NULL;

	(void)fapl;
	if (sec2 >= 0 && H5Pset_fapl_sec2(sec2) >= 0)
		in = H5FDopen(name, flags, sec2, maxaddr);
	if (sec2 >= 0)
		H5Pclose(sec2);
	if (in && !(f = calloc(1, sizeof *f)))
		H5FDclose(in);
	if (!f)
		return NULL;
	f->in = in;
	return &f->pub;
}

static herr_t skel_close(H5FD_t *file)
{
	struct skel *f = (struct skel *)file;
	herr_t rc = H5FDclose(f->in);

	free(f);
	return rc;
}

static herr_t skel_query(const H5FD_t *file, unsigned long *flags)
{
	(void)file;
	/* what sec2 says of itself */
	*flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA |
	         H5FD_FEAT_DATA_SIEVE | H5FD_FEAT_AGGREGATE_SMALLDATA |
	         H5FD_FEAT_DEFAULT_VFD_COMPATIBLE;
	return 0;
}

static haddr_t skel_get_eoa(const H5FD_t *file, H5FD_mem_t type)
{
	return H5FDget_eoa(((const struct skel *)file)->in, type);
}

static herr_t skel_set_eoa(H5FD_t *file, H5FD_mem_t type, haddr_t addr)
{
	return H5FDset_eoa(((struct skel *)file)->in, type, addr);
}

static haddr_t skel_get_eof(const H5FD_t *file, H5FD_mem_t type)
{
	return H5FDget_eof(((const struct skel *)file)->in, type);
}

static herr_t skel_read(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size,
                        void *buf)
{
	return H5FDread(((struct skel *)file)->in, type, dxpl, addr, size, buf);
}

static herr_t skel_write(H5FD_t *file, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size,
                         const void *buf)
{
	/* /memory's placeholder chunks are dropped (HDF5 hands the caller's
	 * buffer down to the driver); everything else is written. Were it
	 * ever a copy, zeros would be written: slower, still right */
	if (type == H5FD_MEM_DRAW && buf == zeros && size == CK_MEMORY_CHUNK + 4) {
		if (skel_placed.n < skel_placed.cap)
			skel_placed.addr[skel_placed.n] = (uint64_t)addr;
		skel_placed.n++;
		return 0;
	}
	return H5FDwrite(((struct skel *)file)->in, type, dxpl, addr, size, buf);
}

static herr_t skel_flush(H5FD_t *file, hid_t dxpl, hbool_t closing)
{
	return H5FDflush(((struct skel *)file)->in, dxpl, closing);
}

static herr_t skel_truncate(H5FD_t *file, hid_t dxpl, hbool_t closing)
{
	/* the file's end goes to the end of the allocated space: the
	 * dropped chunks become a hole */
	return H5FDtruncate(((struct skel *)file)->in, dxpl, closing);
}

static herr_t skel_lock(H5FD_t *file, hbool_t rw)
{
	return H5FDlock(((struct skel *)file)->in, rw);
}

static herr_t skel_unlock(H5FD_t *file)
{
	return H5FDunlock(((struct skel *)file)->in);
}

static const H5FD_class_t skel_class = {
	.name = "ckptmpi-skeleton",
	.maxaddr = (haddr_t)INT64_MAX,      /* sec2's: an off_t */
	.fc_degree = H5F_CLOSE_WEAK,
	.open = skel_open,
	.close = skel_close,
	.query = skel_query,
	.get_eoa = skel_get_eoa,
	.set_eoa = skel_set_eoa,
	.get_eof = skel_get_eof,
	.read = skel_read,
	.write = skel_write,
	.flush = skel_flush,
	.truncate = skel_truncate,
	.lock = skel_lock,
	.unlock = skel_unlock,
	.fl_map = H5FD_FLMAP_DICHOTOMY,
};

static hid_t skel_id = -1;
static pthread_once_t skel_once = PTHREAD_ONCE_INIT;

static void skel_register(void)
{
	skel_id = H5FDregister(&skel_class);
}

/* Rank 0, alone: the whole file but the page data, from every rank's
 * rows (struct gathered), with every /memory chunk of every rank
 * allocated and its place noted. Reserves the file's space after the
 * create (which truncates). */
static int skeleton(struct mwriter *w, const struct gathered *g, uint64_t *addr,
                    uint64_t nchunks, uint64_t estimate)
{
	hsize_t dims = w->e.memory_bytes, maxd = H5S_UNLIMITED, ch = CK_MEMORY_CHUNK;
	hid_t fapl = -1, dcpl = -1, sp = -1, ds = -1, f = -1;
	int rc = -1, placed;

	if (pthread_once(&skel_once, skel_register) || skel_id < 0) {
		ck_set_h5_error(w->path, "create", "the skeleton file driver");
		return -1;
	}
	/* as the serial writer's files: v2 superblock and object headers,
	 * locks that must not fail on file systems without flock */
	if ((fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 || H5Pset_driver(fapl, skel_id, NULL) < 0 ||
	    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) < 0 ||
	    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0 || H5Pset_file_locking(fapl, 1, 1) < 0 ||
	    (f = H5Fcreate(w->path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0) {
		ck_set_h5_error(w->path, "create", "the HDF5 file");
		goto out;
	}
	if (ck_reserve_space(w->fd, w->path, estimate) < 0)
		goto out;
	/* chunks allocated when written, so no fill value is ever written */
	if ((sp = H5Screate_simple(1, &dims, &maxd)) < 0 ||
	    (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 || H5Pset_chunk(dcpl, 1, &ch) < 0 ||
	    H5Pset_fletcher32(dcpl) < 0 || H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_INCR) < 0 ||
	    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
	    (ds = H5Dcreate2(f, "/memory", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0) {
		ck_set_h5_error(w->path, "create", "/memory");
		goto out;
	}
	if (small_datasets(w, f, g))
		goto out;
	/* each chunk's place as the driver saw it go by: asking HDF5 back
	 * for every one was half of this layout's time, in the pause (2048
	 * chunks: 45 ms); HDF5 is asked for every 64th and the last, and for
	 * all if one differs */
	skel_placed.addr = addr, skel_placed.n = 0, skel_placed.cap = nchunks;
	for (uint64_t c = 0; c < nchunks; c++) {
		hsize_t off = c * CK_MEMORY_CHUNK;

		if (H5Dwrite_chunk(ds, H5P_DEFAULT, 0, &off, CK_MEMORY_CHUNK + 4, zeros) < 0) {
			ck_set_h5_error(w->path, "write", "/memory");
			goto out;
		}
	}
	placed = skel_placed.n == nchunks;
	skel_placed.addr = NULL, skel_placed.cap = 0;
	for (uint64_t c = 0; c < nchunks; c++) {
		hsize_t off = c * CK_MEMORY_CHUNK, size = 0;
		haddr_t a = HADDR_UNDEF;
		unsigned mask = 1;

		if (placed && c % 64 && c + 1 < nchunks)
			continue;
		if (H5Dget_chunk_info_by_coord(ds, &off, &mask, &a, &size) < 0) {
			ck_set_h5_error(w->path, "write", "/memory");
			goto out;
		}
		/* where every rank will write a checksummed chunk itself */
		if (a == HADDR_UNDEF || size != CK_MEMORY_CHUNK + 4 || mask) {
			ck_set_error("%s: /memory chunk %llu was laid out with %llu bytes at %#llx, "
			             "mask %u (this HDF5 does not work as expected)", w->path,
			             (unsigned long long)c, (unsigned long long)size,
			             (unsigned long long)a, mask);
			goto out;
		}
		if (placed && addr[c] != (uint64_t)a) {
			/* not what was seen: ask for every chunk */
			placed = 0;
			c = (uint64_t)-1;
			continue;
		}
		addr[c] = (uint64_t)a;
	}
	/* a reader trusts nothing without it; the file is a temporary until
	 * every rank's chunks are written and the ranks agree to commit */
	if (ck_attr_u64(f, w->path, "complete", H5T_STD_U32LE, 1))
		goto out;
	rc = 0;
out:
	skel_placed.addr = NULL, skel_placed.cap = 0;
	if (ds >= 0 && H5Dclose(ds) < 0 && !rc) {
		ck_set_h5_error(w->path, "write", "/memory");
		rc = -1;
	}
	if (f >= 0 && H5Fclose(f) < 0 && !rc) {
		ck_set_h5_error(w->path, "write", "the HDF5 file");
		rc = -1;
	}
	if (dcpl >= 0)
		H5Pclose(dcpl);
	if (sp >= 0)
		H5Sclose(sp);
	if (fapl >= 0)
		H5Pclose(fapl);
	return rc;
}
#else
#define CK_HAVE_SKELETON 0
static int skeleton(struct mwriter *w, const struct gathered *g, uint64_t *addr,
                    uint64_t nchunks, uint64_t estimate)
{
	(void)g, (void)addr, (void)nchunks, (void)estimate;
	ck_set_error("%s: internal error: no skeleton driver for this HDF5", w->path);
	return -1;
}
#endif

/* The whole file laid out by rank 0 from what every rank sent it, and
 * this rank's chunk places from that layout. */
static int lay_out_file(struct mwriter *w)
{
	struct gathered g = {0};
	uint64_t nchunks = w->e.memory_bytes / CK_MEMORY_CHUNK, *all = NULL;
	uint64_t *counts = NULL, *displs = NULL; /* bytes of places */
	int rc = 0;
	int mine = (int)(ck_align_up(w->rows[w->rank].memory_len, CK_MEMORY_CHUNK) /
	                 CK_MEMORY_CHUNK);

	for (int r = 0; r < w->size; r++)
		/* the places go out as bytes counted in ints (8 a chunk) */
		if (ck_align_up(w->rows[r].memory_len, CK_MEMORY_CHUNK) / CK_MEMORY_CHUNK >
		            INT_MAX / sizeof(uint64_t) ||
		    w->rows[r].memory_offset / CK_MEMORY_CHUNK > INT_MAX / sizeof(uint64_t)) {
			ck_set_error("%s: rank %d has more chunks of page data than MPI can count",
			             w->path, r);
			rc = -1;
		}
	if (!rc && (!(w->addr = malloc((size_t)(mine ? mine : 1) * sizeof *w->addr)) ||
	            (!w->rank && (!(all = malloc((nchunks ? nchunks : 1) * sizeof *all)) ||
	                          !(counts = malloc((size_t)w->size * sizeof *counts)) ||
	                          !(displs = malloc((size_t)w->size * sizeof *displs)))))) {
		ck_set_error("%s: out of memory for the places of %llu chunks", w->path,
		             (unsigned long long)nchunks);
		rc = -1;
	}
	if (!(rc = agree(w, rc)))
		rc = gather_rows(w, &g);
	if (!rc && !w->rank) {
		rc = skeleton(w, &g, all, nchunks, w->estimate);
		for (int r = 0; r < w->size; r++) {
			counts[r] = ck_align_up(w->rows[r].memory_len, CK_MEMORY_CHUNK) /
			            CK_MEMORY_CHUNK * sizeof *all;
			displs[r] = w->rows[r].memory_offset / CK_MEMORY_CHUNK * sizeof *all;
		}
	}
	/* the others wait for rank 0's layout */
	if (!(rc = agree(w, rc)) &&
	    w->r->scatterv(w->r->ctx, all, counts, displs, w->addr, (size_t)mine * sizeof *all))
		rc = step_failed(w);
	w->nchunks = (uint64_t)mine;
	free(g.buf);
	free(g.at);
	free(all);
	free(counts);
	free(displs);
	return rc;
}

static int write_all(struct mwriter *w, struct iovec *iov, int cnt, uint64_t off)
{
	while (cnt > 0) {
		ssize_t n = pwritev(w->fd, iov, cnt, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ck_set_error("%s: cannot write /memory: %s", w->path,
			             n < 0 ? strerror(errno) : "no progress");
			return -1;
		}
		off += (uint64_t)n;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

#define BATCH_IOV 1024              /* IOV_MAX on Linux */
#define BATCH_CHUNKS 64

struct batch {
	struct iovec iov[BATCH_IOV];
	uint8_t sums[BATCH_CHUNKS][4];
	int cnt, chunks;
	uint64_t start, end;        /* file range */
	uint64_t data;              /* bytes of page data in it */
};

static int batch_flush(struct mwriter *w, struct batch *b)
{
	if (!b->cnt)
		return 0;
	if (write_all(w, b->iov, b->cnt, b->start))
		return -1;
	/* start writeback now so the disk works while we go on, rather than
	 * all at once in the final fsync; only a hint, failures are fsync's */
	(void)sync_file_range(w->fd, (off_t)b->start, (off_t)(b->end - b->start),
	                      SYNC_FILE_RANGE_WRITE);
	progress_add(w, b->data);
	b->cnt = b->chunks = 0;
	b->data = 0;
	return 0;
}

/* Each chunk: its bytes from wherever the runs are, zeros after the end
 * of the slice, then its fletcher32, little-endian, as HDF5 stores it. */
static int write_direct(struct mwriter *w)
{
	const uint64_t *addr = w->addr, nchunks = w->nchunks;
	struct source src = { .img = w->img, .memory = 1 };
	struct batch *b = calloc(1, sizeof *b);
	int rc = 0;

	if (!b) {
		ck_set_error("%s: out of memory", w->path);
		return -1;
	}
	for (uint64_t c = 0; !rc && c < nchunks; c++) {
		struct iovec piece[BATCH_IOV];
		struct ck_fletcher f;
		uint64_t need = CK_MEMORY_CHUNK, data = 0;
		uint32_t sum;
		int np = 0;
		const uint8_t *p;
		uint64_t len;

		ck_fletcher_init(&f);
		while (need && np < BATCH_IOV - 2 && source_piece(&src, &p, &len)) {
			uint64_t n = len < need ? len : need;

			ck_fletcher_update(&f, p, n);
			piece[np++] = (struct iovec){ (void *)p, n };
			src.at += n;
			need -= n;
			data += n;
		}
		if (need && source_piece(&src, &p, &len)) {
			/* runs of single pages: more pieces than a pwritev takes */
			ck_set_error("%s: internal error: chunk %llu of /memory in too many pieces",
			             w->path, (unsigned long long)c);
			rc = -1;
			break;
		}
		if (need) {
			ck_fletcher_update(&f, zeros, need);
			piece[np++] = (struct iovec){ (void *)zeros, need };
		}
		if (!f.nonzero) {
			/* zero pages (a job's are not left out at the cut): the
			 * chunk's place in the new file already reads as zeros,
			 * checksum 0 included, so nothing is written there */
			progress_add(w, data);
			continue;
		}
		if (b->cnt && (b->end != addr[c] || b->cnt + np + 1 > BATCH_IOV ||
		               b->chunks == BATCH_CHUNKS))
			rc = batch_flush(w, b);
		if (rc)
			break;
		if (!b->cnt)
			b->start = b->end = addr[c];
		sum = ck_fletcher_final(&f);
		b->sums[b->chunks][0] = (uint8_t)sum;
		b->sums[b->chunks][1] = (uint8_t)(sum >> 8);
		b->sums[b->chunks][2] = (uint8_t)(sum >> 16);
		b->sums[b->chunks][3] = (uint8_t)(sum >> 24);
		memcpy(b->iov + b->cnt, piece, (size_t)np * sizeof *piece);
		b->cnt += np;
		b->iov[b->cnt++] = (struct iovec){ b->sums[b->chunks], 4 };
		b->chunks++;
		b->end += CK_MEMORY_CHUNK + 4;
		b->data += data;
	}
	if (!rc)
		rc = batch_flush(w, b);
	free(b);
	return rc;
}

static int write_memory(struct mwriter *w)
{
	hid_t ds;
	int rc;

	ck_mpio_direct_last = w->direct;
	if (w->direct && w->defer)
		return 0; /* container_mpi_pages_write, behind the program */
	if (w->direct)
		return agree(w, write_direct(w));
	ds = blob_create(w, "/memory", w->e.memory_bytes, CK_MEMORY_CHUNK, &w->comp);
	rc = agree(w, ds < 0 ? -1 : 0);
	if (!rc)
		rc = stream_rounds(w, ds, "/memory", 1, CK_MEMORY_CHUNK);
	return ds_close(w, ds, "/memory", rc);
}

/* ---- set-up ---- */

/* Every rank's counts, then the same placement computed everywhere, then
 * this rank's own rows. */
static int build_layout(struct mwriter *w, struct ck_image *image)
{
	struct ck_counts mine;
	int rc;

	rc = agree(w, ck_rank_measure(w->path, (uint64_t)w->rank, image, &mine));
	if (rc)
		return -1;
	if (!(w->counts = calloc((size_t)w->size, sizeof *w->counts)) ||
	    !(w->rows = calloc((size_t)w->size, sizeof *w->rows))) {
		ck_set_error("%s: out of memory", w->path);
		rc = -1;
	}
	if (agree(w, rc))
		return -1;
	if (w->r->allgather(w->r->ctx, &mine, sizeof mine, w->counts))
		return step_failed(w);
	rc = ck_layout_place(w->path, w->counts, (uint64_t)w->size, w->rows, &w->e);
	if (!rc) {
		const struct ck_rank_row *row = &w->rows[w->rank];

		w->rr = calloc(image->nregions ? image->nregions : 1, sizeof *w->rr);
		w->fr = calloc(image->nfds ? image->nfds : 1, sizeof *w->fr);
		w->strings = calloc(ck_align_up(row->strings_len, w->e.strings_chunk) + 1, 1);
		w->stage = malloc(CK_MPI_STAGE_BYTES);
		if (!w->rr || !w->fr || !w->strings || !w->stage) {
			ck_set_error("%s: out of memory", w->path);
			rc = -1;
		} else
			ck_rank_fill(image, &w->rows[w->rank], w->rr, w->fr, w->strings);
	}
	return agree(w, rc);
}

/* Rank 0 decides what must be the same everywhere: compression, the
 * direct road, the name of the temporary (its host and pid). */
static int decide(struct mwriter *w, struct decisions *d)
{
	const char *v = getenv("CKPTMPI_MPIO_DIRECT");
	int rc = 0;

	memset(d, 0, sizeof *d);
	if (!w->rank) {
		rc = ck_compress_from_env(w->dir, &d->comp);
		d->direct = !(v && !strcmp(v, "0"));
		d->pid = (long)getpid();
		ck_new_token(d->token);
		if (!rc && gethostname(d->host, sizeof d->host) < 0) {
			ck_set_error("%s: gethostname: %s", w->dir, strerror(errno));
			rc = -1;
		}
		d->host[sizeof d->host - 1] = 0;
	} else
		rc = ck_codecs_register();  /* rank 0's choice must be known here */
	if (agree(w, rc))
		return -1;
	if (w->r->bcast(w->r->ctx, d, sizeof *d))
		return step_failed(w);
	return 0;
}

/* Rank 0 creates the temporary, private, with room reserved (under
 * another random name if the first is taken); every other rank must reach
 * that same file, ours, through its own DIR. */
static int create_temporary(struct mwriter *w, struct decisions *d)
{
	struct { uint64_t ino; char token[CK_TOKEN_LEN + 1]; } made = { 0, { 0 } };
	size_t plen = strlen(w->path);
	struct stat st;
	int rc = 0;

	w->estimate = ck_estimate_size(&w->e, (uint64_t)w->size, w->info.argv_len);
	if (!w->rank) {
		/* a full disk shows up now, before HDF5 holds any state */
		if ((w->fd = ck_create_private(w->dir, w->path)) < 0 ||
		    ck_reserve_space(w->fd, w->path, w->estimate) < 0)
			rc = -1;
		else if (fstat(w->fd, &st) < 0) {
			ck_set_error("%s: fstat: %s", w->path, strerror(errno));
			rc = -1;
		} else {
			made.ino = (uint64_t)st.st_ino;
			memcpy(made.token, w->path + plen - CK_TOKEN_LEN, CK_TOKEN_LEN);
		}
	}
	if (agree(w, rc))
		return -1;
	if (w->r->bcast(w->r->ctx, &made, sizeof made))
		return step_failed(w);
	d->ino = made.ino;
	memcpy(d->token, made.token, sizeof d->token);
	if (w->rank) {
		memcpy(w->path + plen - CK_TOKEN_LEN, made.token, CK_TOKEN_LEN);
		if ((w->fd = open(w->path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			ck_set_error("%s: cannot open the file rank 0 created: %s", w->path,
			             strerror(errno));
			rc = -1;
		} else if (fstat(w->fd, &st) < 0) {
			ck_set_error("%s: fstat: %s", w->path, strerror(errno));
			rc = -1;
		} else if ((uint64_t)st.st_ino != d->ino || st.st_uid != getuid() ||
		           !S_ISREG(st.st_mode)) {
			ck_set_error("%s: not the file rank 0 created (is %s the same directory on "
			             "every rank?)", w->path, w->dir);
			rc = -1;
		}
	}
	return agree(w, rc);
}

/* Collectively: create the file, or open what rank 0 laid out. */
static int file_parallel(struct mwriter *w, int create)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
	int rc = -1;

	/* v2 superblock and object headers as in serial files; STRONG:
	 * closing the file closes what an error path left open; metadata
	 * written collectively at flush rather than by rank 0 alone */
	if (fapl >= 0 && H5Pset_fapl_mpio(fapl, w->comm, MPI_INFO_NULL) >= 0 &&
	    H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST) >= 0 &&
	    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0 &&
	    H5Pset_coll_metadata_write(fapl, 1) >= 0 &&
	    (w->file = create ? H5Fcreate(w->path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)
	                      : H5Fopen(w->path, H5F_ACC_RDWR, fapl)) >= 0)
		rc = 0;
	else
		ck_set_h5_error(w->path, create ? "create" : "open", "the HDF5 file");
	if (fapl >= 0)
		H5Pclose(fapl);
	if (!rc && ((w->dxpl = H5Pcreate(H5P_DATASET_XFER)) < 0 ||
	            H5Pset_dxpl_mpio(w->dxpl, H5FD_MPIO_COLLECTIVE) < 0)) {
		ck_set_h5_error(w->path, "create", "the transfer properties");
		rc = -1;
	}
	return agree(w, rc);
}

static int check_args(struct mwriter *w, const struct ck_generation_info *info,
                      const struct ck_image *image)
{
	if (!w->dir || !info || !image) {
		ck_set_error("container_write_mpi: missing argument (rank %d)", w->rank);
		return -1;
	}
	if (ck_check_info(w->dir, info))
		return -1;
	if (info->nranks != (uint64_t)w->size) {
		ck_set_error("%s: generation %llu: nranks is %llu but the communicator has %d ranks",
		             w->dir, (unsigned long long)info->generation,
		             (unsigned long long)info->nranks, w->size);
		return -1;
	}
	return 0;
}

static void writer_free(struct mwriter *w)
{
	ck_types_close(&w->t);
	if (w->dxpl >= 0)
		H5Pclose(w->dxpl);
	free(w->counts);
	free(w->rows);
	free(w->rr);
	free(w->fr);
	free(w->strings);
	free(w->stage);
	free(w->addr);
}

/* comm: parallel HDF5's (MPI_COMM_NULL: the direct road only, as when
 * the page data go behind the program); r: the ranks' own steps */
static int write_mpi(MPI_Comm comm, const struct ck_ranks *r, const char *dir,
                     const struct ck_generation_info *info, struct ck_image *image,
                     container_progress_fn progress, char *tmp_path_out, size_t tmp_path_len,
                     struct container_mpi_pages **pages)
{
	struct mwriter w = { .comm = comm, .r = r, .dir = dir, .file = -1, .dxpl = -1, .fd = -1,
	                     .img = image, .progress = progress };
	struct decisions d;
	char msg[CK_MSG_LEN];
	int rc, n = 0;
	struct stat st;

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	w.t = (struct ck_types){ -1, -1, -1, -1, -1, -1, -1, -1, -1 };
	w.rank = r->rank;
	w.size = r->size;
	w.generation = info ? info->generation : 0;
	if (!dir)
		w.dir = "(null)";
	snprintf(w.path, sizeof w.path, "%s", w.dir);

	/* the same generation everywhere, attributes from rank 0 */
	rc = agree(&w, check_args(&w, info, image));
	if (!rc) {
		uint64_t gen[2] = { info->generation, ~info->generation }, m[2] = { 0, 0 };
		uint64_t *all = malloc((size_t)w.size * sizeof gen);

		w.info = *info;
		if (!all) {
			ck_set_error("%s: out of memory", w.dir);
			return -1; /* (as if MPI failed: the job stops) */
		}
		if (r->bcast(r->ctx, &w.info, sizeof w.info) ||
		    r->allgather(r->ctx, gen, sizeof gen, all)) {
			free(all);
			return step_failed(&w);
		}
		for (int k = 0; k < w.size; k++)
			for (int i = 0; i < 2; i++)
				if (all[2 * k + i] > m[i])
					m[i] = all[2 * k + i];
		free(all);
		if (m[0] != info->generation || ~m[1] != info->generation) {
			ck_set_error("%s: the ranks write different generations (%llu here, up to "
			             "%llu elsewhere)", w.dir, (unsigned long long)info->generation,
			             (unsigned long long)m[0]);
			rc = -1;
		} else if (w.info.pages_parent != info->pages_parent) {
			/* an incremental slice over a full generation would be lost */
			ck_set_error("%s: rank %d's pages depend on generation %llu, rank 0's on %llu "
			             "(generation %llu)", w.dir, w.rank,
			             (unsigned long long)info->pages_parent,
			             (unsigned long long)w.info.pages_parent,
			             (unsigned long long)info->generation);
			rc = -1;
		}
		rc = agree(&w, rc);
	}
	if (rc)
		return -1;
	if (!w.info.created_unix)
		w.info.created_unix = (uint64_t)time(NULL);   /* same: rank 0's copy */
	if (r->bcast(r->ctx, &w.info.created_unix, sizeof w.info.created_unix))
		return step_failed(&w);

	if (decide(&w, &d))
		return -1;
	w.comp = d.comp;
	rc = 0;
	if ((n = ck_temp_path(w.path, sizeof w.path, w.dir, w.generation, d.host, d.pid,
	                      d.token)) < 0 ||
	    (tmp_path_out && (size_t)n >= tmp_path_len)) {
		ck_set_error("%s: path of the temporary file is too long", w.dir);
		rc = -1;
	}
	if (agree(&w, rc))
		return -1;
	/* compressed chunks have sizes nobody knows in advance; without
	 * parallel HDF5's communicator (comm MPI_COMM_NULL: the page data go
	 * behind the program, pages set) there is only the direct road, which
	 * the check of `pages` below makes sure of */
	w.direct = d.direct && w.comp.codec == CK_CODEC_NONE && CK_HAVE_SKELETON;
	/* the same on every rank: rank 0's decisions, the same call */
	w.defer = w.direct && pages;
	if (pages)
		*pages = NULL;

	if (build_layout(&w, image))
		goto fail_early;
	/* the same everywhere: every rank has every rank's counts */
	if (w.direct && gathered_bytes(&w) > CK_GATHER_MAX)
		w.direct = w.defer = 0;
	if (pages && !w.defer) {
		/* the same on every rank: the writers were forked at the cut
		 * on container_mpi_pages_possible's word */
		ck_set_error("%s: generation %llu: internal error: the page data cannot be written "
		             "behind the program after all (codec %d, direct %d, %llu bytes of rows)",
		             w.dir, (unsigned long long)w.generation, (int)w.comp.codec, d.direct,
		             (unsigned long long)gathered_bytes(&w));
		goto fail_early;
	}
	w.total = image->memory_bytes;
	rc = ck_types_create(&w.t);
	if (rc)
		ck_set_h5_error(w.path, "create", "table types");
	if (agree(&w, rc))
		goto fail_early;
	if (create_temporary(&w, &d))
		goto fail;
	if (w.direct) {
		/* rank 0 writes all but the page data, serially: a few
		 * collective calls in all, not several for every dataset */
		if (lay_out_file(&w) || write_memory(&w))
			goto fail;
	} else {
		if (file_parallel(&w, 1) || agree(&w, ck_write_attrs(w.file, w.path, &w.info)) ||
		    write_tables(&w) || write_strings(&w) || write_filedata(&w) || write_memory(&w))
			goto fail;
		/* last: a reader trusts nothing without it */
		if (agree(&w, ck_attr_u64(w.file, w.path, "complete", H5T_STD_U32LE, 1)))
			goto fail;
		rc = H5Fclose(w.file) < 0 ? -1 : 0;
		w.file = -1;
		if (rc)
			ck_set_h5_error(w.path, "write", "the HDF5 file");
		if (agree(&w, rc))
			goto fail;
	}
	/* give back what the estimate reserved beyond the end (every rank
	 * has closed: the allreduce in agree) */
	rc = 0;
	if (!w.rank && (fstat(w.fd, &st) < 0 || ftruncate(w.fd, st.st_size) < 0)) {
		ck_set_error("%s: cannot release reserved space: %s", w.path, strerror(errno));
		rc = -1;
	}
	if (!rc && w.defer) {
		/* the rest is this rank's chunks: the descriptor stays open */
		struct container_mpi_pages *p = calloc(1, sizeof *p);
		if (!p) {
			ck_set_error("%s: out of memory", w.path);
			rc = -1;
		} else {
			/* only what write_direct reads: the rest is freed below */
			p->w = (struct mwriter){ .comm = MPI_COMM_NULL, .rank = w.rank,
			                         .size = w.size, .generation = w.generation,
			                         .dir = w.dir, .file = -1, .dxpl = -1, .fd = w.fd,
			                         .addr = w.addr, .nchunks = w.nchunks,
			                         .img = w.img, .total = w.total };
			memcpy(p->w.path, w.path, sizeof w.path);
			p->ino = d.ino;
			w.addr = NULL; /* the pages' now */
			w.fd = -1;
		}
		if (agree(&w, rc)) {
			if (p)
				container_mpi_pages_free(p);
			goto fail;
		}
		*pages = p;
		if (tmp_path_out)
			memcpy(tmp_path_out, w.path, (size_t)n + 1);
		writer_free(&w);
		return 0;
	}
	/* each host's writes reach the disk: our fsync covers them (one page
	 * cache per host; on NFS fsync flushes the host's dirty pages) */
	if (!rc && fsync(w.fd) < 0) {
		ck_set_error("%s: fsync: %s", w.path, strerror(errno));
		rc = -1;
	}
	if (close(w.fd) < 0 && !rc) {
		ck_set_error("%s: close: %s", w.path, strerror(errno));
		rc = -1;
	}
	w.fd = -1;
	if (agree(&w, rc))
		goto fail;
	if (progress)
		progress(w.total, w.total);
	if (tmp_path_out)
		memcpy(tmp_path_out, w.path, (size_t)n + 1);
	writer_free(&w);
	return 0;

fail:
	/* every rank is here (the failure was agreed on); keep its message */
	snprintf(msg, sizeof msg, "%s", container_error());
	if (w.file >= 0) {
		/* closing flushes metadata and a failed close leaves HDF5 1.10
		 * unusable: free the doomed file's blocks first, so that a full
		 * disk has room for the flush */
		if (!w.rank && w.fd >= 0)
			(void)ftruncate(w.fd, 0);
		H5Fclose(w.file);
		w.file = -1;
	}
	if (w.fd >= 0)
		close(w.fd);
	/* the others closed it too before rank 0 removes it */
	r->barrier(r->ctx);
	if (!w.rank)
		unlink(w.path);
	ck_set_error("%s", msg);
fail_early:
	writer_free(&w);
	return -1;
}

int container_write_mpi(MPI_Comm comm, const char *dir, const struct ck_generation_info *info,
                        struct ck_image *image, container_progress_fn progress,
                        char *tmp_path_out, size_t tmp_path_len)
{
	struct ck_ranks r;
	if (container_ranks_mpi(&comm, &r))
		return said_with(dir ? dir : "(null)", info ? info->generation : 0, -1);
	return write_mpi(comm, &r, dir, info, image, progress, tmp_path_out, tmp_path_len, NULL);
}

int container_write_mpi_begin(const struct ck_ranks *r, const char *dir,
                              const struct ck_generation_info *info, struct ck_image *image,
                              container_progress_fn progress, char *tmp_path_out,
                              size_t tmp_path_len, struct container_mpi_pages **pages)
{
	return write_mpi(MPI_COMM_NULL, r, dir, info, image, progress, tmp_path_out, tmp_path_len,
	                 pages);
}

int container_mpi_pages_possible(const char *dir, uint64_t rank, uint64_t nranks,
                                 struct ck_image *image)
{
	const char *v = getenv("CKPTMPI_MPIO_DIRECT");
	struct ck_compress comp;
	struct ck_counts c;

	if (!CK_HAVE_SKELETON || (v && !strcmp(v, "0")) || ck_compress_from_env(dir, &comp) ||
	    comp.codec != CK_CODEC_NONE || !nranks || ck_rank_measure(dir, rank, image, &c))
		return 0;
	/* every rank's share within the gather's limit: the sum is too */
	return packed_bytes(&c) <= CK_GATHER_MAX / nranks;
}

/* What a forked writer needs of container_mpi_pages: the head, then the
 * places of its chunks */
struct pages_plan {
	uint64_t magic, generation, ino, nchunks, total;
	int64_t rank, size;
	char path[PATH_MAX];
};
#define PAGES_PLAN_MAGIC 0x636b7074706c616eull /* "ckptplan" */

int container_mpi_pages_pack(const struct container_mpi_pages *p, void **plan, size_t *len)
{
	const struct mwriter *w = &p->w;
	struct pages_plan *h;

	*len = sizeof *h + w->nchunks * sizeof *w->addr;
	if (!(*plan = h = calloc(1, *len))) {
		ck_set_error("%s: out of memory for the places of %llu chunks", w->path,
		             (unsigned long long)w->nchunks);
		return -1;
	}
	*h = (struct pages_plan){ PAGES_PLAN_MAGIC, w->generation, p->ino, w->nchunks, w->total,
	                          w->rank, w->size, "" };
	memcpy(h->path, w->path, sizeof h->path);
	if (w->nchunks)
		memcpy(h + 1, w->addr, w->nchunks * sizeof *w->addr);
	return 0;
}

int container_mpi_pages_unpack(const void *plan, size_t len, const struct ck_image *image,
                               struct container_mpi_pages **out)
{
	const struct pages_plan *h = plan;
	struct container_mpi_pages *p;
	struct stat st;

	*out = NULL;
	if (len < sizeof *h || h->magic != PAGES_PLAN_MAGIC ||
	    (len - sizeof *h) / sizeof(uint64_t) != h->nchunks ||
	    (len - sizeof *h) % sizeof(uint64_t) || !memchr(h->path, 0, sizeof h->path)) {
		ck_set_error("checkpoint writer: internal error: a malformed plan of %zu bytes", len);
		return -1;
	}
	if (!(p = calloc(1, sizeof *p)) ||
	    !(p->w.addr = malloc((h->nchunks ? h->nchunks : 1) * sizeof *p->w.addr))) {
		ck_set_error("%s: out of memory for the places of %llu chunks", h->path,
		             (unsigned long long)h->nchunks);
		free(p);
		return -1;
	}
	p->w = (struct mwriter){ .comm = MPI_COMM_NULL, .rank = (int)h->rank, .size = (int)h->size,
	                         .generation = h->generation, .dir = "", .file = -1, .dxpl = -1,
	                         .fd = -1, .addr = p->w.addr, .nchunks = h->nchunks,
	                         .img = image, .total = h->total };
	memcpy(p->w.path, h->path, sizeof h->path);
	p->ino = h->ino;
	if (h->nchunks)
		memcpy(p->w.addr, h + 1, h->nchunks * sizeof *p->w.addr);
	if ((p->w.fd = open(p->w.path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
	    fstat(p->w.fd, &st) < 0) {
		ck_set_error("%s: generation %llu: rank %d: cannot open the temporary to write its "
		             "page data: %s", p->w.path, (unsigned long long)h->generation,
		             (int)h->rank, strerror(errno));
		container_mpi_pages_free(p);
		return -1;
	}
	if ((uint64_t)st.st_ino != p->ino) {
		ck_set_error("%s: generation %llu: rank %d: not the temporary the job laid out (inode "
		             "%llu, not %llu)", p->w.path, (unsigned long long)h->generation,
		             (int)h->rank, (unsigned long long)st.st_ino, (unsigned long long)p->ino);
		container_mpi_pages_free(p);
		return -1;
	}
	*out = p;
	return 0;
}

int container_mpi_pages_write(struct container_mpi_pages *p, container_progress_fn progress)
{
	struct mwriter *w = &p->w;
	int rc;

	w->progress = progress;
	w->done = w->reported = 0;
	rc = write_direct(w);
	/* this rank's host's pages reach the disk before the commit */
	if (!rc && fsync(w->fd) < 0) {
		ck_set_error("%s: fsync: %s", w->path, strerror(errno));
		rc = -1;
	}
	if (!rc && progress)
		progress(w->total, w->total);
	return rc;
}

void container_mpi_pages_free(struct container_mpi_pages *p)
{
	if (!p)
		return;
	if (p->w.fd >= 0)
		close(p->w.fd);
	free(p->w.addr);
	free(p);
}

int container_commit_ranks(const struct ck_ranks *r, const char *dir, uint64_t generation,
                           const char *tmp_path)
{
	int rc = 0, fd;

	/* every rank has closed the file */
	if (r->barrier(r->ctx))
		return said_with(dir ? dir : "(null)", generation, r->rank);
	if (!r->rank) {
		if (!dir || !tmp_path) {
			ck_set_error("container_commit_mpi: missing argument");
			rc = -1;
		} else if ((fd = open(tmp_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			ck_set_error("%s: cannot open: %s", tmp_path, strerror(errno));
			rc = -1;
		} else {
			if (fsync(fd) < 0) {
				ck_set_error("%s: fsync: %s", tmp_path, strerror(errno));
				rc = -1;
			}
			close(fd);
			if (!rc)
				rc = container_commit(dir, generation, tmp_path);
		}
	}
	return agree_on(r, generation, rc);
}

int container_commit_mpi(MPI_Comm comm, const char *dir, uint64_t generation, const char *tmp_path)
{
	struct ck_ranks r;
	if (container_ranks_mpi(&comm, &r))
		return said_with(dir ? dir : "(null)", generation, -1);
	return container_commit_ranks(&r, dir, generation, tmp_path);
}
