/* The software device's queues and the work they carry: CQs, SRQs, QPs
 * (the state machine a real device enforces) and the data path. Work is
 * done by the caller, like an HCA doing DMA: whoever finds both a send and
 * its receive (the sender in post_send, or the receiver in post_recv when
 * the send was there first) moves the data with process_vm_readv/writev
 * after checking the target MR's key, range, access and PD. Small payloads
 * travel in the receiver's CQE and are copied at poll time (no syscall). */
#include "ibshadow/sdev_int.h"
#include "ibshadow/iblog.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define S (sd_self->seg)

static uint32_t pow2(uint32_t n)
{
	uint32_t c = 1;
	while (c < n)
		c <<= 1;
	return c;
}

/* ------------------------------------------------------------ CQ */
static inline struct sd_cqe *cq_ring(struct sd_view *v, struct sd_cq *cq)
{
	return (struct sd_cqe *)sd_at(v, cq->off);
}

struct sdev_cq *sdev_cq_create(int cqe, struct sdev_chan *ch, uint64_t cookie, int *real_cqe)
{
	struct sd_cq *cq;
	uint32_t z;

	if (cqe < 1 || cqe >= SD_MAX_CQE) {
		errno = EINVAL;
		return NULL;
	}
	for (int i = 0; i < SD_MAX_CQ; i++) {
		cq = &S->cq[i];
		z = 0;
		if (!atomic_compare_exchange_strong(&cq->used, &z, 1))
			continue;
		cq->cap = pow2((uint32_t)cqe + 1);
		cq->off = sd_seg_alloc((uint64_t)cq->cap * sizeof(struct sd_cqe));
		if (!cq->off) {
			atomic_store(&cq->used, 0);
			errno = ENOMEM;
			return NULL;
		}
		cq->cqe = (uint32_t)cqe;
		cq->chan = ch ? (int32_t)((struct sd_chan *)ch - S->chan) : -1;
		atomic_store(&cq->tail, 0);
		atomic_store(&cq->head, 0);
		cq->head_seen = 0;
		atomic_store(&cq->armed, 0);
		atomic_store(&cq->overrun, 0);
		cq->cookie = cookie;
		*real_cqe = cqe;
		return (struct sdev_cq *)cq;
	}
	errno = ENOMEM;
	return NULL;
}

int sdev_cq_destroy(struct sdev_cq *c)
{
	struct sd_cq *cq = (struct sd_cq *)c;
	uint32_t ci = (uint32_t)(cq - S->cq);
	for (uint32_t i = 0; i < S->nqp; i++)
		if (atomic_load(&S->qp[i].qpn) > 1 && (S->qp[i].scq == ci || S->qp[i].rcq == ci))
			return EBUSY;
	for (int i = 0; i < SD_MAX_SRQ; i++)
		if (atomic_load(&S->srq[i].used) && S->srq[i].cq == (int32_t)ci)
			return EBUSY;
	sd_lock(&cq->plock);
	sd_seg_free(cq->off, (uint64_t)cq->cap * sizeof(struct sd_cqe));
	cq->off = 0;
	sd_unlock(&cq->plock);
	atomic_store(&cq->used, 0);
	return 0;
}

int sdev_cq_resize(struct sdev_cq *c, int cqe, int *real_cqe)
{
	struct sd_cq *cq = (struct sd_cq *)c;
	uint32_t cap;
	uint64_t off, h, t, old;
	struct sd_cqe *o, *n;

	if (cqe < 1 || cqe >= SD_MAX_CQE)
		return EINVAL;
	cap = pow2((uint32_t)cqe + 1);
	off = sd_seg_alloc((uint64_t)cap * sizeof(struct sd_cqe));
	if (!off)
		return ENOMEM;
	sd_lock(&cq->clock);
	sd_lock(&cq->plock);
	h = atomic_load(&cq->head);
	t = atomic_load(&cq->tail);
	if (t - h > (uint64_t)cqe) {
		sd_unlock(&cq->plock);
		sd_unlock(&cq->clock);
		sd_seg_free(off, (uint64_t)cap * sizeof(struct sd_cqe));
		return EINVAL; /* fewer entries than completions waiting */
	}
	o = cq_ring(sd_self, cq);
	n = (struct sd_cqe *)sd_at(sd_self, off);
	for (uint64_t i = h; i != t; i++)
		n[i & (cap - 1)] = o[i & (cq->cap - 1)];
	old = cq->off;
	sd_seg_free(old, (uint64_t)cq->cap * sizeof(struct sd_cqe));
	cq->off = off;
	cq->cap = cap;
	cq->cqe = (uint32_t)cqe;
	sd_unlock(&cq->plock);
	sd_unlock(&cq->clock);
	*real_cqe = cqe;
	return 0;
}

/* Add a completion to a process's CQ: 0, or -1 when the CQ overran */
static int cq_push(struct sd_view *v, uint32_t cqi, const struct sd_cqe *src, int solicited)
{
	struct sd_cq *cq = &v->seg->cq[cqi];
	struct sd_cqe *e;
	uint64_t t;
	uint32_t a;

	sd_lock(&cq->plock);
	if (!cq->off) {
		sd_unlock(&cq->plock);
		return -1;
	}
	t = atomic_load_explicit(&cq->tail, memory_order_relaxed);
	if (t - cq->head_seen >= cq->cqe)
		cq->head_seen = atomic_load_explicit(&cq->head, memory_order_acquire);
	if (t - cq->head_seen >= cq->cqe) {
		sd_unlock(&cq->plock);
		if (!atomic_exchange(&cq->overrun, 1)) {
			iblog(0, "sdev: CQ %u of process %d overran (%u entries): completion lost", cqi,
			      v->pid, cq->cqe);
			sd_async_raise(v, IBV_EVENT_CQ_ERR, 1, cqi);
		}
		return -1;
	}
	e = &cq_ring(v, cq)[t & (cq->cap - 1)];
	e->ncopy = src->ncopy;
	e->copy_len = src->copy_len;
	e->wc = src->wc;
	if (src->ncopy) {
		memcpy(e->copy, src->copy, sizeof e->copy);
		memcpy(e->data, src->data, src->copy_len);
	}
	atomic_store_explicit(&e->seq, t + 1, memory_order_release);
	atomic_store_explicit(&cq->tail, t + 1, memory_order_release);
	sd_unlock(&cq->plock);
	if (cq->chan < 0)
		return 0;
	/* The entry's store, then the load of armed; the owner stores armed,
	 * then polls (sdev_req_notify). Without a full fence on both sides
	 * each can miss the other's store (x86 lets a load pass an earlier
	 * store): no event, and a program asleep on its channel with a
	 * completion it never polls. */
	atomic_thread_fence(memory_order_seq_cst);
	a = atomic_load_explicit(&cq->armed, memory_order_relaxed);
	if (a && (a == 1 || solicited || src->wc.status != IBV_WC_SUCCESS) &&
	    atomic_exchange(&cq->armed, 0))
		sd_chan_notify(v, cq->chan, cqi);
	return 0;
}

static void push_simple(struct sd_view *v, uint32_t cqi, uint64_t wr_id, int status, int opcode,
                        uint32_t qpn, uint32_t len)
{
	struct sd_cqe e;
	e.ncopy = 0;
	e.copy_len = 0;
	memset(&e.wc, 0, sizeof e.wc);
	e.wc.wr_id = wr_id;
	e.wc.status = (enum ibv_wc_status)status;
	e.wc.opcode = (enum ibv_wc_opcode)opcode;
	e.wc.qp_num = qpn;
	e.wc.byte_len = len;
	if (status)
		e.wc.vendor_err = 0x100 + (uint32_t)status;
	cq_push(v, cqi, &e, 0);
}

static void kick_blocked(uint32_t cqi);

/* Take a QP's completions out of one of this process's CQs (a QP going
 * to RESET, as providers clean their CQs) */
static void cq_clean(uint32_t cqi, uint32_t qpn)
{
	struct sd_cq *cq = &S->cq[cqi];
	struct sd_cqe *ring;
	uint64_t h, t, w;

	sd_lock(&cq->clock);
	sd_lock(&cq->plock);
	ring = cq_ring(sd_self, cq);
	h = atomic_load(&cq->head);
	t = atomic_load(&cq->tail);
	for (w = h; h != t; h++) {
		struct sd_cqe *e = &ring[h & (cq->cap - 1)];
		if (e->wc.qp_num == qpn)
			continue;
		if (w != h) {
			struct sd_cqe *d = &ring[w & (cq->cap - 1)];
			d->ncopy = e->ncopy;
			d->copy_len = e->copy_len;
			d->wc = e->wc;
			memcpy(d->copy, e->copy, sizeof d->copy);
			memcpy(d->data, e->data, e->copy_len);
			atomic_store(&d->seq, w + 1);
		}
		w++;
	}
	for (h = w; h != t; h++)
		atomic_store(&ring[h & (cq->cap - 1)].seq, 0);
	atomic_store(&cq->tail, w);
	sd_unlock(&cq->plock);
	sd_unlock(&cq->clock);
}

