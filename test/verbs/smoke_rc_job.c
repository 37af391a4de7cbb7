/* smoke_rc_job: two processes over one RC queue pair, for the verbs
 * checkpoint smoke tests (test/verbs/e2e_smoke_rc_job.sh). Plain
 * libibverbs, nothing of ckptmpi.
 *
 *     smoke_rc_job server PORT STEPS     (role B: listens on 127.0.0.1:PORT)
 *     smoke_rc_job client PORT STEPS     (role A)
 *
 * Every step, A writes a pattern into B's memory (RDMA write), sends B a
 * message (alternately small, carried in the completion, and 2 KiB), and
 * B posts the receive for it only a few milliseconds later, so A's send
 * waits in A's send queue most of the time; B checks the message and the
 * written bytes and answers with a send; A then reads B's buffer back
 * (RDMA read) and checks it. B waits for its completions in
 * ibv_get_cq_event (a completion channel), A polls. The out-of-band TCP
 * connection stays open for the whole run (a final exchange of sums).
 * Each role prints one line a step, "STEP ROLE ok SUM": the same in every
 * run, checkpointed or not. Any mismatch prints FAIL and exits 1. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <infiniband/verbs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG_BIG 2048
#define WSZ 4096
#define NRECV 4

enum { OFF_RECV = 0, OFF_SEND = NRECV * MSG_BIG, OFF_TARGET = OFF_SEND + MSG_BIG,
       OFF_SRC = OFF_TARGET + WSZ, OFF_DST = OFF_SRC + WSZ, BUF_LEN = OFF_DST + WSZ };

static const char *role;
static int oob = -1;

static void die(const char *what)
{
	printf("FAIL %s %s (errno %d %s)\n", role, what, errno, strerror(errno));
	fflush(stdout);
	exit(2);
}

static void xfer(void *p, size_t n, int out)
{
	char *c = p;
	while (n) {
		ssize_t r = out ? write(oob, c, n) : read(oob, c, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("out-of-band transfer");
		c += r;
		n -= (size_t)r;
	}
}

static uint8_t pat(unsigned step, size_t i) { return (uint8_t)(step * 131u + i * 7u + 3u); }

/* the step's checked bytes folded into the running sum the program prints */
static uint64_t add_sum(uint64_t sum, const uint8_t *p)
{
	for (size_t i = 0; i < WSZ; i += 64)
		sum = sum * 31 + p[i];
	return sum;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {0, ms * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

struct ends {
	uint32_t qpn, rkey;
	uint16_t lid;
	uint64_t addr;
};

static struct ibv_context *ctx;
static struct ibv_pd *pd;
static struct ibv_comp_channel *chan;
static struct ibv_cq *cq;
static struct ibv_qp *qp;
static struct ibv_mr *mr;
static uint8_t *buf;
static struct ends peer;
static int is_b;

/* one completion, of the given opcode (others are not expected here) */
static struct ibv_wc wait_wc(void)
{
	struct ibv_wc wc;
	for (;;) {
		int n = ibv_poll_cq(cq, 1, &wc);
		if (n < 0)
			die("poll_cq");
		if (n == 1) {
			if (wc.status != IBV_WC_SUCCESS) {
				printf("FAIL %s completion wr_id %llu: %s\n", role,
				       (unsigned long long)wc.wr_id, ibv_wc_status_str(wc.status));
				exit(1);
			}
			return wc;
		}
		if (is_b) {
			/* B sleeps in the channel's read (issue 9 item 4) */
			struct ibv_cq *ev;
			void *evctx;
			if (ibv_req_notify_cq(cq, 0))
				die("req_notify_cq");
			n = ibv_poll_cq(cq, 1, &wc);
			if (n == 1) {
				if (wc.status != IBV_WC_SUCCESS) {
					printf("FAIL %s completion: %s\n", role, ibv_wc_status_str(wc.status));
					exit(1);
				}
				return wc;
			}
			if (ibv_get_cq_event(chan, &ev, &evctx))
				die("get_cq_event");
			ibv_ack_cq_events(ev, 1);
		}
	}
}

static void post_recv(int slot)
{
	struct ibv_sge sg = {(uintptr_t)(buf + OFF_RECV + slot * MSG_BIG), MSG_BIG, mr->lkey};
	struct ibv_recv_wr wr = {.wr_id = 1000 + (unsigned)slot, .sg_list = &sg, .num_sge = 1}, *bad;
	if (ibv_post_recv(qp, &wr, &bad))
		die("post_recv");
}

static void post_send(unsigned len, uint64_t id, int signaled)
{
	struct ibv_sge sg = {(uintptr_t)(buf + OFF_SEND), len, mr->lkey};
	struct ibv_send_wr wr = {.wr_id = id, .sg_list = &sg, .num_sge = 1, .opcode = IBV_WR_SEND,
	                         .send_flags = signaled ? IBV_SEND_SIGNALED : 0},
	                   *bad;
	if (ibv_post_send(qp, &wr, &bad))
		die("post_send");
}

static void post_rdma(enum ibv_wr_opcode op, unsigned off, uint64_t id)
{
	struct ibv_sge sg = {(uintptr_t)(buf + off), WSZ, mr->lkey};
	struct ibv_send_wr wr = {.wr_id = id, .sg_list = &sg, .num_sge = 1, .opcode = op,
	                         .send_flags = IBV_SEND_SIGNALED},
	                   *bad;
	wr.wr.rdma.remote_addr = peer.addr + OFF_TARGET;
	wr.wr.rdma.rkey = peer.rkey;
	if (ibv_post_send(qp, &wr, &bad))
		die("post_send (RDMA)");
}

static void connect_qp(void)
{
	struct ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		die("INIT");
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = peer.qpn;
	a.rq_psn = 0;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.dlid = peer.lid;
	a.ah_attr.port_num = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
	                              IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
	                              IBV_QP_MIN_RNR_TIMER))
		die("RTR");
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 0; /* wait for ever: the peer may be checkpointed */
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.sq_psn = 0;
	a.max_rd_atomic = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
	                              IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
		die("RTS");
}

