/* Shared helpers of the verbs test programs (test/verbs): plain libibverbs,
 * nothing of ckptmpi.
 *
 * Every program runs two roles, A (mostly the requester) and B (mostly the
 * responder), that exchange LIDs, GIDs, QP numbers, addresses and rkeys
 * out of band over a stream socket:
 *
 *     PROG                  both roles: fork, a socketpair between them
 *     PROG server PORT      role B, listening on 127.0.0.1:PORT
 *     PROG client PORT      role A, connecting to 127.0.0.1:PORT
 *
 * (the two-process form lets each role run under its own ckptmpi run).
 * Each check prints one line, "ok ROLE NAME" or "FAIL ROLE NAME: why";
 * the program exits 1 when any check failed, 2 when it could not run
 * (no device, a setup call failed). Nothing waits forever: completions
 * are polled against a deadline and an alarm ends a role that hangs.
 *
 * VT_DEV=NAME picks the device (default: the first listed). */
#ifndef VT_COMMON_H
#define VT_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <infiniband/verbs.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define VT_PORT 1
#define VT_ALARM_S 90 /* a role still running after this is killed */

static const char *vt_role = "?";
static int vt_failures;
static int vt_checks;

static inline void vt_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void vt_line(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/* CHECK(NAME, COND, FMT, ...): one line, counted. */
#define CHECK(name, cond, ...)                                                     \
	do {                                                                       \
		vt_checks++;                                                       \
		if (cond) {                                                        \
			vt_line("ok %s %s\n", vt_role, name);                      \
		} else {                                                           \
			char _why[512];                                            \
			snprintf(_why, sizeof _why, __VA_ARGS__);                  \
			vt_line("FAIL %s %s: %s\n", vt_role, name, _why);          \
			vt_failures++;                                             \
		}                                                                  \
	} while (0)

/* DIE: a setup step failed; the role cannot go on. */
#define DIE(...)                                                                   \
	do {                                                                       \
		vt_line("FAIL %s setup: ", vt_role);                               \
		vt_line(__VA_ARGS__);                                              \
		vt_line(" (errno %d %s)\n", errno, strerror(errno));               \
		exit(2);                                                           \
	} while (0)

static inline double vt_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void vt_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static inline const char *vt_status(enum ibv_wc_status s)
{
	return ibv_wc_status_str(s);
}

/* ---------------------------------------------------------------- data */

static inline uint8_t vt_byte(unsigned seed, size_t i)
{
	return (uint8_t)(seed * 131u + i * 7u + (i >> 8) * 13u + 1u);
}

static inline void vt_fill(void *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = vt_byte(seed, i);
}

/* offset of the first byte that differs from the pattern, or -1 */
static inline long vt_cmp(const void *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		if (((const uint8_t *)buf)[i] != vt_byte(seed, i))
			return (long)i;
	return -1;
}

/* ---------------------------------------------------------------- out of band */

static int vt_oob = -1;

static inline void vt_write_all(const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(vt_oob, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			DIE("out-of-band write");
		c += w;
		n -= (size_t)w;
	}
}

/* 0 on success, -1 on EOF (the peer is gone) */
static inline int vt_read_all(void *p, size_t n)
{
	char *c = p;
	while (n > 0) {
		ssize_t r = read(vt_oob, c, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			DIE("out-of-band read");
		if (r == 0)
			return -1;
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

static inline void vt_send_u64(uint64_t v)
{
	vt_write_all(&v, sizeof v);
}

static inline uint64_t vt_recv_u64(void)
{
	uint64_t v;
	if (vt_read_all(&v, sizeof v))
		DIE("the peer closed the out-of-band connection");
	return v;
}

/* both roles reach this point */
static inline void vt_sync(void)
{
	vt_send_u64(0x5f5f5f5f);
	if (vt_recv_u64() != 0x5f5f5f5f)
		DIE("out-of-band stream out of step");
}

/* ---------------------------------------------------------------- device */

struct vt_dev {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_port_attr port;
	struct ibv_device_attr attr;
	union ibv_gid gid;
	int use_grh;
};

static inline void vt_open(struct vt_dev *d)
{
	int n = 0;
	struct ibv_device **list = ibv_get_device_list(&n);
	const char *want = getenv("VT_DEV");
	struct ibv_device *dev = NULL;

	memset(d, 0, sizeof *d);
	if (!list || n == 0)
		DIE("no RDMA device (ibv_get_device_list: %d devices)", n);
	for (int i = 0; i < n && !dev; i++)
		if (!want || !strcmp(ibv_get_device_name(list[i]), want))
			dev = list[i];
	if (!dev)
		DIE("no device named %s", want);
	d->ctx = ibv_open_device(dev);
	if (!d->ctx)
		DIE("ibv_open_device(%s)", ibv_get_device_name(dev));
	ibv_free_device_list(list);
	if (ibv_query_device(d->ctx, &d->attr))
		DIE("ibv_query_device");
	if (ibv_query_port(d->ctx, VT_PORT, &d->port))
		DIE("ibv_query_port");
	if (ibv_query_gid(d->ctx, VT_PORT, 0, &d->gid))
		DIE("ibv_query_gid");
	d->use_grh = d->port.link_layer == IBV_LINK_LAYER_ETHERNET || d->port.lid == 0;
	d->pd = ibv_alloc_pd(d->ctx);
	if (!d->pd)
		DIE("ibv_alloc_pd");
}

/* what one side tells the other about a queue pair and a memory region */
struct vt_ep {
	uint32_t lid;
	uint32_t qpn;
	uint32_t psn;
	uint32_t rkey;
	uint64_t addr;
	uint8_t gid[16];
};

static inline void vt_ep_exchange(const struct vt_ep *mine, struct vt_ep *theirs)
{
	vt_write_all(mine, sizeof *mine);
	if (vt_read_all(theirs, sizeof *theirs))
		DIE("the peer closed the out-of-band connection");
}

static inline struct vt_ep vt_ep_of(struct vt_dev *d, struct ibv_qp *qp, struct ibv_mr *mr)
{
	struct vt_ep e;
	memset(&e, 0, sizeof e);
	e.lid = d->port.lid;
	e.qpn = qp ? qp->qp_num : 0;
	e.psn = qp ? (qp->qp_num * 2654435761u) & 0xffffff : 0;
	e.rkey = mr ? mr->rkey : 0;
	e.addr = mr ? (uint64_t)(uintptr_t)mr->addr : 0;
	memcpy(e.gid, d->gid.raw, 16);
	return e;
}

static inline void vt_ah_attr(struct vt_dev *d, const struct vt_ep *peer, struct ibv_ah_attr *ah)
{
	memset(ah, 0, sizeof *ah);
	ah->dlid = (uint16_t)peer->lid;
	ah->port_num = VT_PORT;
	if (d->use_grh) {
		ah->is_global = 1;
		memcpy(ah->grh.dgid.raw, peer->gid, 16);
		ah->grh.sgid_index = 0;
		ah->grh.hop_limit = 1;
	}
}

struct vt_qp_opts {
	int max_send_wr, max_recv_wr, max_sge, max_inline;
	struct ibv_srq *srq;
	int sq_sig_all;
	/* RC: retry behaviour (0: the defaults 14 / 7 / 7) */
	int timeout, retry_cnt, rnr_retry, set_rnr_retry;
};

static inline struct ibv_qp *vt_qp(struct vt_dev *d, enum ibv_qp_type type, struct ibv_cq *scq,
			    struct ibv_cq *rcq, const struct vt_qp_opts *o)
{
	struct ibv_qp_init_attr ia;
	memset(&ia, 0, sizeof ia);
	ia.send_cq = scq;
	ia.recv_cq = rcq;
	ia.srq = o ? o->srq : NULL;
	ia.qp_type = type;
	ia.sq_sig_all = o ? o->sq_sig_all : 0;
	ia.cap.max_send_wr = o && o->max_send_wr ? (uint32_t)o->max_send_wr : 32;
	ia.cap.max_recv_wr = o && o->max_recv_wr ? (uint32_t)o->max_recv_wr : 32;
	ia.cap.max_send_sge = ia.cap.max_recv_sge = o && o->max_sge ? (uint32_t)o->max_sge : 1;
	ia.cap.max_inline_data = o ? (uint32_t)o->max_inline : 0;
	struct ibv_qp *qp = ibv_create_qp(d->pd, &ia);
	if (!qp)
		DIE("ibv_create_qp(type %d)", type);
	return qp;
}

static inline void vt_qp_init(struct ibv_qp *qp, int access)
{
	struct ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_INIT;
	a.pkey_index = 0;
	a.port_num = VT_PORT;
	int mask = IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT;
	if (qp->qp_type == IBV_QPT_UD) {
		a.qkey = 0x11111111;
		mask |= IBV_QP_QKEY;
	} else {
		a.qp_access_flags = access;
		mask |= IBV_QP_ACCESS_FLAGS;
	}
	if (ibv_modify_qp(qp, &a, mask))
		DIE("modify QP 0x%x to INIT", qp->qp_num);
}

static inline void vt_qp_rtr(struct vt_dev *d, struct ibv_qp *qp, const struct vt_ep *peer,
		      const struct vt_qp_opts *o)
{
	struct ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTR;
	int mask = IBV_QP_STATE;
	if (qp->qp_type != IBV_QPT_UD) {
		a.path_mtu = d->port.active_mtu;
		a.dest_qp_num = peer->qpn;
		a.rq_psn = peer->psn;
		vt_ah_attr(d, peer, &a.ah_attr);
		mask |= IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN | IBV_QP_RQ_PSN;
	}
	if (qp->qp_type == IBV_QPT_RC) {
		a.max_dest_rd_atomic = 4;
		a.min_rnr_timer = 1; /* 0.01 ms */
		mask |= IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER;
	}
	(void)o;
	if (ibv_modify_qp(qp, &a, mask))
		DIE("modify QP 0x%x to RTR", qp->qp_num);
}

static inline void vt_qp_rts(struct ibv_qp *qp, uint32_t my_psn, const struct vt_qp_opts *o)
{
	struct ibv_qp_attr a;
	memset(&a, 0, sizeof a);
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = my_psn;
	int mask = IBV_QP_STATE | IBV_QP_SQ_PSN;
	if (qp->qp_type == IBV_QPT_RC) {
		a.timeout = o && o->timeout ? (uint8_t)o->timeout : 14;
		a.retry_cnt = o && o->retry_cnt ? (uint8_t)o->retry_cnt : 7;
		a.rnr_retry = o && o->set_rnr_retry ? (uint8_t)o->rnr_retry : 7;
		a.max_rd_atomic = 4;
		mask |= IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC;
	}
	if (ibv_modify_qp(qp, &a, mask))
		DIE("modify QP 0x%x to RTS", qp->qp_num);
}

#define VT_ACCESS_ALL                                                              \
	(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |  \
	 IBV_ACCESS_REMOTE_ATOMIC)

/* INIT, exchange, RTR, RTS: both roles call it with their own QP and MR;
 * returns the peer's endpoint (its QP number, the MR's address and rkey) */
static inline struct vt_ep vt_connect(struct vt_dev *d, struct ibv_qp *qp, struct ibv_mr *mr,
			       const struct vt_qp_opts *o)
{
	struct vt_ep mine = vt_ep_of(d, qp, mr), peer;
	vt_qp_init(qp, VT_ACCESS_ALL);
	vt_ep_exchange(&mine, &peer);
	vt_qp_rtr(d, qp, &peer, o);
	vt_qp_rts(qp, mine.psn, o);
	return peer;
}

static inline struct ibv_mr *vt_mr(struct vt_dev *d, size_t len, int access)
{
	void *buf = NULL;
	if (posix_memalign(&buf, 4096, len))
		DIE("posix_memalign");
	memset(buf, 0, len);
	struct ibv_mr *mr = ibv_reg_mr(d->pd, buf, len, access);
	if (!mr)
		DIE("ibv_reg_mr(%zu bytes, access 0x%x)", len, access);
	return mr;
}

static inline struct ibv_cq *vt_cq(struct vt_dev *d, int n, struct ibv_comp_channel *ch)
{
	struct ibv_cq *cq = ibv_create_cq(d->ctx, n, NULL, ch, 0);
	if (!cq)
		DIE("ibv_create_cq(%d)", n);
	return cq;
}

/* ---------------------------------------------------------------- posting */

static inline int vt_post_recv(struct ibv_qp *qp, uint64_t wr_id, struct ibv_mr *mr, size_t off,
			uint32_t len)
{
	struct ibv_sge sge = {(uint64_t)(uintptr_t)mr->addr + off, len, mr->lkey};
	struct ibv_recv_wr wr, *bad = NULL;
	memset(&wr, 0, sizeof wr);
	wr.wr_id = wr_id;
	wr.sg_list = &sge;
	wr.num_sge = 1;
	return ibv_post_recv(qp, &wr, &bad);
}

/* one work request with one SGE (len 0: no SGE) */
static inline int vt_post_send(struct ibv_qp *qp, uint64_t wr_id, enum ibv_wr_opcode op, struct ibv_mr *mr,
			size_t off, uint32_t len, unsigned flags, uint64_t raddr, uint32_t rkey,
			uint32_t imm)
{
	struct ibv_sge sge = {(uint64_t)(uintptr_t)mr->addr + off, len, mr->lkey};
	struct ibv_send_wr wr, *bad = NULL;
	memset(&wr, 0, sizeof wr);
	wr.wr_id = wr_id;
	wr.sg_list = len ? &sge : NULL;
	wr.num_sge = len ? 1 : 0;
	wr.opcode = op;
	wr.send_flags = flags;
	wr.imm_data = htonl(imm);
	wr.wr.rdma.remote_addr = raddr;
	wr.wr.rdma.rkey = rkey;
	return ibv_post_send(qp, &wr, &bad);
}

/* ---------------------------------------------------------------- polling */

/* one completion within MS milliseconds: 1, else 0 (wc->status is set to
 * -1 then, for messages) */
static inline int vt_poll1(struct ibv_cq *cq, struct ibv_wc *wc, int ms)
{
	double end = vt_now() + ms / 1000.0;
	memset(wc, 0, sizeof *wc);
	for (;;) {
		int n = ibv_poll_cq(cq, 1, wc);
		if (n < 0) {
			vt_line("FAIL %s poll: ibv_poll_cq returned %d\n", vt_role, n);
			vt_failures++;
			wc->status = (enum ibv_wc_status) - 1;
			return 0;
		}
		if (n == 1)
			return 1;
		if (vt_now() > end) {
			wc->status = (enum ibv_wc_status) - 1;
			return 0;
		}
		sched_yield();
	}
}

/* how many completions arrive within MS milliseconds (none expected) */
static inline int vt_poll_none(struct ibv_cq *cq, int ms)
{
	struct ibv_wc wc;
	int got = 0;
	double end = vt_now() + ms / 1000.0;
	while (vt_now() < end) {
		int n = ibv_poll_cq(cq, 1, &wc);
		if (n > 0)
			got += n;
		else
			sched_yield();
	}
	return got;
}

/* "status S opcode O len L" for messages */
static inline const char *vt_wc_str(const struct ibv_wc *wc, int got)
{
	static char s[160];
	if (!got)
		return "no completion in time";
	snprintf(s, sizeof s, "wr_id %llu status %s (%d) opcode %d byte_len %u flags 0x%x qp 0x%x",
		 (unsigned long long)wc->wr_id, vt_status(wc->status), wc->status, wc->opcode,
		 wc->byte_len, wc->wc_flags, wc->qp_num);
	return s;
}

/* ---------------------------------------------------------------- roles */

static inline void vt_run_role(char role, void (*fn)(char role))
{
	vt_role = role == 'A' ? "A" : "B";
	alarm(VT_ALARM_S);
	fn(role);
	vt_line("%s %s: %d checks, %d failed\n", vt_failures ? "FAILED" : "done", vt_role,
		vt_checks, vt_failures);
	exit(vt_failures ? 1 : 0);
}

static inline int vt_tcp(int server, int port)
{
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	if (server) {
		int l = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 1))
			DIE("listen on 127.0.0.1:%d", port);
		int s = accept(l, NULL, NULL);
		if (s < 0)
			DIE("accept");
		close(l);
		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		return s;
	}
	for (int i = 0; i < 200; i++) { /* the server may not listen yet: 20 s */
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(s, (struct sockaddr *)&sa, sizeof sa) == 0) {
			setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			return s;
		}
		close(s);
		vt_sleep_ms(100);
	}
	DIE("connect to 127.0.0.1:%d", port);
}

/* pid of the other role in fork mode (0 otherwise) */
static pid_t vt_peer_pid __attribute__((unused));
/* role B is meant to be killed (the peer-death check) */
static int vt_b_may_die __attribute__((unused));

static inline int vt_main(int argc, char **argv, void (*fn)(char role))
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && (!strcmp(argv[1], "server") || !strcmp(argv[1], "client"))) {
		int server = !strcmp(argv[1], "server");
		vt_role = server ? "B" : "A";
		vt_oob = vt_tcp(server, atoi(argv[2]));
		vt_run_role(server ? 'B' : 'A', fn);
	}
	if (argc != 1) {
		fprintf(stderr, "usage: %s [server PORT | client PORT]\n", argv[0]);
		return 2;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		DIE("socketpair");
	pid_t pid = fork();
	if (pid < 0)
		DIE("fork");
	if (pid == 0) {
		close(sv[0]);
		vt_oob = sv[1];
		vt_run_role('B', fn);
	}
	close(sv[1]);
	vt_oob = sv[0];
	vt_peer_pid = pid;
	pid_t a = fork();
	if (a < 0)
		DIE("fork");
	if (a == 0)
		vt_run_role('A', fn);
	close(sv[0]);
	/* the parent only waits for both: a role that dies is reported */
	int rc = 0;
	for (int i = 0; i < 2; i++) {
		int st;
		pid_t w = wait(&st);
		const char *who = w == pid ? "B" : "A";
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			continue;
		if (WIFSIGNALED(st) && w == pid && vt_b_may_die)
			continue;
		if (WIFSIGNALED(st))
			vt_line("FAIL %s exit: killed by signal %d\n", who, WTERMSIG(st));
		else
			vt_line("FAIL %s exit: status %d\n", who, WEXITSTATUS(st));
		if (!rc || (WIFEXITED(st) && WEXITSTATUS(st) == 2))
			rc = WIFEXITED(st) && WEXITSTATUS(st) == 2 ? 2 : 1;
	}
	return rc;
}

#endif
