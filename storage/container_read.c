/* Reading a generation: identity and completeness first, then one rank's
 * tables, then its page data, every byte checksum-verified by HDF5. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/chunk_read.h"
#include "storage/codec.h"
#include "storage/container.h"
#include "storage/container_internal.h"
#include "storage/image_chain.h"
#include "storage/chunk_job.h"

/* Runs at least this long are read straight into place; shorter ones go
 * through the staging buffer, which holds many of them per read. */
#define CK_DIRECT_MIN (2u * CK_MEMORY_CHUNK)
/* A direct read is split so progress is reported during huge runs. */
#define CK_DIRECT_PIECE (64u * CK_MEMORY_CHUNK)

struct container_reader {
	char *path;
	hid_t file;
	struct ck_types t;
	struct ck_generation_info info;
	struct ck_rank_row *ranks;
	uint64_t nranks;
	int own;                    /* opened with container_open_own */
};

static int attr_exists(struct container_reader *r, const char *name)
{
	htri_t e = H5Aexists(r->file, name);

	if (e < 0)
		ck_set_h5_error(r->path, "read", name);
	return e < 0 ? -1 : e > 0;
}

static int attr_u64(struct container_reader *r, const char *name, uint64_t *v)
{
	hid_t a = -1, ty = -1;
	int rc = -1, e = attr_exists(r, name);

	if (e <= 0) {
		if (!e)
			ck_set_error("%s: attribute %s missing (corrupt file)", r->path, name);
		return -1;
	}
	if ((a = H5Aopen(r->file, name, H5P_DEFAULT)) < 0 || (ty = H5Aget_type(a)) < 0)
		ck_set_h5_error(r->path, "read", name);
	else if (H5Tget_class(ty) != H5T_INTEGER)
		ck_set_error("%s: attribute %s is not an integer (corrupt file)", r->path, name);
	else if (H5Aread(a, H5T_NATIVE_UINT64, v) < 0)
		ck_set_h5_error(r->path, "read", name);
	else
		rc = 0;
	if (ty >= 0)
		H5Tclose(ty);
	if (a >= 0)
		H5Aclose(a);
	return rc;
}

static int attr_str(struct container_reader *r, const char *name, char *buf, size_t len)
{
	hid_t a = -1, ty = -1;
	size_t size = 0;
	char *tmp = NULL;
	int rc = -1, e = attr_exists(r, name);

	if (e <= 0) {
		if (!e)
			ck_set_error("%s: attribute %s missing (corrupt file)", r->path, name);
		return -1;
	}
	if ((a = H5Aopen(r->file, name, H5P_DEFAULT)) < 0 || (ty = H5Aget_type(a)) < 0)
		ck_set_h5_error(r->path, "read", name);
	else if (H5Tget_class(ty) != H5T_STRING || H5Tis_variable_str(ty) != 0 ||
	         !(size = H5Tget_size(ty)))
		ck_set_error("%s: attribute %s is not a fixed-length string (corrupt file)",
		             r->path, name);
	else if (!(tmp = calloc(1, size + 1)))
		ck_set_error("%s: out of memory", r->path);
	else if (H5Aread(a, ty, tmp) < 0)
		ck_set_h5_error(r->path, "read", name);
	else if (strlen(tmp) >= len)
		ck_set_error("%s: attribute %s longer than %zu (corrupt file)", r->path, name, len - 1);
	else {
		memcpy(buf, tmp, strlen(tmp) + 1);
		rc = 0;
	}
	free(tmp);
	if (ty >= 0)
		H5Tclose(ty);
	if (a >= 0)
		H5Aclose(a);
	return rc;
}