int main(int argc, char **argv)
{
	struct ibv_device **list;
	struct ibv_port_attr port;
	struct ibv_qp_init_attr init;
	struct sockaddr_in sa;
	struct ends me;
	unsigned steps;
	uint64_t sum = 0, peer_sum;
	int one = 1;

	if (argc != 4 || (strcmp(argv[1], "server") && strcmp(argv[1], "client"))) {
		fprintf(stderr, "usage: %s server|client PORT STEPS\n", argv[0]);
		return 2;
	}
	is_b = !strcmp(argv[1], "server");
	role = is_b ? "B" : "A";
	steps = (unsigned)atoi(argv[3]);
	setvbuf(stdout, NULL, _IOLBF, 0);

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(argv[2]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (is_b) {
		int l = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 1))
			die("listen");
		oob = accept(l, NULL, NULL);
		close(l);
	} else {
		for (int t = 0; t < 500; t++) {
			oob = socket(AF_INET, SOCK_STREAM, 0);
			if (!connect(oob, (struct sockaddr *)&sa, sizeof sa))
				break;
			close(oob);
			oob = -1;
			sleep_ms(20);
		}
	}
	if (oob < 0)
		die("out-of-band connection");
	setsockopt(oob, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

	list = ibv_get_device_list(NULL);
	if (!list || !list[0] || !(ctx = ibv_open_device(list[0])))
		die("open device");
	ibv_free_device_list(list);
	if (!(pd = ibv_alloc_pd(ctx)) || !(chan = ibv_create_comp_channel(ctx)) ||
	    !(cq = ibv_create_cq(ctx, 64, NULL, chan, 0)))
		die("PD, channel, CQ");
	buf = aligned_alloc(4096, BUF_LEN);
	memset(buf, 0, BUF_LEN);
	if (!(mr = ibv_reg_mr(pd, buf, BUF_LEN, IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
	                                            IBV_ACCESS_REMOTE_READ)))
		die("reg_mr");
	memset(&init, 0, sizeof init);
	init.send_cq = cq;
	init.recv_cq = cq;
	init.qp_type = IBV_QPT_RC;
	init.cap.max_send_wr = 16;
	init.cap.max_recv_wr = 16;
	init.cap.max_send_sge = 1;
	init.cap.max_recv_sge = 1;
	if (!(qp = ibv_create_qp(pd, &init)) || ibv_query_port(ctx, 1, &port))
		die("create_qp");
	me.qpn = qp->qp_num;
	me.rkey = mr->rkey;
	me.lid = port.lid;
	me.addr = (uintptr_t)buf;
	xfer(&me, sizeof me, 1);
	xfer(&peer, sizeof peer, 0);
	connect_qp();
	if (!is_b)
		post_recv(0); /* for B's answers */
	xfer(&me, 1, 1); /* both ready */
	xfer(&peer, 1, 0);

	for (unsigned s = 0; s < steps; s++) {
		unsigned len = (s & 1) ? MSG_BIG : 64;
		if (!is_b) {
			struct ibv_wc wc, ans;
			int got_w = 0, got_s = 0, got_a = 0;
			for (size_t i = 0; i < WSZ; i++)
				buf[OFF_SRC + i] = pat(s, i);
			for (size_t i = 0; i < len; i++)
				buf[OFF_SEND + i] = pat(s + 7, i);
			post_rdma(IBV_WR_RDMA_WRITE, OFF_SRC, 1);
			post_send(len, 2, 1);
			/* B's answer may come before this side's send completes
			 * (B can see its message before the send's completion is
			 * written here, as on a real fabric before the ack) */
			while (!got_w || !got_s || !got_a) {
				wc = wait_wc();
				if (wc.wr_id == 1)
					got_w = 1;
				else if (wc.wr_id == 2)
					got_s = 1;
				else if (wc.wr_id == 1000)
					got_a = 1, ans = wc;
			}
			/* B's answer: the step's number */
			wc = ans;
			if (wc.opcode != IBV_WC_RECV || wc.byte_len != 4 ||
			    *(uint32_t *)(buf + OFF_RECV) != s) {
				printf("FAIL A answer of step %u: opcode %d, %u bytes, %u\n", s, wc.opcode,
				       wc.byte_len, *(uint32_t *)(buf + OFF_RECV));
				return 1;
			}
			post_recv(0);
			memset(buf + OFF_DST, 0, WSZ);
			post_rdma(IBV_WR_RDMA_READ, OFF_DST, 3);
			wc = wait_wc();
			for (size_t i = 0; i < WSZ; i++)
				if (buf[OFF_DST + i] != pat(s, i)) {
					printf("FAIL A read back of step %u: byte %zu\n", s, i);
					return 1;
				}
			sum = add_sum(sum, buf + OFF_DST);
		} else {
			struct ibv_wc wc;
			uint32_t *ans = (uint32_t *)(buf + OFF_SEND);
			sleep_ms(8); /* A's send waits for this receive meanwhile */
			post_recv((int)(s % NRECV));
			wc = wait_wc();
			if (wc.opcode != IBV_WC_RECV || wc.byte_len != len) {
				printf("FAIL B step %u: opcode %d, %u bytes\n", s, wc.opcode, wc.byte_len);
				return 1;
			}
			for (size_t i = 0; i < len; i++)
				if (buf[OFF_RECV + (s % NRECV) * MSG_BIG + i] != pat(s + 7, i)) {
					printf("FAIL B message of step %u: byte %zu\n", s, i);
					return 1;
				}
			for (size_t i = 0; i < WSZ; i++)
				if (buf[OFF_TARGET + i] != pat(s, i)) {
					printf("FAIL B written bytes of step %u: byte %zu\n", s, i);
					return 1;
				}
			/* summed before the answer: once A has it, A writes the
			 * next step's bytes here */
			sum = add_sum(sum, buf + OFF_TARGET);
			*ans = s;
			post_send(4, 4, 1);
			wc = wait_wc();
			if (wc.wr_id != 4) {
				printf("FAIL B answer of step %u: wr_id %llu\n", s, (unsigned long long)wc.wr_id);
				return 1;
			}
		}
		printf("%u %s ok %016llx\n", s, role, (unsigned long long)sum);
	}
	xfer(&sum, sizeof sum, 1);
	xfer(&peer_sum, sizeof peer_sum, 0);
	printf("%u %s done, peer's sum %016llx\n", steps, role, (unsigned long long)peer_sum);
	ibv_destroy_qp(qp);
	ibv_dereg_mr(mr);
	ibv_destroy_cq(cq);
	ibv_destroy_comp_channel(chan);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return 0;
}
