/* vt_errors: what a real device gives for bad input, never a crash or a
 * hang: bad rkey and an RDMA write to an MR without remote write access
 * (IBV_WC_REM_ACCESS_ERR), bad lkey (IBV_WC_LOC_PROT_ERR), a receive
 * buffer too small (IBV_WC_LOC_LEN_ERR at the receiver,
 * IBV_WC_REM_INV_REQ_ERR at the sender), a send with no receive posted
 * and rnr_retry 0 (IBV_WC_RNR_RETRY_EXC_ERR), posts on a QP in RESET,
 * INIT, RTR (EINVAL) and a transition a device refuses, flushed work
 * requests after the QP moves to ERR (IBV_WC_WR_FLUSH_ERR), a CQ overrun
 * (async IBV_EVENT_CQ_ERR), and the peer killed in the middle of RDMA
 * writes (IBV_WC_RETRY_EXC_ERR within a bounded time, every outstanding
 * request completed). One fresh QP pair per case (see vt_common.h). */
#include "vt_common.h"
#include <poll.h>

#define BUF (256 * 1024)

static struct vt_dev d;
static struct ibv_mr *mr;
static uint8_t *buf;

struct pair {
	struct ibv_cq *scq, *rcq;
	struct ibv_qp *qp;
	struct vt_ep peer;
};

static struct pair mkpair(const struct vt_qp_opts *o, int scq_size)
{
	struct pair p;
	p.scq = vt_cq(&d, scq_size ? scq_size : 64, NULL);
	p.rcq = vt_cq(&d, 64, NULL);
	p.qp = vt_qp(&d, IBV_QPT_RC, p.scq, p.rcq, o);
	p.peer = vt_connect(&d, p.qp, mr, o);
	return p;
}

static void rmpair(struct pair *p)
{
	ibv_destroy_qp(p->qp);
	ibv_destroy_cq(p->scq);
	ibv_destroy_cq(p->rcq);
}

/* A's send completion for one request must have STATUS */
static void expect_status(const char *name, struct ibv_cq *cq, uint64_t wr_id, enum ibv_wc_status st, int ms)
{
	struct ibv_wc wc;
	int got = vt_poll1(cq, &wc, ms);
	CHECK(name, got && wc.wr_id == wr_id && wc.status == st, "expected wr_id %llu status %s, got %s",
	      (unsigned long long)wr_id, vt_status(st), vt_wc_str(&wc, got));
}

static void bad_rkey(char r)
{
	struct pair p = mkpair(NULL, 0);
	if (r == 'A') {
		vt_fill(buf, 256, 1);
		CHECK("bad_rkey.post",
		      !vt_post_send(p.qp, 1, IBV_WR_RDMA_WRITE, mr, 0, 256, IBV_SEND_SIGNALED, p.peer.addr,
				    p.peer.rkey ^ 0x00ffff00, 0),
		      "ibv_post_send failed");
		expect_status("bad_rkey.rem_access_err", p.scq, 1, IBV_WC_REM_ACCESS_ERR, 5000);
	}
	vt_sync();
	rmpair(&p);
}

static void no_remote_write(char r)
{
	struct pair p = mkpair(NULL, 0);
	struct ibv_mr *ro = NULL;
	if (r == 'B') {
		ro = vt_mr(&d, 4096, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ);
		vt_send_u64((uint64_t)(uintptr_t)ro->addr);
		vt_send_u64(ro->rkey);
		vt_sync();
		uint8_t zero[4096] = {0};
		CHECK("no_remote_write.untouched", !memcmp(ro->addr, zero, 4096), "the read-only MR was written");
	} else {
		uint64_t addr = vt_recv_u64();
		uint32_t rkey = (uint32_t)vt_recv_u64();
		vt_fill(buf, 512, 2);
		CHECK("no_remote_write.post",
		      !vt_post_send(p.qp, 2, IBV_WR_RDMA_WRITE, mr, 0, 512, IBV_SEND_SIGNALED, addr, rkey, 0),
		      "ibv_post_send failed");
		expect_status("no_remote_write.rem_access_err", p.scq, 2, IBV_WC_REM_ACCESS_ERR, 5000);
		vt_sync();
	}
	vt_sync();
	if (ro) {
		void *a = ro->addr;
		ibv_dereg_mr(ro);
		free(a);
	}
	rmpair(&p);
}

