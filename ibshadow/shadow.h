/* The verbs shadow's objects: what the application holds. Each embeds the
 * verbs struct the application sees (first), the device object under it
 * and its creation-log record. Only shadow_*.c. */
#ifndef CKPTMPI_IBSHADOW_SHADOW_H
#define CKPTMPI_IBSHADOW_SHADOW_H

#include <infiniband/verbs.h>
#include <pthread.h>

#include "ibshadow/sdev.h"
#include "ibshadow/shadow_section.h"
#include "ibshadow/shadow_log.h"
#include "ibshadow/shadow_xlate.h"

struct sh_ctx {
	struct verbs_context v; /* v.context is what the application sees */
	struct shl_rec *log;
};

struct sh_pd {
	struct ibv_pd pd;
	uint32_t dev;
	struct sh_pd *parent_of; /* a parent domain: the PD it stands for */
	struct shl_rec *log;
};

struct sh_mr {
	struct ibv_mr mr;
	uint32_t dev_key;
	struct shl_rec *log;
};

struct sh_mw {
	struct ibv_mw mw;
	struct shl_rec *log;
};

struct sh_chan {
	struct ibv_comp_channel ch;
	struct sdev_chan *dev;
	struct shl_rec *log;
	/* the cut (shadow_ckpt.c): events written, not read: their CQs */
	uint64_t *cut_ev;
	uint32_t ncut_ev;
};

struct sh_cq {
	union {
		struct ibv_cq cq;     /* ibv_cq is the start of ibv_cq_ex */
		struct ibv_cq_ex cqx; /* made by ibv_create_cq_ex */
	};
	struct ibv_wc cur;            /* the extended poll's current entry */
	struct sdev_cq *dev;
	int notify; /* the last req_notify_cq: 0 none, 1 any, 2 solicited */
	struct shl_rec *log;
	/* completions kept at the cut, returned first after a restart
	 * (virtual values); nkept 0: none (the fast path's one test) */
	struct sdev_kept_cqe *kept;
	uint32_t nkept, kept_pos;
	/* the cut: what the CQ held (kept ones first), its arming */
	struct sdev_kept_cqe *cut;
	uint32_t ncut;
	int cut_armed;
};

struct sh_xrcd {
	struct ibv_xrcd xrcd;
	uint32_t dev;
	struct shl_rec *log;
};

struct sh_srq {
	struct ibv_srq srq;
	struct sdev_srq *dev;
	uint32_t vsrqn;
	struct shl_rec *log;
	struct sdev_recv_wr *cut_rq; /* the cut: receives posted (virtual keys) */
	uint32_t ncut_rq;
};

struct sh_wrb; /* WRs being built by the ibv_wr_* API (shadow_ex.c) */

struct sh_qp {
	union {
		struct ibv_qp qp;     /* the start of ibv_qp_ex */
		struct ibv_qp_ex qpx; /* made with send_ops_flags */
	};
	int is_ex;
	struct sh_wrb *wrb;
	struct sdev_qp *dev;
	uint16_t peer_vlid; /* the remote side's virtual LID (RC, UC) */
	uint16_t peer_id;   /* the remote side's process (xl_peer_of its QPN) */
	struct shl_rec *log;
	/* the cut: the device's state, receives posted, sends not executed
	 * (virtual keys, QPNs) */
	int cut_state;
	struct sdev_recv_wr *cut_rq;
	uint32_t ncut_rq;
	struct sdev_send_wr *cut_sq;
	uint32_t ncut_sq;
};

struct sh_ah {
	struct ibv_ah ah;
	struct sdev_ah dev;       /* device values */
	struct ibv_ah_attr vattr; /* as the application gave it */
	struct shl_rec *log;
};

#define SH(type, p) ((struct type *)(p))

/* the creation lock: creation, destruction, the log, the tables */
void shadow_lock(void);
void shadow_unlock(void);
/* the device the shadow exposes */
extern struct ibv_device shadow_device;
/* the ops of a context (shadow_data.c) */
void shadow_set_ops(struct sh_ctx *c);
/* translate an application's address handle attributes to the device's */
void shadow_ah_to_dev(const struct ibv_ah_attr *v, struct sdev_ah *d, struct ibv_ah_attr *dattr);
struct ibv_qp *shadow_create_qp_ex(struct ibv_context *ctx, struct ibv_qp_init_attr_ex *a);
struct ibv_mw *shadow_alloc_mw(struct ibv_pd *pd, enum ibv_mw_type type);
int shadow_dealloc_mw(struct ibv_mw *mw);
int shadow_bind_mw(struct ibv_qp *qp, struct ibv_mw *mw, struct ibv_mw_bind *b);
void shadow_mw_rekey(struct ibv_mw *mw, uint32_t rkey, const struct ibv_mw_bind_info *b);
struct ibv_xrcd *shadow_open_xrcd(struct ibv_context *ctx, struct ibv_xrcd_init_attr *a);
int shadow_close_xrcd(struct ibv_xrcd *x);
struct ibv_srq *shadow_create_srq_ex(struct ibv_context *ctx, struct ibv_srq_init_attr_ex *a);
int shadow_get_srq_num(struct ibv_srq *srq, uint32_t *num);
struct ibv_pd *shadow_alloc_parent_domain(struct ibv_context *ctx,
                                          struct ibv_parent_domain_init_attr *a);
struct ibv_cq_ex *shadow_create_cq_ex(struct ibv_context *ctx, struct ibv_cq_init_attr_ex *a);
/* the extended QP API on a QP (shadow_ex.c): 0 or errno */
int shadow_qp_ex_init(struct sh_qp *q, uint64_t send_ops, uint32_t max_wr, uint32_t max_sge);
void shadow_qp_ex_free(struct sh_qp *q);
void shadow_cq_ex_init(struct sh_cq *q);
const char *shadow_qp_type_str(int t);
const char *shadow_qp_state_str(int s);

#endif
