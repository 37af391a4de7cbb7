/* Inside the software device: the layout of the shared segments, the
 * registry, locks and the views of peers' segments. Only sdev_*.c. */
#ifndef CKPTMPI_IBSHADOW_SDEV_INT_H
#define CKPTMPI_IBSHADOW_SDEV_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "ibshadow/sdev.h"

#define SD_MAX_PROCS 256     /* processes on the device at once (slot 1..255) */
#define SD_MAX_QP 1024       /* per process; QPN = gen<<20 | slot<<12 | idx */
#define SD_MAX_CQ 1024
#define SD_MAX_SRQ 256
#define SD_MAX_CHAN 256
#define SD_MAX_MR 8192       /* key = idx<<8 | tag */
#define SD_MAX_PD 65536
#define SD_MAX_WR 8192
#define SD_MAX_SGE 16
#define SD_MAX_INLINE 512
#define SD_MAX_CQE 65536
#define SD_SMALL 144         /* payload carried in the receiver's CQE */
#define SD_GRH 40
#define SD_SEG_SIZE (1ull << 30) /* sparse: pages exist once touched */
#define SD_LID 1

/* A lock a peer may hold: the holder's pid, broken when that is dead. */
struct sd_lock {
	_Atomic int32_t pid;
};
void sd_lock(struct sd_lock *l);
void sd_unlock(struct sd_lock *l);
int sd_trylock(struct sd_lock *l); /* 1: taken */

/* an MR, or a memory window (same keys): a window is bound to a range of
 * an MR (addr/iova/len of that range; len 0 and no access: unbound) and,
 * type 2, to one QP */
struct sd_mr {
	_Atomic uint32_t key; /* 0: free */
	uint32_t pd;
	int32_t access;
	uint8_t mw;           /* 0: an MR, 1 or 2: a window of that type */
	uint8_t pad[3];
	uint64_t addr, iova, len;
	uint32_t qpn;         /* a type 2 window's QP */
	uint32_t pad2;
};

struct sd_sge {
	uint64_t addr; /* in the owner's address space (a receive's: as posted
	                * until it is taken, then resolved) */
	uint32_t len;
	uint32_t lkey; /* a receive's, checked when the data arrives */
};

struct sd_rwqe {
	uint64_t wr_id;
	uint32_t nsge;
	uint32_t status; /* != 0: a bad local key found, completed with that */
	uint64_t total;
	struct sd_sge sge[SD_MAX_SGE];
};

struct sd_swqe {
	uint64_t wr_id;
	uint32_t opcode, flags;
	uint32_t imm, nsge;
	uint64_t raddr;
	uint32_t rkey, status;
	uint64_t total;
	uint64_t cmp, swap;
	uint32_t dqpn, qkey;
	struct sdev_ah ah;
	uint64_t first_try;  /* ns of the first attempt that found no receive */
	uint32_t inl, srqn;  /* srqn: the XRC SRQ a WR of an XRC send QP goes to */
	struct sd_sge sge[SD_MAX_SGE];
	uint8_t data[SD_MAX_INLINE];
};

/* a ring of WQEs; head consumed (by anyone holding lock), tail posted */
struct sd_ring {
	struct sd_lock lock;
	uint32_t cap; /* power of two */
	_Atomic uint64_t head, tail;
	uint64_t off; /* of the entries in the segment */
	uint32_t max, max_sge;
};

struct sd_cqe {
	_Atomic uint64_t seq; /* index + 1 once written */
	uint32_t ncopy, copy_len;
	struct ibv_wc wc;
	struct sd_sge copy[3]; /* where data[] goes at poll time */
	uint8_t data[SD_SMALL];
};

/* three cache lines: what does not change, the producers' (any process),
 * the consumer's (the owner's poll), so neither side's stores evict the
 * other's lines */
struct sd_cq {
	_Atomic uint32_t used;
	uint32_t cap;    /* ring entries, power of two */
	uint32_t cqe;    /* what the user may have outstanding */
	int32_t chan;    /* channel index, -1 none */
	uint64_t off;
	uint64_t cookie;
	struct sd_lock plock __attribute__((aligned(64)));
	_Atomic uint64_t tail;
	uint64_t head_seen; /* the consumer's head as producers last read it */
	_Atomic uint32_t armed;   /* 0, 1 any, 2 solicited */
	_Atomic uint32_t overrun;
	struct sd_lock clock __attribute__((aligned(64)));
	_Atomic uint64_t head;
} __attribute__((aligned(64)));