/* Open a 1-D dataset and its extent. */
static hid_t ds_open(struct container_reader *r, const char *name, hid_t dapl, hid_t *fs,
                     uint64_t *dims)
{
	hid_t ds;
	hsize_t d = 0;
	htri_t e = H5Lexists(r->file, name, H5P_DEFAULT);

	*fs = -1;
	if (e <= 0) {
		if (e < 0)
			ck_set_h5_error(r->path, "read", name);
		else
			ck_set_error("%s: dataset %s missing (corrupt file)", r->path, name);
		return -1;
	}
	if ((ds = H5Dopen2(r->file, name, dapl)) < 0 || (*fs = H5Dget_space(ds)) < 0) {
		ck_set_h5_error(r->path, "read", name);
		if (ds >= 0)
			H5Dclose(ds);
		return -1;
	}
	if (H5Sget_simple_extent_ndims(*fs) != 1 || H5Sget_simple_extent_dims(*fs, &d, NULL) != 1) {
		ck_set_error("%s: dataset %s is not one-dimensional (corrupt file)", r->path, name);
		H5Sclose(*fs);
		H5Dclose(ds);
		*fs = -1;
		return -1;
	}
	*dims = d;
	return ds;
}

static void ds_close(hid_t ds, hid_t fs)
{
	if (fs >= 0)
		H5Sclose(fs);
	if (ds >= 0)
		H5Dclose(ds);
}

/* Elements [first, first + count) of an open dataset into buf. */
static int ds_read(struct container_reader *r, hid_t ds, hid_t fs, const char *name, hid_t memtype,
                   uint64_t first, uint64_t count, void *buf)
{
	hsize_t o = first, n = count;
	hid_t ms;
	int rc = -1;

	if (!count)
		return 0;
	if ((ms = H5Screate_simple(1, &n, NULL)) >= 0 &&
	    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &o, NULL, &n, NULL) >= 0 &&
	    H5Dread(ds, memtype, ms, fs, H5P_DEFAULT, buf) >= 0)
		rc = 0;
	else
		ck_set_h5_error(r->path, "read", name);
	if (ms >= 0)
		H5Sclose(ms);
	return rc;
}

/* Rows [first, first + count) of a table, checked against its extent;
 * *out is malloc'd (NULL when count is 0). */
static int rows_read(struct container_reader *r, const char *name, hid_t memtype, size_t rowsize,
                     uint64_t first, uint64_t count, void **out)
{
	uint64_t dims;
	hid_t fs, ds;
	void *buf = NULL;
	int rc = -1;

	*out = NULL;
	if ((ds = ds_open(r, name, H5P_DEFAULT, &fs, &dims)) < 0)
		return -1;
	if (first > dims || count > dims - first)
		ck_set_error("%s: %s has %llu rows, not rows %llu..%llu (corrupt file)", r->path, name,
		             (unsigned long long)dims, (unsigned long long)first,
		             (unsigned long long)(first + count));
	/* zeroed: members older files lack stay 0 (HDF5 converts by name) */
	else if (count && (count > SIZE_MAX / rowsize || !(buf = calloc(count, rowsize))))
		ck_set_error("%s: out of memory for %llu rows of %s", r->path,
		             (unsigned long long)count, name);
	else if (!ds_read(r, ds, fs, name, memtype, first, count, buf))
		rc = 0;
	ds_close(ds, fs);
	if (rc) {
		free(buf);
		buf = NULL;
	}
	*out = buf;
	return rc;
}

/* Rows straight into a caller's array of exactly count rows. */
static int rows_read_into(struct container_reader *r, const char *name, hid_t memtype,
                          uint64_t first, uint64_t count, void *buf)
{
	uint64_t dims;
	hid_t fs, ds;
	int rc = -1;

	if ((ds = ds_open(r, name, H5P_DEFAULT, &fs, &dims)) < 0)
		return -1;
	if (first > dims || count > dims - first)
		ck_set_error("%s: %s has %llu rows, not rows %llu..%llu (corrupt file)", r->path, name,
		             (unsigned long long)dims, (unsigned long long)first,
		             (unsigned long long)(first + count));
	else
		rc = ds_read(r, ds, fs, name, memtype, first, count, buf);
	ds_close(ds, fs);
	return rc;
}

