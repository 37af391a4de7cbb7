/* vt_uc_ud_srq: the other transports, checked by data and completion
 * fields: UC send and RDMA write (with and without immediate); UD send
 * through an address handle, the 40 bytes of GRH space before the data,
 * the source QP number, and a datagram with the wrong Q_Key dropped; an
 * SRQ shared by two RC QPs, and its limit event (IBV_EVENT_SRQ_LIMIT_REACHED,
 * the limit disarmed after it). A posts, B receives (see vt_common.h). */
#include "vt_common.h"
#include <poll.h>

#define BUF (64 * 1024)
#define GRH 40

static struct vt_dev d;
static struct ibv_mr *mr;
static uint8_t *buf;

static void uc(char r)
{
	struct ibv_cq *scq = vt_cq(&d, 32, NULL), *rcq = vt_cq(&d, 32, NULL);
	struct ibv_qp *qp = vt_qp(&d, IBV_QPT_UC, scq, rcq, NULL);
	struct vt_ep peer = vt_connect(&d, qp, mr, NULL);
	struct ibv_wc wc;
	int got;

	/* send */
	if (r == 'B') {
		if (vt_post_recv(qp, 201, mr, 0, 4096))
			DIE("post_recv");
		vt_sync();
		got = vt_poll1(rcq, &wc, 5000);
		CHECK("uc.send.recv_completion",
		      got && wc.status == IBV_WC_SUCCESS && wc.wr_id == 201 && wc.opcode == IBV_WC_RECV &&
			      wc.byte_len == 777 && wc.qp_num == qp->qp_num,
		      "expected wr_id 201 RECV 777 bytes, got %s", vt_wc_str(&wc, got));
		CHECK("uc.send.data", vt_cmp(buf, 777, 31) < 0, "payload differs at byte %ld", vt_cmp(buf, 777, 31));
	} else {
		vt_fill(buf + 4096, 777, 31);
		vt_sync();
		CHECK("uc.send.post", !vt_post_send(qp, 1, IBV_WR_SEND, mr, 4096, 777, IBV_SEND_SIGNALED, 0, 0, 0),
		      "ibv_post_send failed");
		got = vt_poll1(scq, &wc, 5000);
		CHECK("uc.send.completion", got && wc.status == IBV_WC_SUCCESS && wc.wr_id == 1 && wc.opcode == IBV_WC_SEND,
		      "got %s", vt_wc_str(&wc, got));
	}
	vt_sync();

	/* RDMA write, then write with immediate */
	if (r == 'A') {
		vt_fill(buf + 8192, 1500, 32);
		CHECK("uc.write.post",
		      !vt_post_send(qp, 2, IBV_WR_RDMA_WRITE, mr, 8192, 1500, IBV_SEND_SIGNALED, peer.addr + 16384,
				    peer.rkey, 0),
		      "ibv_post_send failed");
		got = vt_poll1(scq, &wc, 5000);
		CHECK("uc.write.completion",
		      got && wc.status == IBV_WC_SUCCESS && wc.wr_id == 2 && wc.opcode == IBV_WC_RDMA_WRITE,
		      "got %s", vt_wc_str(&wc, got));
		vt_sync();
		vt_sync();
		vt_fill(buf + 8192, 300, 33);
		CHECK("uc.write_imm.post",
		      !vt_post_send(qp, 3, IBV_WR_RDMA_WRITE_WITH_IMM, mr, 8192, 300, IBV_SEND_SIGNALED,
				    peer.addr + 20480, peer.rkey, 0x0badcafe),
		      "ibv_post_send failed");
		got = vt_poll1(scq, &wc, 5000);
		CHECK("uc.write_imm.completion",
		      got && wc.status == IBV_WC_SUCCESS && wc.wr_id == 3 && wc.opcode == IBV_WC_RDMA_WRITE,
		      "got %s", vt_wc_str(&wc, got));
	} else {
		vt_sync();
		CHECK("uc.write.data", vt_cmp(buf + 16384, 1500, 32) < 0, "differs at byte %ld",
		      vt_cmp(buf + 16384, 1500, 32));
		CHECK("uc.write.no_recv_completion", vt_poll_none(rcq, 50) == 0, "a receive completion appeared");
		if (vt_post_recv(qp, 203, mr, 0, 16))
			DIE("post_recv");
		vt_sync();
		got = vt_poll1(rcq, &wc, 5000);
		CHECK("uc.write_imm.recv_completion",
		      got && wc.status == IBV_WC_SUCCESS && wc.wr_id == 203 && wc.opcode == IBV_WC_RECV_RDMA_WITH_IMM &&
			      (wc.wc_flags & IBV_WC_WITH_IMM) && ntohl(wc.imm_data) == 0x0badcafe && wc.byte_len == 300,
		      "expected wr_id 203 RECV_RDMA_WITH_IMM 300 bytes imm 0x0badcafe, got %s imm 0x%x",
		      vt_wc_str(&wc, got), ntohl(wc.imm_data));
		CHECK("uc.write_imm.data", vt_cmp(buf + 20480, 300, 33) < 0, "differs at byte %ld",
		      vt_cmp(buf + 20480, 300, 33));
	}
	vt_sync();
	ibv_destroy_qp(qp);
	ibv_destroy_cq(scq);
	ibv_destroy_cq(rcq);
}

