/* The verbs shadow's data path: the ops the verbs header inlines through
 * the context (post_send, post_recv, post_srq_recv, poll_cq,
 * req_notify_cq). Each WR is copied with its values translated (SGE
 * lkeys, rkeys, remote QP numbers and address handles) and handed to the
 * device; completions come back with theirs translated to virtual. The
 * translations hit a direct-mapped cache: a few loads per WR. */
#include "ibshadow/shadow.h"
#include "ibshadow/iblog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int direct_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad);
static int direct_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad);

static int sh_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
	struct sh_qp *q = SH(sh_qp, qp);
	struct ibv_sge sg[16];
	struct ibv_send_wr d;
	struct ibv_mr tmr;
	const struct sdev_ah *ah = NULL;
	int e = 0;
	IBS_SECTION();

	/* every value is its own translation (until a restart): the WRs go
	 * to the device as they are */
	if (xl_all_identity())
		return direct_post_send(qp, wr, bad);
	for (; wr; wr = wr->next) {
		if (wr->num_sge > 16 || wr->num_sge < 0) {
			e = EINVAL;
			break;
		}
		d = *wr;
		d.sg_list = sg;
		for (int k = 0; k < wr->num_sge; k++) {
			sg[k] = wr->sg_list[k];
			sg[k].lkey = xl_to_dev(XL_KEY, sg[k].lkey);
		}
		if (qp->qp_type == IBV_QPT_UD) {
			struct sh_ah *a = wr->wr.ud.ah ? SH(sh_ah, wr->wr.ud.ah) : NULL;
			if (!a) {
				e = EINVAL;
				break;
			}
			ah = &a->dev;
			d.wr.ud.remote_qpn = xl_remote(XL_QPN, xl_peer_of(wr->wr.ud.remote_qpn),
			                               wr->wr.ud.remote_qpn);
		} else if (wr->opcode == IBV_WR_ATOMIC_CMP_AND_SWP ||
		           wr->opcode == IBV_WR_ATOMIC_FETCH_AND_ADD) {
			d.wr.atomic.rkey = xl_remote(XL_KEY, q->peer_id, wr->wr.atomic.rkey);
		} else {
			d.wr.rdma.rkey = xl_remote(XL_KEY, q->peer_id, wr->wr.rdma.rkey);
		}
		if (qp->qp_type == IBV_QPT_XRC_SEND)
			d.qp_type.xrc.remote_srqn =
			    xl_remote(XL_SRQN, q->peer_id, wr->qp_type.xrc.remote_srqn);
		if (wr->opcode == IBV_WR_BIND_MW) {
			if (wr->bind_mw.bind_info.mr) {
				tmr = *wr->bind_mw.bind_info.mr;
				tmr.lkey = xl_to_dev(XL_KEY, tmr.lkey);
				d.bind_mw.bind_info.mr = &tmr;
			}
			d.bind_mw.rkey = xl_to_dev(XL_KEY, wr->bind_mw.rkey);
		} else if (wr->opcode == IBV_WR_LOCAL_INV) {
			d.invalidate_rkey = xl_to_dev(XL_KEY, wr->invalidate_rkey);
		} else if (wr->opcode == IBV_WR_SEND_WITH_INV) {
			d.invalidate_rkey = xl_remote(XL_KEY, q->peer_id, wr->invalidate_rkey);
		}
		e = sdev_post_send(q->dev, &d, ah);
		if (e)
			break;
		if (wr->opcode == IBV_WR_BIND_MW && wr->bind_mw.mw)
			shadow_mw_rekey(wr->bind_mw.mw, wr->bind_mw.rkey, &wr->bind_mw.bind_info);
	}
	if (e) {
		*bad = wr;
		iblog(2, "verbs: post_send on QP %#08x (%s) refused: %s", qp->qp_num,
		      shadow_qp_state_str(sdev_qp_state(q->dev)), strerror(e));
	}
	sdev_qp_kick(q->dev);
	return e;
}