static void bad_lkey(char r)
{
	struct pair p = mkpair(NULL, 0);
	if (r == 'B') {
		if (vt_post_recv(p.qp, 300, mr, 0, 4096))
			DIE("post_recv");
		vt_sync();
	} else {
		vt_sync();
		struct ibv_sge sge = {(uint64_t)(uintptr_t)buf, 128, mr->lkey ^ 0x00ffff00};
		struct ibv_send_wr wr, *bad;
		memset(&wr, 0, sizeof wr);
		wr.wr_id = 3;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.opcode = IBV_WR_SEND;
		wr.send_flags = IBV_SEND_SIGNALED;
		int rc = ibv_post_send(p.qp, &wr, &bad);
		CHECK("bad_lkey.post", rc == 0, "ibv_post_send returned %d (a device reports a bad lkey in the completion)", rc);
		if (rc == 0)
			expect_status("bad_lkey.loc_prot_err", p.scq, 3, IBV_WC_LOC_PROT_ERR, 5000);
	}
	vt_sync();
	rmpair(&p);
}

static void recv_too_small(char r)
{
	struct pair p = mkpair(NULL, 0);
	if (r == 'B') {
		if (vt_post_recv(p.qp, 400, mr, 0, 16))
			DIE("post_recv");
		vt_sync();
		expect_status("short_recv.loc_len_err", p.rcq, 400, IBV_WC_LOC_LEN_ERR, 5000);
	} else {
		vt_sync();
		vt_fill(buf, 100, 4);
		CHECK("short_recv.post", !vt_post_send(p.qp, 4, IBV_WR_SEND, mr, 0, 100, IBV_SEND_SIGNALED, 0, 0, 0),
		      "ibv_post_send failed");
		expect_status("short_recv.sender_rem_inv_req_err", p.scq, 4, IBV_WC_REM_INV_REQ_ERR, 5000);
	}
	vt_sync();
	rmpair(&p);
}

static void rnr(char r)
{
	struct vt_qp_opts o = {.set_rnr_retry = 1, .rnr_retry = 0};
	struct pair p = mkpair(&o, 0);
	if (r == 'A') {
		CHECK("rnr.post", !vt_post_send(p.qp, 5, IBV_WR_SEND, mr, 0, 64, IBV_SEND_SIGNALED, 0, 0, 0),
		      "ibv_post_send failed");
		expect_status("rnr.rnr_retry_exc_err", p.scq, 5, IBV_WC_RNR_RETRY_EXC_ERR, 5000);
	}
	vt_sync();
	rmpair(&p);
}

static void wrong_state(void)
{
	struct ibv_cq *cq = vt_cq(&d, 16, NULL);
	struct ibv_qp *qp = vt_qp(&d, IBV_QPT_RC, cq, cq, NULL);
	struct vt_ep self = vt_ep_of(&d, qp, mr);
	int rc;

	rc = vt_post_send(qp, 6, IBV_WR_SEND, mr, 0, 8, IBV_SEND_SIGNALED, 0, 0, 0);
	CHECK("state.reset.post_send_einval", rc == EINVAL, "ibv_post_send on a RESET QP returned %d", rc);
	rc = vt_post_recv(qp, 6, mr, 0, 8);
	CHECK("state.reset.post_recv_einval", rc == EINVAL, "ibv_post_recv on a RESET QP returned %d", rc);
	struct ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTS;
	rc = ibv_modify_qp(qp, &a, IBV_QP_STATE);
	CHECK("state.reset_to_rts_refused", rc != 0, "RESET -> RTS was accepted");
	vt_qp_init(qp, VT_ACCESS_ALL);
	rc = vt_post_send(qp, 7, IBV_WR_SEND, mr, 0, 8, IBV_SEND_SIGNALED, 0, 0, 0);
	CHECK("state.init.post_send_einval", rc == EINVAL, "ibv_post_send on an INIT QP returned %d", rc);
	rc = vt_post_recv(qp, 7, mr, 0, 8);
	CHECK("state.init.post_recv_allowed", rc == 0, "ibv_post_recv on an INIT QP returned %d", rc);
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTR;
	rc = ibv_modify_qp(qp, &a, IBV_QP_STATE);
	CHECK("state.rtr_without_attrs_refused", rc != 0, "INIT -> RTR without the path attributes was accepted");
	vt_qp_rtr(&d, qp, &self, NULL);
	rc = vt_post_send(qp, 8, IBV_WR_SEND, mr, 0, 8, IBV_SEND_SIGNALED, 0, 0, 0);
	CHECK("state.rtr.post_send_einval", rc == EINVAL, "ibv_post_send on an RTR QP returned %d", rc);
	struct ibv_qp_init_attr ia;
	rc = ibv_query_qp(qp, &a, IBV_QP_STATE, &ia);
	CHECK("state.query_rtr", rc == 0 && a.qp_state == IBV_QPS_RTR, "ibv_query_qp: rc %d state %d", rc, a.qp_state);
	CHECK("state.no_completions", vt_poll_none(cq, 20) == 0, "a refused post completed");
	ibv_destroy_qp(qp);
	ibv_destroy_cq(cq);
}

