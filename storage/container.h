/* The HDF5 container: one file per checkpoint generation.
 *
 * Writing goes to a temporary name in the directory and becomes visible
 * only through container_commit() (fsync, rename without replacing,
 * directory fsync). Every dataset is chunked and carries HDF5's fletcher32
 * checksum filter, so every read verifies what it reads.
 *
 * All functions return 0 on success and -1 on failure; on failure
 * container_error() holds a one-line message naming the file and the fault
 * (no HDF5 error stack is ever printed). */
#ifndef CKPTMPI_STORAGE_CONTAINER_H
#define CKPTMPI_STORAGE_CONTAINER_H

#include "core/image.h"

/* message of the last failure in this thread */
const char *container_error(void);
/* set it: a job's writer whose member failed elsewhere (core/job_group.c) */
void container_set_error(const char *msg);

/* CKPTMPI_COMPRESS checked as the writer reads it (storage/codec.h), so a
 * typo is refused at the start, not at the first checkpoint. */
int container_compress_setting_check(void);

/* Set up the HDF5 library. The runtime calls it early, before it takes
 * the snapshot of its own memory, so that HDF5's state is part of it; the
 * other functions work without it too. */
int storage_init(void);

struct container_writer;
struct container_reader;

/* Progress callback for long reads and writes: bytes done of total. */
typedef void (*container_progress_fn)(uint64_t done, uint64_t total);

/* Write generation `info->generation` of the images of all ranks (here:
 * nranks == 1, images[0]) into DIR/.ckpt-NNNNNN.h5.tmp.HOST.PID.RANDOM,
 * mode 0600, created with O_EXCL|O_NOFOLLOW under a name nobody can
 * predict (RANDOM: 16 hex digits; a name taken already is never removed
 * or followed, another one is drawn).
 * Page data is read from each run's address in the current process.
 * Fills runs[].data_offset and fds[].data_offset. Does not commit. */
int container_write(const char *dir, const struct ck_generation_info *info,
                    struct ck_image *images, container_progress_fn progress,
                    char *tmp_path_out, size_t tmp_path_len);

/* DIR/ckpt-NNNNNN.h5, generation's name, into out[len]: 0, or -1 (too
 * long, message set). */
int container_path(char *out, size_t len, const char *dir, uint64_t generation);

/* Make the temporary file DIR/ckpt-NNNNNN.h5 atomically; fails (and
 * leaves the temporary) if that name exists. */
int container_commit(const char *dir, uint64_t generation, const char *tmp_path);

/* How the ranks writing one shared container take the writer's own steps
 * together (parallel HDF5 keeps its communicator): over MPI
 * (container_ranks_mpi), or over the runtime's control network beside a
 * running program (pmpi/lower_container.c). Every rank takes every step,
 * in the same order; each returns 0, or -1 with container_error() set. */
struct ck_ranks {
	int rank, size;
	void *ctx;
	/* rank 0's len bytes into every rank's buf */
	int (*bcast)(void *ctx, void *buf, size_t len);
	/* every rank's len bytes, in rank order */
	int (*allgather)(void *ctx, const void *mine, size_t len, void *all);
	/* rank 0 gets rank r's counts[r] bytes at all + displs[r] */
	int (*gatherv)(void *ctx, const void *mine, size_t len, void *all, const uint64_t *counts,
	               const uint64_t *displs);
	/* rank r gets counts[r] bytes of rank 0's all from displs[r] */
	int (*scatterv)(void *ctx, const void *all, const uint64_t *counts, const uint64_t *displs,
	                void *mine, size_t len);
	/* the lowest rank whose ok is 0 (size when none), and its msg (msglen
	 * bytes) on every rank; -1 when the ranks cannot say */
	int (*first_failed)(void *ctx, int ok, char *msg, size_t msglen);
	int (*barrier)(void *ctx);
};

#ifdef CKPTMPI_STORAGE_MPI
#include <mpi.h>

