/* The MPI state ckptmpi keeps for an application: virtual handles, the
 * creation log, per-communicator collective counters, per-peer message
 * counts and the queue of messages drained at a checkpoint.
 *
 * It lives in the upper half (raw mmap by the shim), so it is saved and
 * restored with the application's memory. The shim updates it on every
 * MPI call; the runtime (lower half) reads and rewrites it at a checkpoint
 * (drain, cut) and at a restart (replay of the creation log), while the
 * application's threads are parked. Both halves are built from this one
 * header for the same MPI, so the layout is shared. */
#ifndef CKPTMPI_PMPI_VSTATE_H
#define CKPTMPI_PMPI_VSTATE_H

#include <stdint.h>

#define CKPT_STATE_MAGIC 0x636b7074766d7069ull /* "ckptvmpi" */
/* The state is mapped here, so a fresh runtime finds it in a restored
 * image: below the runtime's window, far from where the kernel puts the
 * application's mappings. */
#define CKPT_STATE_ADDR 0x0e0000000000ull

/* Table of virtual handles: entry 0 and 1 stand for MPI_COMM_WORLD and
 * MPI_COMM_SELF (their counters; never handed out). */
#define CKPT_VT_MAX (1u << 22)
#define CKPT_VT_WORLD 0u
#define CKPT_VT_SELF 1u
#define CKPT_VT_FIRST 2u

enum ckpt_vkind {
	CKPT_VK_FREE = 0,
	CKPT_VK_COMM,
	CKPT_VK_GROUP,
	CKPT_VK_DATATYPE,
	CKPT_VK_OP,
	CKPT_VK_ERRHANDLER,
	CKPT_VK_REQUEST,
	CKPT_VK_INFO,
	CKPT_VK_MESSAGE,
	CKPT_VK_WIN,
	CKPT_VK_FILE,
	CKPT_VK_KEYVAL,
	CKPT_VK_OTHER,
};

/* request kinds and states */
/* (a request the shim does not follow — non-blocking collectives, I/O — is
 * OTHER; the cut tells collectives by the function that made them) */
enum ckpt_rkind { CKPT_RK_OTHER = 0, CKPT_RK_SEND, CKPT_RK_RECV };
enum ckpt_rstate {
	CKPT_RS_POSTING = 0, /* being handed to MPI (real is NULL until it returns) */
	CKPT_RS_ACTIVE,      /* in MPI; `flag` is set by MPI when it completes */
	CKPT_RS_DONE,        /* completed and accounted; status holds the result */
	CKPT_RS_REPOST,      /* a receive cancelled at a checkpoint: post again */
	CKPT_RS_INACTIVE,    /* persistent request not started */
};
enum ckpt_smode { CKPT_SM_STD = 0, CKPT_SM_BUF, CKPT_SM_SYNC, CKPT_SM_READY };

#define CKPT_STATUS_BYTES 32

struct ckpt_vh {
	uint64_t real;           /* the lower half's handle */
	uint32_t kind;           /* enum ckpt_vkind; CKPT_VK_FREE when unused */
	uint32_t fn;             /* index (mpi_index.h) of the call that made it */
	int32_t log;             /* creating record of the log; -1: none */
	uint32_t next_free;
	union {
		struct {         /* CKPT_VK_REQUEST */
			volatile uint32_t state;   /* enum ckpt_rstate */
			uint32_t rkind;            /* enum ckpt_rkind */
			volatile int32_t flag;     /* written by MPI_Test */
			uint16_t persistent, mode; /* mode: enum ckpt_smode */
			uint32_t cancel, pad2;     /* MPI_Cancel was called on it */
			void *buf;
			int32_t count, peer, tag, pad;
			uint64_t datatype;         /* virtual, or the real predefined type */
			uint64_t comm;             /* upper (virtual or predefined) */
			uint64_t order;            /* posting order, for re-posting */
			unsigned char status[CKPT_STATUS_BYTES];
		} r;
		struct {         /* CKPT_VK_COMM */
			volatile uint64_t seq;     /* collectives entered */
			volatile uint64_t done;    /* ... and returned from (or posted) */
			volatile uint64_t target;  /* agreed at a checkpoint */
			volatile uint64_t want;    /* a thread waits to enter this one */
			uint64_t name;             /* the same on every member: what
			                              the cut agrees on (0: not in
			                              the cut: SELF, inter) */
			int32_t size, inter;
			int32_t *world;            /* comm rank -> world rank */
		} c;
		struct {         /* CKPT_VK_MESSAGE */
			struct ckpt_dmsg *msg;     /* taken from the drained queue, or NULL */
			uint64_t comm;             /* upper handle of its communicator */
			int32_t source, tag;       /* of MPI's own matched message */
			uint64_t bytes;
		} m;
	} u;
};

/* A message drained at a checkpoint, delivered to a later receive. */
struct ckpt_dmsg {
	struct ckpt_dmsg *next;
	uint64_t comm;           /* upper handle of its communicator */
	int32_t source, tag;     /* source: rank in comm */
	uint64_t bytes;
	unsigned char data[];
};

/* Does drained message m match a receive (comm, source, tag)? Used by the
 * shim's receives and the runtime's re-posting alike. The wildcards are
 * MPI's (the same values in both halves). */
static inline int ckpt_dmsg_matches(const struct ckpt_dmsg *m, uint64_t comm, int src, int tag,
                                    int any_source, int any_tag)
{
	return m->comm == comm && (src == any_source || src == m->source) &&
	       (tag == any_tag || tag == m->tag);
}

#define CKPT_CTX_FREE_MAX 1024