static void flush(char r)
{
	struct pair p = mkpair(NULL, 0);
	if (r == 'B') {
		for (int i = 0; i < 3; i++)
			if (vt_post_recv(p.qp, 501 + (uint64_t)i, mr, (size_t)i * 1024, 1024))
				DIE("post_recv");
		struct ibv_qp_attr a;
		memset(&a, 0, sizeof a);
		a.qp_state = IBV_QPS_ERR;
		CHECK("flush.modify_to_err", !ibv_modify_qp(p.qp, &a, IBV_QP_STATE), "RTS -> ERR refused");
		int ok = 1;
		char why[200] = "";
		for (int i = 0; i < 3 && ok; i++) {
			struct ibv_wc wc;
			int got = vt_poll1(p.rcq, &wc, 5000);
			if (!got || wc.wr_id != 501 + (uint64_t)i || wc.status != IBV_WC_WR_FLUSH_ERR) {
				snprintf(why, sizeof why, "receive %d: %s", i, vt_wc_str(&wc, got));
				ok = 0;
			}
		}
		CHECK("flush.recvs_flushed_in_order", ok, "%s", why);
		int rc = vt_post_send(p.qp, 504, IBV_WR_SEND, mr, 0, 8, IBV_SEND_SIGNALED, 0, 0, 0);
		CHECK("flush.post_send_in_err", rc == 0, "ibv_post_send on an ERR QP returned %d", rc);
		if (rc == 0)
			expect_status("flush.send_flushed", p.scq, 504, IBV_WC_WR_FLUSH_ERR, 5000);
		rc = vt_post_recv(p.qp, 505, mr, 0, 8);
		CHECK("flush.post_recv_in_err", rc == 0, "ibv_post_recv on an ERR QP returned %d", rc);
		if (rc == 0)
			expect_status("flush.recv_flushed", p.rcq, 505, IBV_WC_WR_FLUSH_ERR, 5000);
	}
	vt_sync();
	rmpair(&p);
}

/* A: a send CQ of (at least) 4 entries, more signaled writes than it
 * holds, never polled: IBV_EVENT_CQ_ERR on the async fd */
static void cq_overrun(char r)
{
	struct vt_qp_opts o = {.max_send_wr = 64};
	struct pair p = mkpair(&o, r == 'A' ? 4 : 0);
	if (r == 'A') {
		int n = p.scq->cqe + 4, posted = 0;
		for (int i = 0; i < n; i++)
			posted += !vt_post_send(p.qp, 600 + (uint64_t)i, IBV_WR_RDMA_WRITE, mr, 0, 8, IBV_SEND_SIGNALED,
						p.peer.addr, p.peer.rkey, 0);
		CHECK("cq_overrun.posted", posted == n, "%d of %d writes posted (CQ size %d)", posted, n, p.scq->cqe);
		struct pollfd pf = {d.ctx->async_fd, POLLIN, 0};
		double end = vt_now() + 5;
		int found = 0, other = -1;
		void *other_cq = NULL;
		while (!found && vt_now() < end) {
			if (poll(&pf, 1, 200) <= 0)
				continue;
			struct ibv_async_event ev;
			if (ibv_get_async_event(d.ctx, &ev))
				break;
			if (ev.event_type == IBV_EVENT_CQ_ERR && ev.element.cq == p.scq)
				found = 1;
			else {
				other = ev.event_type;
				other_cq = ev.element.cq;
			}
			ibv_ack_async_event(&ev);
		}
		CHECK("cq_overrun.async_cq_err", found,
		      "no IBV_EVENT_CQ_ERR for the CQ %p within 5 s (other event: type %d, element.cq %p)", (void *)p.scq,
		      other, other_cq);
	}
	vt_sync();
	rmpair(&p);
}