static int read_info(struct container_reader *r)
{
	struct ck_generation_info *in = &r->info;
	uint64_t dims;
	hid_t ds, fs;
	int rc;

	if (attr_u64(r, "nranks", &in->nranks) || attr_u64(r, "generation", &in->generation) ||
	    attr_u64(r, "parent", &in->parent) || attr_u64(r, "created", &in->created_unix) ||
	    attr_u64(r, "runtime_id", &in->runtime_id) || attr_u64(r, "interval", &in->interval) ||
	    attr_str(r, "reason", in->reason, sizeof in->reason) ||
	    attr_str(r, "mpi_flavour", in->mpi_flavour, sizeof in->mpi_flavour) ||
	    attr_str(r, "program", in->program, sizeof in->program) ||
	    attr_str(r, "runtime", in->runtime, sizeof in->runtime))
		return -1;
	/* incremental generations (format 2); older files are full */
	in->pages_parent = in->chain_depth = 0;
	if ((attr_exists(r, "pages_parent") > 0 && attr_u64(r, "pages_parent", &in->pages_parent)) ||
	    (attr_exists(r, "chain_depth") > 0 && attr_u64(r, "chain_depth", &in->chain_depth)))
		return -1;
	if (in->pages_parent >= in->generation) {
		ck_set_error("%s: generation %llu's pages depend on generation %llu, not an older one "
		             "(corrupt file)", r->path, (unsigned long long)in->generation,
		             (unsigned long long)in->pages_parent);
		return -1;
	}
	if ((ds = ds_open(r, "/argv", H5P_DEFAULT, &fs, &dims)) < 0)
		return -1;
	if (dims > sizeof in->argv) {
		ck_set_error("%s: /argv has %llu bytes, at most %zu allowed (corrupt file)", r->path,
		             (unsigned long long)dims, sizeof in->argv);
		rc = -1;
	} else {
		in->argv_len = dims;
		rc = ds_read(r, ds, fs, "/argv", H5T_NATIVE_UINT8, 0, dims, in->argv);
	}
	ds_close(ds, fs);
	return rc;
}

static int read_ranks(struct container_reader *r)
{
	uint64_t n = r->info.nranks, dims;
	hid_t ds, fs;
	void *rows;

	if (!n) {
		ck_set_error("%s: generation has no ranks (corrupt file)", r->path);
		return -1;
	}
	if ((ds = ds_open(r, "/ranks", H5P_DEFAULT, &fs, &dims)) < 0)
		return -1;
	ds_close(ds, fs);
	if (dims != n) {
		ck_set_error("%s: /ranks has %llu rows but nranks is %llu (corrupt file)", r->path,
		             (unsigned long long)dims, (unsigned long long)n);
		return -1;
	}
	if (rows_read(r, "/ranks", r->t.rank, sizeof *r->ranks, 0, n, &rows))
		return -1;
	r->ranks = rows;
	r->nranks = n;
	for (uint64_t i = 0; i < n; i++)
		if (r->ranks[i].rank != i) {
			ck_set_error("%s: /ranks row %llu is for rank %llu (corrupt file)", r->path,
			             (unsigned long long)i, (unsigned long long)r->ranks[i].rank);
			return -1;
		}
	return 0;
}

static hid_t file_open(const char *path)
{
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), f = -1;

	/* STRONG: closing the reader closes whatever an error path left
	 * open; locks must not fail on file systems without flock */
	if (fapl >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0 &&
	    H5Pset_file_locking(fapl, 1, 1) >= 0)
		f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
	if (f < 0)
		ck_set_h5_error(path, "open", "the file");
	if (fapl >= 0)
		H5Pclose(fapl);
	return f;
}

/* HDF5 opens the file by name: it must be the one checked on fd. */
static int same_file(struct container_reader *r, const struct stat *st)
{
	struct stat b;
	void *h = NULL;

	if (H5Fget_vfd_handle(r->file, H5P_DEFAULT, &h) < 0 || !h) {
		ck_set_h5_error(r->path, "open", "the file's descriptor");
		return -1;
	}
	if (fstat(*(int *)h, &b) < 0) {
		ck_set_error("%s: fstat: %s", r->path, strerror(errno));
		return -1;
	}
	if (b.st_dev != st->st_dev || b.st_ino != st->st_ino) {
		ck_set_error("%s: replaced while being opened, not read", r->path);
		return -1;
	}
	return 0;
}

/* A generation whose page data this process cannot decode is refused
 * when opened, before a restart has changed anything. */
