/* vt_channels: completion channels. B sends, A waits for its receive
 * completions through a completion channel: poll(2) on the channel's fd,
 * epoll, a non-blocking fd (EAGAIN when nothing is pending), a blocking
 * ibv_get_cq_event, no event when the CQ is not armed, solicited-only
 * arming (an unsolicited message wakes nobody, a solicited one does), the
 * CQ and context an event carries, events acknowledged together, then the
 * CQ and the channel destroyed (see vt_common.h). */
#include "vt_common.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>

#define BUF (64 * 1024)

static struct vt_dev d;
static struct ibv_mr *mr;
static struct ibv_comp_channel *ch;
static struct ibv_cq *scq, *rcq;
static struct ibv_qp *qp;
static int cq_ctx_marker;

/* B: message K (32 bytes), signaled; flags e.g. IBV_SEND_SOLICITED */
static void b_send(int k, unsigned flags)
{
	struct ibv_wc wc;
	vt_fill((uint8_t *)mr->addr + 4096 + (size_t)k * 64, 32, 70 + (unsigned)k);
	if (vt_post_send(qp, (uint64_t)k, IBV_WR_SEND, mr, 4096 + (size_t)k * 64, 32, IBV_SEND_SIGNALED | flags, 0, 0, 0))
		DIE("post_send");
	int got = vt_poll1(scq, &wc, 5000);
	if (!got || wc.status != IBV_WC_SUCCESS)
		vt_line("FAIL B send%d: %s\n", k, vt_wc_str(&wc, got)), vt_failures++;
}

static void a_post(int k)
{
	if (vt_post_recv(qp, 100 + (uint64_t)k, mr, (size_t)k * 64, 64))
		DIE("post_recv");
}

/* A: the receive completion of message K is in the CQ */
static void a_expect(const char *name, int k)
{
	struct ibv_wc wc;
	int got = vt_poll1(rcq, &wc, 5000);
	CHECK(name,
	      got && wc.status == IBV_WC_SUCCESS && wc.wr_id == 100 + (uint64_t)k && wc.byte_len == 32 &&
		      vt_cmp((uint8_t *)mr->addr + (size_t)k * 64, 32, 70 + (unsigned)k) < 0,
	      "expected message %d: %s", k, vt_wc_str(&wc, got));
}

static int a_get_event(const char *name)
{
	struct ibv_cq *ecq = NULL;
	void *ectx = NULL;
	int rc = ibv_get_cq_event(ch, &ecq, &ectx);
	CHECK(name, rc == 0 && ecq == rcq && ectx == &cq_ctx_marker,
	      "ibv_get_cq_event: rc %d (%s), cq %s, context %s", rc, rc ? strerror(errno) : "-",
	      ecq == rcq ? "right" : "wrong", ectx == &cq_ctx_marker ? "right" : "wrong");
	return rc == 0;
}

static int fd_ready(int ms)
{
	struct pollfd pf = {ch->fd, POLLIN, 0};
	int n = poll(&pf, 1, ms);
	return n > 0 && (pf.revents & POLLIN);
}

