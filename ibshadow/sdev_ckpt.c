/* The software device at a checkpoint: what lives only in it (the "HCA's
 * memory", left out of the image) read at the cut, with every process of
 * the job parked, so nothing moves: completions not yet polled, receives
 * posted and not consumed, sends posted and not yet executed. Nothing is
 * consumed: a program that runs on after the checkpoint finds the device
 * as it was. */
#include "ibshadow/sdev_int.h"

#include <string.h>

#define S (sd_self->seg)

int sdev_cq_snapshot(struct sdev_cq *c, struct sdev_kept_cqe *out, int max, int *armed)
{
	struct sd_cq *cq = (struct sd_cq *)c;
	struct sd_cqe *ring = (struct sd_cqe *)sd_at(sd_self, cq->off);
	uint64_t h = atomic_load(&cq->head), t = atomic_load(&cq->tail);
	int n = 0;

	if (armed)
		*armed = (int)atomic_load(&cq->armed);
	for (; h != t; h++, n++) {
		const struct sd_cqe *e = &ring[h & (cq->cap - 1)];
		struct sdev_kept_cqe *k;
		if (!max)
			continue;
		if (n >= max)
			break;
		k = &out[n];
		memset(k, 0, sizeof *k);
		k->wc = e->wc;
		k->ncopy = e->ncopy;
		for (uint32_t i = 0; i < e->ncopy && i < 3; i++) {
			k->copy[i].addr = e->copy[i].addr;
			k->copy[i].len = e->copy[i].len;
		}
		if (e->ncopy)
			memcpy(k->data, e->data, e->copy_len < SDEV_SMALL ? e->copy_len : SDEV_SMALL);
	}
	return n;
}

uint64_t sdev_cq_cookie(struct sdev_cq *c) { return ((struct sd_cq *)c)->cookie; }

static int ring_snapshot(struct sd_ring *r, struct sdev_recv_wr *out, int max)
{
	uint64_t h = atomic_load(&r->head), t = atomic_load(&r->tail);
	int n = 0;
	if (!r->off)
		return 0;
	for (; h != t; h++, n++) {
		const struct sd_rwqe *w = &((struct sd_rwqe *)sd_at(sd_self, r->off))[h & (r->cap - 1)];
		if (!max)
			continue;
		if (n >= max)
			break;
		memset(&out[n], 0, sizeof out[n]);
		out[n].wr_id = w->wr_id;
		out[n].nsge = w->nsge;
		/* not taken yet: the SGEs are as posted */
		for (uint32_t k = 0; k < w->nsge && k < 16; k++) {
			out[n].sge[k].addr = w->sge[k].addr;
			out[n].sge[k].length = w->sge[k].len;
			out[n].sge[k].lkey = w->sge[k].lkey;
		}
	}
	return n;
}

int sdev_qp_snapshot_rq(struct sdev_qp *x, struct sdev_recv_wr *out, int max)
{
	struct sd_qp *qp = (struct sd_qp *)x;
	if (qp->srq >= 0)
		return 0;
	return ring_snapshot(&qp->rq, out, max);
}

int sdev_srq_snapshot(struct sdev_srq *x, struct sdev_recv_wr *out, int max)
{
	return ring_snapshot(&((struct sd_srq *)x)->rq, out, max);
}

/* an address of this process resolved at post time back to the MR's iova
 * space, with the MR's key */
static void unresolve(uint32_t pd, const struct sd_sge *g, struct ibv_sge *out)
{
	out->addr = g->addr;
	out->length = g->len;
	out->lkey = 0;
	if (!g->len)
		return;
	for (uint32_t i = 1; i < SD_MAX_MR; i++) {
		const struct sd_mr *m = &S->mr[i];
		uint32_t key = atomic_load(&m->key);
		if (key <= 1 || m->mw || m->pd != pd)
			continue;
		if (g->addr >= m->addr && g->addr + g->len <= m->addr + m->len) {
			out->addr = m->iova + (g->addr - m->addr);
			out->lkey = key;
			return;
		}
	}
}

int sdev_qp_snapshot_sq(struct sdev_qp *x, struct sdev_send_wr *out, int max)
{
	struct sd_qp *qp = (struct sd_qp *)x;
	struct sd_ring *r = &qp->sq;
	uint64_t h = atomic_load(&r->head), t = atomic_load(&r->tail);
	int n = 0;
	if (!r->off)
		return 0;
	for (; h != t; h++, n++) {
		const struct sd_swqe *w = &((struct sd_swqe *)sd_at(sd_self, r->off))[h & (r->cap - 1)];
		struct sdev_send_wr *o;
		if (!max)
			continue;
		if (n >= max)
			break;
		o = &out[n];
		memset(o, 0, sizeof *o);
		o->wr_id = w->wr_id;
		o->opcode = w->opcode;
		o->flags = w->flags;
		o->imm = w->imm;
		o->nsge = w->nsge;
		o->raddr = w->raddr;
		o->rkey = w->rkey;
		o->dqpn = w->dqpn;
		o->qkey = w->qkey;
		o->inl = w->inl;
		o->srqn = w->srqn;
		o->total = (uint32_t)w->total;
		o->cmp = w->cmp;
		o->swap = w->swap;
		o->ah = w->ah;
		if (w->inl)
			memcpy(o->data, w->data, w->total < sizeof o->data ? w->total : sizeof o->data);
		else
			for (uint32_t k = 0; k < w->nsge && k < 16; k++)
				unresolve(qp->pd, &w->sge[k], &o->sge[k]);
	}
	return n;
}