static void ud(char r)
{
	struct ibv_cq *scq = vt_cq(&d, 32, NULL), *rcq = vt_cq(&d, 32, NULL);
	struct ibv_qp *qp = vt_qp(&d, IBV_QPT_UD, scq, rcq, NULL);
	struct vt_ep mine = vt_ep_of(&d, qp, mr), peer;
	struct ibv_wc wc;
	int got;

	vt_qp_init(qp, 0);
	vt_qp_rtr(&d, qp, NULL, NULL);
	vt_qp_rts(qp, mine.psn, NULL);
	vt_ep_exchange(&mine, &peer);

	if (r == 'B') {
		memset(buf, 0, 8192);
		/* two receives: a datagram that should have been dropped
		 * would take the first */
		if (vt_post_recv(qp, 301, mr, 0, GRH + 1024) || vt_post_recv(qp, 302, mr, 2048, GRH + 1024))
			DIE("post_recv");
		vt_sync();
		/* A first sends with a wrong Q_Key (dropped), then right */
		got = vt_poll1(rcq, &wc, 5000);
		CHECK("ud.recv_completion",
		      got && wc.status == IBV_WC_SUCCESS && wc.wr_id == 301 && wc.opcode == IBV_WC_RECV &&
			      wc.byte_len == GRH + 256 && wc.qp_num == qp->qp_num,
		      "expected wr_id 301 RECV byte_len %d (GRH + 256), got %s", GRH + 256, vt_wc_str(&wc, got));
		CHECK("ud.src_qp", got && wc.src_qp == peer.qpn, "src_qp 0x%x, the sender's QP is 0x%x", wc.src_qp,
		      peer.qpn);
		CHECK("ud.slid", got && (d.use_grh || wc.slid == peer.lid), "slid %u, the sender's LID is %u",
		      wc.slid, peer.lid);
		CHECK("ud.grh_flag", got && (!d.use_grh || (wc.wc_flags & IBV_WC_GRH)),
		      "the address handle had a GRH, the completion has no IBV_WC_GRH");
		CHECK("ud.data_after_grh", vt_cmp(buf + GRH, 256, 42) < 0, "payload at offset 40 differs at byte %ld",
		      vt_cmp(buf + GRH, 256, 42));
		CHECK("ud.wrong_qkey_dropped", vt_poll_none(rcq, 100) == 0, "a second datagram arrived");
	} else {
		struct ibv_ah_attr aa;
		vt_ah_attr(&d, &peer, &aa);
		struct ibv_ah *ah = ibv_create_ah(d.pd, &aa);
		CHECK("ud.create_ah", ah != NULL, "ibv_create_ah failed: %s", strerror(errno));
		if (!ah)
			DIE("no address handle");
		vt_fill(buf + 4096, 256, 41);
		struct ibv_sge sge = {(uint64_t)(uintptr_t)(buf + 4096), 256, mr->lkey};
		struct ibv_send_wr wr, *bad;
		memset(&wr, 0, sizeof wr);
		wr.wr_id = 40;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.opcode = IBV_WR_SEND;
		wr.send_flags = IBV_SEND_SIGNALED;
		wr.wr.ud.ah = ah;
		wr.wr.ud.remote_qpn = peer.qpn;
		wr.wr.ud.remote_qkey = 0x22222222; /* not the receiver's */
		vt_sync();
		CHECK("ud.wrong_qkey.post", !ibv_post_send(qp, &wr, &bad), "ibv_post_send failed");
		got = vt_poll1(scq, &wc, 5000);
		CHECK("ud.wrong_qkey.completion", got && wc.status == IBV_WC_SUCCESS && wc.wr_id == 40,
		      "a UD send completes locally whatever the receiver does; got %s", vt_wc_str(&wc, got));
		vt_sleep_ms(50);
		vt_fill(buf + 4096, 256, 42);
		wr.wr_id = 41;
		wr.wr.ud.remote_qkey = 0x11111111;
		CHECK("ud.send.post", !ibv_post_send(qp, &wr, &bad), "ibv_post_send failed");
		got = vt_poll1(scq, &wc, 5000);
		CHECK("ud.send.completion",
		      got && wc.status == IBV_WC_SUCCESS && wc.wr_id == 41 && wc.opcode == IBV_WC_SEND,
		      "got %s", vt_wc_str(&wc, got));
		vt_sync();
		ibv_destroy_ah(ah);
	}
	if (r == 'B')
		vt_sync();
	vt_sync();
	ibv_destroy_qp(qp);
	ibv_destroy_cq(scq);
	ibv_destroy_cq(rcq);
}

