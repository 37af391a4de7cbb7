/* vt_limits: the limits the device reports are the ones it honours. At the
 * reported maximum a CQ, a QP, an SRQ are made (and what ibv_query_qp says
 * covers what was asked), one past it they are refused; a send gathers
 * max_sge pieces into a receive that scatters them over max_sge pieces;
 * an inline send of max_inline_data bytes goes through and one byte more
 * is refused at the post; an MR with remote write but no local write is
 * refused (the spec requires both). Role A checks, in one process (two RC
 * QPs of its own connected to each other); role B only keeps step. */
#include "vt_common.h"

#define BUF (256 * 1024)

static struct vt_dev d;

static void loopback(struct ibv_qp *a, struct ibv_qp *b, struct ibv_mr *mr)
{
	struct vt_ep ea = vt_ep_of(&d, a, mr), eb = vt_ep_of(&d, b, mr);
	vt_qp_init(a, VT_ACCESS_ALL);
	vt_qp_init(b, VT_ACCESS_ALL);
	vt_qp_rtr(&d, a, &eb, NULL);
	vt_qp_rtr(&d, b, &ea, NULL);
	vt_qp_rts(a, ea.psn, NULL);
	vt_qp_rts(b, eb.psn, NULL);
}

static void limits(void)
{
	struct ibv_device_attr *at = &d.attr;
	vt_line("info A limits: max_qp_wr %d max_sge %d max_cqe %d max_srq_wr %d max_srq_sge %d\n", at->max_qp_wr,
		at->max_sge, at->max_cqe, at->max_srq_wr, at->max_srq_sge);

	/* CQ */
	struct ibv_cq *cq = ibv_create_cq(d.ctx, at->max_cqe, NULL, NULL, 0);
	CHECK("cq.at_max_cqe", cq && cq->cqe >= at->max_cqe, "ibv_create_cq(%d): %s", at->max_cqe,
	      cq ? "fewer entries" : strerror(errno));
	if (cq)
		ibv_destroy_cq(cq);
	cq = ibv_create_cq(d.ctx, at->max_cqe + 1, NULL, NULL, 0);
	CHECK("cq.past_max_cqe_refused", cq == NULL, "ibv_create_cq(%d) succeeded", at->max_cqe + 1);
	if (cq)
		ibv_destroy_cq(cq);

	/* QP at max_qp_wr and max_sge */
	struct ibv_cq *scq = vt_cq(&d, 256, NULL);
	struct vt_qp_opts o = {.max_send_wr = at->max_qp_wr, .max_recv_wr = at->max_qp_wr, .max_sge = at->max_sge};
	struct ibv_qp_init_attr ia;
	memset(&ia, 0, sizeof ia);
	ia.send_cq = ia.recv_cq = scq;
	ia.qp_type = IBV_QPT_RC;
	ia.cap.max_send_wr = ia.cap.max_recv_wr = (uint32_t)o.max_send_wr;
	ia.cap.max_send_sge = ia.cap.max_recv_sge = (uint32_t)o.max_sge;
	struct ibv_qp *qp = ibv_create_qp(d.pd, &ia);
	CHECK("qp.at_max_wr_and_sge", qp != NULL, "ibv_create_qp(wr %d, sge %d): %s", o.max_send_wr, o.max_sge,
	      strerror(errno));
	if (qp) {
		struct ibv_qp_attr qa;
		struct ibv_qp_init_attr qia;
		int rc = ibv_query_qp(qp, &qa, IBV_QP_CAP, &qia);
		CHECK("qp.query_caps_cover_request",
		      rc == 0 && qa.cap.max_send_wr >= (uint32_t)o.max_send_wr && qa.cap.max_recv_wr >= (uint32_t)o.max_recv_wr &&
			      qa.cap.max_send_sge >= (uint32_t)o.max_sge && qa.cap.max_recv_sge >= (uint32_t)o.max_sge,
		      "ibv_query_qp: rc %d, send_wr %u recv_wr %u send_sge %u recv_sge %u", rc, qa.cap.max_send_wr,
		      qa.cap.max_recv_wr, qa.cap.max_send_sge, qa.cap.max_recv_sge);
		ibv_destroy_qp(qp);
	}
	ia.cap.max_send_wr = ia.cap.max_recv_wr = (uint32_t)at->max_qp_wr + 1;
	ia.cap.max_send_sge = ia.cap.max_recv_sge = 1;
	qp = ibv_create_qp(d.pd, &ia);
	CHECK("qp.past_max_wr_refused", qp == NULL, "a QP of %d WRs was made", at->max_qp_wr + 1);
	if (qp)
		ibv_destroy_qp(qp);
	ia.cap.max_send_wr = ia.cap.max_recv_wr = 16;
	ia.cap.max_send_sge = ia.cap.max_recv_sge = (uint32_t)at->max_sge + 1;
	qp = ibv_create_qp(d.pd, &ia);
	CHECK("qp.past_max_sge_refused", qp == NULL, "a QP of %d SGEs was made", at->max_sge + 1);
	if (qp)
		ibv_destroy_qp(qp);

	/* SRQ */
	struct ibv_srq_init_attr sa;
	memset(&sa, 0, sizeof sa);
	sa.attr.max_wr = (uint32_t)at->max_srq_wr;
	sa.attr.max_sge = (uint32_t)at->max_srq_sge;
	struct ibv_srq *srq = ibv_create_srq(d.pd, &sa);
	CHECK("srq.at_max", srq != NULL, "ibv_create_srq(wr %d, sge %d): %s", at->max_srq_wr, at->max_srq_sge,
	      strerror(errno));
	if (srq)
		ibv_destroy_srq(srq);
	sa.attr.max_wr = (uint32_t)at->max_srq_wr + 1;
	sa.attr.max_sge = 1;
	srq = ibv_create_srq(d.pd, &sa);
	CHECK("srq.past_max_wr_refused", srq == NULL, "an SRQ of %d WRs was made", at->max_srq_wr + 1);
	if (srq)
		ibv_destroy_srq(srq);

	/* an MR with remote write and no local write */
	void *p = NULL;
	if (posix_memalign(&p, 4096, 4096))
		DIE("posix_memalign");
	struct ibv_mr *bad = ibv_reg_mr(d.pd, p, 4096, IBV_ACCESS_REMOTE_WRITE);
	CHECK("mr.remote_write_needs_local_write", bad == NULL, "REMOTE_WRITE without LOCAL_WRITE was registered");
	if (bad)
		ibv_dereg_mr(bad);
	free(p);
	ibv_destroy_cq(scq);

	/* traffic at max_sge and at max_inline_data: two QPs of this process */
	struct ibv_mr *mr = vt_mr(&d, BUF, VT_ACCESS_ALL);
	uint8_t *buf = mr->addr;
	struct ibv_cq *c1 = vt_cq(&d, 64, NULL), *c2 = vt_cq(&d, 64, NULL);
	int nsge = at->max_sge < 64 ? at->max_sge : 64;
	struct vt_qp_opts to = {.max_sge = nsge, .max_inline = 256};
	struct ibv_qp *a = vt_qp(&d, IBV_QPT_RC, c1, c1, &to), *b = vt_qp(&d, IBV_QPT_RC, c2, c2, &to);
	loopback(a, b, mr);
	struct ibv_sge sg[64], rg[64];
	size_t piece = 100, total = piece * (size_t)nsge;
	vt_fill(buf + 65536, total, 7);
	for (int i = 0; i < nsge; i++) {
		/* the pieces of the message lie backwards in the source, and the
		 * receive scatters them every 1000 bytes */
		sg[i] = (struct ibv_sge){(uintptr_t)(buf + 65536 + (size_t)(nsge - 1 - i) * piece + 0), (uint32_t)piece,
					 mr->lkey};
		rg[i] = (struct ibv_sge){(uintptr_t)(buf + 131072 + (size_t)i * 1000), (uint32_t)piece, mr->lkey};
	}
	/* the source pieces: message piece i is at source slot nsge-1-i */
	uint8_t msg[64 * 100];
	vt_fill(msg, total, 7);
	for (int i = 0; i < nsge; i++)
		memcpy(buf + 65536 + (size_t)(nsge - 1 - i) * piece, msg + (size_t)i * piece, piece);
	struct ibv_recv_wr rw, *rbad;
	memset(&rw, 0, sizeof rw);
	rw.wr_id = 1;
	rw.sg_list = rg;
	rw.num_sge = nsge;
	CHECK("sge.post_recv_max_sge", !ibv_post_recv(b, &rw, &rbad), "ibv_post_recv with %d SGEs failed", nsge);
	struct ibv_send_wr sw, *sbad;
	memset(&sw, 0, sizeof sw);
	sw.wr_id = 2;
	sw.sg_list = sg;
	sw.num_sge = nsge;
	sw.opcode = IBV_WR_SEND;
	sw.send_flags = IBV_SEND_SIGNALED;
	CHECK("sge.post_send_max_sge", !ibv_post_send(a, &sw, &sbad), "ibv_post_send with %d SGEs failed", nsge);
	struct ibv_wc wc;
	int got = vt_poll1(c2, &wc, 5000);
	CHECK("sge.recv_completion", got && wc.status == IBV_WC_SUCCESS && wc.byte_len == total, "%s",
	      vt_wc_str(&wc, got));
	int ok = 1;
	for (int i = 0; i < nsge && ok; i++)
		ok = !memcmp(buf + 131072 + (size_t)i * 1000, msg + (size_t)i * piece, piece);
	CHECK("sge.data", ok, "a scattered piece differs");
	got = vt_poll1(c1, &wc, 5000);
	CHECK("sge.send_completion", got && wc.status == IBV_WC_SUCCESS, "%s", vt_wc_str(&wc, got));

	struct ibv_qp_attr qa;
	struct ibv_qp_init_attr qia;
	ibv_query_qp(a, &qa, IBV_QP_CAP, &qia);
	uint32_t inl = qa.cap.max_inline_data;
	CHECK("inline.cap", inl >= 256, "max_inline_data %u, 256 asked", inl);
	uint8_t tmp[4096];
	if (inl + 1 > sizeof tmp)
		inl = sizeof tmp - 1;
	vt_fill(tmp, inl, 8);
	memset(buf + 196608, 0, 8192);
	if (vt_post_recv(b, 3, mr, 196608, 8192))
		DIE("post_recv");
	struct ibv_sge is = {(uintptr_t)tmp, inl, 0};
	memset(&sw, 0, sizeof sw);
	sw.wr_id = 4;
	sw.sg_list = &is;
	sw.num_sge = 1;
	sw.opcode = IBV_WR_SEND;
	sw.send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE;
	CHECK("inline.post_at_max", !ibv_post_send(a, &sw, &sbad), "an inline send of %u bytes failed", inl);
	memset(tmp, 0, inl);
	got = vt_poll1(c2, &wc, 5000);
	CHECK("inline.recv_at_max", got && wc.status == IBV_WC_SUCCESS && wc.byte_len == inl &&
					    vt_cmp(buf + 196608, inl, 8) < 0,
	      "%s", vt_wc_str(&wc, got));
	got = vt_poll1(c1, &wc, 5000);
	CHECK("inline.send_completion", got && wc.status == IBV_WC_SUCCESS, "%s", vt_wc_str(&wc, got));
	is.length = inl + 1;
	sw.wr_id = 5;
	int rc = ibv_post_send(a, &sw, &sbad);
	CHECK("inline.past_max_refused", rc != 0, "an inline send of %u bytes (max_inline_data %u) was posted", inl + 1, inl);
	CHECK("inline.past_max_no_completion", vt_poll_none(c1, 50) == 0, "the refused post completed");

	ibv_destroy_qp(a);
	ibv_destroy_qp(b);
	ibv_destroy_cq(c1);
	ibv_destroy_cq(c2);
	ibv_dereg_mr(mr);
}

static void role(char r)
{
	vt_open(&d);
	if (r == 'A')
		limits();
	vt_sync();
	ibv_dealloc_pd(d.pd);
	CHECK("teardown", !ibv_close_device(d.ctx), "ibv_close_device failed");
}

int main(int argc, char **argv)
{
	return vt_main(argc, argv, role);
}
