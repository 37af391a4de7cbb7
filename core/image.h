/* The in-memory description of one rank's process image.
 *
 * core/ fills it from the live process at a checkpoint (capture.c) and
 * consumes it at restart (restore.c); storage/ turns it into rows of the
 * HDF5 container and back. Only fixed-size fields plus a few strings, so
 * each table maps one-to-one onto a compound dataset.
 *
 * Page data is not held here: a page run names the address its bytes live
 * at in the current process (checkpoint) or must go to (restart). The page
 * index (runs) is kept apart from page data so that later incremental and
 * lazy restarts can address single pages. */
#ifndef CKPTMPI_CORE_IMAGE_H
#define CKPTMPI_CORE_IMAGE_H

#include <stdint.h>
#include <stddef.h>

#define CK_PAGE_SIZE 4096u
#define CK_FORMAT_VERSION 1u
/* a generation whose pages depend on its parent's: older readers refuse it */
#define CK_FORMAT_VERSION_INCREMENTAL 2u

/* region kinds */
enum ck_region_kind {
	CK_REGION_ANON = 0,        /* private anonymous: zero-filled + saved pages */
	CK_REGION_FILE_PRIVATE = 1,/* private file map: file + saved (CoW) pages */
	CK_REGION_FILE_SHARED = 2, /* shared file map: re-mapped, nothing saved */
	CK_REGION_SHARED_ANON = 3, /* shared anonymous: saved pages, shared again */
};

struct ck_region {
	uint64_t start, end;       /* [start, end), page aligned */
	uint32_t prot;             /* PROT_READ|PROT_WRITE|PROT_EXEC */
	uint32_t kind;             /* enum ck_region_kind */
	uint64_t file_offset;      /* for file kinds */
	uint64_t file_size;        /* identity of the file at checkpoint, */
	uint64_t file_mtime_ns;    /* checked before re-mapping it */
	uint64_t run_first;        /* slice of ck_image.runs holding saved pages */
	uint64_t run_count;
	uint64_t inherit;          /* 1: runs hold only the pages written since
	                              the parent generation (pages_parent); the
	                              others are the parent's (incremental) */
	char *path;                /* file path, or NULL for anonymous */
};

/* A run of consecutive saved pages. data_offset is the byte offset of the
 * run's first page in the rank's memory stream (filled by storage when
 * writing, read back when loading). */
struct ck_page_run {
	uint64_t addr;
	uint64_t npages;
	uint64_t data_offset;
};

/* data_offset of a run of zero pages whose bytes are not stored: only in
 * a region marked `inherit` (the parent may hold other bytes there, so
 * the pages must be named; full generations skip zero pages) */
#define CK_RUN_ZEROS UINT64_MAX

/* bytes of page data a run stores */
static inline uint64_t ck_run_bytes(const struct ck_page_run *r)
{
	return r->data_offset == CK_RUN_ZEROS ? 0 : r->npages * CK_PAGE_SIZE;
}

#define CK_NGREGS 23               /* mcontext gregs on x86-64 */

struct ck_thread {
	uint64_t tid;              /* kernel tid at checkpoint */
	uint64_t is_main;          /* the thread-group leader */
	uint64_t fs_base, gs_base;
	uint64_t uc_addr;          /* ucontext of the parking signal frame;
	                              the frame itself lives in saved memory */
	uint64_t robust_head, robust_len;
	uint64_t gregs[CK_NGREGS]; /* copy of the frame's registers, for tools */
};

#define CK_NSIG 65                 /* index 1..64 */
struct ck_sigaction {
	uint64_t handler, flags, restorer, mask;
};

#define CK_NRLIMITS 16
struct ck_rlimit { uint64_t cur, max; };

struct ck_itimer { uint64_t interval_us, value_us; };

struct ck_posix_timer {
	int64_t id;                /* kernel timer id, recreated in order */
	int64_t clock;             /* clockid */
	int64_t notify;            /* SIGEV_SIGNAL, SIGEV_THREAD_ID, SIGEV_NONE */
	int64_t signo;
	int64_t target_tid;        /* for SIGEV_THREAD_ID */
	uint64_t sigval;
	uint64_t interval_ns, value_ns;
};

