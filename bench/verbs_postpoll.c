/* The post/poll path of a verbs device, one process (bench/verbs_bench.sh):
 * two RC QPs of this process connected to each other, then
 *   empty_poll      ibv_poll_cq on an empty CQ                (ns a call)
 *   post            8-byte inline RDMA writes, 1 in 32 signaled, the
 *                   completions drained as they come         (ns a post)
 *   write8_round    one signaled 8-byte inline RDMA write, polled until
 *                   its completion                           (ns a write)
 * best of 5 rounds each. Plain libibverbs: run it on ckptmpi's software
 * device with LD_PRELOAD=BUILD/lib/libckptmpi-verbs.so.
 *   verbs_postpoll [ITERS=200000]  (VT_DEV=NAME picks the device) */
#include <infiniband/verbs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

#define DIE(what)                                                                  \
	do {                                                                       \
		perror(what);                                                      \
		exit(2);                                                           \
	} while (0)

static struct ibv_qp *mkqp(struct ibv_pd *pd, struct ibv_cq *cq)
{
	struct ibv_qp_init_attr ia;
	memset(&ia, 0, sizeof ia);
	ia.send_cq = ia.recv_cq = cq;
	ia.qp_type = IBV_QPT_RC;
	ia.cap.max_send_wr = 256;
	ia.cap.max_recv_wr = 16;
	ia.cap.max_send_sge = ia.cap.max_recv_sge = 1;
	ia.cap.max_inline_data = 64;
	struct ibv_qp *qp = ibv_create_qp(pd, &ia);
	if (!qp)
		DIE("ibv_create_qp");
	return qp;
}

static void connect_qp(struct ibv_qp *qp, uint32_t dqpn, struct ibv_port_attr *pa, union ibv_gid *gid)
{
	struct ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		DIE("INIT");
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = pa->active_mtu;
	a.dest_qp_num = dqpn;
	a.rq_psn = 1;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 1;
	a.ah_attr.dlid = pa->lid;
	a.ah_attr.port_num = 1;
	if (pa->link_layer == IBV_LINK_LAYER_ETHERNET || pa->lid == 0) {
		a.ah_attr.is_global = 1;
		a.ah_attr.grh.dgid = *gid;
		a.ah_attr.grh.hop_limit = 1;
	}
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
					  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		DIE("RTR");
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 1;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
					  IBV_QP_MAX_QP_RD_ATOMIC))
		DIE("RTS");
}

int main(int argc, char **argv)
{
	long iters = argc > 1 ? atol(argv[1]) : 200000;
	int n = 0;
	struct ibv_device **list = ibv_get_device_list(&n);
	const char *want = getenv("VT_DEV");
	struct ibv_device *dev = NULL;
	for (int i = 0; list && i < n && !dev; i++)
		if (!want || !strcmp(ibv_get_device_name(list[i]), want))
			dev = list[i];
	if (!dev) {
		fprintf(stderr, "verbs_postpoll: no RDMA device\n");
		return 2;
	}
	struct ibv_context *ctx = ibv_open_device(dev);
	if (!ctx)
		DIE("ibv_open_device");
	struct ibv_port_attr pa;
	union ibv_gid gid;
	if (ibv_query_port(ctx, 1, &pa) || ibv_query_gid(ctx, 1, 0, &gid))
		DIE("query port");
	struct ibv_pd *pd = ibv_alloc_pd(ctx);
	struct ibv_cq *cq = ibv_create_cq(ctx, 512, NULL, NULL, 0);
	if (!pd || !cq)
		DIE("pd/cq");
	static char buf[8192] __attribute__((aligned(4096)));
	struct ibv_mr *mr = ibv_reg_mr(pd, buf, sizeof buf,
				       IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ);
	if (!mr)
		DIE("ibv_reg_mr");
	struct ibv_qp *a = mkqp(pd, cq), *b = mkqp(pd, cq);
	connect_qp(a, b->qp_num, &pa, &gid);
	connect_qp(b, a->qp_num, &pa, &gid);

	struct ibv_wc wc[32];
	struct ibv_sge sge = {(uintptr_t)buf, 8, mr->lkey};
	struct ibv_send_wr wr, *bad;
	memset(&wr, 0, sizeof wr);
	wr.sg_list = &sge;
	wr.num_sge = 1;
	wr.opcode = IBV_WR_RDMA_WRITE;
	wr.send_flags = IBV_SEND_INLINE | IBV_SEND_SIGNALED;
	wr.wr.rdma.remote_addr = (uintptr_t)buf + 4096;
	wr.wr.rdma.rkey = mr->rkey;

	double best_poll = 1e30, best_post = 1e30, best_round = 1e30;
	for (int r = 0; r < 5; r++) {
		double t0 = now();
		int got = 0;
		for (long i = 0; i < iters; i++)
			got += ibv_poll_cq(cq, 1, wc);
		double t = (now() - t0) / iters;
		if (got)
			fprintf(stderr, "verbs_postpoll: a completion on an empty CQ\n");
		if (t < best_poll)
			best_poll = t;

		t0 = now();
		long outstanding = 0;
		for (long i = 0; i < iters; i++) {
			wr.wr_id = (uint64_t)i;
			wr.send_flags = IBV_SEND_INLINE | ((i & 31) == 31 ? IBV_SEND_SIGNALED : 0);
			while (outstanding >= 192) { /* 6 signaled ones behind */
				int k = ibv_poll_cq(cq, 32, wc);
				for (int j = 0; j < k; j++) {
					if (wc[j].status != IBV_WC_SUCCESS) {
						fprintf(stderr, "verbs_postpoll: %s\n", ibv_wc_status_str(wc[j].status));
						return 1;
					}
					outstanding -= 32;
				}
			}
			if (ibv_post_send(a, &wr, &bad))
				DIE("ibv_post_send");
			outstanding++;
		}
		while (outstanding >= 32) {
			int k = ibv_poll_cq(cq, 32, wc);
			outstanding -= 32L * (k > 0 ? k : 0);
		}
		t = (now() - t0) / iters;
		if (t < best_post)
			best_post = t;
		/* the remaining unsignaled ones complete with the next signaled */
		wr.send_flags = IBV_SEND_INLINE | IBV_SEND_SIGNALED;
		if (ibv_post_send(a, &wr, &bad))
			DIE("ibv_post_send");
		while (ibv_poll_cq(cq, 1, wc) == 0)
			;

		long rounds = iters / 4;
		t0 = now();
		for (long i = 0; i < rounds; i++) {
			wr.wr_id = (uint64_t)i;
			if (ibv_post_send(a, &wr, &bad))
				DIE("ibv_post_send");
			while (ibv_poll_cq(cq, 1, wc) == 0)
				;
			if (wc[0].status != IBV_WC_SUCCESS) {
				fprintf(stderr, "verbs_postpoll: %s\n", ibv_wc_status_str(wc[0].status));
				return 1;
			}
		}
		t = (now() - t0) / rounds;
		if (t < best_round)
			best_round = t;
	}
	printf("postpoll_empty_poll %.1f ns\n", best_poll * 1e9);
	printf("postpoll_post_write8 %.1f ns\n", best_post * 1e9);
	printf("postpoll_write8_round %.1f ns\n", best_round * 1e9);
	ibv_destroy_qp(a);
	ibv_destroy_qp(b);
	ibv_dereg_mr(mr);
	ibv_destroy_cq(cq);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	ibv_free_device_list(list);
	return 0;
}