/* B dies while A streams 64 KiB RDMA writes into it */
static void peer_death(char r)
{
	struct vt_qp_opts o = {.timeout = 10, .retry_cnt = 2, .max_send_wr = 64};
	struct pair p = mkpair(&o, 0);
	if (r == 'B') {
		volatile uint8_t *mark = buf + BUF - 1;
		*mark = 0;
		vt_sync();
		double end = vt_now() + 10;
		while (*mark == 0 && vt_now() < end)
			sched_yield();
		vt_line("ok B peer_death.dying (writes arrived: %s)\n", *mark ? "yes" : "no");
		vt_send_u64(0xdead);
		raise(SIGKILL);
	}
	vt_sync();
	vt_fill(buf, BUF, 9);
	int outstanding = 0, posted = 0, first_err = -1, flushed_ok = 1, ok_before = 0;
	uint64_t id = 0;
	double killed_at = 0, err_at = 0, end = vt_now() + 30;
	struct pollfd pf = {vt_oob, POLLIN, 0};
	while (vt_now() < end) {
		while (first_err < 0 && outstanding < 8) {
			if (vt_post_send(p.qp, id++, IBV_WR_RDMA_WRITE, mr, 0, 64 * 1024, IBV_SEND_SIGNALED,
					 p.peer.addr + (BUF - 64 * 1024), p.peer.rkey, 0))
				break;
			outstanding++;
			posted++;
		}
		struct ibv_wc wc[8];
		int n = ibv_poll_cq(p.scq, 8, wc);
		for (int i = 0; i < n; i++) {
			outstanding--;
			if (wc[i].status == IBV_WC_SUCCESS && first_err < 0) {
				ok_before++;
			} else if (wc[i].status != IBV_WC_SUCCESS && first_err < 0) {
				first_err = wc[i].status;
				err_at = vt_now();
			} else if (first_err >= 0 && wc[i].status != IBV_WC_WR_FLUSH_ERR) {
				flushed_ok = 0;
			}
		}
		if (!killed_at && poll(&pf, 1, 0) > 0) {
			uint64_t v = 0;
			if (read(vt_oob, &v, sizeof v) == (ssize_t)sizeof v && v == 0xdead)
				killed_at = vt_now();
			else
				killed_at = vt_now(); /* EOF: gone already */
		}
		if (first_err >= 0 && outstanding == 0)
			break;
		if (n == 0)
			sched_yield();
	}
	/* the peer died in the middle: writes completed before it did */
	CHECK("peer_death.writes_before", ok_before >= 1, "no write completed before the error (%d posted)", posted);
	CHECK("peer_death.retry_exc_err", first_err == IBV_WC_RETRY_EXC_ERR,
	      "the first failed write has status %s (%d), expected %s",
	      first_err < 0 ? "none within 30 s" : vt_status((enum ibv_wc_status)first_err), first_err,
	      vt_status(IBV_WC_RETRY_EXC_ERR));
	CHECK("peer_death.bounded_time", first_err >= 0 && killed_at > 0 && err_at - killed_at < 20,
	      "error %.1f s after the peer died", first_err >= 0 && killed_at > 0 ? err_at - killed_at : -1.0);
	CHECK("peer_death.all_completed", first_err >= 0 && outstanding == 0 && flushed_ok,
	      "%d writes still outstanding, later ones flushed: %s", outstanding, flushed_ok ? "yes" : "no");
	rmpair(&p);
}

static void role(char r)
{
	vt_open(&d);
	mr = vt_mr(&d, BUF, VT_ACCESS_ALL);
	buf = mr->addr;
	bad_rkey(r);
	no_remote_write(r);
	bad_lkey(r);
	recv_too_small(r);
	rnr(r);
	wrong_state();
	vt_sync();
	flush(r);
	cq_overrun(r);
	peer_death(r);
	ibv_dereg_mr(mr);
	ibv_dealloc_pd(d.pd);
	CHECK("teardown", !ibv_close_device(d.ctx), "ibv_close_device failed");
}

int main(int argc, char **argv)
{
	vt_b_may_die = 1;
	return vt_main(argc, argv, role);
}