static int post_recv_common(struct sdev_qp *qp, struct sdev_srq *srq, struct ibv_recv_wr *wr,
                            struct ibv_recv_wr **bad)
{
	struct ibv_sge sg[16];
	struct ibv_recv_wr d;
	int e = 0;

	for (; wr; wr = wr->next) {
		if (wr->num_sge > 16 || wr->num_sge < 0) {
			e = EINVAL;
			break;
		}
		d = *wr;
		d.sg_list = sg;
		for (int k = 0; k < wr->num_sge; k++) {
			sg[k] = wr->sg_list[k];
			sg[k].lkey = xl_to_dev(XL_KEY, sg[k].lkey);
		}
		e = qp ? sdev_post_recv(qp, &d) : sdev_post_srq_recv(srq, &d);
		if (e)
			break;
	}
	if (e)
		*bad = wr;
	if (srq)
		sdev_srq_kick(srq);
	return e;
}

static int sh_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	IBS_SECTION();
	int e = xl_all_identity() ? direct_post_recv(qp, wr, bad)
	                          : post_recv_common(SH(sh_qp, qp)->dev, NULL, wr, bad);
	if (e)
		iblog(2, "verbs: post_recv on QP %#08x refused: %s", qp->qp_num, strerror(e));
	return e;
}

static int sh_post_srq_recv(struct ibv_srq *srq, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	IBS_SECTION();
	return post_recv_common(NULL, SH(sh_srq, srq)->dev, wr, bad);
}

/* After a restart: the completions kept at the cut come first (their
 * values virtual already; a small message's data goes to its buffer now,
 * as the device does at poll time). */
static int poll_kept(struct sh_cq *q, int n, struct ibv_wc *wc)
{
	int got = 0;
	while (got < n && q->kept_pos < q->nkept) {
		const struct sdev_kept_cqe *k = &q->kept[q->kept_pos++];
		const uint8_t *d = k->data;
		for (uint32_t i = 0; i < k->ncopy && i < 3; i++) {
			memcpy((void *)(uintptr_t)k->copy[i].addr, d, k->copy[i].len);
			d += k->copy[i].len;
		}
		wc[got++] = k->wc;
	}
	if (q->kept_pos == q->nkept)
		q->nkept = 0, q->kept_pos = 0;
	return got;
}

static int sh_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
	IBS_SECTION();
	struct sh_cq *q = SH(sh_cq, cq);
	int kept = 0, got;
	if (__builtin_expect(q->nkept != 0, 0)) {
		kept = poll_kept(q, n, wc);
		if (kept == n)
			return kept;
		wc += kept;
		n -= kept;
	}
	got = sdev_poll_cq(q->dev, n, wc);
	if (xl_all_identity())
		return kept + got;
	for (int i = 0; i < got; i++) {
		wc[i].qp_num = xl_to_virt(XL_QPN, wc[i].qp_num);
		if (wc[i].wc_flags & IBV_WC_WITH_INV)
			wc[i].invalidated_rkey = xl_to_virt(XL_KEY, wc[i].invalidated_rkey);
		if (wc[i].opcode & IBV_WC_RECV) {
			uint16_t vlid = (uint16_t)xl_remote_virt(XL_LID, wc[i].slid, wc[i].slid);
			wc[i].src_qp = xl_remote_virt(XL_QPN, 0, wc[i].src_qp);
			wc[i].slid = vlid;
		}
	}
	return kept + got;
}

static int sh_req_notify_cq(struct ibv_cq *cq, int solicited_only)
{
	IBS_SECTION();
	struct sh_cq *q = SH(sh_cq, cq);
	int e = sdev_req_notify(q->dev, solicited_only);
	/* the arming is state of the CQ that part 2 re-creates: kept on the
	 * CQ (not a log entry per call: it is on the fast path); the device
	 * disarms at the event, part 2 asks it */
	if (!e)
		q->notify = solicited_only ? 2 : 1;
	return e;
}