/* The ranks of *comm (kept by the caller while out is used) */
int container_ranks_mpi(MPI_Comm *comm, struct ck_ranks *out);

/* Collective over comm (every rank calls it with its own image; info->nranks
 * == size of comm). Writes generation info->generation into one shared
 * temporary file in DIR with parallel HDF5 (MPI-IO driver), every rank its
 * own slice of each shared dataset, mode 0600. Fills the image's
 * runs[].data_offset / fds[].data_offset like container_write. Returns the
 * same result on every rank: 0, or -1 on all ranks if any rank failed
 * (container_error() names the file, the failing rank and the cause); on
 * failure the temporary is removed and nothing else changes.
 *
 * The root attributes come from rank 0's info (the generation must agree
 * on every rank); the temporary is named after rank 0's host and pid,
 * each rank reaching it through its own DIR. progress reports this rank's
 * page data. tmp_path_out gets this rank's name of the temporary. */
int container_write_mpi(MPI_Comm comm, const char *dir, const struct ck_generation_info *info,
                        struct ck_image *image, container_progress_fn progress,
                        char *tmp_path_out, size_t tmp_path_len);

/* The same over `ranks` (the direct road only: no parallel HDF5), with
 * this rank's page data left for later (uncompressed,
 * /memory laid out by rank 0; container_mpi_pages_possible says
 * beforehand whether the file's layout allows it): *pages is set and
 * the file is complete but for this rank's /memory chunks, which
 * container_mpi_pages_write (no MPI: it can run in a process forked
 * from the rank, with the image's memory as it was) writes and fsyncs.
 * Every rank then agrees on the outcome, frees the pages and commits
 * (container_commit_ranks), or rank 0 removes the temporary. It never
 * writes the page data itself: where they cannot be left, it fails on
 * every rank (the image's memory may have moved on since the cut). */
struct container_mpi_pages;
int container_write_mpi_begin(const struct ck_ranks *ranks, const char *dir,
                              const struct ck_generation_info *info, struct ck_image *image,
                              container_progress_fn progress, char *tmp_path_out,
                              size_t tmp_path_len, struct container_mpi_pages **pages);
int container_mpi_pages_write(struct container_mpi_pages *pages, container_progress_fn progress);
/* Whether this rank's page data can be left to a writer forked before
 * container_write_mpi_begin (no MPI, local): 1 when they can provided
 * every rank says so (rank 0's CKPTMPI_COMPRESS and CKPTMPI_MPIO_DIRECT
 * decide, and every rank's rows must fit the gather). Then
 * container_write_mpi_begin defers on every rank, or fails. */
int container_mpi_pages_possible(const char *dir, uint64_t rank, uint64_t nranks,
                                 struct ck_image *image);
/* The pages as bytes (*plan, malloc'd) for a writer forked before they
 * were laid out, and back in that writer, whose `image` is the
 * snapshot's (it opens the temporary by its path, checking the inode). */
int container_mpi_pages_pack(const struct container_mpi_pages *pages, void **plan, size_t *len);
int container_mpi_pages_unpack(const void *plan, size_t len, const struct ck_image *image,
                               struct container_mpi_pages **pages);
void container_mpi_pages_free(struct container_mpi_pages *pages);

/* Collective: after every rank has closed the file, rank 0 fsyncs, renames it
 * to DIR/ckpt-NNNNNN.h5 without replacing, fsyncs the directory; the result
 * is broadcast, same on every rank. */
int container_commit_mpi(MPI_Comm comm, const char *dir, uint64_t generation, const char *tmp_path);
/* the same, the ranks' steps as `ranks` takes them */
int container_commit_ranks(const struct ck_ranks *ranks, const char *dir, uint64_t generation,
                           const char *tmp_path);
#endif

/* A job without MPI (core/job_group.c): one container, a slice per
 * member, written in turn with the serial HDF5 (container_write_group.c
 * says why and how). What a member contributes, exchanged between the
 * members: */