int sdev_poll_cq(struct sdev_cq *c, int n, struct ibv_wc *wc)
{
	struct sd_cq *cq = (struct sd_cq *)c;
	struct sd_cqe *ring = cq_ring(sd_self, cq), *e;
	uint64_t h;
	int i;

	/* nothing there: no lock taken */
	h = atomic_load_explicit(&cq->head, memory_order_relaxed);
	if (atomic_load_explicit(&ring[h & (cq->cap - 1)].seq, memory_order_acquire) != h + 1) {
		static __thread unsigned empty __attribute__((tls_model("initial-exec")));
		if (atomic_load_explicit(&S->nblocked, memory_order_relaxed))
			kick_blocked((uint32_t)(cq - S->cq));
		/* a program spinning on an empty CQ: now and then let the peer
		 * that does the work (this device's "HCA") have the CPU */
		if ((++empty & 1023) == 0)
			sched_yield();
		return 0;
	}
	sd_lock(&cq->clock);
	ring = cq_ring(sd_self, cq); /* again: a resize may have moved it */
	h = atomic_load_explicit(&cq->head, memory_order_relaxed);
	for (i = 0; i < n; i++, h++) {
		e = &ring[h & (cq->cap - 1)];
		if (atomic_load_explicit(&e->seq, memory_order_acquire) != h + 1)
			break;
		if (e->ncopy) {
			const uint8_t *d = e->data;
			for (uint32_t k = 0; k < e->ncopy; k++) {
				memcpy((void *)e->copy[k].addr, d, e->copy[k].len);
				d += e->copy[k].len;
			}
		}
		wc[i] = e->wc;
		atomic_store_explicit(&cq->head, h + 1, memory_order_release);
	}
	sd_unlock(&cq->clock);
	if (i == 0 && atomic_load_explicit(&S->nblocked, memory_order_relaxed))
		kick_blocked((uint32_t)(cq - S->cq));
	return i;
}

int sdev_req_notify(struct sdev_cq *c, int solicited_only)
{
	struct sd_cq *cq = (struct sd_cq *)c;
	if (cq->chan < 0)
		return EINVAL;
	atomic_store(&cq->armed, solicited_only ? 2u : 1u);
	/* before the program's next poll: see cq_push */
	atomic_thread_fence(memory_order_seq_cst);
	return 0;
}

/* ------------------------------------------------------------ receive queues */
static inline struct sd_rwqe *rq_at(struct sd_view *v, struct sd_ring *r, uint64_t i)
{
	return &((struct sd_rwqe *)sd_at(v, r->off))[i & (r->cap - 1)];
}
static inline struct sd_swqe *sq_at(struct sd_view *v, struct sd_ring *r, uint64_t i)
{
	return &((struct sd_swqe *)sd_at(v, r->off))[i & (r->cap - 1)];
}

static int ring_init(struct sd_ring *r, uint32_t max, uint32_t max_sge, size_t esz)
{
	r->cap = pow2(max ? max : 1);
	r->max = max;
	r->max_sge = max_sge;
	atomic_store(&r->head, 0);
	atomic_store(&r->tail, 0);
	r->off = sd_seg_alloc((uint64_t)r->cap * esz);
	return r->off ? 0 : ENOMEM;
}

/* local key → address in this process, checked as a real device does */
static int local_sge(uint32_t pd, const struct ibv_sge *in, int need, struct sd_sge *out)
{
	uint32_t i = in->lkey >> 8;
	struct sd_mr *m;

	out->addr = in->addr;
	out->len = in->length;
	if (!in->length)
		return 0;
	if (i == 0 || i >= SD_MAX_MR)
		return IBV_WC_LOC_PROT_ERR;
	m = &S->mr[i];
	if (atomic_load_explicit(&m->key, memory_order_acquire) != in->lkey || m->pd != pd ||
	    (need && !(m->access & need)) || in->addr < m->iova ||
	    in->addr + in->length > m->iova + m->len)
		return IBV_WC_LOC_PROT_ERR;
	out->addr = m->addr + (in->addr - m->iova);
	return 0;
}

/* A receive keeps its SGEs as posted: like an HCA, the device checks the
 * keys when the data arrives (an MR re-registered or deregistered in
 * between is seen then). */
static int fill_rwqe(struct sd_rwqe *r, const struct ibv_recv_wr *wr)
{
	r->wr_id = wr->wr_id;
	r->nsge = (uint32_t)wr->num_sge;
	r->status = 0;
	r->total = 0;
	for (int k = 0; k < wr->num_sge; k++) {
		r->sge[k].addr = wr->sg_list[k].addr;
		r->sge[k].len = wr->sg_list[k].length;
		r->sge[k].lkey = wr->sg_list[k].lkey;
		r->total += wr->sg_list[k].length;
	}
	return 0;
}

/* the receive's SGEs against its owner's MR table (pd: of its QP or SRQ) */
static void resolve_rwqe(struct sd_view *v, uint32_t pd, struct sd_rwqe *r)
{
	for (uint32_t k = 0; k < r->nsge; k++) {
		struct sd_sge *g = &r->sge[k];
		uint32_t i = g->lkey >> 8;
		struct sd_mr *m;
		if (!g->len)
			continue;
		m = i && i < SD_MAX_MR ? &v->seg->mr[i] : NULL;
		if (!m || atomic_load_explicit(&m->key, memory_order_acquire) != g->lkey ||
		    m->pd != pd || !(m->access & IBV_ACCESS_LOCAL_WRITE) || g->addr < m->iova ||
		    g->addr + g->len > m->iova + m->len) {
			r->status = IBV_WC_LOC_PROT_ERR;
			return;
		}
		g->addr = m->addr + (g->addr - m->iova);
	}
}

static inline struct sd_swqe *sq_at(struct sd_view *v, struct sd_ring *r, uint64_t i);

static void flush_rq(struct sd_view *v, struct sd_qp *qp)
{
	struct sd_ring *r = &qp->rq;
	uint64_t h, t;
	if (qp->srq >= 0 || !r->off)
		return;
	sd_lock(&r->lock);
	h = atomic_load(&r->head);
	t = atomic_load(&r->tail);
	for (; h != t; h++)
		push_simple(v, qp->rcq, rq_at(v, r, h)->wr_id, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV,
		            qp->qpn, 0);
	atomic_store(&r->head, h);
	sd_unlock(&r->lock);
}

/* a QP enters the error state; its sends are flushed by its owner's next
 * poll (or by whoever progresses it next) */
static void qp_error(struct sd_view *v, struct sd_qp *qp)
{
	if (atomic_exchange(&qp->state, IBV_QPS_ERR) == IBV_QPS_ERR)
		return;
	iblog(2, "sdev: QP 0x%06x of process %d enters the error state", qp->qpn, v->pid);
	flush_rq(v, qp);
	/* its sends are flushed now when nobody runs them (a program waiting
	 * for them on a completion channel sees them), else by whoever runs
	 * its send queue next, or its owner's poll */
	if (sd_trylock(&qp->sq.lock)) {
		uint64_t h = atomic_load(&qp->sq.head), t = atomic_load(&qp->sq.tail);
		if (atomic_load(&qp->qpn) > 1 && qp->sq.off)
			for (; h != t; h++) {
				struct sd_swqe *w = sq_at(v, &qp->sq, h);
				push_simple(v, qp->scq, w->wr_id, IBV_WC_WR_FLUSH_ERR,
				            w->opcode == IBV_WR_RDMA_READ ? IBV_WC_RDMA_READ :
				            w->opcode == IBV_WR_RDMA_WRITE ||
				                    w->opcode == IBV_WR_RDMA_WRITE_WITH_IMM ? IBV_WC_RDMA_WRITE :
				            w->opcode == IBV_WR_ATOMIC_CMP_AND_SWP ? IBV_WC_COMP_SWAP :
				            w->opcode == IBV_WR_ATOMIC_FETCH_AND_ADD ? IBV_WC_FETCH_ADD :
				                                                       IBV_WC_SEND,
				            qp->qpn, 0);
				atomic_store(&qp->sq.head, h + 1);
			}
		sd_unlock(&qp->sq.lock);
		return;
	}
	if (!atomic_exchange(&qp->blocked, 1))
		atomic_fetch_add(&v->seg->nblocked, 1);
}

/* ------------------------------------------------------------ SRQ */
struct sdev_srq *sdev_srq_create(uint32_t pd, struct ibv_srq_attr *attr, uint64_t cookie,
                                 uint32_t *srqn)
{
	if (!attr->max_wr || attr->max_wr > SD_MAX_WR || attr->max_sge > SD_MAX_SGE ||
	    attr->srq_limit > attr->max_wr) {
		errno = EINVAL;
		return NULL;
	}
	for (int i = 0; i < SD_MAX_SRQ; i++) {
		struct sd_srq *s = &S->srq[i];
		uint32_t z = 0;
		if (!atomic_compare_exchange_strong(&s->used, &z, 1))
			continue;
		if (ring_init(&s->rq, attr->max_wr, attr->max_sge ? attr->max_sge : 1,
		              sizeof(struct sd_rwqe))) {
			atomic_store(&s->used, 0);
			errno = ENOMEM;
			return NULL;
		}
		s->pd = pd;
		s->xrcd = 0;
		s->cq = -1;
		atomic_store(&s->limit, attr->srq_limit);
		s->cookie = cookie;
		s->srqn = sd_self->slot << 12 | (uint32_t)i;
		*srqn = s->srqn;
		attr->max_sge = s->rq.max_sge;
		return (struct sdev_srq *)s;
	}
	errno = ENOMEM;
	return NULL;
}

