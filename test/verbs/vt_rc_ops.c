/* vt_rc_ops: every RC operation kind, checked by its data and its
 * completion fields: send/receive, send with immediate, RDMA write, write
 * with immediate, RDMA read, fetch-and-add, compare-and-swap (a compare
 * that matches and one that does not), inline send (the buffer is changed
 * right after the post), scatter/gather on both sides (send and write),
 * signaled and unsignaled sends. A posts, B receives (see vt_common.h). */
#include "vt_common.h"

#define BUF (64 * 1024)
#define O_RECV 0
#define O_SRC 4096
#define O_WRITE 8192
#define O_WIMM 16384
#define O_READ 24576
#define O_ATOM 32768
#define O_SG 40960

static struct vt_dev d;
static struct ibv_cq *scq, *rcq;
static struct ibv_qp *qp;
static struct ibv_mr *mr;
static struct vt_ep peer;
static uint8_t *buf;

static int expect_recv(const char *name, uint64_t wr_id, uint32_t len, int imm, uint32_t immv,
		       enum ibv_wc_opcode op)
{
	struct ibv_wc wc;
	int got = vt_poll1(rcq, &wc, 5000);
	int ok = got && wc.status == IBV_WC_SUCCESS && wc.wr_id == wr_id && wc.opcode == op &&
		 wc.byte_len == len && wc.qp_num == qp->qp_num &&
		 !!(wc.wc_flags & IBV_WC_WITH_IMM) == imm && (!imm || ntohl(wc.imm_data) == immv);
	CHECK(name, ok, "expected wr_id %llu opcode %d len %u imm %d/0x%x qp 0x%x, got %s imm 0x%x",
	      (unsigned long long)wr_id, op, len, imm, immv, qp->qp_num, vt_wc_str(&wc, got),
	      got ? ntohl(wc.imm_data) : 0);
	return ok;
}

static int expect_send(const char *name, uint64_t wr_id, enum ibv_wc_opcode op, int check_len,
		       uint32_t len)
{
	struct ibv_wc wc;
	int got = vt_poll1(scq, &wc, 5000);
	int ok = got && wc.status == IBV_WC_SUCCESS && wc.wr_id == wr_id && wc.opcode == op &&
		 wc.qp_num == qp->qp_num && (!check_len || wc.byte_len == len);
	CHECK(name, ok, "expected wr_id %llu opcode %d%s, got %s", (unsigned long long)wr_id, op,
	      check_len ? " and byte_len" : "", vt_wc_str(&wc, got));
	return ok;
}

static void data_check(const char *name, size_t off, size_t len, unsigned seed)
{
	long at = vt_cmp(buf + off, len, seed);
	CHECK(name, at < 0, "%zu bytes at offset %zu: byte %ld is 0x%02x, expected 0x%02x", len, off, at,
	      at < 0 ? 0 : buf[off + (size_t)at], at < 0 ? 0 : vt_byte(seed, (size_t)at));
}

