/* The extended verbs of the shadow: the ibv_wr_* send API of a QP made by
 * ibv_create_qp_ex with send_ops_flags, and the polling API of a CQ made
 * by ibv_create_cq_ex. Both are built on the ordinary path: WRs built
 * between wr_start and wr_complete are posted as one list through the
 * context's post_send (so they are translated like any other), and the
 * extended poll reads one ibv_wc at a time through poll_cq. */
#include "ibshadow/shadow.h"
#include "ibshadow/iblog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INL 512

struct sh_wrb {
	uint32_t max_wr, max_sge, n;
	int err;
	struct ibv_send_wr *wr;
	struct ibv_sge *sge;  /* max_sge per WR */
	uint8_t *inl;         /* INL bytes per WR */
};

static inline struct sh_qp *QX(struct ibv_qp_ex *x) { return (struct sh_qp *)x; }

/* a new WR of the batch, with the QP's wr_id and wr_flags of now */
static struct ibv_send_wr *next_wr(struct ibv_qp_ex *x, enum ibv_wr_opcode op)
{
	struct sh_wrb *b = QX(x)->wrb;
	struct ibv_send_wr *w;
	if (b->n >= b->max_wr) {
		b->err = ENOMEM;
		return NULL;
	}
	w = &b->wr[b->n];
	memset(w, 0, sizeof *w);
	w->wr_id = x->wr_id;
	w->send_flags = x->wr_flags;
	w->opcode = op;
	w->sg_list = &b->sge[(size_t)b->n * b->max_sge];
	if (b->n)
		b->wr[b->n - 1].next = w;
	b->n++;
	return w;
}

static struct ibv_send_wr *cur_wr(struct ibv_qp_ex *x)
{
	struct sh_wrb *b = QX(x)->wrb;
	if (!b->n) {
		b->err = EINVAL;
		return NULL;
	}
	return &b->wr[b->n - 1];
}

static void wr_start(struct ibv_qp_ex *x)
{
	QX(x)->wrb->n = 0;
	QX(x)->wrb->err = 0;
}

static int wr_complete(struct ibv_qp_ex *x)
{
	struct sh_wrb *b = QX(x)->wrb;
	struct ibv_send_wr *bad;
	int e = b->err;
	if (!e && b->n)
		e = x->qp_base.context->ops.post_send(&x->qp_base, b->wr, &bad);
	b->n = 0;
	b->err = 0;
	return e;
}

static void wr_abort(struct ibv_qp_ex *x)
{
	QX(x)->wrb->n = 0;
	QX(x)->wrb->err = 0;
}

static void wr_send(struct ibv_qp_ex *x) { next_wr(x, IBV_WR_SEND); }

static void wr_send_imm(struct ibv_qp_ex *x, __be32 imm)
{
	struct ibv_send_wr *w = next_wr(x, IBV_WR_SEND_WITH_IMM);
	if (w)
		w->imm_data = imm;
}

static void wr_rdma_write(struct ibv_qp_ex *x, uint32_t rkey, uint64_t addr)
{
	struct ibv_send_wr *w = next_wr(x, IBV_WR_RDMA_WRITE);
	if (w) {
		w->wr.rdma.rkey = rkey;
		w->wr.rdma.remote_addr = addr;
	}
}

static void wr_rdma_write_imm(struct ibv_qp_ex *x, uint32_t rkey, uint64_t addr, __be32 imm)
{
	struct ibv_send_wr *w = next_wr(x, IBV_WR_RDMA_WRITE_WITH_IMM);
	if (w) {
		w->wr.rdma.rkey = rkey;
		w->wr.rdma.remote_addr = addr;
		w->imm_data = imm;
	}
}

static void wr_rdma_read(struct ibv_qp_ex *x, uint32_t rkey, uint64_t addr)
{
	struct ibv_send_wr *w = next_wr(x, IBV_WR_RDMA_READ);
	if (w) {
		w->wr.rdma.rkey = rkey;
		w->wr.rdma.remote_addr = addr;
	}
}

static void wr_atomic_cmp_swp(struct ibv_qp_ex *x, uint32_t rkey, uint64_t addr, uint64_t cmp,
                              uint64_t swap)
{
	struct ibv_send_wr *w = next_wr(x, IBV_WR_ATOMIC_CMP_AND_SWP);
	if (w) {
		w->wr.atomic.rkey = rkey;
		w->wr.atomic.remote_addr = addr;
		w->wr.atomic.compare_add = cmp;
		w->wr.atomic.swap = swap;
	}
}

static void wr_atomic_fetch_add(struct ibv_qp_ex *x, uint32_t rkey, uint64_t addr, uint64_t add)
{
	struct ibv_send_wr *w = next_wr(x, IBV_WR_ATOMIC_FETCH_AND_ADD);
	if (w) {
		w->wr.atomic.rkey = rkey;
		w->wr.atomic.remote_addr = addr;
		w->wr.atomic.compare_add = add;
	}
}