static int memory_filters(struct container_reader *r)
{
	uint64_t dims;
	hid_t ds, fs;
	int rc;

	if ((ds = ds_open(r, "/memory", H5P_DEFAULT, &fs, &dims)) < 0)
		return -1;
	rc = ck_memory_filters_available(r->path, ds);
	ds_close(ds, fs);
	return rc;
}

static struct container_reader *open_checked(const char *path, int own)
{
	struct container_reader *r;
	struct stat st;
	uint64_t version, complete;
	htri_t is;
	int fd, e;

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	if (!path) {
		ck_set_error("container_open: no path");
		return NULL;
	}
	if (ck_codecs_register() < 0)
		return NULL;
	/* plain system errors first: HDF5 would blur them. A generation is
	 * never a symbolic link (in a shared directory anyone can plant one),
	 * and what is checked is the file opened, not a name looked up again */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			ck_set_error("%s: no such file", path);
		else if (errno == ELOOP)
			ck_set_error("%s: a symbolic link, not followed", path);
		else
			ck_set_error("%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		ck_set_error("%s: fstat: %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	/* fd stays open until HDF5 has opened the file: the inode cannot be
	 * reused meanwhile */
	if (!S_ISREG(st.st_mode)) {
		ck_set_error("%s: not a regular file", path);
		goto fail_fd;
	}
	if (own && st.st_uid != getuid()) {
		ck_set_error("%s: owned by uid %u, not by uid %u: not written by you, not used", path,
		             (unsigned)st.st_uid, (unsigned)getuid());
		goto fail_fd;
	}
	if (!st.st_size) {
		ck_set_error("%s: empty file, not an HDF5 file (truncated)", path);
		goto fail_fd;
	}
	if ((is = H5Fis_hdf5(path)) <= 0) {
		ck_set_error("%s: not an HDF5 file (truncated or corrupt)", path);
		goto fail_fd;
	}

	if (!(r = calloc(1, sizeof *r)) || !(r->path = strdup(path))) {
		ck_set_error("%s: out of memory", path);
		free(r);
		goto fail_fd;
	}
	r->t = (struct ck_types){ -1, -1, -1, -1, -1, -1, -1, -1, -1 };
	r->own = own;
	if ((r->file = file_open(path)) < 0 || same_file(r, &st)) {
		close(fd);
		goto fail;
	}
	if (close(fd) < 0) {
		ck_set_error("%s: close: %s", path, strerror(errno));
		goto fail;
	}
	if ((e = attr_exists(r, "format_version")) <= 0) {
		if (!e)
			ck_set_error("%s: not a ckptmpi container (no format_version)", path);
		goto fail;
	}
	if (attr_u64(r, "format_version", &version))
		goto fail;
	if (version != CK_FORMAT_VERSION && version != CK_FORMAT_VERSION_INCREMENTAL) {
		ck_set_error("%s: format version %llu, this ckptmpi reads %u and %u", path,
		             (unsigned long long)version, CK_FORMAT_VERSION,
		             CK_FORMAT_VERSION_INCREMENTAL);
		goto fail;
	}
	if ((e = attr_exists(r, "complete")) < 0)
		goto fail;
	if (!e || attr_u64(r, "complete", &complete) || complete != 1) {
		ck_set_error("%s: incomplete generation", path);
		goto fail;
	}
	if (ck_types_create(&r->t) < 0) {
		ck_set_h5_error(path, "create", "table types");
		goto fail;
	}
	if (read_info(r) || read_ranks(r) || memory_filters(r))
		goto fail;
	return r;

fail:
	container_close(r);
	return NULL;
fail_fd:
	close(fd);
	return NULL;
}

struct container_reader *container_open(const char *path) { return open_checked(path, 0); }

struct container_reader *container_open_own(const char *path) { return open_checked(path, 1); }

void container_close(struct container_reader *r)
{
	if (!r)
		return;
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	ck_types_close(&r->t);
	if (r->file >= 0)
		H5Fclose(r->file);
	free(r->ranks);
	free(r->path);
	free(r);
}

int container_info(struct container_reader *r, struct ck_generation_info *info)
{
	if (!r || !info) {
		ck_set_error("container_info: missing argument");
		return -1;
	}
	*info = r->info;
	return 0;
}

static const struct ck_rank_row *rank_row(struct container_reader *r, uint64_t rank)
{
	if (!r) {
		ck_set_error("container: no reader");
		return NULL;
	}
	if (rank >= r->nranks) {
		ck_set_error("%s: no rank %llu, the generation has %llu", r->path,
		             (unsigned long long)rank, (unsigned long long)r->nranks);
		return NULL;
	}
	return &r->ranks[rank];
}

/* A string of the rank's /strings slice, or NULL for offset -1. */
static int string_at(struct container_reader *r, const char *blob, uint64_t len, int64_t off,
                     const char *what, char **out)
{
	*out = NULL;
	if (off == -1)
		return 0;
	if (off < 0 || (uint64_t)off >= len || !memchr(blob + off, 0, len - (uint64_t)off)) {
		ck_set_error("%s: bad string offset %lld for %s (corrupt file)", r->path,
		             (long long)off, what);
		return -1;
	}
	if (!(*out = strdup(blob + off))) {
		ck_set_error("%s: out of memory", r->path);
		return -1;
	}
	return 0;
}

static int read_strings(struct container_reader *r, const struct ck_rank_row *row, char **blob)
{
	uint64_t dims;
	hid_t ds, fs;
	int rc = -1;

	*blob = NULL;
	if ((ds = ds_open(r, "/strings", H5P_DEFAULT, &fs, &dims)) < 0)
		return -1;
	if (row->strings_offset > dims || row->strings_len > dims - row->strings_offset)
		ck_set_error("%s: rank %llu strings beyond /strings (corrupt file)", r->path,
		             (unsigned long long)row->rank);
	else if (row->strings_len >= SIZE_MAX || !(*blob = malloc(row->strings_len + 1)))
		ck_set_error("%s: out of memory for strings", r->path);
	else
		rc = ds_read(r, ds, fs, "/strings", H5T_NATIVE_UINT8, row->strings_offset,
		             row->strings_len, *blob);
	ds_close(ds, fs);
	return rc;
}

/* Everything a restore relies on to index memory must be in range. */
static int check_image(struct container_reader *r, const struct ck_rank_row *row,
                       const struct ck_image *img)
{
	const char *p = r->path;
	unsigned long long rank = row->rank;

	for (size_t i = 0; i < img->nregions; i++) {
		const struct ck_region *g = &img->regions[i];

		if (g->run_first > img->nruns || g->run_count > img->nruns - g->run_first) {
			ck_set_error("%s: rank %llu region %zu names runs beyond its run table (corrupt file)",
			             p, rank, i);
			return -1;
		}
	}
	for (size_t i = 0; i < img->nruns; i++) {
		const struct ck_page_run *u = &img->runs[i];

		if (u->data_offset == CK_RUN_ZEROS && u->npages <= UINT64_MAX / CK_PAGE_SIZE)
			continue; /* zero pages, nothing stored */
		if (u->npages > UINT64_MAX / CK_PAGE_SIZE || u->data_offset > row->memory_len ||
		    u->npages * CK_PAGE_SIZE > row->memory_len - u->data_offset) {
			ck_set_error("%s: rank %llu run %zu lies beyond the rank's page data (corrupt file)",
			             p, rank, i);
			return -1;
		}
	}
	for (size_t i = 0; i < img->nfds; i++) {
		const struct ck_fd *f = &img->fds[i];

		if (ck_fd_has_data(f->kind) && (f->data_offset > row->filedata_len ||
		    f->data_len > row->filedata_len - f->data_offset)) {
			ck_set_error("%s: rank %llu fd %lld data lies beyond the rank's file data (corrupt file)",
			             p, rank, (long long)f->fd);
			return -1;
		}
	}
	return 0;
}

int container_read_image(struct container_reader *r, uint64_t rank, struct ck_image *img)
{
	const struct ck_rank_row *row;
	struct ck_region_row *rr = NULL;
	struct ck_fd_row *fr = NULL;
	char *blob = NULL;
	void *p;

	/* per thread in a thread-safe HDF5: this may not be the opener's */
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	if (!img) {
		ck_set_error("container_read_image: no image");
		return -1;
	}
	memset(img, 0, sizeof *img);
	if (!(row = rank_row(r, rank)))
		return -1;
	if (row->region_count > SIZE_MAX || row->run_count > SIZE_MAX ||
	    row->thread_count > SIZE_MAX || row->fd_count > SIZE_MAX || row->timer_count > SIZE_MAX) {
		ck_set_error("%s: rank %llu tables too large (corrupt file)", r->path,
		             (unsigned long long)rank);
		return -1;
	}

	if (rows_read(r, "/regions", r->t.region, sizeof *rr, row->region_first, row->region_count, &p))
		goto fail;
	rr = p;
	if (rows_read(r, "/fds", r->t.fd, sizeof *fr, row->fd_first, row->fd_count, &p))
		goto fail;
	fr = p;
	if (rows_read(r, "/runs", r->t.run, sizeof *img->runs, row->run_first, row->run_count, &p))
		goto fail;
	img->runs = p;
	img->nruns = row->run_count;
	if (rows_read(r, "/threads", r->t.thread, sizeof *img->threads, row->thread_first,
	              row->thread_count, &p))
		goto fail;
	img->threads = p;
	img->nthreads = row->thread_count;
	if (rows_read(r, "/timers", r->t.timer, sizeof *img->timers, row->timer_first,
	              row->timer_count, &p))
		goto fail;
	img->timers = p;
	img->ntimers = row->timer_count;
	if (rows_read_into(r, "/sigactions", r->t.sigaction, rank * CK_NSIG, CK_NSIG, img->proc.sig) ||
	    rows_read_into(r, "/rlimits", r->t.rlimit, rank * CK_NRLIMITS, CK_NRLIMITS,
	                   img->proc.rlim) ||
	    rows_read_into(r, "/itimers", r->t.itimer, rank * 3, 3, img->proc.itimer))
		goto fail;
	if (read_strings(r, row, &blob))
		goto fail;

	if (row->region_count &&
	    !(img->regions = calloc(row->region_count, sizeof *img->regions))) {
		ck_set_error("%s: out of memory", r->path);
		goto fail;
	}
	img->nregions = row->region_count;
	for (size_t i = 0; i < img->nregions; i++) {
		struct ck_region *g = &img->regions[i];

		g->start = rr[i].start;
		g->end = rr[i].end;
		g->prot = rr[i].prot;
		g->kind = rr[i].kind;
		g->file_offset = rr[i].file_offset;
		g->file_size = rr[i].file_size;
		g->file_mtime_ns = rr[i].file_mtime_ns;
		g->run_first = rr[i].run_first;
		g->run_count = rr[i].run_count;
		g->inherit = rr[i].inherit;
		if (string_at(r, blob, row->strings_len, rr[i].path, "a region path", &g->path))
			goto fail;
	}
	if (row->fd_count && !(img->fds = calloc(row->fd_count, sizeof *img->fds))) {
		ck_set_error("%s: out of memory", r->path);
		goto fail;
	}
	img->nfds = row->fd_count;
	for (size_t i = 0; i < img->nfds; i++) {
		struct ck_fd *f = &img->fds[i];

		f->fd = fr[i].fd;
		f->flags = fr[i].flags;
		f->offset = fr[i].offset;
		f->kind = fr[i].kind;
		f->data_offset = fr[i].data_offset;
		f->data_len = fr[i].data_len;
		f->dev = fr[i].dev;
		f->ino = fr[i].ino;
		f->uid = fr[i].uid;
		if (string_at(r, blob, row->strings_len, fr[i].path, "an fd path", &f->path))
			goto fail;
	}

	img->proc.pid = row->pid;
	img->proc.umask = row->umask;
	img->proc.tid_offset = row->tid_offset;
	img->proc.rseq_offset = row->rseq_offset;
	img->proc.rseq_size = row->rseq_size;
	img->proc.vdso_start = row->vdso_start;
	img->proc.vdso_end = row->vdso_end;
	img->proc.link_epoch = row->link_epoch;
	img->proc.upper_size = row->upper_size;
	if (string_at(r, blob, row->strings_len, row->cwd, "the cwd", &img->proc.cwd))
		goto fail;
	if (row->host[0] && !(img->proc.host = strndup(row->host, CK_HOST_LEN))) {
		ck_set_error("%s: out of memory", r->path);
		goto fail;
	}
	img->memory_bytes = row->memory_len;
	img->filedata_bytes = row->filedata_len;
	if (check_image(r, row, img))
		goto fail;
	free(blob);
	free(rr);
	free(fr);
	return 0;

fail:
	free(blob);
	free(rr);
	free(fr);
	ck_image_free(img);
	return -1;
}

struct page_reader {
	struct container_reader *r;
	hid_t ds, fs;
	uint64_t base;              /* dataset offset of the rank's slice */
	uint64_t end;               /* readable bytes of the slice, padding included */
	container_progress_fn progress;
	uint64_t done, total, reported;
};

static void progress_add(struct page_reader *pr, uint64_t n)
{
	pr->done += n;
	if (pr->progress && pr->done - pr->reported >= CK_PROGRESS_STEP) {
		pr->reported = pr->done;
		pr->progress(pr->done, pr->total);
	}
}

static int pages_read(struct page_reader *pr, uint64_t off, uint64_t len, void *dst)
{
	return ds_read(pr->r, pr->ds, pr->fs, "/memory", H5T_NATIVE_UINT8, pr->base + off, len, dst);
}

static int pages_to_memory(struct page_reader *pr, const struct ck_image *img, uint8_t *stage)
{
	uint64_t win_off = 0, win_len = 0;

	for (size_t i = 0; i < img->nruns; i++) {
		const struct ck_page_run *u = &img->runs[i];
		uint64_t off = u->data_offset, len = ck_run_bytes(u);
		uint8_t *dst = (uint8_t *)(uintptr_t)u->addr;

		if (!len)
			continue;
		if (len >= CK_DIRECT_MIN) {
			/* no copy through the stage; pieces end on chunk
			 * boundaries so no chunk is decoded twice in a row */
			while (len) {
				uint64_t n = ck_align_up(off + 1, CK_DIRECT_PIECE) - off;

				if (n > len)
					n = len;
				if (pages_read(pr, off, n, dst))
					return -1;
				progress_add(pr, n);
				off += n;
				dst += n;
				len -= n;
			}
			continue;
		}
		if (off < win_off || off + len > win_off + win_len) {
			/* whole chunks from the run's first one, so the
			 * following small runs are found in the stage */
			win_off = off / CK_MEMORY_CHUNK * CK_MEMORY_CHUNK;
			win_len = pr->end - win_off;
			if (win_len > CK_STAGE_BYTES)
				win_len = CK_STAGE_BYTES;
			if (pages_read(pr, win_off, win_len, stage))
				return -1;
		}
		memcpy(dst, stage + (off - win_off), len);
		progress_add(pr, len);
	}
	return 0;
}

static int pages_verify(struct page_reader *pr, uint8_t *stage)
{
	for (uint64_t off = 0; off < pr->end; off += CK_STAGE_BYTES) {
		uint64_t n = pr->end - off;

		if (n > CK_STAGE_BYTES)
			n = CK_STAGE_BYTES;
		if (pages_read(pr, off, n, stage))
			return -1;
		progress_add(pr, n);
	}
	return 0;
}

static int read_filedata(struct container_reader *r, const struct ck_rank_row *row,
                         struct ck_image *img)
{
	uint64_t dims;
	hid_t ds, fs;
	int rc = 0;