enum ck_fd_kind {
	CK_FD_FILE = 0,            /* regular file reopened by path */
	CK_FD_DELETED = 1,         /* deleted regular file: contents saved */
	CK_FD_DEVICE = 2,          /* char device such as /dev/null, by path */
	CK_FD_DIR = 3,             /* directory, by path */
	CK_FD_SOCKET = 4,          /* a socket between members of a job
	                              (core/job_sockets.c): path describes it,
	                              data holds the bytes to send again */
	CK_FD_HELD = 5,            /* fd 1 or 2: what the program wrote there
	                              after a SIGTERM, written again at a restart
	                              (core/held_output.h); data holds it */
};

/* fd kinds whose data go to the rank's file-data stream */
static inline int ck_fd_has_data(int64_t kind)
{
	return kind == CK_FD_DELETED || kind == CK_FD_SOCKET || kind == CK_FD_HELD;
}

struct ck_fd {
	int64_t fd;
	int64_t flags;             /* open flags as in /proc/self/fdinfo */
	int64_t offset;
	int64_t kind;              /* enum ck_fd_kind */
	uint64_t data_offset;      /* deleted file: offset of contents in the */
	uint64_t data_len;         /* rank's file-data stream; for CK_FD_FILE
	                              data_len is the file's size at the
	                              checkpoint (written files roll back) */
	uint64_t dev, ino;         /* identity of the file at the checkpoint, */
	uint64_t uid;              /* checked when it is reopened by path;
	                              ino 0: not recorded (older images) */
	char *path;
	void *data;                /* deleted file contents (checkpoint side) */
};

/* Process-wide state of one rank. */
struct ck_proc {
	uint64_t pid;
	uint64_t umask;
	uint64_t tid_offset;       /* offset of glibc's cached tid in its TCB */
	int64_t rseq_offset;       /* upper glibc's __rseq_offset, rseq_size 0 */
	uint64_t rseq_size;        /* when the upper half does not use rseq */
	uint64_t vdso_start, vdso_end;
	uint64_t link_epoch;       /* restart count, seen by ckptmpi_checkpoint() */
	uint64_t upper_size;       /* bytes of upper-half address space */
	struct ck_sigaction sig[CK_NSIG];
	struct ck_rlimit rlim[CK_NRLIMITS];
	struct ck_itimer itimer[3];
	char *cwd;
	char *host;
};

struct ck_image {
	struct ck_proc proc;
	struct ck_region *regions; size_t nregions;
	struct ck_page_run *runs;  size_t nruns;
	struct ck_thread *threads; size_t nthreads;
	struct ck_fd *fds;         size_t nfds;
	struct ck_posix_timer *timers; size_t ntimers;
	uint64_t memory_bytes;     /* sum of run sizes: bytes of page data */
	uint64_t filedata_bytes;   /* sum of deleted-file contents */
};

/* Job-wide attributes of one generation. */
struct ck_generation_info {
	uint64_t generation;
	uint64_t parent;           /* generation restarted from, or 0 */
	uint64_t nranks;
	uint64_t created_unix;     /* seconds since the epoch */
	char reason[32];           /* "signal", "interval", "command", "api", "sigterm" */
	char mpi_flavour[32];      /* "none" for single-process jobs */
	char program[4096];        /* absolute path of the upper-half program */
	char runtime[4096];        /* absolute path of the runtime binary */
	uint64_t runtime_id;       /* identity (size ^ mtime) of the runtime binary */
	char argv[8192];           /* program argv, NUL-separated, argv_len bytes */
	uint64_t argv_len;
	uint64_t interval;         /* checkpoint interval in force, seconds */
	uint64_t pages_parent;     /* generation the inherited regions' other
	                              pages come from; 0: a full generation */
	uint64_t chain_depth;      /* incremental generations from the full one */
};

void ck_image_free(struct ck_image *img);

#endif