static void wr_atomic_write(struct ibv_qp_ex *x, uint32_t rkey, uint64_t addr, const void *val)
{
	struct sh_wrb *b = QX(x)->wrb;
	struct ibv_send_wr *w = next_wr(x, IBV_WR_ATOMIC_WRITE);
	uint8_t *d;
	if (!w)
		return;
	w->wr.rdma.rkey = rkey;
	w->wr.rdma.remote_addr = addr;
	/* the 8 bytes travel as inline data */
	d = &b->inl[(size_t)(w - b->wr) * INL];
	memcpy(d, val, 8);
	w->sg_list[0].addr = (uintptr_t)d;
	w->sg_list[0].length = 8;
	w->sg_list[0].lkey = 0;
	w->num_sge = 1;
	w->send_flags |= IBV_SEND_INLINE;
}

static void wr_bind_mw(struct ibv_qp_ex *x, struct ibv_mw *mw, uint32_t rkey,
                       const struct ibv_mw_bind_info *info)
{
	struct ibv_send_wr *w = next_wr(x, IBV_WR_BIND_MW);
	if (w) {
		w->bind_mw.mw = mw;
		w->bind_mw.rkey = rkey;
		w->bind_mw.bind_info = *info;
	}
}

static void wr_local_inv(struct ibv_qp_ex *x, uint32_t rkey)
{
	struct ibv_send_wr *w = next_wr(x, IBV_WR_LOCAL_INV);
	if (w)
		w->invalidate_rkey = rkey;
}

static void wr_send_inv(struct ibv_qp_ex *x, uint32_t rkey)
{
	struct ibv_send_wr *w = next_wr(x, IBV_WR_SEND_WITH_INV);
	if (w)
		w->invalidate_rkey = rkey;
}

static void wr_set_ud_addr(struct ibv_qp_ex *x, struct ibv_ah *ah, uint32_t qpn, uint32_t qkey)
{
	struct ibv_send_wr *w = cur_wr(x);
	if (w) {
		w->wr.ud.ah = ah;
		w->wr.ud.remote_qpn = qpn;
		w->wr.ud.remote_qkey = qkey;
	}
}

static void wr_set_xrc_srqn(struct ibv_qp_ex *x, uint32_t srqn)
{
	struct ibv_send_wr *w = cur_wr(x);
	if (w)
		w->qp_type.xrc.remote_srqn = srqn;
}

static void wr_set_sge_list(struct ibv_qp_ex *x, size_t n, const struct ibv_sge *sg)
{
	struct sh_wrb *b = QX(x)->wrb;
	struct ibv_send_wr *w = cur_wr(x);
	if (!w)
		return;
	if (n > b->max_sge) {
		b->err = EINVAL;
		return;
	}
	memcpy(w->sg_list, sg, n * sizeof *sg);
	w->num_sge = (int)n;
}

static void wr_set_sge(struct ibv_qp_ex *x, uint32_t lkey, uint64_t addr, uint32_t len)
{
	struct ibv_sge s = {addr, len, lkey};
	wr_set_sge_list(x, 1, &s);
}

static void wr_set_inline_data_list(struct ibv_qp_ex *x, size_t n, const struct ibv_data_buf *l)
{
	struct sh_wrb *b = QX(x)->wrb;
	struct ibv_send_wr *w = cur_wr(x);
	uint8_t *d;
	size_t tot = 0;
	if (!w)
		return;
	d = &b->inl[(size_t)(w - b->wr) * INL];
	for (size_t i = 0; i < n; i++) {
		if (tot + l[i].length > INL) {
			b->err = EINVAL;
			return;
		}
		memcpy(d + tot, l[i].addr, l[i].length);
		tot += l[i].length;
	}
	w->sg_list[0].addr = (uintptr_t)d;
	w->sg_list[0].length = (uint32_t)tot;
	w->sg_list[0].lkey = 0;
	w->num_sge = 1;
	w->send_flags |= IBV_SEND_INLINE;
}

static void wr_set_inline_data(struct ibv_qp_ex *x, void *addr, size_t len)
{
	struct ibv_data_buf d = {addr, len};
	wr_set_inline_data_list(x, 1, &d);
}