/* A communicator freed on this rank whose members may not all have
 * entered as many collectives as this rank did on it (a broadcast's root
 * returns before the others enter): the cut still brings them there. */
struct ckpt_zombie {
	uint64_t name, seq;
	int32_t size, pad;
};
#define CKPT_ZOMB_CHUNK 4096u
#define CKPT_ZOMB_CHUNKS 1024u /* at most 4M between two checkpoints */

/* Where a checkpoint stands (ckpt_mpi_state.cut). */
enum ckpt_cut { CKPT_CUT_RUN = 0, CKPT_CUT_HOLD, CKPT_CUT_RUNON };

struct ckpt_mpi_state {
	uint64_t magic;
	struct ckpt_vh *vt;
	uint32_t vt_hwm;         /* entries ever used */
	uint32_t free_head;      /* free list, 0 = empty */
	volatile int32_t lock;
	int32_t world_size, world_rank;
	/* creation log: records of uint64_t words */
	uint64_t *log;
	uint64_t log_words, log_cap;
	uint32_t nrec;
	/* consistent cut */
	volatile int32_t cut;    /* enum ckpt_cut */
	volatile int32_t cut_seq;/* futex word: bumped whenever cut/targets change */
	volatile int32_t gated;  /* threads waiting at a collective's entry */
	volatile int32_t creating; /* threads between making an object and logging it */
	/* MPI_Finalize: the runtime stops using MPI (ctl_busy: it is using it) */
	volatile int32_t finalizing, ctl_busy;
	volatile uint64_t post_order;
	volatile uint64_t *sent, *recvd; /* per world rank */
	/* drained messages, oldest first */
	struct ckpt_dmsg *dq_head;
	volatile int32_t dq_count;
	/* lower values of the predefined communicators */
	uint64_t world_real, self_real, null_comm_real, null_req_real;
	/* ... and the application's values of them */
	uint64_t world_upper, self_upper;
	/* offset of the shim's per-thread lower context (ckpt_lower_fs) from
	 * a thread's FS base: cleared at a restart, the old contexts are gone */
	int64_t tls_lower_fs_off;
	/* offset of the shim's section word (pmpi/call.h) from a thread's FS
	 * base, for the park handler of a restarted runtime */
	int64_t section_tls_off;
	/* lower contexts given back by threads that ended, for the next new
	 * thread (pmpi/shim_init.c); emptied at a restart (they died with
	 * the old process) */
	uint64_t ctx_free[CKPT_CTX_FREE_MAX];
	volatile int32_t n_ctx_free, ctx_lock;
	/* the checkpoint refuses while these exist (names the call) */
	char refuse[256];
	/* the collective gate counts with plain stores; the cut orders them
	 * with membarrier (MEMBARRIER_CMD_PRIVATE_EXPEDITED) after each change
	 * of `cut` (pmpi/call.h, ckpt_coll_enter; pmpi/lower_cut.c) */
	int32_t coll_asym;
	/* names of communicators: rank 0 of a new communicator numbers it */
	uint64_t names_made;
	/* freed communicators the cut still agrees on (chunks never move:
	 * the cut reads them while threads append; it drops them only with
	 * every thread parked) */
	struct ckpt_zombie *zomb[CKPT_ZOMB_CHUNKS];
	volatile uint32_t nzomb;
	/* MPI record/replay asked of a restart (pmpi/replay_mpi.c): the
	 * restored shim reads the image's environment, not the restarted
	 * runtime's, so the runtime says it here. mrr_on: the shim's switch */
	int *mrr_on;
	volatile uint32_t mrr_epoch; /* bumped by every restart that asks */
	int32_t mrr_replay;          /* 1: replay the log in mrr_dir; 0: record */
	char mrr_dir[1024];          /* CKPTMPI_MPI_REPLAY, or CKPTMPI_DIR to record */
	/* the shim's ckpt_mrr_match_peek, for the runtime's re-posting of
	 * the receives a cut cancelled (callable on the lower thread
	 * pointer: it touches no TLS) */
	int (*mrr_match_peek)(uint32_t seq, int *source, int *tag);
};

/* Encoding of virtual handles in the application's handle type. */
#ifdef CKPTMPI_HANDLES_ARE_POINTERS
/* addresses of the entries themselves: never a real MPI object */
#define CKPT_IS_VIRT(st, h) \
	((uint64_t)(uintptr_t)(h) - (uint64_t)(uintptr_t)(st)->vt < (uint64_t)CKPT_VT_MAX * sizeof(struct ckpt_vh))
#define CKPT_VIDX(st, h) \
	((uint32_t)(((uint64_t)(uintptr_t)(h) - (uint64_t)(uintptr_t)(st)->vt) / sizeof(struct ckpt_vh)))
#define CKPT_VVAL(st, idx) ((uint64_t)(uintptr_t)&(st)->vt[idx])
#else
/* integers with both top bits set: MPICH hands out none such to users
 * (its predefined handles are builtin or direct, nulls have kind 0);
 * 22 bits of index, CKPT_VT_MAX */
#define CKPT_IS_VIRT(st, h) (((uint32_t)(h) & 0xFFC00000u) == 0xFC000000u)
#define CKPT_VIDX(st, h) ((uint32_t)(h) & 0x003FFFFFu)
#define CKPT_VVAL(st, idx) ((uint64_t)(uint32_t)(0xFC000000u | (idx)))
#endif

/* Log record: header word (fn << 32 | nwords of body), then the body. */
#define CKPT_LOG_HDR(fn, n) (((uint64_t)(fn) << 32) | (uint64_t)(n))

#endif