static void role(char r)
{
	vt_open(&d);
	mr = vt_mr(&d, BUF, VT_ACCESS_ALL);
	if (r == 'A') {
		ch = ibv_create_comp_channel(d.ctx);
		CHECK("create_comp_channel", ch != NULL, "ibv_create_comp_channel failed: %s", strerror(errno));
		if (!ch)
			DIE("no completion channel");
		rcq = ibv_create_cq(d.ctx, 32, &cq_ctx_marker, ch, 0);
		if (!rcq)
			DIE("ibv_create_cq with a channel");
	} else {
		rcq = vt_cq(&d, 32, NULL);
	}
	scq = vt_cq(&d, 32, NULL);
	qp = vt_qp(&d, IBV_QPT_RC, scq, rcq, NULL);
	vt_connect(&d, qp, mr, NULL);

	/* 1. poll(2) */
	if (r == 'A') {
		CHECK("poll.arm", !ibv_req_notify_cq(rcq, 0), "ibv_req_notify_cq failed");
		a_post(1);
		CHECK("poll.quiet_before", !fd_ready(0), "the channel fd is readable before any completion");
		vt_sync();
		CHECK("poll.readable", fd_ready(5000), "the channel fd did not become readable within 5 s");
		if (a_get_event("poll.get_cq_event"))
			ibv_ack_cq_events(rcq, 1);
		a_expect("poll.completion", 1);
		CHECK("poll.quiet_after", !fd_ready(0), "the channel fd stays readable after the event was taken");
	} else {
		vt_sync();
		b_send(1, 0);
	}
	vt_sync();

	/* 2. not armed: no event */
	if (r == 'A') {
		a_post(2);
		vt_sync();
		CHECK("unarmed.no_event", !fd_ready(300), "an event came for a CQ that was not armed");
		a_expect("unarmed.completion", 2);
	} else {
		vt_sync();
		b_send(2, 0);
	}
	vt_sync();

	/* 3. epoll */
	if (r == 'A') {
		int ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 77};
		CHECK("epoll.add", ep >= 0 && !epoll_ctl(ep, EPOLL_CTL_ADD, ch->fd, &ev), "epoll_ctl: %s", strerror(errno));
		CHECK("epoll.arm", !ibv_req_notify_cq(rcq, 0), "ibv_req_notify_cq failed");
		a_post(3);
		vt_sync();
		struct epoll_event out;
		memset(&out, 0, sizeof out);
		int n = epoll_wait(ep, &out, 1, 5000);
		CHECK("epoll.wait", n == 1 && out.data.u64 == 77 && (out.events & EPOLLIN),
		      "epoll_wait returned %d (data %llu events 0x%x)", n, (unsigned long long)out.data.u64, out.events);
		if (a_get_event("epoll.get_cq_event"))
			ibv_ack_cq_events(rcq, 1);
		a_expect("epoll.completion", 3);
		close(ep);
	} else {
		vt_sync();
		b_send(3, 0);
	}
	vt_sync();

	/* 4. non-blocking fd */
	if (r == 'A') {
		int fl = fcntl(ch->fd, F_GETFL);
		CHECK("nonblock.set", fl >= 0 && !fcntl(ch->fd, F_SETFL, fl | O_NONBLOCK), "fcntl: %s", strerror(errno));
		struct ibv_cq *ecq;
		void *ectx;
		errno = 0;
		int rc = ibv_get_cq_event(ch, &ecq, &ectx);
		CHECK("nonblock.eagain", rc != 0 && errno == EAGAIN,
		      "ibv_get_cq_event with nothing pending: rc %d errno %d (%s)", rc, errno, strerror(errno));
		CHECK("nonblock.arm", !ibv_req_notify_cq(rcq, 0), "ibv_req_notify_cq failed");
		a_post(4);
		vt_sync();
		double end = vt_now() + 5;
		int got = 0;
		while (!got && vt_now() < end) {
			ecq = NULL;
			ectx = NULL;
			rc = ibv_get_cq_event(ch, &ecq, &ectx);
			if (rc == 0)
				got = 1;
			else if (errno == EAGAIN)
				vt_sleep_ms(1);
			else
				break;
		}
		CHECK("nonblock.event", got && ecq == rcq && ectx == &cq_ctx_marker,
		      "no event within 5 s (last errno %d %s)", errno, strerror(errno));
		if (got)
			ibv_ack_cq_events(rcq, 1);
		a_expect("nonblock.completion", 4);
		fcntl(ch->fd, F_SETFL, fl);
	} else {
		vt_sync();
		b_send(4, 0);
	}
	vt_sync();

	/* 5. solicited only */
	if (r == 'A') {
		CHECK("solicited.arm", !ibv_req_notify_cq(rcq, 1), "ibv_req_notify_cq(solicited_only) failed");
		a_post(5);
		a_post(6);
		vt_sync();
		vt_recv_u64(); /* B sent the unsolicited message */
		CHECK("solicited.unsolicited_no_event", !fd_ready(300), "an unsolicited message woke a solicited-only CQ");
		vt_send_u64(1);
		CHECK("solicited.readable", fd_ready(5000), "the solicited message raised no event within 5 s");
		if (a_get_event("solicited.get_cq_event"))
			ibv_ack_cq_events(rcq, 1);
		a_expect("solicited.completion_unsolicited", 5);
		a_expect("solicited.completion_solicited", 6);
	} else {
		vt_sync();
		b_send(5, 0);
		vt_send_u64(1);
		vt_recv_u64();
		b_send(6, IBV_SEND_SOLICITED);
	}
	vt_sync();

	/* 6. blocking ibv_get_cq_event twice, acknowledged together */
	for (int k = 7; k <= 8; k++) {
		if (r == 'A') {
			CHECK("blocking.arm", !ibv_req_notify_cq(rcq, 0), "ibv_req_notify_cq failed");
			a_post(k);
			vt_sync();
			a_get_event("blocking.get_cq_event");
			a_expect("blocking.completion", k);
		} else {
			vt_sync();
			vt_sleep_ms(100);
			b_send(k, 0);
		}
		vt_sync();
	}
	if (r == 'A')
		ibv_ack_cq_events(rcq, 2);

	CHECK("destroy.qp", !ibv_destroy_qp(qp), "ibv_destroy_qp failed");
	CHECK("destroy.cq", !ibv_destroy_cq(rcq), "ibv_destroy_cq failed (events not all acknowledged?)");
	if (ch)
		CHECK("destroy.comp_channel", !ibv_destroy_comp_channel(ch), "ibv_destroy_comp_channel failed");
	ibv_destroy_cq(scq);
	ibv_dereg_mr(mr);
	ibv_dealloc_pd(d.pd);
	CHECK("teardown", !ibv_close_device(d.ctx), "ibv_close_device failed");
}

int main(int argc, char **argv)
{
	return vt_main(argc, argv, role);
}