struct sdev_srq *sdev_srq_create_xrc(uint32_t pd, struct ibv_srq_attr *attr, uint32_t xrcd,
                                     struct sdev_cq *cq, uint64_t cookie, uint32_t *srqn)
{
	struct sd_srq *s = (struct sd_srq *)sdev_srq_create(pd, attr, cookie, srqn);
	if (!s)
		return NULL;
	s->xrcd = xrcd;
	s->cq = (int32_t)((struct sd_cq *)cq - S->cq);
	return (struct sdev_srq *)s;
}

int sdev_srq_modify(struct sdev_srq *x, struct ibv_srq_attr *attr, int mask)
{
	struct sd_srq *s = (struct sd_srq *)x;
	if (mask & IBV_SRQ_MAX_WR)
		return EINVAL; /* no resize */
	if (mask & IBV_SRQ_LIMIT) {
		if (attr->srq_limit > s->rq.max)
			return EINVAL;
		atomic_store(&s->limit, attr->srq_limit);
	}
	return 0;
}

int sdev_srq_query(struct sdev_srq *x, struct ibv_srq_attr *attr)
{
	struct sd_srq *s = (struct sd_srq *)x;
	attr->max_wr = s->rq.max;
	attr->max_sge = s->rq.max_sge;
	attr->srq_limit = atomic_load(&s->limit);
	return 0;
}

int sdev_srq_destroy(struct sdev_srq *x)
{
	struct sd_srq *s = (struct sd_srq *)x;
	int i = (int)(s - S->srq);
	for (uint32_t q = 0; q < S->nqp; q++)
		if (atomic_load(&S->qp[q].qpn) > 1 && S->qp[q].srq == i)
			return EBUSY;
	sd_lock(&s->rq.lock);
	sd_seg_free(s->rq.off, (uint64_t)s->rq.cap * sizeof(struct sd_rwqe));
	s->rq.off = 0;
	sd_unlock(&s->rq.lock);
	atomic_store(&s->used, 0);
	return 0;
}

static int ring_post_recv(struct sd_ring *r, const struct ibv_recv_wr *wr)
{
	uint64_t t;
	if (wr->num_sge < 0 || (uint32_t)wr->num_sge > r->max_sge)
		return EINVAL;
	sd_lock(&r->lock);
	t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (t - atomic_load(&r->head) >= r->max) {
		sd_unlock(&r->lock);
		return ENOMEM;
	}
	fill_rwqe(rq_at(sd_self, r, t), wr);
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
	sd_unlock(&r->lock);
	return 0;
}

int sdev_post_srq_recv(struct sdev_srq *x, const struct ibv_recv_wr *wr)
{
	struct sd_srq *s = (struct sd_srq *)x;
	return ring_post_recv(&s->rq, wr);
}

static void kick_sender(struct sd_qp *qp)
{
	uint32_t d = qp->dest_qpn;
	struct sd_view *v;
	struct sd_qp *sq;

	if (!atomic_exchange(&qp->pending, 0))
		return;
	v = sd_view_of(sd_qpn_slot(d));
	if (!v || sd_qpn_idx(d) >= SD_MAX_QP)
		return;
	sq = &v->seg->qp[sd_qpn_idx(d)];
	if (atomic_load(&sq->qpn) == d)
		sd_sq_progress(v, sq);
}

void sdev_srq_kick(struct sdev_srq *x)
{
	int i = (int)((struct sd_srq *)x - S->srq);
	uint32_t xrcd = ((struct sd_srq *)x)->xrcd;
	for (uint32_t q = 0; q < S->nqp; q++)
		if ((S->qp[q].srq == i || (xrcd && S->qp[q].type == IBV_QPT_XRC_RECV &&
		                           S->qp[q].xrcd == xrcd)) &&
		    atomic_load(&S->qp[q].pending))
			kick_sender(&S->qp[q]);
}

/* ------------------------------------------------------------ QP */
/* A free QP slot of this process's segment, taken (its number 1 until it
 * is published) and cleared; NULL (ENOMEM) when all are in use. */
static struct sd_qp *qp_claim(int *idx)
{
	struct sd_qp *qp;
	uint32_t z;
	int i;

	for (i = 0; i < SD_MAX_QP; i++) {
		z = 0;
		if (atomic_compare_exchange_strong(&S->qp[i].qpn, &z, 1))
			break;
	}
	if (i == SD_MAX_QP) {
		errno = ENOMEM;
		return NULL;
	}
	qp = &S->qp[i];
	{
		/* everything but the number, which publishes it */
		size_t off = offsetof(struct sd_qp, type);
		memset((char *)qp + off, 0, sizeof *qp - off);
	}
	*idx = i;
	return qp;
}

/* The set-up QP in slot i gets its number: peers can reach it from now. */
static struct sdev_qp *qp_publish(struct sd_qp *qp, int i, uint32_t *qpn)
{
	*qpn = ((sd_self->gen & 0xf) << 20) | (sd_self->slot << 12) | (uint32_t)i;
	if ((uint32_t)i + 1 > S->nqp)
		S->nqp = (uint32_t)i + 1;
	atomic_store(&qp->qpn, *qpn);
	return (struct sdev_qp *)qp;
}

