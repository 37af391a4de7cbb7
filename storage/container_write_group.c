/* Writing a generation of a job without MPI (core/job_group.c): one
 * container, a slice per member, with the serial HDF5.
 *
 * Without MPI-IO two processes must never have the same HDF5 file open for
 * writing: each keeps HDF5 metadata (the file's free space, chunk indexes)
 * in its own cache. So the members write in turn:
 *   1. every member measures its image (container_group_measure) and sends
 *      its counts to member 0, which hands all of them to every member;
 *   2. member 0 creates the temporary (O_EXCL, mode 0600, unpredictable
 *      name) with every dataset at its full extent, the root attributes,
 *      /argv, and closes it (container_group_create);
 *   3. each member in turn, told by member 0, opens the temporary (its own
 *      user's regular file, the inode member 0 created), writes its slice
 *      of every dataset and closes it (container_group_write_slice);
 *   4. member 0 sets `complete`, fsyncs and closes (container_group_finish)
 *      and commits with container_commit.
 * Every member computes the same placement from the same counts
 * (ck_layout_place), so each knows where its slices go; the blobs
 * (/memory, /filedata, /strings) start on chunk boundaries per member as
 * in the other writers. The tables' chunks may be shared by two members:
 * the later one reads, merges and rewrites the chunk (HDF5 does), which is
 * safe only because nobody else has the file open meanwhile.
 *
 * The alternative, every member writing a container of its own and member
 * 0 copying them into one, would read and write every byte twice. */
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
#include <unistd.h>

#include "storage/container.h"
#include "storage/codec.h"
#include "storage/container_internal.h"
#include "storage/fletcher32.h"

_Static_assert(sizeof(struct container_counts) == sizeof(struct ck_counts),
               "struct container_counts mirrors struct ck_counts");

int container_group_measure(const char *dir, uint64_t member, struct ck_image *img,
                            struct container_counts *c)
{
	struct ck_counts k;

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	if (ck_rank_measure(dir, member, img, &k))
		return -1;
	memcpy(c, &k, sizeof k);
	return 0;
}

static int placement(const char *dir, const struct container_counts *all, uint64_t n,
                     struct ck_rank_row **rows, struct ck_extents *e)
{
	*rows = calloc(n, sizeof **rows);
	if (!*rows) {
		ck_set_error("%s: out of memory", dir);
		return -1;
	}
	if (ck_layout_place(dir, (const struct ck_counts *)all, n, *rows, e)) {
		free(*rows);
		*rows = NULL;
		return -1;
	}
	return 0;
}

static int make_ds(hid_t file, const char *path, const char *name, hid_t ftype, uint64_t n,
                   uint64_t chunk, const struct ck_compress *comp)
{
	hid_t ds = ck_dataset_create(file, path, name, ftype, n, chunk ? chunk : 1, comp,
	                             H5P_DEFAULT);
	if (ds < 0)
		return -1;
	if (H5Dclose(ds) < 0) {
		ck_set_h5_error(path, "create", name);
		return -1;
	}
	return 0;
}

static int make_table(hid_t file, const char *path, const char *name, hid_t memtype,
                      size_t rowsize, uint64_t nrows)
{
	hid_t ds = ck_table_create(file, path, name, memtype, rowsize, nrows);
	if (ds < 0)
		return -1;
	if (H5Dclose(ds) < 0) {
		ck_set_h5_error(path, "create", name);
		return -1;
	}
	return 0;
}

static int rows_put(hid_t file, const char *path, const char *name, hid_t memtype, uint64_t first,
                    uint64_t count, const void *rows)
{
	hsize_t off = first, n = count;
	hid_t ds = -1, fs = -1, ms = -1;
	int rc = -1;

	if (!count)
		return 0;
	if ((ds = H5Dopen2(file, name, H5P_DEFAULT)) >= 0 && (fs = H5Dget_space(ds)) >= 0 &&
	    (ms = H5Screate_simple(1, &n, NULL)) >= 0 &&
	    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &n, NULL) >= 0 &&
	    H5Dwrite(ds, memtype, ms, fs, H5P_DEFAULT, rows) >= 0)
		rc = 0;
	else
		ck_set_h5_error(path, "write", name);
	if (ms >= 0)
		H5Sclose(ms);
	if (fs >= 0)
		H5Sclose(fs);
	if (ds >= 0 && H5Dclose(ds) < 0 && !rc) {
		ck_set_h5_error(path, "write", name);
		rc = -1;
	}
	return rc;
}