static void role(char r)
{
	vt_open(&d);
	scq = vt_cq(&d, 64, NULL);
	rcq = vt_cq(&d, 64, NULL);
	struct vt_qp_opts o = {.max_sge = 4, .max_inline = 64};
	qp = vt_qp(&d, IBV_QPT_RC, scq, rcq, &o);
	mr = vt_mr(&d, BUF, VT_ACCESS_ALL);
	buf = mr->addr;
	peer = vt_connect(&d, qp, mr, &o);
	CHECK("connect", 1, "-");

	/* 1. send / receive */
	if (r == 'B') {
		if (vt_post_recv(qp, 101, mr, O_RECV, 4096))
			DIE("post_recv");
		vt_sync();
		expect_recv("send.recv_completion", 101, 1000, 0, 0, IBV_WC_RECV);
		data_check("send.data", O_RECV, 1000, 1);
	} else {
		vt_fill(buf + O_SRC, 1000, 1);
		vt_sync();
		CHECK("send.post", !vt_post_send(qp, 1, IBV_WR_SEND, mr, O_SRC, 1000, IBV_SEND_SIGNALED, 0, 0, 0),
		      "ibv_post_send failed");
		expect_send("send.completion", 1, IBV_WC_SEND, 0, 0);
	}
	vt_sync();

	/* 2. send with immediate */
	if (r == 'B') {
		memset(buf + O_RECV, 0, 4096);
		if (vt_post_recv(qp, 102, mr, O_RECV, 4096))
			DIE("post_recv");
		vt_sync();
		expect_recv("send_imm.recv_completion", 102, 100, 1, 0x12345678, IBV_WC_RECV);
		data_check("send_imm.data", O_RECV, 100, 2);
	} else {
		vt_fill(buf + O_SRC, 100, 2);
		vt_sync();
		CHECK("send_imm.post",
		      !vt_post_send(qp, 2, IBV_WR_SEND_WITH_IMM, mr, O_SRC, 100, IBV_SEND_SIGNALED, 0, 0, 0x12345678),
		      "ibv_post_send failed");
		expect_send("send_imm.completion", 2, IBV_WC_SEND, 0, 0);
	}
	vt_sync();

	/* 3. RDMA write: no receive completion at the target */
	if (r == 'A') {
		vt_fill(buf + O_SRC, 2000, 3);
		CHECK("write.post",
		      !vt_post_send(qp, 3, IBV_WR_RDMA_WRITE, mr, O_SRC, 2000, IBV_SEND_SIGNALED,
				    peer.addr + O_WRITE, peer.rkey, 0),
		      "ibv_post_send failed");
		expect_send("write.completion", 3, IBV_WC_RDMA_WRITE, 0, 0);
		vt_sync();
	} else {
		vt_sync();
		data_check("write.data", O_WRITE, 2000, 3);
		CHECK("write.no_recv_completion", vt_poll_none(rcq, 50) == 0, "a receive completion appeared");
		CHECK("write.untouched_after", buf[O_WRITE + 2000] == 0, "a byte past the written range changed");
	}
	vt_sync();

	/* 4. RDMA write with immediate: consumes a receive */
	if (r == 'B') {
		if (vt_post_recv(qp, 104, mr, O_RECV, 64))
			DIE("post_recv");
		vt_sync();
		expect_recv("write_imm.recv_completion", 104, 512, 1, 0xabcdef01, IBV_WC_RECV_RDMA_WITH_IMM);
		data_check("write_imm.data", O_WIMM, 512, 4);
	} else {
		vt_fill(buf + O_SRC, 512, 4);
		vt_sync();
		CHECK("write_imm.post",
		      !vt_post_send(qp, 4, IBV_WR_RDMA_WRITE_WITH_IMM, mr, O_SRC, 512, IBV_SEND_SIGNALED,
				    peer.addr + O_WIMM, peer.rkey, 0xabcdef01),
		      "ibv_post_send failed");
		expect_send("write_imm.completion", 4, IBV_WC_RDMA_WRITE, 0, 0);
	}
	vt_sync();

	/* 5. RDMA read */
	if (r == 'B') {
		vt_fill(buf + O_READ, 3000, 5);
		vt_sync();
		vt_sync();
		CHECK("read.no_recv_completion", vt_poll_none(rcq, 50) == 0, "a receive completion appeared");
	} else {
		vt_sync();
		CHECK("read.post",
		      !vt_post_send(qp, 5, IBV_WR_RDMA_READ, mr, O_READ, 3000, IBV_SEND_SIGNALED,
				    peer.addr + O_READ, peer.rkey, 0),
		      "ibv_post_send failed");
		expect_send("read.completion", 5, IBV_WC_RDMA_READ, 1, 3000);
		data_check("read.data", O_READ, 3000, 5);
		vt_sync();
	}
	vt_sync();

	/* 6. atomics on B's 8 bytes at O_ATOM: 100 +23, then CAS 123->999
	 * (matches), then CAS 5->7 (does not match) */
	CHECK("atomic.cap", d.attr.atomic_cap != IBV_ATOMIC_NONE, "the device reports atomic_cap NONE");
	if (r == 'B') {
		*(volatile uint64_t *)(buf + O_ATOM) = 100;
		vt_sync();
		vt_sync();
		uint64_t v = *(volatile uint64_t *)(buf + O_ATOM);
		CHECK("fetch_add.target", v == 123, "target is %llu, expected 123", (unsigned long long)v);
		vt_sync();
		vt_sync();
		v = *(volatile uint64_t *)(buf + O_ATOM);
		CHECK("cmp_swap.match.target", v == 999, "target is %llu, expected 999", (unsigned long long)v);
		vt_sync();
		vt_sync();
		v = *(volatile uint64_t *)(buf + O_ATOM);
		CHECK("cmp_swap.nomatch.target", v == 999, "target is %llu, expected 999 (unchanged)",
		      (unsigned long long)v);
	} else {
		volatile uint64_t *res = (volatile uint64_t *)(buf + O_ATOM);
		struct ibv_sge sge = {(uint64_t)(uintptr_t)(buf + O_ATOM), 8, mr->lkey};
		struct ibv_send_wr wr, *bad;
		vt_sync();
		*res = 0xdeadbeef;
		memset(&wr, 0, sizeof wr);
		wr.wr_id = 6;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
		wr.send_flags = IBV_SEND_SIGNALED;
		wr.wr.atomic.remote_addr = peer.addr + O_ATOM;
		wr.wr.atomic.rkey = peer.rkey;
		wr.wr.atomic.compare_add = 23;
		CHECK("fetch_add.post", !ibv_post_send(qp, &wr, &bad), "ibv_post_send failed");
		expect_send("fetch_add.completion", 6, IBV_WC_FETCH_ADD, 1, 8);
		CHECK("fetch_add.result", *res == 100, "fetched %llu, expected 100", (unsigned long long)*res);
		vt_sync();
		vt_sync();

		*res = 0xdeadbeef;
		wr.wr_id = 7;
		wr.opcode = IBV_WR_ATOMIC_CMP_AND_SWP;
		wr.wr.atomic.compare_add = 123;
		wr.wr.atomic.swap = 999;
		CHECK("cmp_swap.match.post", !ibv_post_send(qp, &wr, &bad), "ibv_post_send failed");
		expect_send("cmp_swap.match.completion", 7, IBV_WC_COMP_SWAP, 1, 8);
		CHECK("cmp_swap.match.result", *res == 123, "fetched %llu, expected 123 (the old value)",
		      (unsigned long long)*res);
		vt_sync();
		vt_sync();

		*res = 0xdeadbeef;
		wr.wr_id = 8;
		wr.wr.atomic.compare_add = 5;
		wr.wr.atomic.swap = 7;
		CHECK("cmp_swap.nomatch.post", !ibv_post_send(qp, &wr, &bad), "ibv_post_send failed");
		expect_send("cmp_swap.nomatch.completion", 8, IBV_WC_COMP_SWAP, 1, 8);
		CHECK("cmp_swap.nomatch.result", *res == 999, "fetched %llu, expected 999 (the current value)",
		      (unsigned long long)*res);
		vt_sync();
	}
	vt_sync();

	/* 7. inline send: the source is not registered and is overwritten
	 * right after the post */
	if (r == 'B') {
		memset(buf + O_RECV, 0, 4096);
		if (vt_post_recv(qp, 109, mr, O_RECV, 4096))
			DIE("post_recv");
		vt_sync();
		expect_recv("inline.recv_completion", 109, 48, 0, 0, IBV_WC_RECV);
		data_check("inline.data", O_RECV, 48, 9);
	} else {
		struct ibv_qp_attr qa;
		struct ibv_qp_init_attr qia;
		CHECK("inline.cap", !ibv_query_qp(qp, &qa, IBV_QP_CAP, &qia) && qa.cap.max_inline_data >= 48,
		      "max_inline_data %u < 48", qa.cap.max_inline_data);
		uint8_t tmp[48];
		vt_fill(tmp, 48, 9);
		struct ibv_sge sge = {(uint64_t)(uintptr_t)tmp, 48, 0};
		struct ibv_send_wr wr, *bad;
		memset(&wr, 0, sizeof wr);
		wr.wr_id = 9;
		wr.sg_list = &sge;
		wr.num_sge = 1;
		wr.opcode = IBV_WR_SEND;
		wr.send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE;
		vt_sync();
		CHECK("inline.post", !ibv_post_send(qp, &wr, &bad), "ibv_post_send failed");
		memset(tmp, 0xee, sizeof tmp);
		expect_send("inline.completion", 9, IBV_WC_SEND, 0, 0);
	}
	vt_sync();

	/* 8. scatter/gather: a 3-SGE send into a 3-SGE receive of other
	 * boundaries; a 2-SGE RDMA write */
	if (r == 'B') {
		memset(buf + O_SG, 0, 8192);
		struct ibv_sge sg[3] = {
			{(uint64_t)(uintptr_t)(buf + O_SG), 250, mr->lkey},
			{(uint64_t)(uintptr_t)(buf + O_SG + 1000), 250, mr->lkey},
			{(uint64_t)(uintptr_t)(buf + O_SG + 2000), 100, mr->lkey},
		};
		struct ibv_recv_wr wr, *bad;
		memset(&wr, 0, sizeof wr);
		wr.wr_id = 110;
		wr.sg_list = sg;
		wr.num_sge = 3;
		if (ibv_post_recv(qp, &wr, &bad))
			DIE("post_recv (3 SGEs)");
		vt_sync();
		expect_recv("sg.recv_completion", 110, 600, 0, 0, IBV_WC_RECV);
		uint8_t got[600];
		memcpy(got, buf + O_SG, 250);
		memcpy(got + 250, buf + O_SG + 1000, 250);
		memcpy(got + 500, buf + O_SG + 2000, 100);
		long at = vt_cmp(got, 600, 10);
		CHECK("sg.recv_data", at < 0, "byte %ld of the scattered message is wrong", at);
		CHECK("sg.recv_no_spill", buf[O_SG + 250] == 0 && buf[O_SG + 1250] == 0 && buf[O_SG + 2100] == 0,
		      "bytes past an SGE were written");
		vt_sync();
		vt_sync();
		data_check("sg.write_data", O_SG + 4096, 700, 11);
	} else {
		/* the message 0..599 of seed 10 lies in 3 pieces: 100 at
		 * O_SG+3000, 200 at O_SG, 300 at O_SG+1500 */
		uint8_t msg[700];
		vt_fill(msg, 600, 10);
		memcpy(buf + O_SG + 3000, msg, 100);
		memcpy(buf + O_SG, msg + 100, 200);
		memcpy(buf + O_SG + 1500, msg + 300, 300);
		struct ibv_sge sg[3] = {
			{(uint64_t)(uintptr_t)(buf + O_SG + 3000), 100, mr->lkey},
			{(uint64_t)(uintptr_t)(buf + O_SG), 200, mr->lkey},
			{(uint64_t)(uintptr_t)(buf + O_SG + 1500), 300, mr->lkey},
		};
		struct ibv_send_wr wr, *bad;
		memset(&wr, 0, sizeof wr);
		wr.wr_id = 10;
		wr.sg_list = sg;
		wr.num_sge = 3;
		wr.opcode = IBV_WR_SEND;
		wr.send_flags = IBV_SEND_SIGNALED;
		vt_sync();
		CHECK("sg.send_post", !ibv_post_send(qp, &wr, &bad), "ibv_post_send failed");
		expect_send("sg.send_completion", 10, IBV_WC_SEND, 0, 0);
		vt_sync();
		/* write: 300 + 400 bytes gathered into 700 contiguous ones */
		vt_fill(msg, 700, 11);
		memcpy(buf + O_SG + 5000, msg, 300);
		memcpy(buf + O_SG + 6000, msg + 300, 400);
		struct ibv_sge wg[2] = {
			{(uint64_t)(uintptr_t)(buf + O_SG + 5000), 300, mr->lkey},
			{(uint64_t)(uintptr_t)(buf + O_SG + 6000), 400, mr->lkey},
		};
		wr.wr_id = 11;
		wr.sg_list = wg;
		wr.num_sge = 2;
		wr.opcode = IBV_WR_RDMA_WRITE;
		wr.wr.rdma.remote_addr = peer.addr + O_SG + 4096;
		wr.wr.rdma.rkey = peer.rkey;
		CHECK("sg.write_post", !ibv_post_send(qp, &wr, &bad), "ibv_post_send failed");
		expect_send("sg.write_completion", 11, IBV_WC_RDMA_WRITE, 0, 0);
		vt_sync();
	}
	vt_sync();

	/* 9. signaled vs unsignaled: 4 unsignaled sends then a signaled one,
	 * one list of 5 work requests: one send completion, five receives in
	 * order */
	if (r == 'B') {
		for (int i = 0; i < 5; i++)
			if (vt_post_recv(qp, 120 + (uint64_t)i, mr, O_RECV + (size_t)i * 512, 512))
				DIE("post_recv");
		vt_sync();
		int all = 1;
		for (int i = 0; i < 5; i++) {
			struct ibv_wc wc;
			int got = vt_poll1(rcq, &wc, 5000);
			if (!got || wc.status != IBV_WC_SUCCESS || wc.wr_id != 120 + (uint64_t)i ||
			    wc.byte_len != 64 || vt_cmp(buf + O_RECV + (size_t)i * 512, 64, 20 + (unsigned)i) >= 0) {
				CHECK("unsignaled.recv_in_order", 0, "receive %d: %s", i, vt_wc_str(&wc, got));
				all = 0;
				break;
			}
		}
		if (all)
			CHECK("unsignaled.recv_in_order", 1, "-");
	} else {
		struct ibv_sge sg[5];
		struct ibv_send_wr wr[5], *bad;
		memset(wr, 0, sizeof wr);
		for (int i = 0; i < 5; i++) {
			vt_fill(buf + O_SRC + (size_t)i * 64, 64, 20 + (unsigned)i);
			sg[i] = (struct ibv_sge){(uint64_t)(uintptr_t)(buf + O_SRC + (size_t)i * 64), 64, mr->lkey};
			wr[i].wr_id = 20 + (uint64_t)i;
			wr[i].sg_list = &sg[i];
			wr[i].num_sge = 1;
			wr[i].opcode = IBV_WR_SEND;
			wr[i].send_flags = i == 4 ? IBV_SEND_SIGNALED : 0;
			wr[i].next = i < 4 ? &wr[i + 1] : NULL;
		}
		vt_sync();
		CHECK("unsignaled.post_list", !ibv_post_send(qp, wr, &bad), "ibv_post_send failed");
		expect_send("unsignaled.one_completion", 24, IBV_WC_SEND, 0, 0);
		CHECK("unsignaled.no_more", vt_poll_none(scq, 100) == 0, "an unsignaled send completed");
	}
	vt_sync();

	ibv_destroy_qp(qp);
	ibv_dereg_mr(mr);
	ibv_destroy_cq(scq);
	ibv_destroy_cq(rcq);
	ibv_dealloc_pd(d.pd);
	CHECK("teardown", !ibv_close_device(d.ctx), "ibv_close_device failed");
}

int main(int argc, char **argv)
{
	return vt_main(argc, argv, role);
}