struct sd_srq {
	_Atomic uint32_t used;
	uint32_t pd;
	_Atomic uint32_t limit;
	uint32_t srqn;
	uint32_t xrcd;  /* an XRC SRQ's domain (0: a basic SRQ) */
	int32_t cq;     /* an XRC SRQ's CQ */
	struct sd_ring rq;
	uint64_t cookie;
};

enum { SD_QP_FREE = 0 };
struct sd_qp {
	_Atomic uint32_t qpn; /* 0: free */
	uint32_t type;
	_Atomic uint32_t state;
	uint32_t pd;
	uint32_t scq, rcq;
	int32_t srq;
	uint32_t sq_sig_all;
	uint32_t qkey, dest_qpn, rq_psn, sq_psn;
	uint32_t access, mtu, timeout, retry_cnt, rnr_retry, min_rnr_timer;
	uint32_t max_rd_atomic, max_dest_rd_atomic, port, pkey_index;
	uint32_t max_inline;
	_Atomic uint32_t pending; /* a peer found no receive posted */
	_Atomic uint32_t blocked; /* sends wait (RNR, peer not ready, flush) */
	uint32_t xrcd;            /* an XRC receive QP's domain */
	struct sdev_ah ah;
	struct ibv_ah_attr ah_attr;
	struct sd_ring sq, rq;
	uint64_t cookie;
};

struct sd_chan {
	_Atomic uint32_t used;
};

struct sd_seg;
/* processes of another layout (another build) do not see each other */
#define SD_LAYOUT 4
#define SD_SEG_MAGIC (0x7364657600000000ull ^ ((uint64_t)SD_LAYOUT << 24) ^ sizeof(struct sd_seg))
struct sd_seg {
	uint64_t magic;
	int32_t pid;
	uint32_t slot;
	uint64_t starttime;
	struct sd_lock alock;  /* atomics on this process's memory */
	struct sd_lock mlock;  /* allocation in the segment */
	uint64_t bump;
	uint64_t freelist[40];
	uint32_t next_pd;
	uint32_t mr_hint;
	uint32_t nqp;  /* highest QP index in use + 1 */
	_Atomic uint32_t nblocked; /* QPs with blocked set */
	struct sd_mr mr[SD_MAX_MR];
	struct sd_qp qp[SD_MAX_QP];
	struct sd_cq cq[SD_MAX_CQ];
	struct sd_srq srq[SD_MAX_SRQ];
	struct sd_chan chan[SD_MAX_CHAN];
};

#define SD_REG_MAGIC 0x7364657672656730ull
struct sd_reg {
	uint64_t magic;
	struct sd_lock lock;
	uint32_t pad;
	struct {
		_Atomic int32_t pid;
		uint32_t gen;
		uint64_t starttime;
	} proc[SD_MAX_PROCS];
};

/* a process's segment as this process sees it */
struct sd_view {
	struct sd_seg *seg;
	pid_t pid;
	uint32_t slot, gen;
	uint32_t ops;         /* since the last liveness check */
	int dead;
	uint64_t checked_ns;
};

struct sd_priv;
extern struct sd_view *sd_self;
extern struct sd_reg *sd_registry;

uint64_t sd_now_ns(void);
/* the view of a slot's process (mapped on first use), NULL if none */
struct sd_view *sd_view_of(uint32_t slot);
int sd_view_alive(struct sd_view *v);
/* segment allocation (zeroed), as an offset */
uint64_t sd_seg_alloc(uint64_t len);
void sd_seg_free(uint64_t off, uint64_t len);
static inline void *sd_at(struct sd_view *v, uint64_t off) { return (char *)v->seg + off; }

/* completion channel and async events, to a process's FIFOs */
void sd_chan_notify(struct sd_view *owner, int chan, uint32_t cq);
void sd_async_raise(struct sd_view *owner, int type, int kind, uint32_t idx);
void sd_cleanup_slot(uint32_t slot);

/* sdev_qp.c: a peer's post_recv completes sends waiting for it */
void sd_sq_progress(struct sd_view *v, struct sd_qp *qp);

/* qp numbers */
static inline uint32_t sd_qpn_slot(uint32_t qpn) { return (qpn >> 12) & 0xff; }
static inline uint32_t sd_qpn_idx(uint32_t qpn) { return qpn & 0xfff; }

#endif