/* B: one SRQ, two RC QPs on it; A: two RC QPs, two messages on each.
 * A message's first 4 bytes say which QP and which message it is. */
static void srq(char r)
{
	struct ibv_cq *scq = vt_cq(&d, 32, NULL), *rcq = vt_cq(&d, 32, NULL);
	struct ibv_srq *s = NULL;
	struct vt_qp_opts o = {0};
	if (r == 'B') {
		struct ibv_srq_init_attr sa;
		memset(&sa, 0, sizeof sa);
		sa.attr.max_wr = 16;
		sa.attr.max_sge = 1;
		s = ibv_create_srq(d.pd, &sa);
		CHECK("srq.create", s != NULL, "ibv_create_srq failed: %s", strerror(errno));
		if (!s)
			DIE("no SRQ");
		struct ibv_srq_attr q;
		CHECK("srq.query", !ibv_query_srq(s, &q) && q.max_wr >= 16, "ibv_query_srq: max_wr %u", q.max_wr);
		o.srq = s;
	}
	struct ibv_qp *qp[2];
	struct vt_ep peer[2];
	for (int i = 0; i < 2; i++) {
		qp[i] = vt_qp(&d, IBV_QPT_RC, scq, rcq, &o);
		peer[i] = vt_connect(&d, qp[i], mr, &o);
	}
	(void)peer;
	if (r == 'B') {
		memset(buf, 0, 8192);
		for (int i = 0; i < 4; i++) {
			struct ibv_sge sge = {(uint64_t)(uintptr_t)(buf + (size_t)i * 1024), 1024, mr->lkey};
			struct ibv_recv_wr wr, *bad;
			memset(&wr, 0, sizeof wr);
			wr.wr_id = 400 + (uint64_t)i;
			wr.sg_list = &sge;
			wr.num_sge = 1;
			if (ibv_post_srq_recv(s, &wr, &bad))
				DIE("ibv_post_srq_recv");
		}
		/* armed: an event once fewer than 3 receives are left */
		struct ibv_srq_attr lim = {.srq_limit = 3};
		CHECK("srq.arm_limit", !ibv_modify_srq(s, &lim, IBV_SRQ_LIMIT), "ibv_modify_srq(IBV_SRQ_LIMIT 3) failed");
		vt_sync();
		int per_qp[2] = {0, 0}, seen[4] = {0}, bad_data = 0, bad_wc = 0;
		char why[256] = "";
		for (int i = 0; i < 4; i++) {
			struct ibv_wc wc;
			int got = vt_poll1(rcq, &wc, 5000);
			if (!got || wc.status != IBV_WC_SUCCESS || wc.opcode != IBV_WC_RECV || wc.wr_id < 400 ||
			    wc.wr_id > 403 || wc.byte_len != 200) {
				snprintf(why, sizeof why, "completion %d: %s", i, vt_wc_str(&wc, got));
				bad_wc = 1;
				break;
			}
			uint8_t *m = buf + (wc.wr_id - 400) * 1024;
			int q = m[0], k = m[1];
			int which = wc.qp_num == qp[0]->qp_num ? 0 : wc.qp_num == qp[1]->qp_num ? 1 : -1;
			if (which < 0 || q != which || k > 1 || seen[q * 2 + k]++ ||
			    vt_cmp(m + 4, 196, 50 + (unsigned)(q * 2 + k)) >= 0) {
				snprintf(why, sizeof why, "completion %d (qp 0x%x) holds message %d.%d", i, wc.qp_num, q, k);
				bad_data = 1;
			}
			if (which >= 0)
				per_qp[which]++;
		}
		CHECK("srq.completions", !bad_wc, "%s", why);
		CHECK("srq.data_and_qp_num", !bad_wc && !bad_data && per_qp[0] == 2 && per_qp[1] == 2,
		      "%s (per QP: %d, %d)", why, per_qp[0], per_qp[1]);
		struct pollfd pf = {d.ctx->async_fd, POLLIN, 0};
		int limit_ev = 0, other = -1;
		double end = vt_now() + 5;
		while (!limit_ev && vt_now() < end) {
			if (poll(&pf, 1, 200) <= 0)
				continue;
			struct ibv_async_event ev;
			if (ibv_get_async_event(d.ctx, &ev))
				break;
			if (ev.event_type == IBV_EVENT_SRQ_LIMIT_REACHED && ev.element.srq == s)
				limit_ev = 1;
			else
				other = ev.event_type;
			ibv_ack_async_event(&ev);
		}
		CHECK("srq.limit_event", limit_ev, "no IBV_EVENT_SRQ_LIMIT_REACHED for the SRQ within 5 s (other event %d)",
		      other);
		struct ibv_srq_attr q;
		CHECK("srq.limit_disarmed", !ibv_query_srq(s, &q) && q.srq_limit == 0,
		      "after the event srq_limit is %u, a device sets it back to 0", q.srq_limit);
	} else {
		vt_sync();
		for (int q = 0; q < 2; q++)
			for (int k = 0; k < 2; k++) {
				uint8_t *m = buf + 4096 + (size_t)(q * 2 + k) * 256;
				m[0] = (uint8_t)q;
				m[1] = (uint8_t)k;
				m[2] = m[3] = 0;
				vt_fill(m + 4, 196, 50 + (unsigned)(q * 2 + k));
				CHECK("srq.post", !vt_post_send(qp[q], 50 + (uint64_t)(q * 2 + k), IBV_WR_SEND, mr,
							       (size_t)(m - buf), 200, IBV_SEND_SIGNALED, 0, 0, 0),
				      "ibv_post_send failed");
			}
		int ok = 0;
		for (int i = 0; i < 4; i++) {
			struct ibv_wc wc;
			ok += vt_poll1(scq, &wc, 5000) && wc.status == IBV_WC_SUCCESS;
		}
		CHECK("srq.send_completions", ok == 4, "%d of 4 sends completed successfully", ok);
	}
	vt_sync();
	for (int i = 0; i < 2; i++)
		ibv_destroy_qp(qp[i]);
	if (s)
		CHECK("srq.destroy", !ibv_destroy_srq(s), "ibv_destroy_srq failed");
	ibv_destroy_cq(scq);
	ibv_destroy_cq(rcq);
}

static void role(char r)
{
	vt_open(&d);
	mr = vt_mr(&d, BUF, VT_ACCESS_ALL);
	buf = mr->addr;
	uc(r);
	ud(r);
	srq(r);
	ibv_dereg_mr(mr);
	ibv_dealloc_pd(d.pd);
	CHECK("teardown", !ibv_close_device(d.ctx), "ibv_close_device failed");
}

int main(int argc, char **argv)
{
	return vt_main(argc, argv, role);
}