/* CKPTMPI_VERBS_DIRECT=1 (for the bench only: what the shadow costs):
 * the device's functions called directly, values untranslated (they are
 * their own translation until a restart) */
static int direct_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad)
{
	IBS_SECTION();
	struct sh_qp *q = SH(sh_qp, qp);
	int e = 0;
	for (; wr; wr = wr->next) {
		const struct sdev_ah *ah = NULL;
		if (qp->qp_type == IBV_QPT_UD) {
			if (!wr->wr.ud.ah) {
				e = EINVAL;
				*bad = wr;
				break;
			}
			ah = &SH(sh_ah, wr->wr.ud.ah)->dev;
		}
		if ((e = sdev_post_send(q->dev, wr, ah))) {
			*bad = wr;
			iblog(2, "verbs: post_send on QP %#08x (%s) refused: %s", qp->qp_num,
			      shadow_qp_state_str(sdev_qp_state(q->dev)), strerror(e));
			break;
		}
		if (wr->opcode == IBV_WR_BIND_MW && wr->bind_mw.mw)
			shadow_mw_rekey(wr->bind_mw.mw, wr->bind_mw.rkey, &wr->bind_mw.bind_info);
	}
	sdev_qp_kick(q->dev);
	return e;
}

static int direct_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad)
{
	IBS_SECTION();
	int e = 0;
	for (; wr; wr = wr->next)
		if ((e = sdev_post_recv(SH(sh_qp, qp)->dev, wr))) {
			*bad = wr;
			break;
		}
	return e;
}

static int direct_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc)
{
	IBS_SECTION();
	struct sh_cq *q = SH(sh_cq, cq);
	int kept = 0;
	if (__builtin_expect(q->nkept != 0, 0)) {
		kept = poll_kept(q, n, wc);
		if (kept == n)
			return kept;
	}
	return kept + sdev_poll_cq(q->dev, n - kept, wc + kept);
}

void shadow_set_ops(struct sh_ctx *c)
{
	const char *d = getenv("CKPTMPI_VERBS_DIRECT"), *x = getenv("CKPTMPI_VERBS_XLATE");
	static int forced;
	/* CKPTMPI_VERBS_XLATE=1 (bench): every WR and completion goes through
	 * the tables, as after a restart, although they are the identity */
	if (x && !strcmp(x, "1") && !forced) {
		forced = 1;
		atomic_fetch_add(&xl_nonidentity, 1);
	}
	if (d && !strcmp(d, "1")) {
		iblog(1, "verbs: CKPTMPI_VERBS_DIRECT=1: the data path bypasses the shadow (bench only)");
		c->v.context.ops.post_send = direct_post_send;
		c->v.context.ops.post_recv = direct_post_recv;
		c->v.context.ops.post_srq_recv = sh_post_srq_recv;
		c->v.context.ops.poll_cq = direct_poll_cq;
		c->v.context.ops.req_notify_cq = sh_req_notify_cq;
		c->v.context.ops.alloc_mw = shadow_alloc_mw;
		c->v.context.ops.dealloc_mw = shadow_dealloc_mw;
		c->v.context.ops.bind_mw = shadow_bind_mw;
		return;
	}
	c->v.context.ops.post_send = sh_post_send;
	c->v.context.ops.post_recv = sh_post_recv;
	c->v.context.ops.post_srq_recv = sh_post_srq_recv;
	c->v.context.ops.poll_cq = sh_poll_cq;
	c->v.context.ops.req_notify_cq = sh_req_notify_cq;
	c->v.context.ops.alloc_mw = shadow_alloc_mw;
	c->v.context.ops.dealloc_mw = shadow_dealloc_mw;
	c->v.context.ops.bind_mw = shadow_bind_mw;
}
