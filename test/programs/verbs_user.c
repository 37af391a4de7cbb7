/* verbs_user: holds verbs resources for the whole run (two RC queue pairs
 * of one process connected to each other on the first device), sending a
 * message from one to the other every step and checking it arrived
 * (test/e2e/verbs_loopback.sh checkpoints and restarts it). Plain
 * libibverbs: it knows nothing of ckptmpi.
 *
 *   verbs_user [NSTEPS=30] [SLEEP_MS=50] */
#include <infiniband/verbs.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#define MSG 64

static struct ibv_qp *make_qp(struct ibv_pd *pd, struct ibv_cq *cq)
{
	struct ibv_qp_init_attr a = {
		.send_cq = cq,
		.recv_cq = cq,
		.cap = {.max_send_wr = 4, .max_recv_wr = 4, .max_send_sge = 1, .max_recv_sge = 1},
		.qp_type = IBV_QPT_RC,
	};
	return ibv_create_qp(pd, &a);
}

static int connect_qp(struct ibv_qp *qp, uint32_t peer_qpn, uint16_t lid)
{
	struct ibv_qp_attr a = {.qp_state = IBV_QPS_INIT, .port_num = 1,
	                        .qp_access_flags = IBV_ACCESS_REMOTE_WRITE};
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
	                              IBV_QP_ACCESS_FLAGS))
		return -1;
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = peer_qpn;
	a.rq_psn = 1;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.dlid = lid;
	a.ah_attr.port_num = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
	                              IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
	                              IBV_QP_MIN_RNR_TIMER))
		return -1;
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.sq_psn = 1;
	a.max_rd_atomic = 1;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
	                                 IBV_QP_RNR_RETRY | IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
}

/* the send's and the receive's completions, in either order */
static int wait_both(struct ibv_cq *cq)
{
	int seen = 0;
	while (seen != 3) {
		struct ibv_wc wc;
		int n = ibv_poll_cq(cq, 1, &wc);
		if (n == 0)
			continue;
		if (n < 0 || wc.status != IBV_WC_SUCCESS ||
		    !(wc.opcode == IBV_WC_SEND || wc.opcode == IBV_WC_RECV)) {
			fprintf(stderr, "verbs_user: completion %d: status %s, opcode %d\n", n,
			        n > 0 ? ibv_wc_status_str(wc.status) : "-", n > 0 ? (int)wc.opcode : -1);
			return -1;
		}
		seen |= wc.opcode == IBV_WC_SEND ? 1 : 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int nsteps = argc > 1 ? atoi(argv[1]) : 30;
	long ms = argc > 2 ? atol(argv[2]) : 50;
	struct ibv_device **devs = ibv_get_device_list(NULL);
	static char sbuf[MSG], rbuf[MSG];
	struct ibv_port_attr port;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_mr *smr, *rmr;
	struct ibv_cq *cq;
	struct ibv_qp *a, *b;
	uint64_t h = 7;

	if (!devs || !devs[0]) {
		fprintf(stderr, "verbs_user: no verbs device\n");
		return 1;
	}
	if (!(ctx = ibv_open_device(devs[0])) || !(pd = ibv_alloc_pd(ctx)) ||
	    !(smr = ibv_reg_mr(pd, sbuf, MSG, 0)) ||
	    !(rmr = ibv_reg_mr(pd, rbuf, MSG, IBV_ACCESS_LOCAL_WRITE)) ||
	    !(cq = ibv_create_cq(ctx, 16, NULL, NULL, 0)) || !(a = make_qp(pd, cq)) ||
	    !(b = make_qp(pd, cq)) || ibv_query_port(ctx, 1, &port) ||
	    connect_qp(a, b->qp_num, port.lid) || connect_qp(b, a->qp_num, port.lid)) {
		perror("verbs_user: set-up");
		return 1;
	}
	for (int i = 1; i <= nsteps; i++) {
		struct ibv_sge rs = {(uintptr_t)rbuf, MSG, rmr->lkey}, ss = {(uintptr_t)sbuf, MSG, smr->lkey};
		struct ibv_recv_wr rw = {.wr_id = 2, .sg_list = &rs, .num_sge = 1}, *brw;
		struct ibv_send_wr sw = {.wr_id = 1, .sg_list = &ss, .num_sge = 1,
		                         .opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED},
		                   *bsw;
		memset(rbuf, 0, MSG);
		snprintf(sbuf, MSG, "step %d of %d", i, nsteps);
		if (ibv_post_recv(b, &rw, &brw) || ibv_post_send(a, &sw, &bsw) ||
		    wait_both(cq))
			return 1;
		if (strcmp(rbuf, sbuf)) {
			fprintf(stderr, "verbs_user: step %d: received \"%s\"\n", i, rbuf);
			return 1;
		}
		for (const char *p = rbuf; *p; p++)
			h = mix64(h, (uint64_t)(unsigned char)*p);
		printf("%d h=%016llx\n", i, (unsigned long long)h);
		fflush(stdout);
		pace_ms(ms);
	}
	hold_before_final();
	printf("%d final checksum=%016llx\n", nsteps + 1, (unsigned long long)h);
	ibv_destroy_qp(b);
	ibv_destroy_qp(a);
	ibv_destroy_cq(cq);
	ibv_dereg_mr(rmr);
	ibv_dereg_mr(smr);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	ibv_free_device_list(devs);
	return 0;
}