	for (size_t i = 0; i < img->nfds; i++) {
		free(img->fds[i].data);
		img->fds[i].data = NULL;
	}
	if (!row->filedata_len)
		return 0;
	if ((ds = ds_open(r, "/filedata", H5P_DEFAULT, &fs, &dims)) < 0)
		return -1;
	if (row->filedata_offset > dims || row->filedata_len > dims - row->filedata_offset) {
		ck_set_error("%s: rank %llu file data beyond /filedata (corrupt file)", r->path,
		             (unsigned long long)row->rank);
		rc = -1;
	}
	for (size_t i = 0; !rc && i < img->nfds; i++) {
		struct ck_fd *f = &img->fds[i];

		/* only deleted files have their contents saved */
		if (!ck_fd_has_data(f->kind) || !f->data_len)
			continue;
		if (f->data_len > SIZE_MAX || !(f->data = malloc(f->data_len))) {
			ck_set_error("%s: out of memory for %llu bytes of fd %lld", r->path,
			             (unsigned long long)f->data_len, (long long)f->fd);
			rc = -1;
		} else
			rc = ds_read(r, ds, fs, "/filedata", H5T_NATIVE_UINT8,
			             row->filedata_offset + f->data_offset, f->data_len, f->data);
	}
	ds_close(ds, fs);
	return rc;
}

int container_read_pages(struct container_reader *r, uint64_t rank, struct ck_image *img,
                         int to_memory, container_progress_fn progress)
{
	const struct ck_rank_row *row;
	struct page_reader pr = { .r = r, .ds = -1, .fs = -1, .progress = progress };
	uint8_t *stage = NULL;
	uint64_t dims = 0;
	hid_t dapl = -1;
	int rc = -1;

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	if (!img) {
		ck_set_error("container_read_pages: no image");
		return -1;
	}
	if (!(row = rank_row(r, rank)) || check_image(r, row, img))
		return -1;
	if (to_memory && r->info.pages_parent) {
		/* an incremental generation: the pages its ancestors hold first,
		 * its own over them */
		int inherits = 0;
		for (size_t i = 0; i < img->nregions; i++)
			inherits |= img->regions[i].inherit != 0;
		if (inherits && chain_read_ancestors(r->path, r->own, &r->info, rank, img, progress))
			return -1;
	}
	if (to_memory) /* pages named zero, over what an ancestor held there */
		for (size_t i = 0; i < img->nruns; i++)
			if (img->runs[i].data_offset == CK_RUN_ZEROS &&
			    /* memory read behind the program: no ancestor's
			     * pages are there (they are disjoint), and a page
			     * nothing holds is zeros when touched */
			    !ck_lazy_covers(img->runs[i].addr, img->runs[i].npages * CK_PAGE_SIZE))
				memset((void *)(uintptr_t)img->runs[i].addr, 0,
				       img->runs[i].npages * CK_PAGE_SIZE);
	if (read_filedata(r, row, img))
		return -1;
	if (!row->memory_len) {
		if (progress)
			progress(0, 0);
		return 0;
	}
	/* a few chunks cached: a direct read and the small runs around it
	 * share their boundary chunks */
	if ((dapl = H5Pcreate(H5P_DATASET_ACCESS)) < 0 ||
	    H5Pset_chunk_cache(dapl, 521, 4 * CK_MEMORY_CHUNK, 1.0) < 0) {
		ck_set_h5_error(r->path, "read", "/memory");
		goto out;
	}
	if ((pr.ds = ds_open(r, "/memory", dapl, &pr.fs, &dims)) < 0)
		goto out;
	if (row->memory_offset > dims || row->memory_len > dims - row->memory_offset) {
		ck_set_error("%s: rank %llu page data beyond /memory (corrupt file)", r->path,
		             (unsigned long long)rank);
		goto out;
	}
	pr.base = row->memory_offset;
	pr.end = ck_align_up(row->memory_len, CK_MEMORY_CHUNK);
	if (pr.end > dims - pr.base)
		pr.end = dims - pr.base;
	pr.total = to_memory ? row->memory_len : pr.end;
	{
		struct ck_chunk_read cr = { r->path, rank, r->file, pr.ds, pr.base, pr.end,
		                            to_memory ? img : NULL, progress, pr.total };

		/* 1: not a file the chunk reader knows, HDF5 reads it */
		if ((rc = ck_chunks_read(&cr)) <= 0)
			goto done;
		rc = -1;
	}
	if (!(stage = malloc(CK_STAGE_BYTES))) {
		ck_set_error("%s: out of memory for the staging buffer", r->path);
		goto out;
	}
	rc = to_memory ? pages_to_memory(&pr, img, stage) : pages_verify(&pr, stage);
done:
	if (!rc && progress)
		progress(pr.total, pr.total);
out:
	free(stage);
	ds_close(pr.ds, pr.fs);
	if (dapl >= 0)
		H5Pclose(dapl);
	return rc;
}