struct sdev_qp *sdev_qp_create(uint32_t pd, struct ibv_qp_init_attr *init, struct sdev_cq *scq,
                               struct sdev_cq *rcq, struct sdev_srq *srq, uint64_t cookie,
                               uint32_t *qpn)
{
	struct ibv_qp_cap *c = &init->cap;
	struct sd_qp *qp;
	int i;

	if ((init->qp_type != IBV_QPT_RC && init->qp_type != IBV_QPT_UC &&
	     init->qp_type != IBV_QPT_UD && init->qp_type != IBV_QPT_XRC_SEND)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (init->qp_type == IBV_QPT_XRC_SEND) {
		/* no receive side */
		if (!rcq)
			rcq = scq;
		c->max_recv_wr = 0;
		c->max_recv_sge = 0;
		srq = NULL;
	}
	if (!scq || !rcq || c->max_send_wr > SD_MAX_WR || c->max_send_sge > SD_MAX_SGE ||
	    c->max_inline_data > SD_MAX_INLINE ||
	    (!srq && (c->max_recv_wr > SD_MAX_WR || c->max_recv_sge > SD_MAX_SGE))) {
		errno = EINVAL;
		return NULL;
	}
	if (!(qp = qp_claim(&i)))
		return NULL;
	qp->type = init->qp_type;
	atomic_store(&qp->state, IBV_QPS_RESET);
	qp->pd = pd;
	qp->scq = (uint32_t)((struct sd_cq *)scq - S->cq);
	qp->rcq = (uint32_t)((struct sd_cq *)rcq - S->cq);
	qp->srq = srq ? (int32_t)((struct sd_srq *)srq - S->srq) : -1;
	qp->sq_sig_all = (uint32_t)init->sq_sig_all;
	qp->max_inline = SD_MAX_INLINE;
	qp->cookie = cookie;
	qp->mtu = IBV_MTU_4096;
	if (c->max_send_sge == 0)
		c->max_send_sge = 1;
	if (ring_init(&qp->sq, c->max_send_wr, c->max_send_sge, sizeof(struct sd_swqe)) ||
	    (!srq && init->qp_type != IBV_QPT_XRC_SEND && ring_init(&qp->rq, c->max_recv_wr, c->max_recv_sge ? c->max_recv_sge : 1,
	                       sizeof(struct sd_rwqe)))) {
		sd_seg_free(qp->sq.off, (uint64_t)qp->sq.cap * sizeof(struct sd_swqe));
		atomic_store(&qp->qpn, 0);
		errno = ENOMEM;
		return NULL;
	}
	c->max_inline_data = SD_MAX_INLINE;
	if (srq) {
		c->max_recv_wr = 0;
		c->max_recv_sge = 0;
	}
	return qp_publish(qp, i, qpn);
}

struct sdev_qp *sdev_qp_create_xrc_recv(uint32_t xrcd, uint64_t cookie, uint32_t *qpn)
{
	struct sd_qp *qp;
	int i;

	if (!(qp = qp_claim(&i)))
		return NULL;
	qp->type = IBV_QPT_XRC_RECV;
	atomic_store(&qp->state, IBV_QPS_RESET);
	qp->xrcd = xrcd;
	qp->scq = qp->rcq = SD_MAX_CQ; /* none */
	qp->srq = -1;
	qp->cookie = cookie;
	qp->mtu = IBV_MTU_4096;
	return qp_publish(qp, i, qpn);
}

int sdev_qp_state(struct sdev_qp *x) { return (int)atomic_load(&((struct sd_qp *)x)->state); }

static int required(int type, int cur, int next)
{
	int rc = type == IBV_QPT_RC, uc = type == IBV_QPT_UC, ud = type == IBV_QPT_UD;
	if (cur == IBV_QPS_RESET && next == IBV_QPS_INIT)
		return ud ? IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY
		          : IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS;
	/* XRC as the kernel's table: the initiator like RC's requester, the
	 * target like RC's responder */
	if (type == IBV_QPT_XRC_SEND && cur == IBV_QPS_INIT && next == IBV_QPS_RTR)
		return IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN;
	if (type == IBV_QPT_XRC_RECV && cur == IBV_QPS_INIT && next == IBV_QPS_RTR)
		return IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
		       IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
	if (type == IBV_QPT_XRC_SEND && cur == IBV_QPS_RTR && next == IBV_QPS_RTS)
		return IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
		       IBV_QP_MAX_QP_RD_ATOMIC;
	if (type == IBV_QPT_XRC_RECV && cur == IBV_QPS_RTR && next == IBV_QPS_RTS)
		return IBV_QP_SQ_PSN | IBV_QP_TIMEOUT;
	if (cur == IBV_QPS_INIT && next == IBV_QPS_RTR) {
		if (rc)
			return IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
			       IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
		if (uc)
			return IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN;
		return 0;
	}
	if (cur == IBV_QPS_RTR && next == IBV_QPS_RTS) {
		if (rc)
			return IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
			       IBV_QP_MAX_QP_RD_ATOMIC;
		return IBV_QP_SQ_PSN;
	}
	return 0;
}

static int allowed(int cur, int next)
{
	if (next == IBV_QPS_RESET || next == IBV_QPS_ERR)
		return 1;
	switch (cur) {
	case IBV_QPS_RESET: return next == IBV_QPS_INIT;
	case IBV_QPS_INIT: return next == IBV_QPS_INIT || next == IBV_QPS_RTR;
	case IBV_QPS_RTR: return next == IBV_QPS_RTS;
	case IBV_QPS_RTS: return next == IBV_QPS_RTS || next == IBV_QPS_SQD;
	case IBV_QPS_SQD: return next == IBV_QPS_RTS || next == IBV_QPS_SQD;
	case IBV_QPS_SQE: return next == IBV_QPS_RTS;
	default: return 0;
	}
}

int sdev_qp_modify(struct sdev_qp *x, struct ibv_qp_attr *a, int mask)
{
	struct sd_qp *qp = (struct sd_qp *)x;
	int cur = (int)atomic_load(&qp->state);
	int next = (mask & IBV_QP_STATE) ? (int)a->qp_state : cur;
	int req;

	if ((mask & IBV_QP_CUR_STATE) && (int)a->cur_qp_state != cur)
		return EINVAL;
	if (!allowed(cur, next))
		return EINVAL;
	req = required((int)qp->type, cur, next);
	if ((mask & req) != req)
		return EINVAL;
	if ((mask & IBV_QP_PORT) && a->port_num != 1)
		return EINVAL;
	if ((mask & IBV_QP_PKEY_INDEX) && a->pkey_index != 0)
		return EINVAL;
	if ((mask & IBV_QP_PATH_MTU) && (a->path_mtu < IBV_MTU_256 || a->path_mtu > IBV_MTU_4096))
		return EINVAL;
	if ((mask & IBV_QP_MAX_QP_RD_ATOMIC) && a->max_rd_atomic > 16)
		return EINVAL;
	if ((mask & IBV_QP_MAX_DEST_RD_ATOMIC) && a->max_dest_rd_atomic > 16)
		return EINVAL;
	if ((mask & IBV_QP_AV) && a->ah_attr.port_num && a->ah_attr.port_num != 1)
		return EINVAL;
	if ((mask & IBV_QP_ACCESS_FLAGS) && qp->type == IBV_QPT_UC &&
	    (a->qp_access_flags & (IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC)))
		a->qp_access_flags &= ~(IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC);
	if (mask & IBV_QP_QKEY)
		qp->qkey = a->qkey;
	if (mask & IBV_QP_ACCESS_FLAGS)
		qp->access = (uint32_t)a->qp_access_flags;
	if (mask & IBV_QP_PATH_MTU)
		qp->mtu = a->path_mtu;
	if (mask & IBV_QP_DEST_QPN)
		qp->dest_qpn = a->dest_qp_num;
	if (mask & IBV_QP_RQ_PSN)
		qp->rq_psn = a->rq_psn;
	if (mask & IBV_QP_SQ_PSN)
		qp->sq_psn = a->sq_psn;
	if (mask & IBV_QP_TIMEOUT)
		qp->timeout = a->timeout;
	if (mask & IBV_QP_RETRY_CNT)
		qp->retry_cnt = a->retry_cnt;
	if (mask & IBV_QP_RNR_RETRY)
		qp->rnr_retry = a->rnr_retry;
	if (mask & IBV_QP_MIN_RNR_TIMER)
		qp->min_rnr_timer = a->min_rnr_timer;
	if (mask & IBV_QP_MAX_QP_RD_ATOMIC)
		qp->max_rd_atomic = a->max_rd_atomic;
	if (mask & IBV_QP_MAX_DEST_RD_ATOMIC)
		qp->max_dest_rd_atomic = a->max_dest_rd_atomic;
	if (mask & IBV_QP_PORT)
		qp->port = a->port_num;
	if (mask & IBV_QP_AV) {
		qp->ah_attr = a->ah_attr;
		qp->ah.dlid = a->ah_attr.dlid;
		qp->ah.sl = a->ah_attr.sl;
		qp->ah.is_global = a->ah_attr.is_global;
		qp->ah.dgid = a->ah_attr.grh.dgid;
		qp->ah.hop_limit = a->ah_attr.grh.hop_limit;
		qp->ah.traffic_class = a->ah_attr.grh.traffic_class;
		qp->ah.flow_label = a->ah_attr.grh.flow_label;
	}
	if (next == IBV_QPS_RESET && cur != IBV_QPS_RESET) {
		sd_lock(&qp->sq.lock);
		atomic_store(&qp->sq.head, atomic_load(&qp->sq.tail));
		sd_unlock(&qp->sq.lock);
		if (qp->srq < 0) {
			sd_lock(&qp->rq.lock);
			atomic_store(&qp->rq.head, atomic_load(&qp->rq.tail));
			sd_unlock(&qp->rq.lock);
		}
		if (atomic_exchange(&qp->blocked, 0))
			atomic_fetch_sub(&S->nblocked, 1);
		atomic_store(&qp->state, IBV_QPS_RESET);
		atomic_store(&qp->pending, 0);
		if (qp->scq < SD_MAX_CQ)
			cq_clean(qp->scq, qp->qpn);
		if (qp->rcq != qp->scq && qp->rcq < SD_MAX_CQ)
			cq_clean(qp->rcq, qp->qpn);
		return 0;
	}
	if (next == IBV_QPS_ERR) {
		qp_error(sd_self, qp);
		sd_sq_progress(sd_self, qp);
		return 0;
	}
	atomic_store(&qp->state, (uint32_t)next);
	/* a peer's sends waited for this QP to be ready */
	if (next == IBV_QPS_RTR || next == IBV_QPS_RTS)
		kick_sender(qp);
	return 0;
}

int sdev_qp_query(struct sdev_qp *x, struct ibv_qp_attr *a, struct ibv_qp_init_attr *init)
{
	struct sd_qp *qp = (struct sd_qp *)x;
	memset(a, 0, sizeof *a);
	a->qp_state = (enum ibv_qp_state)atomic_load(&qp->state);
	a->cur_qp_state = a->qp_state;
	a->path_mtu = (enum ibv_mtu)qp->mtu;
	a->path_mig_state = IBV_MIG_MIGRATED;
	a->qkey = qp->qkey;
	a->rq_psn = qp->rq_psn;
	a->sq_psn = qp->sq_psn;
	a->dest_qp_num = qp->dest_qpn;
	a->qp_access_flags = (int)qp->access;
	a->cap.max_send_wr = qp->sq.max;
	a->cap.max_recv_wr = qp->srq >= 0 ? 0 : qp->rq.max;
	a->cap.max_send_sge = qp->sq.max_sge;
	a->cap.max_recv_sge = qp->srq >= 0 ? 0 : qp->rq.max_sge;
	a->cap.max_inline_data = qp->max_inline;
	a->ah_attr = qp->ah_attr;
	a->pkey_index = (uint16_t)qp->pkey_index;
	a->max_rd_atomic = (uint8_t)qp->max_rd_atomic;
	a->max_dest_rd_atomic = (uint8_t)qp->max_dest_rd_atomic;
	a->min_rnr_timer = (uint8_t)qp->min_rnr_timer;
	a->port_num = (uint8_t)(qp->port ? qp->port : 1);
	a->timeout = (uint8_t)qp->timeout;
	a->retry_cnt = (uint8_t)qp->retry_cnt;
	a->rnr_retry = (uint8_t)qp->rnr_retry;
	if (init) {
		init->cap = a->cap;
		init->qp_type = (enum ibv_qp_type)qp->type;
		init->sq_sig_all = (int)qp->sq_sig_all;
	}
	return 0;
}

int sdev_qp_destroy(struct sdev_qp *x)
{
	struct sd_qp *qp = (struct sd_qp *)x;
	sd_lock(&qp->sq.lock);
	if (qp->srq < 0)
		sd_lock(&qp->rq.lock);
	atomic_store(&qp->state, IBV_QPS_RESET);
	atomic_store(&qp->qpn, 1); /* reserved until the memory is back */
	if (qp->srq < 0)
		sd_unlock(&qp->rq.lock);
	sd_unlock(&qp->sq.lock);
	if (atomic_exchange(&qp->blocked, 0))
		atomic_fetch_sub(&S->nblocked, 1);
	sd_seg_free(qp->sq.off, (uint64_t)qp->sq.cap * sizeof(struct sd_swqe));
	if (qp->srq < 0)
		sd_seg_free(qp->rq.off, (uint64_t)qp->rq.cap * sizeof(struct sd_rwqe));
	qp->srq = -1;
	atomic_store(&qp->qpn, 0);
	return 0;
}

/* ------------------------------------------------------------ posting */
int sdev_post_recv(struct sdev_qp *x, const struct ibv_recv_wr *wr)
{
	struct sd_qp *qp = (struct sd_qp *)x;
	uint32_t st = atomic_load_explicit(&qp->state, memory_order_relaxed);
	int r;

	if (st == IBV_QPS_RESET || qp->srq >= 0 || qp->type == IBV_QPT_XRC_SEND ||
	    qp->type == IBV_QPT_XRC_RECV)
		return EINVAL;
	if (st == IBV_QPS_ERR) {
		if (wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->rq.max_sge)
			return EINVAL;
		push_simple(sd_self, qp->rcq, wr->wr_id, IBV_WC_WR_FLUSH_ERR, IBV_WC_RECV, qp->qpn, 0);
		return 0;
	}
	r = ring_post_recv(&qp->rq, wr);
	if (!r && atomic_load_explicit(&qp->pending, memory_order_relaxed))
		kick_sender(qp);
	return r;
}

int sdev_post_send(struct sdev_qp *x, const struct ibv_send_wr *wr, const struct sdev_ah *ah)
{
	struct sd_qp *qp = (struct sd_qp *)x;
	uint32_t st = atomic_load_explicit(&qp->state, memory_order_relaxed);
	struct sd_swqe *w;
	uint64_t t;
	int need = 0;

	if (st != IBV_QPS_RTS && st != IBV_QPS_SQD && st != IBV_QPS_ERR)
		return EINVAL;
	if (qp->type == IBV_QPT_XRC_RECV)
		return EINVAL;
	switch (wr->opcode) {
	case IBV_WR_SEND:
	case IBV_WR_SEND_WITH_IMM:
		break;
	case IBV_WR_ATOMIC_WRITE:
		if (qp->type != IBV_QPT_RC && qp->type != IBV_QPT_XRC_SEND)
			return EINVAL;
		break;
	case IBV_WR_SEND_WITH_INV:
	case IBV_WR_BIND_MW:
	case IBV_WR_LOCAL_INV:
		if (qp->type != IBV_QPT_RC && qp->type != IBV_QPT_UC && qp->type != IBV_QPT_XRC_SEND)
			return EINVAL;
		break;
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		if (qp->type == IBV_QPT_UD)
			return EINVAL;
		break;
	case IBV_WR_RDMA_READ:
		need = IBV_ACCESS_LOCAL_WRITE;
		if (qp->type != IBV_QPT_RC && qp->type != IBV_QPT_XRC_SEND)
			return EINVAL;
		break;
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		need = IBV_ACCESS_LOCAL_WRITE;
		if (qp->type != IBV_QPT_RC && qp->type != IBV_QPT_XRC_SEND)
			return EINVAL;
		break;
	default:
		return EINVAL;
	}
	if (wr->num_sge < 0 || (uint32_t)wr->num_sge > qp->sq.max_sge)
		return EINVAL;
	if (qp->type == IBV_QPT_UD && !ah)
		return EINVAL;
	sd_lock(&qp->sq.lock);
	t = atomic_load_explicit(&qp->sq.tail, memory_order_relaxed);
	if (t - atomic_load(&qp->sq.head) >= qp->sq.max) {
		sd_unlock(&qp->sq.lock);
		return ENOMEM;
	}
	w = sq_at(sd_self, &qp->sq, t);
	w->wr_id = wr->wr_id;
	w->opcode = wr->opcode;
	w->flags = wr->send_flags;
	w->imm = wr->imm_data;
	w->nsge = (uint32_t)wr->num_sge;
	w->status = 0;
	w->total = 0;
	w->first_try = 0;
	w->inl = 0;
	w->srqn = qp->type == IBV_QPT_XRC_SEND ? wr->qp_type.xrc.remote_srqn : 0;
	if (wr->opcode == IBV_WR_ATOMIC_CMP_AND_SWP || wr->opcode == IBV_WR_ATOMIC_FETCH_AND_ADD) {
		w->raddr = wr->wr.atomic.remote_addr;
		w->rkey = wr->wr.atomic.rkey;
		w->cmp = wr->wr.atomic.compare_add;
		w->swap = wr->wr.atomic.swap;
		if (wr->num_sge < 1 || wr->sg_list[0].length != 8)
			w->status = IBV_WC_LOC_LEN_ERR;
	} else if (wr->opcode == IBV_WR_BIND_MW) {
		/* the window's new key, the range of the MR it opens, its access */
		w->rkey = wr->bind_mw.rkey;
		w->raddr = wr->bind_mw.bind_info.addr;
		w->cmp = wr->bind_mw.bind_info.mr ? wr->bind_mw.bind_info.mr->lkey : 0;
		w->swap = wr->bind_mw.bind_info.length;
		w->imm = wr->bind_mw.bind_info.mw_access_flags;
	} else if (wr->opcode == IBV_WR_LOCAL_INV || wr->opcode == IBV_WR_SEND_WITH_INV) {
		w->rkey = wr->invalidate_rkey;
	} else if (qp->type == IBV_QPT_UD) {
		w->dqpn = wr->wr.ud.remote_qpn;
		w->qkey = wr->wr.ud.remote_qkey;
		w->ah = *ah;
	} else {
		w->raddr = wr->wr.rdma.remote_addr;
		w->rkey = wr->wr.rdma.rkey;
	}
	if (wr->opcode == IBV_WR_BIND_MW || wr->opcode == IBV_WR_LOCAL_INV) {
		w->nsge = 0;
	} else if ((wr->send_flags & IBV_SEND_INLINE) && !need) {
		uint8_t *d = w->data;
		for (int k = 0; k < wr->num_sge; k++) {
			if (w->total + wr->sg_list[k].length > SD_MAX_INLINE) {
				sd_unlock(&qp->sq.lock);
				return EINVAL;
			}
			memcpy(d, (void *)wr->sg_list[k].addr, wr->sg_list[k].length);
			d += wr->sg_list[k].length;
			w->total += wr->sg_list[k].length;
		}
		w->inl = 1;
	} else {
		for (int k = 0; k < wr->num_sge; k++) {
			int s = local_sge(qp->pd, &wr->sg_list[k], need, &w->sge[k]);
			if (s && !w->status)
				w->status = (uint32_t)s;
			w->total += wr->sg_list[k].length;
		}
	}
	if (qp->type == IBV_QPT_UD && w->total > 4096 && !w->status)
		w->status = IBV_WC_LOC_LEN_ERR;
	atomic_store_explicit(&qp->sq.tail, t + 1, memory_order_release);
	sd_unlock(&qp->sq.lock);
	return 0;
}

void sdev_qp_kick(struct sdev_qp *x) { sd_sq_progress(sd_self, (struct sd_qp *)x); }

static void kick_blocked(uint32_t cqi)
{
	for (uint32_t i = 0; i < S->nqp; i++) {
		struct sd_qp *qp = &S->qp[i];
		if (atomic_load_explicit(&qp->blocked, memory_order_relaxed) && qp->scq == cqi &&
		    atomic_load(&qp->qpn) > 1)
			sd_sq_progress(sd_self, qp);
	}
}

/* ------------------------------------------------------------ moving data */
struct piece {
	uint64_t addr, len;
};

/* copy between two processes' memory; the executor is one of them or
 * bounces. 0, or an errno (ESRCH: the process is gone; EFAULT). */
static int move(pid_t sp, const struct piece *s, int ns, pid_t dp, const struct piece *d, int nd,
                uint64_t total)
{
	pid_t me = sd_self->pid;
	struct iovec si[SD_MAX_SGE + 2], di[SD_MAX_SGE + 2];
	ssize_t n;

	if (!total)
		return 0;
	for (int i = 0; i < ns; i++) {
		si[i].iov_base = (void *)s[i].addr;
		si[i].iov_len = s[i].len;
	}
	for (int i = 0; i < nd; i++) {
		di[i].iov_base = (void *)d[i].addr;
		di[i].iov_len = d[i].len;
	}
	if (sp == me && dp == me) {
		int a = 0, b = 0;
		uint64_t ao = 0, bo = 0;
		while (a < ns && b < nd) {
			uint64_t l = s[a].len - ao < d[b].len - bo ? s[a].len - ao : d[b].len - bo;
			memmove((char *)d[b].addr + bo, (char *)s[a].addr + ao, l);
			ao += l;
			bo += l;
			if (ao == s[a].len) {
				a++;
				ao = 0;
			}
			if (bo == d[b].len) {
				b++;
				bo = 0;
			}
		}
		return 0;
	}
	if (sp == me)
		n = process_vm_writev(dp, si, (unsigned long)ns, di, (unsigned long)nd, 0);
	else if (dp == me)
		n = process_vm_readv(sp, di, (unsigned long)nd, si, (unsigned long)ns, 0);
	else {
		/* neither side is ours: through a bounce buffer, a piece at a time */
		char buf[16384];
		uint64_t done = 0;
		while (done < total) {
			struct iovec b = {buf, sizeof buf}, rs[SD_MAX_SGE + 2], rd[SD_MAX_SGE + 2];
			int nrs = 0, nrd = 0;
			uint64_t skip = done, want = total - done < sizeof buf ? total - done : sizeof buf;
			uint64_t left = want;
			for (int i = 0; i < ns && left; i++) {
				if (skip >= s[i].len) {
					skip -= s[i].len;
					continue;
				}
				uint64_t l = s[i].len - skip < left ? s[i].len - skip : left;
				rs[nrs].iov_base = (char *)s[i].addr + skip;
				rs[nrs++].iov_len = l;
				left -= l;
				skip = 0;
			}
			skip = done;
			left = want;
			for (int i = 0; i < nd && left; i++) {
				if (skip >= d[i].len) {
					skip -= d[i].len;
					continue;
				}
				uint64_t l = d[i].len - skip < left ? d[i].len - skip : left;
				rd[nrd].iov_base = (char *)d[i].addr + skip;
				rd[nrd++].iov_len = l;
				left -= l;
				skip = 0;
			}
			b.iov_len = want;
			if (process_vm_readv(sp, &b, 1, rs, (unsigned long)nrs, 0) != (ssize_t)want)
				return errno == ESRCH ? ESRCH : EFAULT;
			if (process_vm_writev(dp, &b, 1, rd, (unsigned long)nrd, 0) != (ssize_t)want)
				return errno == ESRCH ? ESRCH : EFAULT;
			done += want;
		}
		return 0;
	}
	if (n < 0)
		return errno == ESRCH ? ESRCH : EFAULT;
	return (uint64_t)n == total ? 0 : EFAULT;
}

/* the pieces of a receive WQE's buffers from offset off, len bytes */
static int scatter(const struct sd_rwqe *r, uint64_t off, uint64_t len, struct piece *out)
{
	int n = 0;
	for (uint32_t k = 0; k < r->nsge && len; k++) {
		uint64_t l = r->sge[k].len;
		if (off >= l) {
			off -= l;
			continue;
		}
		l -= off;
		if (l > len)
			l = len;
		out[n].addr = r->sge[k].addr + off;
		out[n++].len = l;
		len -= l;
		off = 0;
	}
	return n;
}

/* the source of a send WQE as pieces in the executor's or owner's memory */
static int source(struct sd_view *v, struct sd_swqe *w, struct piece *out, pid_t *pid)
{
	if (w->inl) {
		/* inline data is in the owner's segment, mapped here */
		out[0].addr = (uint64_t)w->data;
		out[0].len = w->total;
		*pid = sd_self->pid;
		return 1;
	}
	*pid = v->pid;
	for (uint32_t k = 0; k < w->nsge; k++) {
		out[k].addr = w->sge[k].addr;
		out[k].len = w->sge[k].len;
	}
	return (int)w->nsge;
}

static uint64_t rnr_ns(uint32_t t)
{
	/* IB encoding of the minimal RNR NAK timer, in µs×100 */
	static const uint32_t us100[32] = {65536, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96,
	                                   128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 3072,
	                                   4096, 6144, 8192, 12288, 16384, 24576, 32768, 49152};
	return (uint64_t)us100[t & 31] * 10000ull;
}

enum { DONE = 0, BLOCKED = 1 };

static void complete_send(struct sd_view *v, struct sd_qp *qp, struct sd_swqe *w, int status)
{
	static const int op[] = {
		[IBV_WR_RDMA_WRITE] = IBV_WC_RDMA_WRITE, [IBV_WR_RDMA_WRITE_WITH_IMM] = IBV_WC_RDMA_WRITE,
		[IBV_WR_SEND] = IBV_WC_SEND, [IBV_WR_SEND_WITH_IMM] = IBV_WC_SEND,
		[IBV_WR_RDMA_READ] = IBV_WC_RDMA_READ, [IBV_WR_ATOMIC_CMP_AND_SWP] = IBV_WC_COMP_SWAP,
		[IBV_WR_ATOMIC_FETCH_AND_ADD] = IBV_WC_FETCH_ADD,
		[IBV_WR_LOCAL_INV] = IBV_WC_LOCAL_INV, [IBV_WR_BIND_MW] = IBV_WC_BIND_MW,
		[IBV_WR_SEND_WITH_INV] = IBV_WC_SEND, [IBV_WR_ATOMIC_WRITE] = IBV_WC_ATOMIC_WRITE,
	};
	if (status || qp->sq_sig_all || (w->flags & IBV_SEND_SIGNALED)) {
		uint32_t len = (uint32_t)w->total;
		if (w->opcode == IBV_WR_ATOMIC_CMP_AND_SWP || w->opcode == IBV_WR_ATOMIC_FETCH_AND_ADD)
			len = 8;
		push_simple(v, qp->scq, w->wr_id, status, op[w->opcode], qp->qpn, len);
	}
	if (status && status != IBV_WC_WR_FLUSH_ERR) {
		iblog(2, "sdev: QP 0x%06x: work request %#llx completed with %s", qp->qpn,
		      (unsigned long long)w->wr_id, ibv_wc_status_str((enum ibv_wc_status)status));
		if (qp->type != IBV_QPT_UD)
			qp_error(v, qp);
	}
}

/* the target MR of an RDMA or atomic: its address in the target */
static int rkey_check(struct sd_view *tv, uint32_t pd, uint32_t qp_access, uint32_t qpn,
                      uint32_t rkey, uint64_t raddr, uint64_t len, int need, uint64_t *real)
{
	uint32_t i = rkey >> 8;
	struct sd_mr *m;
	if (i == 0 || i >= SD_MAX_MR)
		return IBV_WC_REM_ACCESS_ERR;
	m = &tv->seg->mr[i];
	if (atomic_load_explicit(&m->key, memory_order_acquire) != rkey || m->pd != pd ||
	    !(m->access & need) || !(qp_access & (uint32_t)need) || raddr < m->iova ||
	    raddr + len > m->iova + m->len || (m->mw == 2 && m->qpn != qpn))
		return IBV_WC_REM_ACCESS_ERR;
	*real = m->addr + (raddr - m->iova);
	return 0;
}

static void grh_build(uint8_t *g, const struct sd_swqe *w, uint32_t paylen)
{
	union ibv_gid sgid;
	uint32_t vtf = 6u << 28 | (uint32_t)w->ah.traffic_class << 20 | (w->ah.flow_label & 0xfffff);
	sdev_gid(&sgid);
	g[0] = (uint8_t)(vtf >> 24);
	g[1] = (uint8_t)(vtf >> 16);
	g[2] = (uint8_t)(vtf >> 8);
	g[3] = (uint8_t)vtf;
	g[4] = (uint8_t)(paylen >> 8);
	g[5] = (uint8_t)paylen;
	g[6] = 0x1b;
	g[7] = w->ah.hop_limit;
	memcpy(g + 8, sgid.raw, 16);
	memcpy(g + 24, w->ah.dgid.raw, 16);
}

/* Wait for the target (no receive, not ready, or not answering): BLOCKED,
 * or the error once the retries a real device would make are over. A
 * target that is gone is retried like one that does not answer (the
 * transport timeout), as an HCA would. */
static int wait_or_fail(struct sd_qp *qp, struct sd_swqe *w, struct sd_qp *tq, int rnr)
{
	uint64_t now = sd_now_ns(), limit;
	if (!w->first_try)
		w->first_try = now;
	if (tq)
		atomic_store(&tq->pending, 1);
	if (rnr) {
		if (qp->rnr_retry == 7)
			return BLOCKED;
		limit = rnr_ns(tq ? tq->min_rnr_timer : 0) * (qp->rnr_retry + 1);
		return now - w->first_try > limit ? IBV_WC_RNR_RETRY_EXC_ERR : BLOCKED;
	}
	if (!qp->timeout)
		return BLOCKED;
	limit = (4096ull << (qp->timeout > 31 ? 31 : qp->timeout)) * (qp->retry_cnt + 1);
	return now - w->first_try > limit ? IBV_WC_RETRY_EXC_ERR : BLOCKED;
}

/* Bind a window, invalidate one: the owner's own table, in the order of
 * its send queue. 0 or the completion's status. */
static int local_op(struct sd_view *v, struct sd_qp *qp, struct sd_swqe *w)
{
	uint32_t i = w->rkey >> 8, mi = (uint32_t)w->cmp >> 8;
	struct sd_mr *m = i && i < SD_MAX_MR ? &v->seg->mr[i] : NULL, *mr;
	uint32_t cur = m ? atomic_load(&m->key) : 0;

	if (!m || !m->mw || (cur >> 8) != i || m->pd != qp->pd)
		return IBV_WC_MW_BIND_ERR;
	if (w->opcode == IBV_WR_LOCAL_INV) {
		if (m->mw != 2 || cur != w->rkey)
			return IBV_WC_MW_BIND_ERR;
		m->access = 0;
		m->len = 0;
		return 0;
	}
	/* bind (or, with length 0, unbind) */
	if (w->swap) {
		mr = mi && mi < SD_MAX_MR ? &v->seg->mr[mi] : NULL;
		if (!mr || mr->mw || atomic_load(&mr->key) != (uint32_t)w->cmp || mr->pd != qp->pd ||
		    !(mr->access & IBV_ACCESS_MW_BIND) || w->raddr < mr->iova ||
		    w->raddr + w->swap > mr->iova + mr->len ||
		    ((w->imm & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
		     !(mr->access & IBV_ACCESS_LOCAL_WRITE)))
			return IBV_WC_MW_BIND_ERR;
		atomic_store(&m->key, 1); /* no access while it changes */
		m->addr = mr->addr + (w->raddr - mr->iova);
		m->iova = w->raddr;
		m->len = w->swap;
		m->access = (int32_t)(w->imm & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
		                                IBV_ACCESS_REMOTE_ATOMIC));
	} else {
		atomic_store(&m->key, 1);
		m->len = 0;
		m->access = 0;
	}
	m->qpn = qp->qpn;
	atomic_store(&m->key, w->rkey);
	return 0;
}

/* Execute one send WQE of qp (owned by v). DONE or BLOCKED. */
static int exec(struct sd_view *v, struct sd_qp *qp, struct sd_swqe *w)
{
	int rc_ = qp->type == IBV_QPT_RC || qp->type == IBV_QPT_XRC_SEND, ud = qp->type == IBV_QPT_UD;
	int xrc = qp->type == IBV_QPT_XRC_SEND, srqi;
	uint32_t rpd, rcqi;
	uint32_t dqpn = ud ? w->dqpn : qp->dest_qpn, tst;
	struct sd_view *tv;
	struct sd_qp *tq;
	struct piece src[SD_MAX_SGE + 1], dst[SD_MAX_SGE + 2];
	int ns, nd, r, status = 0;
	pid_t spid;
	uint64_t real;

	if (w->status) {
		complete_send(v, qp, w, (int)w->status);
		return DONE;
	}
	if (atomic_load(&qp->state) == IBV_QPS_ERR) {
		complete_send(v, qp, w, IBV_WC_WR_FLUSH_ERR);
		return DONE;
	}
	if (w->opcode == IBV_WR_BIND_MW || w->opcode == IBV_WR_LOCAL_INV) {
		complete_send(v, qp, w, local_op(v, qp, w));
		return DONE;
	}
	tv = sd_view_of(sd_qpn_slot(dqpn));
	tq = tv && sd_qpn_idx(dqpn) < SD_MAX_QP ? &tv->seg->qp[sd_qpn_idx(dqpn)] : NULL;
	if (tq && atomic_load_explicit(&tq->qpn, memory_order_acquire) != dqpn)
		tq = NULL;
	/* a retry, or now and then: is the target's process still there? */
	if (tv && (w->first_try || ++tv->ops % 1024 == 0) && !sd_view_alive(tv))
		tq = NULL;
	if (tv && tv->dead)
		tq = NULL;
	tst = tq ? atomic_load_explicit(&tq->state, memory_order_acquire) : IBV_QPS_RESET;
	if (!tq || (tst != IBV_QPS_RTR && tst != IBV_QPS_RTS && tst != IBV_QPS_SQD)) {
		if (!rc_) {
			complete_send(v, qp, w, 0); /* dropped on the wire */
			return DONE;
		}
		/* nobody answers: retried until the transport timeout */
		r = wait_or_fail(qp, w, tq, 0);
		if (r == BLOCKED)
			return BLOCKED;
		complete_send(v, qp, w, r);
		return DONE;
	}
	if (tq->type != (xrc ? IBV_QPT_XRC_RECV : qp->type) ||
	    (ud && w->qkey != tq->qkey && !((w->qkey & 0x80000000u) && qp->qkey == tq->qkey))) {
		complete_send(v, qp, w, rc_ ? IBV_WC_RETRY_EXC_ERR : 0);
		return DONE;
	}
	/* where receives come from, the PD of the target's memory, the CQ of
	 * the receive completions: the QP's (or its SRQ's), or for XRC the
	 * SRQ the WR names, which must be of the target QP's domain */
	srqi = tq->srq;
	rpd = tq->pd;
	rcqi = tq->rcq;
	if (xrc) {
		uint32_t i = w->srqn & 0xfff;
		struct sd_srq *xs = i < SD_MAX_SRQ ? &tv->seg->srq[i] : NULL;
		if (sd_qpn_slot(w->srqn) != tv->slot || !xs || !atomic_load(&xs->used) ||
		    xs->srqn != w->srqn || !xs->xrcd || xs->xrcd != tq->xrcd) {
			iblog(2, "sdev: QP 0x%06x: XRC SRQ %#x is not of the target's domain", qp->qpn,
			      w->srqn);
			complete_send(v, qp, w, IBV_WC_REM_INV_REQ_ERR);
			return DONE;
		}
		srqi = (int)i;
		rpd = xs->pd;
		rcqi = (uint32_t)xs->cq;
	}
	ns = source(v, w, src, &spid);

	switch (w->opcode) {
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		status = rkey_check(tv, rpd, tq->access, dqpn, w->rkey, w->raddr, w->total, IBV_ACCESS_REMOTE_WRITE, &real);
		if (status)
			break;
		if (w->opcode == IBV_WR_RDMA_WRITE) {
			dst[0].addr = real;
			dst[0].len = w->total;
			r = move(spid, src, ns, tv->pid, dst, 1, w->total);
			status = r == ESRCH ? IBV_WC_RETRY_EXC_ERR : r ? IBV_WC_REM_ACCESS_ERR : 0;
			break;
		}
		/* with immediate consumes a receive */
		__attribute__((fallthrough));
	case IBV_WR_SEND:
	case IBV_WR_SEND_WITH_IMM:
	case IBV_WR_SEND_WITH_INV: {
		struct sd_ring *rq = srqi >= 0 ? &tv->seg->srq[srqi].rq : &tq->rq;
		struct sd_rwqe rw;
		struct sd_cqe e;
		uint64_t h, t, need;
		int imm = w->opcode == IBV_WR_SEND_WITH_IMM || w->opcode == IBV_WR_RDMA_WRITE_WITH_IMM;
		int wimm = w->opcode == IBV_WR_RDMA_WRITE_WITH_IMM;
		int inv = w->opcode == IBV_WR_SEND_WITH_INV;
		int grh = ud ? SD_GRH : 0;

		sd_lock(&rq->lock);
		h = atomic_load_explicit(&rq->head, memory_order_relaxed);
		t = atomic_load_explicit(&rq->tail, memory_order_acquire);
		if (h == t || atomic_load(&tq->qpn) != dqpn || !rq->off) {
			sd_unlock(&rq->lock);
			if (!rc_) {
				complete_send(v, qp, w, 0); /* UC, UD: dropped */
				return DONE;
			}
			r = wait_or_fail(qp, w, tq, 1);
			if (r == BLOCKED)
				return BLOCKED;
			complete_send(v, qp, w, r);
			return DONE;
		}
		{
			/* the header and the SGEs used: a few cache lines of the peer's */
			const struct sd_rwqe *src = rq_at(tv, rq, h);
			uint32_t ns = src->nsge <= SD_MAX_SGE ? src->nsge : SD_MAX_SGE;
			memcpy(&rw, src, offsetof(struct sd_rwqe, sge) + ns * sizeof(struct sd_sge));
			rw.nsge = ns;
		}
		atomic_store_explicit(&rq->head, h + 1, memory_order_release);
		sd_unlock(&rq->lock);
		resolve_rwqe(tv, srqi >= 0 ? tv->seg->srq[srqi].pd : tq->pd, &rw);
		if (srqi >= 0) {
			struct sd_srq *s = &tv->seg->srq[srqi];
			uint32_t lim = atomic_load(&s->limit);
			if (lim && t - (h + 1) < lim && atomic_exchange(&s->limit, 0))
				sd_async_raise(tv, IBV_EVENT_SRQ_LIMIT_REACHED, 3, (uint32_t)srqi);
		}
		memset(&e.wc, 0, sizeof e.wc);
		e.ncopy = 0;
		e.copy_len = 0;
		e.wc.wr_id = rw.wr_id;
		e.wc.opcode = wimm ? IBV_WC_RECV_RDMA_WITH_IMM : IBV_WC_RECV;
		e.wc.qp_num = dqpn;
		e.wc.src_qp = qp->qpn;
		e.wc.slid = SD_LID;
		e.wc.sl = ud ? w->ah.sl : qp->ah.sl;
		e.wc.byte_len = (uint32_t)(w->total + (uint64_t)grh);
		if (imm) {
			e.wc.imm_data = w->imm;
			e.wc.wc_flags |= IBV_WC_WITH_IMM;
		}
		if (inv) {
			/* the receiver's type 2 window bound to this QP loses its access */
			uint32_t ki = w->rkey >> 8;
			struct sd_mr *m = ki && ki < SD_MAX_MR ? &tv->seg->mr[ki] : NULL;
			if (m && m->mw == 2 && atomic_load(&m->key) == w->rkey && m->qpn == dqpn) {
				m->access = 0;
				m->len = 0;
			}
			e.wc.invalidated_rkey = w->rkey;
			e.wc.wc_flags |= IBV_WC_WITH_INV;
		}
		if (ud && w->ah.is_global)
			e.wc.wc_flags |= IBV_WC_GRH;
		need = wimm ? 0 : w->total + (uint64_t)grh;
		if (rw.status) {
			e.wc.status = (enum ibv_wc_status)rw.status;
			status = IBV_WC_REM_OP_ERR;
		} else if (need > rw.total) {
			e.wc.status = IBV_WC_LOC_LEN_ERR;
			status = rc_ ? IBV_WC_REM_INV_REQ_ERR : 0;
		}
		if (e.wc.status) {
			e.wc.vendor_err = 0x100 + e.wc.status;
			cq_push(tv, rcqi, &e, 1);
			if (!ud)
				qp_error(tv, tq);
			break;
		}
		if (wimm) {
			dst[0].addr = real;
			dst[0].len = w->total;
			r = move(spid, src, ns, tv->pid, dst, 1, w->total);
		} else {
			uint8_t g[SD_GRH];
			int ng = 0;
			struct piece gp[SD_MAX_SGE];
			if (ud && w->ah.is_global) {
				grh_build(g, w, (uint32_t)w->total);
				ng = scatter(&rw, 0, SD_GRH, gp);
			}
			nd = scatter(&rw, (uint64_t)grh, w->total, dst);
			r = 0;
			if (spid == sd_self->pid && tv != sd_self && w->total + (ng ? SD_GRH : 0) <= SD_SMALL &&
			    nd + ng <= 3) {
				/* carried in the CQE, copied by the receiver's poll */
				uint8_t *d = e.data;
				for (int k = 0; k < ng; k++) {
					memcpy(d, g + (d - e.data), gp[k].len);
					d += gp[k].len;
					e.copy[e.ncopy].addr = gp[k].addr;
					e.copy[e.ncopy++].len = (uint32_t)gp[k].len;
				}
				for (int k = 0; k < ns; k++) {
					memcpy(d, (void *)src[k].addr, src[k].len);
					d += src[k].len;
				}
				for (int k = 0; k < nd; k++) {
					e.copy[e.ncopy].addr = dst[k].addr;
					e.copy[e.ncopy++].len = (uint32_t)dst[k].len;
				}
				e.copy_len = (uint32_t)(d - e.data);
			} else {
				if (ng) {
					struct piece gs = {(uint64_t)g, SD_GRH};
					r = move(sd_self->pid, &gs, 1, tv->pid, gp, ng, SD_GRH);
				}
				if (!r)
					r = move(spid, src, ns, tv->pid, dst, nd, w->total);
			}
		}
		if (r) {
			status = r == ESRCH ? IBV_WC_RETRY_EXC_ERR : IBV_WC_REM_ACCESS_ERR;
			if (r != ESRCH) {
				e.wc.status = IBV_WC_LOC_PROT_ERR;
				e.ncopy = 0;
				cq_push(tv, rcqi, &e, 1);
			}
			break;
		}
		cq_push(tv, rcqi, &e, (w->flags & IBV_SEND_SOLICITED) != 0);
		break;
	}
	case IBV_WR_ATOMIC_WRITE:
		/* 8 bytes written at once, atomic with the device's other atomics */
		if ((w->raddr & 7) || w->total != 8) {
			status = IBV_WC_REM_INV_REQ_ERR;
			break;
		}
		status = rkey_check(tv, rpd, tq->access, dqpn, w->rkey, w->raddr, 8,
		                    IBV_ACCESS_REMOTE_WRITE, &real);
		if (status)
			break;
		dst[0].addr = real;
		dst[0].len = 8;
		sd_lock(&tv->seg->alock);
		r = move(spid, src, ns, tv->pid, dst, 1, 8);
		sd_unlock(&tv->seg->alock);
		status = r == ESRCH ? IBV_WC_RETRY_EXC_ERR : r ? IBV_WC_REM_ACCESS_ERR : 0;
		break;
	case IBV_WR_RDMA_READ:
		status = rkey_check(tv, rpd, tq->access, dqpn, w->rkey, w->raddr, w->total, IBV_ACCESS_REMOTE_READ, &real);
		if (status)
			break;
		dst[0].addr = real;
		dst[0].len = w->total;
		r = move(tv->pid, dst, 1, v->pid, src, ns, w->total);
		status = r == ESRCH ? IBV_WC_RETRY_EXC_ERR : r ? IBV_WC_REM_ACCESS_ERR : 0;
		break;
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD: {
		uint64_t old = 0, nv;
		struct piece tp, lp = {(uint64_t)&old, 8}, np = {(uint64_t)&nv, 8};
		if (w->raddr & 7) {
			status = IBV_WC_REM_INV_REQ_ERR;
			break;
		}
		status = rkey_check(tv, rpd, tq->access, dqpn, w->rkey, w->raddr, 8, IBV_ACCESS_REMOTE_ATOMIC, &real);
		if (status)
			break;
		tp.addr = real;
		tp.len = 8;
		sd_lock(&tv->seg->alock);
		r = move(tv->pid, &tp, 1, sd_self->pid, &lp, 1, 8);
		if (!r) {
			if (w->opcode == IBV_WR_ATOMIC_FETCH_AND_ADD)
				nv = old + w->cmp;
			else
				nv = old == w->cmp ? w->swap : old;
			if (nv != old || w->opcode == IBV_WR_ATOMIC_FETCH_AND_ADD)
				r = move(sd_self->pid, &np, 1, tv->pid, &tp, 1, 8);
		}
		sd_unlock(&tv->seg->alock);
		if (!r)
			r = move(sd_self->pid, &lp, 1, v->pid, src, 1, 8);
		status = r == ESRCH ? IBV_WC_RETRY_EXC_ERR : r ? IBV_WC_REM_ACCESS_ERR : 0;
		break;
	}
	}
	if (status == IBV_WC_REM_ACCESS_ERR || status == IBV_WC_REM_INV_REQ_ERR)
		iblog(2, "sdev: QP 0x%06x -> 0x%06x: remote access refused (rkey %#x, addr %#llx)",
		      qp->qpn, dqpn, w->rkey, (unsigned long long)w->raddr);
	complete_send(v, qp, w, status);
	return DONE;
}

void sd_sq_progress(struct sd_view *v, struct sd_qp *qp)
{
	struct sd_ring *r = &qp->sq;
	uint64_t h, t;
	int blocked = 0;

	sd_lock(&r->lock);
	if (atomic_load(&qp->qpn) <= 1 || !r->off) {
		sd_unlock(&r->lock);
		return;
	}
	h = atomic_load_explicit(&r->head, memory_order_relaxed);
	t = atomic_load_explicit(&r->tail, memory_order_acquire);
	for (; h != t; h++) {
		if (exec(v, qp, sq_at(v, r, h)) == BLOCKED) {
			blocked = 1;
			break;
		}
		atomic_store_explicit(&r->head, h + 1, memory_order_release);
	}
	if (blocked) {
		if (!atomic_exchange(&qp->blocked, 1))
			atomic_fetch_add(&v->seg->nblocked, 1);
	} else if (atomic_load_explicit(&qp->blocked, memory_order_relaxed) &&
	           atomic_exchange(&qp->blocked, 0)) {
		atomic_fetch_sub(&v->seg->nblocked, 1);
	}
	sd_unlock(&r->lock);
}
