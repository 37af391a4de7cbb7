/* smoke_mpi_verbs: an MPI program that also drives verbs itself (issue 9,
 * item 6): two ranks exchange their QP numbers, rkeys and addresses over
 * MPI, then every step rank 0 writes a pattern into rank 1's memory (RDMA
 * write) and sends it a message over verbs, rank 1 checks both, and the
 * ranks agree on a sum with MPI_Allreduce. Rank 0 prints "STEP ok SUM"
 * (a failed check on either rank prints FAIL and aborts the job).
 *
 *     mpirun -np 2 smoke_mpi_verbs STEPS SLEEP_MS */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <infiniband/verbs.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WSZ 4096
#define MSG 256

static int rank;

static void die(const char *what)
{
	printf("FAIL %d %s (errno %d %s)\n", rank, what, errno, strerror(errno));
	fflush(stdout);
	MPI_Abort(MPI_COMM_WORLD, 2);
}

static uint8_t pat(unsigned s, size_t i) { return (uint8_t)(s * 17u + i * 5u + 1u); }

int main(int argc, char **argv)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	struct ibv_pd *pd = NULL;
	struct ibv_cq *cq = NULL;
	struct ibv_qp *qp = NULL;
	struct ibv_mr *mr = NULL;
	struct ibv_port_attr port;
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;
	struct {
		uint32_t qpn, rkey;
		uint64_t addr;
		uint32_t lid, pad;
	} me, peer;
	uint8_t *buf;
	unsigned steps, ms;
	uint64_t sum = 0;
	int size;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (size != 2 || argc != 3) {
		if (!rank)
			fprintf(stderr, "usage: mpirun -np 2 %s STEPS SLEEP_MS\n", argv[0]);
		MPI_Finalize();
		return 2;
	}
	steps = (unsigned)atoi(argv[1]);
	ms = (unsigned)atoi(argv[2]);
	list = ibv_get_device_list(NULL);
	if (!list || !list[0] || !(ctx = ibv_open_device(list[0])))
		die("open device");
	ibv_free_device_list(list);
	buf = aligned_alloc(4096, 2 * WSZ + 4 * MSG);
	memset(buf, 0, 2 * WSZ + 4 * MSG);
	if (!(pd = ibv_alloc_pd(ctx)) || !(cq = ibv_create_cq(ctx, 32, NULL, NULL, 0)) ||
	    !(mr = ibv_reg_mr(pd, buf, 2 * WSZ + 4 * MSG,
	                      IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE)))
		die("PD, CQ, MR");
	memset(&init, 0, sizeof init);
	init.send_cq = init.recv_cq = cq;
	init.qp_type = IBV_QPT_RC;
	init.cap.max_send_wr = init.cap.max_recv_wr = 8;
	init.cap.max_send_sge = init.cap.max_recv_sge = 1;
	if (!(qp = ibv_create_qp(pd, &init)) || ibv_query_port(ctx, 1, &port))
		die("QP");
	me.qpn = qp->qp_num;
	me.rkey = mr->rkey;
	me.addr = (uintptr_t)buf;
	me.lid = port.lid;
	MPI_Sendrecv(&me, sizeof me, MPI_BYTE, 1 - rank, 0, &peer, sizeof peer, MPI_BYTE, 1 - rank, 0,
	             MPI_COMM_WORLD, MPI_STATUS_IGNORE);
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_INIT;
	a.port_num = 1;
	a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		die("INIT");
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_1024;
	a.dest_qp_num = peer.qpn;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 12;
	a.ah_attr.dlid = (uint16_t)peer.lid;
	a.ah_attr.port_num = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
	                              IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER))
		die("RTR");
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTS;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.max_rd_atomic = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
	                              IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
		die("RTS");
	if (rank == 1) { /* receives ahead: sends of later steps find one */
		for (int i = 0; i < 4; i++) {
			struct ibv_sge sg = {(uintptr_t)(buf + 2 * WSZ + i * MSG), MSG, mr->lkey};
			struct ibv_recv_wr wr = {.wr_id = (uint64_t)i, .sg_list = &sg, .num_sge = 1}, *bad;
			if (ibv_post_recv(qp, &wr, &bad))
				die("post_recv");
		}
	}
	MPI_Barrier(MPI_COMM_WORLD);

	for (unsigned s = 0; s < steps; s++) {
		struct ibv_wc wc;
		int n, slot = (int)(s % 4);
		uint64_t all;
		if (rank == 0) {
			struct ibv_sge sw = {(uintptr_t)buf, WSZ, mr->lkey};
			struct ibv_sge sm = {(uintptr_t)(buf + WSZ), MSG, mr->lkey};
			struct ibv_send_wr w = {.wr_id = 1, .sg_list = &sw, .num_sge = 1,
			                        .opcode = IBV_WR_RDMA_WRITE},
			                   m = {.wr_id = 2, .sg_list = &sm, .num_sge = 1,
			                        .opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED},
			                   *bad;
			for (size_t i = 0; i < WSZ; i++)
				buf[i] = pat(s, i);
			for (size_t i = 0; i < MSG; i++)
				buf[WSZ + i] = pat(s + 3, i);
			w.wr.rdma.remote_addr = peer.addr + WSZ; /* rank 1's target */
			w.wr.rdma.rkey = peer.rkey;
			w.next = &m;
			if (ibv_post_send(qp, &w, &bad))
				die("post_send");
			while ((n = ibv_poll_cq(cq, 1, &wc)) == 0)
				;
			if (n < 0 || wc.status != IBV_WC_SUCCESS || wc.wr_id != 2)
				die("send completion");
		} else {
			while ((n = ibv_poll_cq(cq, 1, &wc)) == 0)
				;
			if (n < 0 || wc.status != IBV_WC_SUCCESS || wc.byte_len != MSG || wc.wr_id != (uint64_t)slot)
				die("receive completion");
			for (size_t i = 0; i < MSG; i++)
				if (buf[2 * WSZ + slot * MSG + i] != pat(s + 3, i))
					die("message content");
			for (size_t i = 0; i < WSZ; i++)
				if (buf[WSZ + i] != pat(s, i))
					die("written bytes");
			{
				struct ibv_sge sg = {(uintptr_t)(buf + 2 * WSZ + slot * MSG), MSG, mr->lkey};
				struct ibv_recv_wr wr = {.wr_id = (uint64_t)slot, .sg_list = &sg, .num_sge = 1}, *bad;
				if (ibv_post_recv(qp, &wr, &bad))
					die("post_recv");
			}
		}
		sum = sum * 33 + buf[WSZ + s % WSZ] + s;
		MPI_Allreduce(&sum, &all, 1, MPI_UINT64_T, MPI_BXOR, MPI_COMM_WORLD);
		/* one rank prints (two ranks' lines interleave through mpirun) */
		if (rank == 0)
			printf("%u ok %016llx\n", s, (unsigned long long)all);
		if (ms) {
			struct timespec ts = {0, (long)ms * 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	if (rank == 0)
		printf("%u done\n", steps);
	ibv_destroy_qp(qp);
	ibv_dereg_mr(mr);
	ibv_destroy_cq(cq);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	MPI_Finalize();
	return 0;
}