struct container_counts {
	uint64_t regions, runs, threads, fds, timers;
	uint64_t memory, filedata, strings;
};
/* Every member: count its image (sets runs[].data_offset, ...). */
int container_group_measure(const char *dir, uint64_t member, struct ck_image *img,
                            struct container_counts *c);
/* Member 0: the temporary (as container_write names and creates it) with
 * every dataset at the extent all[0..info->nranks) needs and the root
 * attributes but `complete`; closed. Its path and inode are handed to the
 * members. */
int container_group_create(const char *dir, const struct ck_generation_info *info,
                           const struct container_counts *all, char *tmp_out, size_t tmp_len,
                           uint64_t *ino_out);
/* Each member in turn, nobody else having the file open: its slices. */
int container_group_write_slice(const char *tmp, uint64_t ino, uint64_t nmembers,
                                uint64_t member, const struct container_counts *all,
                                struct ck_image *img, container_progress_fn progress);
/* Member 0, after every member wrote: `complete`, fsync. Then
 * container_commit. */
int container_group_finish(const char *tmp, uint64_t ino);

/* Open a committed generation. Checks format version and completeness.
 * The file is opened without following a symbolic link and must be a
 * regular file; HDF5 must end up reading that same file. */
struct container_reader *container_open(const char *path);
/* Same, and the file must be owned by this process's user (checked on
 * the opened descriptor): what a restart uses. */
struct container_reader *container_open_own(const char *path);
void container_close(struct container_reader *r);
int container_info(struct container_reader *r, struct ck_generation_info *info);

/* Read rank's image tables (regions, runs, threads, fds, timers, proc);
 * no page data. Free with ck_image_free(). */
int container_read_image(struct container_reader *r, uint64_t rank, struct ck_image *img);

/* Read rank's page data: each run's bytes go to run.addr when `to_memory`
 * is non-zero (the caller has mapped those pages writable), or are only
 * read and checksum-verified otherwise. Deleted-file contents are read into
 * freshly malloc'd fds[i].data. */
int container_read_pages(struct container_reader *r, uint64_t rank, struct ck_image *img,
                         int to_memory, container_progress_fn progress);

/* Generations in a directory. A name that is not this user's own regular
 * file (a symbolic link, a directory, a file of another user: in a shared
 * directory anyone may plant ckpt-NNNNNN.h5) is listed with `foreign` set
 * and `why` saying what it is; restart, "latest" and retention ignore it. */
struct generation_entry {
	uint64_t generation;
	char path[4096];
	int foreign;
	char why[96];              /* "owned by uid 65533, not by uid 65534", ... */
};
/* Committed generations in DIR, ascending; *n entries, malloc'd array.
 * Returns -1 with a message if DIR is missing or unreadable. */
int generations_list(const char *dir, struct generation_entry **out, size_t *n);
/* The generation a restart of DIR uses: `want`, or the newest of this
 * user's own when want is 0. Foreign names are never picked: a foreign
 * `want` is refused (message naming the file), and each foreign name newer
 * than the pick is passed to `skipped` (may be NULL). 0 or -1 with a
 * message. */
int generations_pick(const char *dir, uint64_t want, struct generation_entry *out,
                     void (*skipped)(const struct generation_entry *e));
/* The number the next generation follows: the highest of this user's own
 * generations in DIR (0 if none), moved past names just above it that are
 * taken already (foreign ones), so that latest + 1 is free. */
uint64_t generations_latest(const char *dir);
/* Remove this user's committed generations older than its newest `keep`
 * (foreign names neither count nor are touched), and stale temporaries. */
int generations_retain(const char *dir, unsigned keep);
/* Remove this user's temporaries of writers that are gone: of this host
 * with no such process, or of any host and untouched for a day. */
int generations_remove_stale(const char *dir);

#endif