int container_group_create(const char *dir, const struct ck_generation_info *info,
                           const struct container_counts *all, char *tmp_out, size_t tmp_len,
                           uint64_t *ino_out)
{
	char path[PATH_MAX];
	struct ck_rank_row *rows = NULL;
	struct ck_extents e;
	struct ck_types t = {-1, -1, -1, -1, -1, -1, -1, -1, -1};
	struct stat st;
	hid_t file = -1, fapl = -1;
	struct ck_compress comp;
	int fd = -1, n;
	uint64_t nr = info->nranks;

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	if (ck_check_info(dir, info) || ck_compress_from_env(dir, &comp))
		return -1;
	if ((n = ck_host_temp_path(path, sizeof path, dir, info->generation)) < 0)
		return -1;
	if ((size_t)n >= tmp_len) {
		ck_set_error("%s: path of the temporary file is too long", dir);
		return -1;
	}
	if (placement(dir, all, nr, &rows, &e))
		return -1;
	if (ck_types_create(&t) < 0) {
		ck_set_h5_error(path, "create", "table types");
		goto fail_early;
	}
	if ((fd = ck_create_private(dir, path)) < 0)
		goto fail_early;
	if ((fapl = ck_file_access()) < 0 || (file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0) {
		ck_set_h5_error(path, "create", "the HDF5 file");
		goto fail;
	}
	/* room for every member's slice, reserved now (H5Fcreate truncated) */
	if (ck_reserve_space(fd, path, ck_estimate_size(&e, nr, info->argv_len)) < 0)
		goto fail;
	if (ck_same_file(file, fd, path, "written") || ck_write_attrs(file, path, info) ||
	    make_ds(file, path, "/argv", H5T_STD_U8LE, info->argv_len, info->argv_len, NULL) ||
	    rows_put(file, path, "/argv", H5T_NATIVE_UINT8, 0, info->argv_len, info->argv) ||
	    make_table(file, path, "/ranks", t.rank, sizeof *rows, nr) ||
	    make_table(file, path, "/regions", t.region, sizeof(struct ck_region_row), e.nregions) ||
	    make_table(file, path, "/fds", t.fd, sizeof(struct ck_fd_row), e.nfds) ||
	    make_table(file, path, "/runs", t.run, sizeof(struct ck_page_run), e.nruns) ||
	    make_table(file, path, "/threads", t.thread, sizeof(struct ck_thread), e.nthreads) ||
	    make_table(file, path, "/timers", t.timer, sizeof(struct ck_posix_timer), e.ntimers) ||
	    make_table(file, path, "/sigactions", t.sigaction, sizeof(struct ck_sigaction),
	               nr * CK_NSIG) ||
	    make_table(file, path, "/rlimits", t.rlimit, sizeof(struct ck_rlimit), nr * CK_NRLIMITS) ||
	    make_table(file, path, "/itimers", t.itimer, sizeof(struct ck_itimer), nr * 3) ||
	    make_ds(file, path, "/strings", H5T_STD_U8LE, e.strings_bytes, e.strings_chunk, NULL) ||
	    make_ds(file, path, "/filedata", H5T_STD_U8LE, e.filedata_bytes, e.filedata_chunk, NULL) ||
	    make_ds(file, path, "/memory", H5T_STD_U8LE, e.memory_bytes, CK_MEMORY_CHUNK, &comp))
		goto fail;
	if (H5Fclose(file) < 0) {
		file = -1;
		ck_set_h5_error(path, "write", "the HDF5 file");
		goto fail;
	}
	file = -1;
	if (fstat(fd, &st) < 0) {
		ck_set_error("%s: fstat: %s", path, strerror(errno));
		goto fail;
	}
	close(fd);
	H5Pclose(fapl);
	ck_types_close(&t);
	free(rows);
	memcpy(tmp_out, path, (size_t)n + 1);
	*ino_out = (uint64_t)st.st_ino;
	return 0;
fail:
	if (file >= 0)
		H5Fclose(file);
	if (fd >= 0)
		close(fd);
	unlink(path);
fail_early:
	if (fapl >= 0)
		H5Pclose(fapl);
	ck_types_close(&t);
	free(rows);
	return -1;
}

/* The temporary member 0 made: this user's regular file, that inode. */
static int open_tmp(const char *path, uint64_t ino, hid_t *file)
{
	struct stat st;
	hid_t fapl;
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

	*file = -1;
	if (fd < 0) {
		ck_set_error("%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() ||
	    (ino && (uint64_t)st.st_ino != ino)) {
		ck_set_error("%s: not the temporary member 0 created (replaced?)", path);
		close(fd);
		return -1;
	}
	if ((fapl = ck_file_access()) < 0 || (*file = H5Fopen(path, H5F_ACC_RDWR, fapl)) < 0)
		ck_set_h5_error(path, "open", "the HDF5 file");
	if (fapl >= 0)
		H5Pclose(fapl);
	if (*file >= 0 && ck_same_file(*file, fd, path, "written")) {
		H5Fclose(*file);
		*file = -1;
	}
	if (*file < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A byte slice at `off` of dataset `name`, from `len` bytes at src padded
 * with zeros to whole chunks (the slice's own). */
struct blob {
	hid_t ds, fs;
	uint64_t chunk, off;
	int compressed;
	uint8_t *buf;   /* chunk + 4 */
	size_t fill;
	const char *path, *name;
	container_progress_fn progress;
	uint64_t done, total, reported;
};

static int blob_flush(struct blob *b)
{
	hsize_t off = b->off, n = b->chunk;
	hid_t ms;
	int rc = -1;

	if (!b->fill)
		return 0;
	memset(b->buf + b->fill, 0, b->chunk - b->fill);
	if (!b->compressed) {
		/* checksummed chunks straight to the file (as the serial writer) */
		uint32_t f = ck_fletcher32(b->buf, b->chunk);
		b->buf[b->chunk] = (uint8_t)f;
		b->buf[b->chunk + 1] = (uint8_t)(f >> 8);
		b->buf[b->chunk + 2] = (uint8_t)(f >> 16);
		b->buf[b->chunk + 3] = (uint8_t)(f >> 24);
		if (H5Dwrite_chunk(b->ds, H5P_DEFAULT, 0, &off, b->chunk + 4, b->buf) >= 0)
			rc = 0;
	} else if ((ms = H5Screate_simple(1, &n, NULL)) >= 0) {
		if (H5Sselect_hyperslab(b->fs, H5S_SELECT_SET, &off, NULL, &n, NULL) >= 0 &&
		    H5Dwrite(b->ds, H5T_NATIVE_UINT8, ms, b->fs, H5P_DEFAULT, b->buf) >= 0)
			rc = 0;
		H5Sclose(ms);
	}
	if (rc) {
		ck_set_h5_error(b->path, "write", b->name);
		return -1;
	}
	b->off += b->chunk;
	b->fill = 0;
	if (b->progress && b->done - b->reported >= CK_PROGRESS_STEP) {
		b->reported = b->done;
		b->progress(b->done, b->total);
	}
	return 0;
}

static int blob_put(struct blob *b, const void *src, uint64_t len)
{
	const uint8_t *p = src;

	while (len) {
		size_t n = b->chunk - b->fill;
		if (n > len)
			n = (size_t)len;
		memcpy(b->buf + b->fill, p, n);
		b->fill += n;
		p += n;
		len -= n;
		b->done += n;
		if (b->fill == b->chunk && blob_flush(b))
			return -1;
	}
	return 0;
}

static int blob_open(struct blob *b, hid_t file, const char *path, const char *name,
                     uint64_t chunk, uint64_t off, int compressed)
{
	memset(b, 0, sizeof *b);
	b->path = path;
	b->name = name;
	b->chunk = chunk;
	b->off = off;
	b->compressed = compressed;
	b->fs = -1;
	if (!(b->buf = malloc(chunk + 4))) {
		ck_set_error("%s: out of memory", path);
		b->ds = -1;
		return -1;
	}
	if ((b->ds = H5Dopen2(file, name, H5P_DEFAULT)) < 0 || (b->fs = H5Dget_space(b->ds)) < 0) {
		ck_set_h5_error(path, "open", name);
		return -1;
	}
	return 0;
}

static int blob_close(struct blob *b, int rc)
{
	if (!rc)
		rc = blob_flush(b);
	if (b->fs >= 0)
		H5Sclose(b->fs);
	if (b->ds >= 0 && H5Dclose(b->ds) < 0 && !rc) {
		ck_set_h5_error(b->path, "write", b->name);
		rc = -1;
	}
	free(b->buf);
	return rc;
}

int container_group_write_slice(const char *path, uint64_t ino, uint64_t nmembers,
                                uint64_t member, const struct container_counts *all,
                                struct ck_image *img, container_progress_fn progress)
{
	struct ck_rank_row *rows = NULL, *row;
	struct ck_region_row *rr = NULL;
	struct ck_fd_row *fr = NULL;
	uint8_t *strings = NULL;
	struct ck_extents e;
	struct ck_types t = {-1, -1, -1, -1, -1, -1, -1, -1, -1};
	struct blob b;
	hid_t file = -1;
	struct ck_compress comp;
	int fd = -1, rc = -1;

	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
	if (member >= nmembers) {
		ck_set_error("%s: member %llu of a job of %llu", path, (unsigned long long)member,
		             (unsigned long long)nmembers);
		return -1;
	}
	if (ck_compress_from_env(path, &comp) || placement(path, all, nmembers, &rows, &e))
		return -1;
	row = &rows[member];
	rr = calloc(row->region_count ? row->region_count : 1, sizeof *rr);
	fr = calloc(row->fd_count ? row->fd_count : 1, sizeof *fr);
	strings = calloc(row->strings_len ? row->strings_len : 1, 1);
	if (!rr || !fr || !strings) {
		ck_set_error("%s: out of memory", path);
		goto out;
	}
	ck_rank_fill(img, row, rr, fr, strings);
	if (ck_types_create(&t) < 0) {
		ck_set_h5_error(path, "create", "table types");
		goto out;
	}
	if ((fd = open_tmp(path, ino, &file)) < 0)
		goto out;
	if (rows_put(file, path, "/ranks", t.rank, member, 1, row) ||
	    rows_put(file, path, "/regions", t.region, row->region_first, row->region_count, rr) ||
	    rows_put(file, path, "/fds", t.fd, row->fd_first, row->fd_count, fr) ||
	    rows_put(file, path, "/runs", t.run, row->run_first, row->run_count, img->runs) ||
	    rows_put(file, path, "/threads", t.thread, row->thread_first, row->thread_count,
	             img->threads) ||
	    rows_put(file, path, "/timers", t.timer, row->timer_first, row->timer_count, img->timers) ||
	    rows_put(file, path, "/sigactions", t.sigaction, member * CK_NSIG, CK_NSIG,
	             img->proc.sig) ||
	    rows_put(file, path, "/rlimits", t.rlimit, member * CK_NRLIMITS, CK_NRLIMITS,
	             img->proc.rlim) ||
	    rows_put(file, path, "/itimers", t.itimer, member * 3, 3, img->proc.itimer))
		goto out;
	/* the blobs, each padded to its chunks */
	rc = blob_open(&b, file, path, "/strings", e.strings_chunk, row->strings_offset, 0);
	if (!rc)
		rc = blob_put(&b, strings, row->strings_len);
	if (blob_close(&b, rc))
		goto fail;
	rc = blob_open(&b, file, path, "/filedata", e.filedata_chunk, row->filedata_offset, 0);
	for (size_t i = 0; !rc && i < img->nfds; i++)
		if (ck_fd_has_data(img->fds[i].kind))
			rc = blob_put(&b, img->fds[i].data, img->fds[i].data_len);
	if (blob_close(&b, rc))
		goto fail;
	rc = blob_open(&b, file, path, "/memory", CK_MEMORY_CHUNK, row->memory_offset,
	               comp.codec != CK_CODEC_NONE);
	b.progress = progress;
	b.total = img->memory_bytes;
	for (size_t i = 0; !rc && i < img->nruns; i++)
		if (ck_run_bytes(&img->runs[i]))
			rc = blob_put(&b, (const void *)(uintptr_t)img->runs[i].addr,
			              ck_run_bytes(&img->runs[i]));
	if (blob_close(&b, rc))
		goto fail;
	rc = -1;
	if (H5Fclose(file) < 0) {
		file = -1;
		ck_set_h5_error(path, "write", "the HDF5 file");
		goto out;
	}
	file = -1;
	if (fsync(fd) < 0) {
		ck_set_error("%s: fsync: %s", path, strerror(errno));
		goto out;
	}
	if (progress)
		progress(img->memory_bytes, img->memory_bytes);
	rc = 0;
	goto out;
fail:
	rc = -1;
out:
	if (file >= 0)
		H5Fclose(file);
	if (fd >= 0)
		close(fd);
	ck_types_close(&t);
	free(rows);
	free(rr);
	free(fr);
	free(strings);
	return rc;
}

int container_group_finish(const char *path, uint64_t ino)
{
	struct stat st;
	hid_t file;
	int fd = open_tmp(path, ino, &file);

	if (fd < 0)
		return -1;
	if (ck_attr_u64(file, path, "complete", H5T_STD_U32LE, 1)) {
		H5Fclose(file);
		close(fd);
		return -1;
	}
	if (H5Fclose(file) < 0) {
		ck_set_h5_error(path, "write", "the HDF5 file");
		close(fd);
		return -1;
	}
	/* give back what the estimate reserved beyond the end */
	if (fstat(fd, &st) < 0 || ftruncate(fd, st.st_size) < 0 || fsync(fd) < 0) {
		ck_set_error("%s: cannot finish: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		ck_set_error("%s: close: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}