int shadow_qp_ex_init(struct sh_qp *q, uint64_t ops, uint32_t max_wr, uint32_t max_sge)
{
	struct sh_wrb *b = calloc(1, sizeof *b);
	struct ibv_qp_ex *x = &q->qpx;
	if (!max_wr)
		max_wr = 1;
	if (!max_sge)
		max_sge = 1;
	if (!b)
		return ENOMEM;
	b->max_wr = max_wr;
	b->max_sge = max_sge;
	b->wr = calloc(max_wr, sizeof *b->wr);
	b->sge = calloc((size_t)max_wr * max_sge, sizeof *b->sge);
	b->inl = malloc((size_t)max_wr * INL);
	if (!b->wr || !b->sge || !b->inl) {
		free(b->wr);
		free(b->sge);
		free(b->inl);
		free(b);
		return ENOMEM;
	}
	q->wrb = b;
	q->is_ex = 1;
	x->wr_start = wr_start;
	x->wr_complete = wr_complete;
	x->wr_abort = wr_abort;
	x->wr_set_sge = wr_set_sge;
	x->wr_set_sge_list = wr_set_sge_list;
	x->wr_set_inline_data = wr_set_inline_data;
	x->wr_set_inline_data_list = wr_set_inline_data_list;
	x->wr_set_ud_addr = wr_set_ud_addr;
	x->wr_set_xrc_srqn = wr_set_xrc_srqn;
	if (ops & IBV_QP_EX_WITH_SEND)
		x->wr_send = wr_send;
	if (ops & IBV_QP_EX_WITH_SEND_WITH_IMM)
		x->wr_send_imm = wr_send_imm;
	if (ops & IBV_QP_EX_WITH_RDMA_WRITE)
		x->wr_rdma_write = wr_rdma_write;
	if (ops & IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM)
		x->wr_rdma_write_imm = wr_rdma_write_imm;
	if (ops & IBV_QP_EX_WITH_RDMA_READ)
		x->wr_rdma_read = wr_rdma_read;
	if (ops & IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP)
		x->wr_atomic_cmp_swp = wr_atomic_cmp_swp;
	if (ops & IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD)
		x->wr_atomic_fetch_add = wr_atomic_fetch_add;
	if (ops & IBV_QP_EX_WITH_ATOMIC_WRITE)
		x->wr_atomic_write = wr_atomic_write;
	if (ops & IBV_QP_EX_WITH_BIND_MW)
		x->wr_bind_mw = wr_bind_mw;
	if (ops & IBV_QP_EX_WITH_LOCAL_INV)
		x->wr_local_inv = wr_local_inv;
	if (ops & IBV_QP_EX_WITH_SEND_WITH_INV)
		x->wr_send_inv = wr_send_inv;
	return 0;
}

void shadow_qp_ex_free(struct sh_qp *q)
{
	if (!q->wrb)
		return;
	free(q->wrb->wr);
	free(q->wrb->sge);
	free(q->wrb->inl);
	free(q->wrb);
	q->wrb = NULL;
}

struct ibv_qp_ex *ibv_qp_to_qp_ex(struct ibv_qp *qp)
{
	struct sh_qp *q = SH(sh_qp, qp);
	if (!q->is_ex) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	return &q->qpx;
}

/* ------------------------------------------------------------ extended CQ */
static inline struct sh_cq *CX(struct ibv_cq_ex *c) { return (struct sh_cq *)c; }

static int next_one(struct ibv_cq_ex *c)
{
	struct sh_cq *q = CX(c);
	int n = c->context->ops.poll_cq(&q->cq, 1, &q->cur);
	if (n < 0)
		return EINVAL;
	if (!n)
		return ENOENT;
	c->status = q->cur.status;
	c->wr_id = q->cur.wr_id;
	return 0;
}

static int start_poll(struct ibv_cq_ex *c, struct ibv_poll_cq_attr *attr)
{
	if (attr && attr->comp_mask)
		return EINVAL;
	return next_one(c);
}
static int next_poll(struct ibv_cq_ex *c) { return next_one(c); }
static void end_poll(struct ibv_cq_ex *c) { (void)c; }
static enum ibv_wc_opcode read_opcode(struct ibv_cq_ex *c) { return CX(c)->cur.opcode; }
static uint32_t read_vendor_err(struct ibv_cq_ex *c) { return CX(c)->cur.vendor_err; }
static uint32_t read_byte_len(struct ibv_cq_ex *c) { return CX(c)->cur.byte_len; }
static __be32 read_imm_data(struct ibv_cq_ex *c) { return CX(c)->cur.imm_data; }
static uint32_t read_qp_num(struct ibv_cq_ex *c) { return CX(c)->cur.qp_num; }
static uint32_t read_src_qp(struct ibv_cq_ex *c) { return CX(c)->cur.src_qp; }
static unsigned int read_wc_flags(struct ibv_cq_ex *c) { return CX(c)->cur.wc_flags; }
static uint32_t read_slid(struct ibv_cq_ex *c) { return CX(c)->cur.slid; }
static uint8_t read_sl(struct ibv_cq_ex *c) { return CX(c)->cur.sl; }
static uint8_t read_dlid_path_bits(struct ibv_cq_ex *c) { return CX(c)->cur.dlid_path_bits; }

void shadow_cq_ex_init(struct sh_cq *q)
{
	struct ibv_cq_ex *c = &q->cqx;
	c->start_poll = start_poll;
	c->next_poll = next_poll;
	c->end_poll = end_poll;
	c->read_opcode = read_opcode;
	c->read_vendor_err = read_vendor_err;
	c->read_byte_len = read_byte_len;
	c->read_imm_data = read_imm_data;
	c->read_qp_num = read_qp_num;
	c->read_src_qp = read_src_qp;
	c->read_wc_flags = read_wc_flags;
	c->read_slid = read_slid;
	c->read_sl = read_sl;
	c->read_dlid_path_bits = read_dlid_path_bits;
}
