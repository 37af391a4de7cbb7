/* ckpt_ops: verbs traffic of every operation kind, with work requests in
 * flight at any moment, every byte checked: the program the verbs
 * checkpoint tests (test/verbs/e2e_verbs_ckpt_*.sh) kill and restart.
 * Plain libibverbs, nothing of ckptmpi.
 *
 *   ckpt_ops [-k KINDS] [-b] [-m MIB] NSTEPS SLEEP_MS loop
 *   ckpt_ops [-k KINDS] [-b] [-m MIB] NSTEPS SLEEP_MS server PORTFILE
 *   ckpt_ops [-k KINDS] [-b] [-m MIB] NSTEPS SLEEP_MS client PORTFILE
 *
 * server (side B) listens on 127.0.0.1, an ephemeral port written to
 * PORTFILE; client (side A) connects to it; the TCP connection carries the
 * set-up exchange (QP numbers, LIDs, GIDs, addresses, rkeys) and a
 * barrier per step. loop: both sides in one process, their QPs connected
 * to each other. KINDS (comma-separated, default all):
 *
 *   send    RC send/receive, 6 sizes (8 B inline to 8 KiB)
 *   write   RC RDMA write, then a send with immediate saying "done"
 *   imm     RC RDMA write with immediate (each consumes a receive)
 *   read    RC RDMA read of the peer's buffer (double-buffered)
 *   atomic  fetch-and-add, compare-and-swap (one that succeeds, one not)
 *   ud      UD send/receive (source QP checked)
 *   srq     two RC QPs whose receives come from one SRQ
 *   chan    RC send/receive whose receive CQ has a completion channel: a
 *           thread sits in ibv_get_cq_event and hands completions over
 *   none    no verbs at all, the steps and barriers alone (to check the
 *           test scripts themselves on a job without verbs)
 *
 * A step: post the sends, writes, reads and atomics; sleep SLEEP_MS (the
 * likely cut: send and chan have posted half the receives the peer's
 * sends need, so the others wait; imm, ud and srq have receives posted
 * and not yet used, their peer sends only after its sleep; completions
 * not polled); post the other receives, then the writes with immediate,
 * the UD sends and the second SRQ QP's sends; poll and check every
 * completion (status, opcode, wr_id, length, immediate, source QP) and
 * every byte received, written, read or returned; print one line; post
 * the next step's first receives; barrier. -b: side B does
 * not sleep, it spins in ibv_poll_cq while A sleeps. -m MIB: each side
 * also registers MIB MiB, filled with a pattern; the peer RDMA-writes a
 * 64 KiB chunk of it each step (write kind); all of it is checked at the
 * end (with -k none: the same memory, not registered, no verbs at all). Pending RC sends are retried for ever (rnr_retry 7), so a peer that
 * is being checkpointed is only waited for.
 *
 * Output: "0 ..." (what runs), "K kind=HASH ..." per step, "N+1 final
 * checksum=HASH", nothing that depends on timing, addresses or QP numbers,
 * so an uninterrupted run and a killed-and-restarted one print the same.
 * Any check failing: "K FAIL SIDE KIND: why", exit 1; a set-up failure:
 * exit 2. Waiting for a completion gives up after 60 s (pauses of a
 * second or more, a checkpoint's, are not counted). */
#include "vt_common.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#define NMSG 6
#define MAXLEN 8192u
#define AREA (NMSG * MAXLEN)
#define GRH 40
#define NATOM 4
#define SRQ_SPARE 3 /* SRQ receives left unused over the sleep */
#define CHUNK (64u << 10)
#define WAIT_LIMIT_S 60.0

enum { K_SEND, K_WRITE, K_IMM, K_READ, K_ATOMIC, K_UD, K_SRQ, K_CHAN, NKIND };
static const char *const kind_name[NKIND] = {"send", "write", "imm",  "read",
					     "atomic", "ud", "srq", "chan"};
static const uint32_t rc_len[NMSG] = {8, 100, 144, 145, 1000, 8192};
static const uint32_t ud_len[NMSG] = {8, 100, 144, 145, 1000, 2048};

/* a kind's memory region: where what is */
#define OFF_SEND 0u
#define OFF_RECV (OFF_SEND + 2 * AREA)   /* 2 * NMSG receive slots */
#define OFF_TARGET (OFF_RECV + 2 * AREA) /* written by the peer */
#define OFF_READ (OFF_TARGET + AREA)     /* read by the peer, 2 slots */
#define OFF_ATOM (OFF_READ + 2 * AREA)   /* counters, then results */
#define MRLEN (OFF_ATOM + 4096u)

struct kind {
	int on;
	struct ibv_cq *scq, *rcq;
	struct ibv_comp_channel *ch;
	struct ibv_qp *qp[2];
	int nqp;
	struct ibv_srq *srq;
	struct ibv_ah *ah;
	struct ibv_mr *mr;
	uint8_t *buf;
	struct vt_ep peer[2];
	uint64_t hash;	    /* every byte checked so far */
	uint64_t step_hash; /* this step's */
	/* chan: completions handed over by the thread */
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ibv_wc q[4 * NMSG];
	int qn;
	const char *thr_err;
};

struct side {
	int id; /* 0: A (client), 1: B (server) */
	const char *name;
	struct vt_dev d;
	struct kind k[NKIND];
	struct ibv_mr *big;
	uint64_t *bigbuf;
	size_t bigsz;
	uint64_t peer_big_addr;
	uint32_t peer_big_rkey;
	int busy; /* spin in poll_cq, never sleep */
};

static int nsteps;
static size_t big_mib;
static uint64_t big_init(int owner, size_t i);

/* ---------------------------------------------------------------- checks */

static void fail_at(int step, const struct side *s, int kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5), noreturn));
static void fail_at(int step, const struct side *s, int kind, const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	printf("%d FAIL %s %s: %s\n", step, s->name, kind >= 0 ? kind_name[kind] : "-", why);
	fflush(stdout);
	exit(1);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *c = p;
	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* the pattern: every byte depends on the seed (side, kind, step, message)
 * and on its offset, so a message of another step, side or kind, or
 * shifted, never passes for this one (vt_byte repeats every 4 steps) */
static uint8_t pat_byte(unsigned seed, size_t i)
{
	uint64_t z = ((uint64_t)seed << 32) ^ (uint64_t)(i >> 3);
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return (uint8_t)(z >> ((i & 7) * 8));
}

static void pat_fill(void *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = pat_byte(seed, i);
}

/* offset of the first byte that differs from the pattern, or -1 */
static long pat_cmp(const void *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		if (((const uint8_t *)buf)[i] != pat_byte(seed, i))
			return (long)i;
	return -1;
}

/* the pattern of message I of KIND sent by side ID at step K */
static unsigned seed_of(int id, int kind, int k, int i)
{
	return (unsigned)id * 0x1000000u + (unsigned)kind * 0x100000u + (unsigned)k * 64u + (unsigned)i;
}

static void check_bytes(struct side *s, int kind, int k, const void *p, size_t len, unsigned seed,
			const char *what, int i)
{
	long off = pat_cmp(p, len, seed);
	if (off >= 0)
		fail_at(k, s, kind, "%s %d (%zu bytes): byte %ld is 0x%02x, expected 0x%02x", what, i, len,
			off, ((const uint8_t *)p)[off], pat_byte(seed, (size_t)off));
	s->k[kind].step_hash = fnv(s->k[kind].step_hash, p, len);
}

static uint64_t wrid(int k, int kind, int i)
{
	return ((uint64_t)k << 16) | ((uint64_t)kind << 8) | (uint64_t)i;
}

static void check_wc(struct side *s, int kind, int k, const struct ibv_wc *wc, uint64_t want_id,
		     enum ibv_wc_opcode op)
{
	if (wc->status != IBV_WC_SUCCESS)
		fail_at(k, s, kind, "completion %s", vt_wc_str(wc, 1));
	if (wc->wr_id != want_id)
		fail_at(k, s, kind, "completion of wr_id 0x%llx, expected 0x%llx (%s)",
			(unsigned long long)wc->wr_id, (unsigned long long)want_id, vt_wc_str(wc, 1));
	if (wc->opcode != op)
		fail_at(k, s, kind, "opcode %d, expected %d (%s)", wc->opcode, op, vt_wc_str(wc, 1));
}

/* ---------------------------------------------------------------- waiting */

/* time spent waiting, without the pauses of a second or more (a
 * checkpoint stops the process; its restart may be much later) */
struct waited {
	double last, sum;
};

static void wait_tick(struct waited *w, struct side *s, int kind, int k, const char *what, int got, int n)
{
	double t = vt_now(), dt = t - w->last;
	w->last = t;
	if (dt < 1.0)
		w->sum += dt;
	if (w->sum > WAIT_LIMIT_S)
		fail_at(k, s, kind, "%s: %d of %d completions after %.0f s", what, got, n, WAIT_LIMIT_S);
}

static void poll_n(struct side *s, int kind, int k, struct ibv_cq *cq, int n, struct ibv_wc *wc,
		   const char *what)
{
	struct waited w = {vt_now(), 0};
	int got = 0;
	while (got < n) {
		int r = ibv_poll_cq(cq, n - got, wc + got);
		if (r < 0)
			fail_at(k, s, kind, "%s: ibv_poll_cq returned %d", what, r);
		got += r;
		if (r == 0) {
			wait_tick(&w, s, kind, k, what, got, n);
			if (!s->busy)
				sched_yield();
		}
	}
}

/* chan: the thread that sleeps in ibv_get_cq_event */
static void *chan_thread(void *arg)
{
	struct kind *x = arg;
	for (;;) {
		struct ibv_cq *cq;
		void *ctx;
		struct ibv_wc wc[NMSG];
		int n;
		if (ibv_get_cq_event(x->ch, &cq, &ctx)) {
			x->thr_err = "ibv_get_cq_event failed";
			break;
		}
		if (cq != x->rcq) {
			x->thr_err = "ibv_get_cq_event returned another CQ";
			break;
		}
		ibv_ack_cq_events(cq, 1);
		if (ibv_req_notify_cq(cq, 0)) {
			x->thr_err = "ibv_req_notify_cq failed";
			break;
		}
		while ((n = ibv_poll_cq(cq, NMSG, wc)) > 0) {
			pthread_mutex_lock(&x->mu);
			for (int i = 0; i < n && x->qn < (int)(sizeof x->q / sizeof x->q[0]); i++)
				x->q[x->qn++] = wc[i];
			pthread_cond_signal(&x->cv);
			pthread_mutex_unlock(&x->mu);
		}
		if (n < 0) {
			x->thr_err = "ibv_poll_cq failed";
			break;
		}
	}
	pthread_mutex_lock(&x->mu);
	pthread_cond_signal(&x->cv);
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

static void chan_take(struct side *s, int k, int n, struct ibv_wc *wc)
{
	struct kind *x = &s->k[K_CHAN];
	struct waited w = {vt_now(), 0};
	pthread_mutex_lock(&x->mu);
	while (x->qn < n) {
		if (x->thr_err)
			fail_at(k, s, K_CHAN, "the event thread: %s", x->thr_err);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&x->cv, &x->mu, &ts);
		wait_tick(&w, s, K_CHAN, k, "receives through the channel", x->qn, n);
	}
	memcpy(wc, x->q, (size_t)n * sizeof *wc);
	memmove(x->q, x->q + n, (size_t)(x->qn - n) * sizeof *wc);
	x->qn -= n;
	pthread_mutex_unlock(&x->mu);
}

/* ---------------------------------------------------------------- set-up */

static struct ibv_mr *reg(struct side *s, size_t len)
{
	return vt_mr(&s->d, len, VT_ACCESS_ALL);
}

static void setup_side(struct side *s, const int *kinds)
{
	int any = 0;
	for (int x = 0; x < NKIND; x++)
		any |= kinds[x];
	if (!any) { /* -k none: no verbs (the test scripts' and the bench's baseline) */
		if (big_mib) { /* the big region, not registered */
			s->bigsz = big_mib << 20;
			if (posix_memalign((void **)&s->bigbuf, 4096, s->bigsz))
				DIE("posix_memalign");
			for (size_t i = 0; i < s->bigsz / 8; i++)
				s->bigbuf[i] = big_init(s->id, i);
		}
		return;
	}
	vt_open(&s->d);
	for (int x = 0; x < NKIND; x++) {
		struct kind *kd = &s->k[x];
		if (!kinds[x])
			continue;
		kd->on = 1;
		kd->mr = reg(s, MRLEN);
		kd->buf = kd->mr->addr;
		if (x == K_CHAN) {
			kd->ch = ibv_create_comp_channel(s->d.ctx);
			if (!kd->ch)
				DIE("ibv_create_comp_channel");
		}
		kd->scq = vt_cq(&s->d, 64, NULL);
		kd->rcq = vt_cq(&s->d, 64, kd->ch);
		struct vt_qp_opts o = {.max_send_wr = 64, .max_recv_wr = 64, .max_inline = 64};
		if (x == K_SRQ) {
			struct ibv_srq_init_attr sa;
			memset(&sa, 0, sizeof sa);
			sa.attr.max_wr = 64;
			sa.attr.max_sge = 1;
			kd->srq = ibv_create_srq(s->d.pd, &sa);
			if (!kd->srq)
				DIE("ibv_create_srq");
			o.srq = kd->srq;
		}
		kd->nqp = x == K_SRQ ? 2 : 1;
		for (int q = 0; q < kd->nqp; q++) {
			kd->qp[q] = vt_qp(&s->d, x == K_UD ? IBV_QPT_UD : IBV_QPT_RC, kd->scq, kd->rcq, &o);
			vt_qp_init(kd->qp[q], VT_ACCESS_ALL);
		}
		if (x == K_ATOMIC) {
			uint64_t *c = (uint64_t *)(kd->buf + OFF_ATOM);
			for (int j = 0; j < NATOM; j++)
				c[j] = 0x1000ull * (uint64_t)(s->id + 1) + (uint64_t)j;
		}
		if (x == K_CHAN) {
			pthread_mutex_init(&kd->mu, NULL);
			pthread_cond_init(&kd->cv, NULL);
			if (ibv_req_notify_cq(kd->rcq, 0))
				DIE("ibv_req_notify_cq");
			if (pthread_create(&kd->thr, NULL, chan_thread, kd))
				DIE("pthread_create");
		}
	}
	if (big_mib) {
		s->bigsz = big_mib << 20;
		s->big = reg(s, s->bigsz + CHUNK); /* + the source of our writes */
		s->bigbuf = s->big->addr;
		for (size_t i = 0; i < s->bigsz / 8; i++)
			s->bigbuf[i] = big_init(s->id, i);
	}
}

/* this side's endpoints, in order: the kinds' QPs, then the big region */
static int endpoints(struct side *s, struct vt_ep *ep)
{
	int n = 0;
	for (int x = 0; x < NKIND; x++)
		for (int q = 0; s->k[x].on && q < s->k[x].nqp; q++)
			ep[n++] = vt_ep_of(&s->d, s->k[x].qp[q], s->k[x].mr);
	if (s->big)
		ep[n++] = vt_ep_of(&s->d, NULL, s->big);
	return n;
}

static void connect_side(struct side *s, const struct vt_ep *peer)
{
	struct vt_qp_opts o = {0};
	int n = 0;
	for (int x = 0; x < NKIND; x++) {
		struct kind *kd = &s->k[x];
		for (int q = 0; kd->on && q < kd->nqp; q++) {
			kd->peer[q] = peer[n++];
			struct vt_ep mine = vt_ep_of(&s->d, kd->qp[q], kd->mr);
			vt_qp_rtr(&s->d, kd->qp[q], &kd->peer[q], &o);
			vt_qp_rts(kd->qp[q], mine.psn, &o);
		}
		if (kd->on && x == K_UD) {
			struct ibv_ah_attr ah;
			vt_ah_attr(&s->d, &kd->peer[0], &ah);
			kd->ah = ibv_create_ah(s->d.pd, &ah);
			if (!kd->ah)
				DIE("ibv_create_ah");
		}
	}
	if (s->big) {
		s->peer_big_addr = peer[n].addr;
		s->peer_big_rkey = peer[n].rkey;
	}
}

/* ---------------------------------------------------------------- posting */

static void post_recv_slot(struct side *s, int x, int k, int slot, uint32_t len)
{
	struct kind *kd = &s->k[x];
	struct ibv_sge sge = {(uint64_t)(uintptr_t)(kd->buf + OFF_RECV + (size_t)slot * MAXLEN), len,
			      kd->mr->lkey};
	struct ibv_recv_wr wr, *bad = NULL;
	memset(&wr, 0, sizeof wr);
	wr.wr_id = wrid(k, x, slot);
	wr.sg_list = &sge;
	wr.num_sge = 1;
	int rc = kd->srq ? ibv_post_srq_recv(kd->srq, &wr, &bad) : ibv_post_recv(kd->qp[0], &wr, &bad);
	if (rc)
		fail_at(k, s, x, "posting receive %d: %s", slot, strerror(rc));
}

static void post_one(struct side *s, int x, int k, struct ibv_qp *qp, struct ibv_send_wr *wr)
{
	struct ibv_send_wr *bad = NULL;
	int rc = ibv_post_send(qp, wr, &bad);
	if (rc)
		fail_at(k, s, x, "posting wr_id 0x%llx (opcode %d): %s", (unsigned long long)wr->wr_id,
			wr->opcode, strerror(rc));
}

/* a send-queue request of KIND's QP Q: SGE of LEN bytes at OFF of the kind's region */
static void post_wr(struct side *s, int x, int k, int q, uint64_t id, enum ibv_wr_opcode op, size_t off,
		    uint32_t len, unsigned flags, uint64_t raddr, uint32_t rkey, uint32_t imm)
{
	struct kind *kd = &s->k[x];
	struct ibv_sge sge = {(uint64_t)(uintptr_t)(kd->buf + off), len, kd->mr->lkey};
	struct ibv_send_wr wr;
	memset(&wr, 0, sizeof wr);
	wr.wr_id = id;
	wr.sg_list = len ? &sge : NULL;
	wr.num_sge = len ? 1 : 0;
	wr.opcode = op;
	wr.send_flags = flags | (len && len <= 64 && op != IBV_WR_RDMA_READ ? IBV_SEND_INLINE : 0);
	wr.imm_data = htonl(imm);
	if (x == K_UD) {
		wr.wr.ud.ah = kd->ah;
		wr.wr.ud.remote_qpn = kd->peer[0].qpn;
		wr.wr.ud.remote_qkey = 0x11111111;
	} else {
		wr.wr.rdma.remote_addr = raddr;
		wr.wr.rdma.rkey = rkey;
	}
	post_one(s, x, k, kd->qp[q], &wr);
}

static uint64_t atom_init(int id, int j)
{
	return 0x1000ull * (uint64_t)(id + 1) + (uint64_t)j;
}

/* the value side ID's compare-and-swap counter holds after step K */
static uint64_t swap_val(int id, int k)
{
	return k == 0 ? atom_init(id, 2) : (uint64_t)k * 0x10001ull + (uint64_t)id;
}

static uint64_t add_sum(int id, int j, int k) /* counter J of side ID after step K */
{
	uint64_t v = atom_init(id, j);
	for (int i = 1; i <= k; i++)
		v += j == 0 ? (uint64_t)i : (uint64_t)i * (uint64_t)i + 1;
	return v;
}

static size_t big_chunk(const struct side *s, int k)
{
	return (size_t)(k - 1) % (s->bigsz / CHUNK) * CHUNK;
}

static uint64_t big_init(int owner, size_t i)
{
	return 0x9e3779b97f4a7c15ull * (i + 1) ^ (uint64_t)owner;
}

static uint64_t big_word(int writer, int k, size_t i)
{
	return ((uint64_t)k << 40) ^ ((uint64_t)writer << 32) ^ (i * 0x2545f4914f6cdd1dull);
}

/* the step's first receives and the buffers the peer reads */
static void prepare(struct side *s, int k)
{
	for (int x = 0; x < NKIND; x++) {
		struct kind *kd = &s->k[x];
		if (!kd->on)
			continue;
		switch (x) {
		case K_SEND:
		case K_CHAN: /* half: the peer's other sends wait over the sleep */
			for (int i = 0; i < NMSG / 2; i++)
				post_recv_slot(s, x, k, i, MAXLEN);
			break;
		case K_WRITE:
			post_recv_slot(s, x, k, 0, MAXLEN);
			break;
		case K_IMM: /* all: posted, not yet used over the sleep */
		case K_UD:  /* (UD drops what finds no receive) */
			for (int i = 0; i < NMSG; i++)
				post_recv_slot(s, x, k, i, MAXLEN);
			break;
		case K_SRQ: /* QP 0's sends use NMSG of them before the sleep */
			for (int i = 0; i < NMSG + SRQ_SPARE; i++)
				post_recv_slot(s, x, k, i, MAXLEN);
			break;
		case K_READ:
			for (int i = 0; i < NMSG; i++)
				pat_fill(kd->buf + OFF_READ + (size_t)(k % 2) * AREA + (size_t)i * MAXLEN, rc_len[i],
					seed_of(s->id, x, k, i));
			break;
		}
	}
}

/* the kinds' requests of step K: PHASE 0 before the sleep (sends, writes,
 * reads, atomics), 1 after it (writes with immediate, UD sends, the sends
 * of the SRQ's second QP: so that the peer has receives posted and unused
 * at a cut in its sleep) */
static void post_step(struct side *s, int k, int phase)
{
	for (int x = 0; x < NKIND; x++) {
		struct kind *kd = &s->k[x];
		if (!kd->on)
			continue;
		if (phase == 0)
			kd->step_hash = 0xcbf29ce484222325ull;
		if (phase == 0 ? x == K_IMM || x == K_UD : !(x == K_IMM || x == K_UD || x == K_SRQ))
			continue;
		switch (x) {
		case K_SEND:
		case K_CHAN:
		case K_UD:
			for (int i = 0; i < NMSG; i++) {
				uint32_t len = x == K_UD ? ud_len[i] : rc_len[i];
				pat_fill(kd->buf + OFF_SEND + (size_t)i * MAXLEN, len, seed_of(s->id, x, k, i));
				post_wr(s, x, k, 0, wrid(k, x, i), IBV_WR_SEND, OFF_SEND + (size_t)i * MAXLEN, len,
					IBV_SEND_SIGNALED, 0, 0, 0);
			}
			break;
		case K_SRQ: /* QP 0 before the sleep, QP 1 after it */
			for (int q = 0; q < 2; q++)
				for (int i = 0; i < NMSG && q == phase; i++) {
					int m = q * NMSG + i;
					pat_fill(kd->buf + OFF_SEND + (size_t)m * MAXLEN, rc_len[i], seed_of(s->id, x, k, m));
					post_wr(s, x, k, q, wrid(k, x, m), IBV_WR_SEND, OFF_SEND + (size_t)m * MAXLEN,
						rc_len[i], IBV_SEND_SIGNALED, 0, 0, 0);
				}
			break;
		case K_WRITE:
		case K_IMM:
			/* the writes into the peer's target; write: unsignaled but the last */
			for (int i = 0; i < NMSG; i++) {
				pat_fill(kd->buf + OFF_SEND + (size_t)i * MAXLEN, rc_len[i], seed_of(s->id, x, k, i));
				int last = i == NMSG - 1;
				post_wr(s, x, k, 0, wrid(k, x, i), x == K_IMM ? IBV_WR_RDMA_WRITE_WITH_IMM : IBV_WR_RDMA_WRITE,
					OFF_SEND + (size_t)i * MAXLEN, rc_len[i],
					x == K_IMM || last ? IBV_SEND_SIGNALED : 0,
					kd->peer[0].addr + OFF_TARGET + (size_t)i * MAXLEN, kd->peer[0].rkey,
					((uint32_t)k << 8) | (uint32_t)i);
			}
			if (x == K_WRITE && s->big) {
				/* a chunk of the peer's big region, from our own big region */
				size_t off = big_chunk(s, k);
				uint64_t *src = s->bigbuf + s->bigsz / 8; /* the source chunk, past the region */
				for (size_t i = 0; i < CHUNK / 8; i++)
					src[i] = big_word(s->id, k, off / 8 + i);
				struct ibv_sge sge = {(uint64_t)(uintptr_t)src, CHUNK, s->big->lkey};
				struct ibv_send_wr wr;
				memset(&wr, 0, sizeof wr);
				wr.wr_id = wrid(k, x, NMSG);
				wr.sg_list = &sge;
				wr.num_sge = 1;
				wr.opcode = IBV_WR_RDMA_WRITE;
				wr.send_flags = IBV_SEND_SIGNALED;
				wr.wr.rdma.remote_addr = s->peer_big_addr + off;
				wr.wr.rdma.rkey = s->peer_big_rkey;
				post_one(s, x, k, kd->qp[0], &wr);
			}
			if (x == K_WRITE) /* "done": a send with immediate, no data */
				post_wr(s, x, k, 0, wrid(k, x, 15), IBV_WR_SEND_WITH_IMM, 0, 0, IBV_SEND_SIGNALED, 0, 0,
					(uint32_t)k);
			break;
		case K_READ:
			for (int i = 0; i < NMSG; i++) {
				memset(kd->buf + OFF_RECV + (size_t)i * MAXLEN, 0, rc_len[i]);
				post_wr(s, x, k, 0, wrid(k, x, i), IBV_WR_RDMA_READ, OFF_RECV + (size_t)i * MAXLEN,
					rc_len[i], IBV_SEND_SIGNALED,
					kd->peer[0].addr + OFF_READ + (size_t)(k % 2) * AREA + (size_t)i * MAXLEN,
					kd->peer[0].rkey, 0);
			}
			break;
		case K_ATOMIC: {
			int p = 1 - s->id;
			for (int j = 0; j < NATOM; j++) {
				struct ibv_sge sge = {(uint64_t)(uintptr_t)(kd->buf + OFF_ATOM + 64 + 8 * j), 8,
						      kd->mr->lkey};
				struct ibv_send_wr wr;
				memset(&wr, 0, sizeof wr);
				wr.wr_id = wrid(k, x, j);
				wr.sg_list = &sge;
				wr.num_sge = 1;
				wr.send_flags = IBV_SEND_SIGNALED;
				wr.wr.atomic.remote_addr = kd->peer[0].addr + OFF_ATOM + 8 * (uint64_t)j;
				wr.wr.atomic.rkey = kd->peer[0].rkey;
				if (j < 2) {
					wr.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD;
					wr.wr.atomic.compare_add = j == 0 ? (uint64_t)k : (uint64_t)k * (uint64_t)k + 1;
				} else {
					wr.opcode = IBV_WR_ATOMIC_CMP_AND_SWP;
					/* counter 2 swaps every step; counter 3 never matches */
					wr.wr.atomic.compare_add = j == 2 ? swap_val(p, k - 1) : 0xdeadbeefull;
					wr.wr.atomic.swap = swap_val(p, k);
				}
				post_one(s, x, k, kd->qp[0], &wr);
			}
			break;
		}
		}
	}
}

/* after the sleep: the receives the peer's sends have been waiting for,
 * then the requests of phase 1 */
static void late_step(struct side *s, int k)
{
	for (int x = 0; x < NKIND; x++) {
		if (!s->k[x].on)
			continue;
		if (x == K_SEND || x == K_CHAN)
			for (int i = NMSG / 2; i < NMSG; i++)
				post_recv_slot(s, x, k, i, MAXLEN);
		if (x == K_SRQ)
			for (int i = NMSG + SRQ_SPARE; i < 2 * NMSG; i++)
				post_recv_slot(s, x, k, i, MAXLEN);
	}
	post_step(s, k, 1);
}

static void complete_kind(struct side *s, int x, int k)
{
	struct kind *kd = &s->k[x];
	struct ibv_wc wc[2 * NMSG + 2];
	int p = 1 - s->id;
	uint8_t *recv = kd->buf + OFF_RECV;
	switch (x) {
	case K_SEND:
	case K_CHAN:
	case K_UD:
		poll_n(s, x, k, kd->scq, NMSG, wc, "sends");
		for (int i = 0; i < NMSG; i++)
			check_wc(s, x, k, &wc[i], wrid(k, x, i), IBV_WC_SEND);
		if (x == K_CHAN)
			chan_take(s, k, NMSG, wc);
		else
			poll_n(s, x, k, kd->rcq, NMSG, wc, "receives");
		for (int i = 0; i < NMSG; i++) {
			uint32_t len = x == K_UD ? ud_len[i] + GRH : rc_len[i];
			check_wc(s, x, k, &wc[i], wrid(k, x, i), IBV_WC_RECV);
			if (wc[i].byte_len != len)
				fail_at(k, s, x, "receive %d: byte_len %u, expected %u", i, wc[i].byte_len, len);
			if (x == K_UD && wc[i].src_qp != kd->peer[0].qpn)
				fail_at(k, s, x, "receive %d: src_qp 0x%x, expected the peer's 0x%x", i, wc[i].src_qp,
					kd->peer[0].qpn);
			if (wc[i].qp_num != kd->qp[0]->qp_num)
				fail_at(k, s, x, "receive %d: qp_num 0x%x, expected 0x%x", i, wc[i].qp_num,
					kd->qp[0]->qp_num);
			check_bytes(s, x, k, recv + (size_t)i * MAXLEN + (x == K_UD ? GRH : 0),
				    x == K_UD ? ud_len[i] : rc_len[i], seed_of(p, x, k, i), "message", i);
		}
		break;
	case K_SRQ: {
		int seen[2 * NMSG] = {0}, next[2] = {0, 0};
		poll_n(s, x, k, kd->scq, 2 * NMSG, wc, "sends");
		for (int i = 0; i < 2 * NMSG; i++) {
			int m = (int)(wc[i].wr_id & 0xff);
			if (m >= 2 * NMSG || seen[m]++)
				fail_at(k, s, x, "send completion %s twice or unknown", vt_wc_str(&wc[i], 1));
			check_wc(s, x, k, &wc[i], wrid(k, x, m), IBV_WC_SEND);
		}
		poll_n(s, x, k, kd->rcq, 2 * NMSG, wc, "receives from the SRQ");
		uint64_t h = 0;
		for (int i = 0; i < 2 * NMSG; i++) {
			int slot = (int)(wc[i].wr_id & 0xff), q;
			check_wc(s, x, k, &wc[i], wrid(k, x, slot), IBV_WC_RECV);
			for (q = 0; q < 2 && wc[i].qp_num != kd->qp[q]->qp_num; q++)
				;
			if (q == 2 || next[q] >= NMSG)
				fail_at(k, s, x, "receive on QP 0x%x: not ours, or one too many", wc[i].qp_num);
			int m = next[q]++;
			if (wc[i].byte_len != rc_len[m])
				fail_at(k, s, x, "receive %d on QP %d: byte_len %u, expected %u", m, q, wc[i].byte_len,
					rc_len[m]);
			/* arrival order across the two QPs is free: a sum of hashes */
			uint64_t save = kd->step_hash;
			kd->step_hash = 0xcbf29ce484222325ull;
			check_bytes(s, x, k, recv + (size_t)slot * MAXLEN, rc_len[m], seed_of(p, x, k, q * NMSG + m),
				    "message", q * NMSG + m);
			h += kd->step_hash;
			kd->step_hash = save;
		}
		kd->step_hash ^= h;
		break;
	}
	case K_WRITE: {
		int n = s->big ? 3 : 2;
		poll_n(s, x, k, kd->scq, n, wc, "writes");
		check_wc(s, x, k, &wc[0], wrid(k, x, NMSG - 1), IBV_WC_RDMA_WRITE);
		if (s->big)
			check_wc(s, x, k, &wc[1], wrid(k, x, NMSG), IBV_WC_RDMA_WRITE);
		check_wc(s, x, k, &wc[n - 1], wrid(k, x, 15), IBV_WC_SEND);
		poll_n(s, x, k, kd->rcq, 1, wc, "the peer's done");
		check_wc(s, x, k, &wc[0], wrid(k, x, 0), IBV_WC_RECV);
		if (!(wc[0].wc_flags & IBV_WC_WITH_IMM) || ntohl(wc[0].imm_data) != (uint32_t)k || wc[0].byte_len)
			fail_at(k, s, x, "the peer's done: %s imm %u, expected immediate %d, no data",
				vt_wc_str(&wc[0], 1), ntohl(wc[0].imm_data), k);
		for (int i = 0; i < NMSG; i++)
			check_bytes(s, x, k, kd->buf + OFF_TARGET + (size_t)i * MAXLEN, rc_len[i], seed_of(p, x, k, i),
				    "write", i);
		if (s->big) {
			size_t off = big_chunk(s, k);
			for (size_t i = 0; i < CHUNK / 8; i++)
				if (s->bigbuf[off / 8 + i] != big_word(p, k, off / 8 + i))
					fail_at(k, s, x, "big region: word %zu of the chunk at %zu is wrong", i, off);
			kd->step_hash = fnv(kd->step_hash, s->bigbuf + off / 8, CHUNK);
		}
		break;
	}
	case K_IMM:
		poll_n(s, x, k, kd->scq, NMSG, wc, "writes with immediate");
		for (int i = 0; i < NMSG; i++)
			check_wc(s, x, k, &wc[i], wrid(k, x, i), IBV_WC_RDMA_WRITE);
		poll_n(s, x, k, kd->rcq, NMSG, wc, "the peer's immediates");
		for (int i = 0; i < NMSG; i++) {
			uint32_t imm = ntohl(wc[i].imm_data);
			check_wc(s, x, k, &wc[i], wrid(k, x, i), IBV_WC_RECV_RDMA_WITH_IMM);
			if (!(wc[i].wc_flags & IBV_WC_WITH_IMM) || imm != (((uint32_t)k << 8) | (uint32_t)i) ||
			    wc[i].byte_len != rc_len[i])
				fail_at(k, s, x, "immediate %d: %s imm 0x%x", i, vt_wc_str(&wc[i], 1), imm);
			check_bytes(s, x, k, kd->buf + OFF_TARGET + (size_t)i * MAXLEN, rc_len[i], seed_of(p, x, k, i),
				    "write", i);
		}
		break;
	case K_READ:
		poll_n(s, x, k, kd->scq, NMSG, wc, "reads");
		for (int i = 0; i < NMSG; i++) {
			check_wc(s, x, k, &wc[i], wrid(k, x, i), IBV_WC_RDMA_READ);
			check_bytes(s, x, k, recv + (size_t)i * MAXLEN, rc_len[i], seed_of(p, x, k, i), "read", i);
		}
		break;
	case K_ATOMIC: {
		uint64_t *res = (uint64_t *)(kd->buf + OFF_ATOM + 64);
		poll_n(s, x, k, kd->scq, NATOM, wc, "atomics");
		for (int j = 0; j < NATOM; j++) {
			check_wc(s, x, k, &wc[j], wrid(k, x, j),
				 j < 2 ? IBV_WC_FETCH_ADD : IBV_WC_COMP_SWAP);
			uint64_t want = j < 2 ? add_sum(p, j, k - 1) : j == 2 ? swap_val(p, k - 1) : atom_init(p, 3);
			if (res[j] != want)
				fail_at(k, s, x, "atomic %d returned 0x%llx, expected 0x%llx", j,
					(unsigned long long)res[j], (unsigned long long)want);
		}
		kd->step_hash = fnv(kd->step_hash, res, 8 * NATOM);
		break;
	}
	}
	kd->hash = fnv(kd->hash, &kd->step_hash, sizeof kd->step_hash);
}

static int complete_step(struct side *s, int k, char *line, size_t cap)
{
	int n = 0;
	for (int x = 0; x < NKIND; x++) {
		if (!s->k[x].on)
			continue;
		complete_kind(s, x, k);
		n += snprintf(line + n, cap - (size_t)n, " %s=%08x", kind_name[x], (unsigned)(s->k[x].step_hash >> 32));
	}
	return n;
}

/* after the last step: what the peer did to this side's memory */
static uint64_t final_checks(struct side *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	int p = 1 - s->id;
	for (int x = 0; x < NKIND; x++)
		if (s->k[x].on)
			h = fnv(h, &s->k[x].hash, 8);
	if (s->k[K_ATOMIC].on) {
		uint64_t *c = (uint64_t *)(s->k[K_ATOMIC].buf + OFF_ATOM);
		uint64_t want[NATOM] = {add_sum(s->id, 0, nsteps), add_sum(s->id, 1, nsteps), swap_val(s->id, nsteps),
					atom_init(s->id, 3)};
		for (int j = 0; j < NATOM; j++)
			if (c[j] != want[j])
				fail_at(nsteps + 1, s, K_ATOMIC, "counter %d is 0x%llx, expected 0x%llx", j,
					(unsigned long long)c[j], (unsigned long long)want[j]);
		h = fnv(h, c, 8 * NATOM);
	}
	if (s->bigbuf) {
		size_t nch = s->bigsz / CHUNK;
		for (size_t ch = 0; ch < nch; ch++) {
			int last = 0; /* the last step that wrote chunk CH */
			for (int k = 1; k <= nsteps && s->big && s->k[K_WRITE].on; k++)
				if ((size_t)(k - 1) % nch == ch)
					last = k;
			for (size_t i = ch * CHUNK / 8; i < (ch + 1) * CHUNK / 8; i++) {
				uint64_t want = last ? big_word(p, last, i) : big_init(s->id, i);
				if (s->bigbuf[i] != want)
					fail_at(nsteps + 1, s, K_WRITE, "big region: word %zu is 0x%llx, expected 0x%llx", i,
						(unsigned long long)s->bigbuf[i], (unsigned long long)want);
			}
		}
		h = fnv(h, s->bigbuf, s->bigsz);
	}
	return h;
}

/* ---------------------------------------------------------------- main */

static void barrier(int k)
{
	vt_send_u64((uint64_t)k);
	uint64_t v = vt_recv_u64();
	if (v != (uint64_t)k) {
		printf("%d FAIL %s barrier: the peer is at step %llu\n", k, vt_role, (unsigned long long)v);
		exit(1);
	}
}

static int oob_connect(int server, const char *portfile)
{
	struct sockaddr_in sa;
	int one = 1, fd;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (server) {
		int l = socket(AF_INET, SOCK_STREAM, 0);
		socklen_t sl = sizeof sa;
		char tmp[4096];
		if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 1) ||
		    getsockname(l, (struct sockaddr *)&sa, &sl))
			DIE("listen on 127.0.0.1");
		snprintf(tmp, sizeof tmp, "%s.tmp", portfile);
		FILE *f = fopen(tmp, "w");
		if (!f || fprintf(f, "%u\n", ntohs(sa.sin_port)) < 0 || fclose(f) || rename(tmp, portfile))
			DIE("writing the port to %s", portfile);
		fd = accept(l, NULL, NULL);
		if (fd < 0)
			DIE("accept");
		close(l);
	} else {
		unsigned port = 0;
		FILE *f;
		for (int i = 0; !(f = fopen(portfile, "r")); i++) {
			if (i > 600)
				DIE("no port in %s after 60 s", portfile);
			vt_sleep_ms(100);
		}
		if (fscanf(f, "%u", &port) != 1)
			DIE("no port in %s", portfile);
		fclose(f);
		sa.sin_port = htons((uint16_t)port);
		for (int i = 0;; i++) {
			fd = socket(AF_INET, SOCK_STREAM, 0);
			if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
				break;
			if (i > 200)
				DIE("connect to 127.0.0.1:%u", port);
			close(fd);
			vt_sleep_ms(100);
		}
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: ckpt_ops [-k KINDS] [-b] [-m MIB] NSTEPS SLEEP_MS loop|server PORTFILE|client PORTFILE\n"
			"KINDS: comma-separated of send,write,imm,read,atomic,ud,srq,chan (default all), or none\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int kinds[NKIND], busy = 0, opt, ms;
	char kinds_str[128] = "", line[1024];
	for (int x = 0; x < NKIND; x++)
		kinds[x] = 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "k:bm:")) != -1) {
		switch (opt) {
		case 'k': {
			char *list = strdup(optarg), *save = NULL;
			for (int x = 0; x < NKIND; x++)
				kinds[x] = 0;
			for (char *t = strtok_r(list, ",", &save); t && strcmp(t, "none");
			     t = strtok_r(NULL, ",", &save)) {
				int x;
				for (x = 0; x < NKIND && strcmp(t, kind_name[x]); x++)
					;
				if (x == NKIND)
					usage();
				kinds[x] = 1;
			}
			free(list);
			break;
		}
		case 'b':
			busy = 1;
			break;
		case 'm':
			big_mib = strtoull(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (argc - optind < 3)
		usage();
	nsteps = atoi(argv[optind]);
	ms = atoi(argv[optind + 1]);
	const char *how = argv[optind + 2];
	int loop = !strcmp(how, "loop");
	if (nsteps < 1 || (!loop && argc - optind != 4) || (!loop && strcmp(how, "server") && strcmp(how, "client")))
		usage();
	for (int x = 0; x < NKIND; x++)
		if (kinds[x])
			snprintf(kinds_str + strlen(kinds_str), sizeof kinds_str - strlen(kinds_str), "%s%s",
				 *kinds_str ? "," : "", kind_name[x]);

	static struct side sides[2];
	for (int i = 0; i < 2; i++) {
		sides[i].id = i;
		sides[i].name = i ? "B" : "A";
		for (int x = 0; x < NKIND; x++)
			sides[i].k[x].hash = 0xcbf29ce484222325ull;
	}
	struct vt_ep mine[2 * NKIND + 1], theirs[2 * NKIND + 1];
	struct side *me = NULL;
	if (loop) {
		vt_role = "AB";
		setup_side(&sides[0], kinds);
		setup_side(&sides[1], kinds);
		int n = endpoints(&sides[0], mine);
		endpoints(&sides[1], theirs);
		connect_side(&sides[0], theirs);
		connect_side(&sides[1], mine);
		(void)n;
		prepare(&sides[0], 1);
		prepare(&sides[1], 1);
	} else {
		int server = !strcmp(how, "server");
		me = &sides[server];
		vt_role = me->name;
		me->busy = busy && server;
		vt_oob = oob_connect(server, argv[optind + 3]);
		setup_side(me, kinds);
		int n = endpoints(me, mine);
		vt_send_u64((uint64_t)n);
		if (vt_recv_u64() != (uint64_t)n)
			DIE("the peer has other kinds");
		vt_write_all(mine, (size_t)n * sizeof mine[0]);
		if (vt_read_all(theirs, (size_t)n * sizeof theirs[0]))
			DIE("the peer closed the out-of-band connection");
		connect_side(me, theirs);
		prepare(me, 1);
		barrier(0);
	}
	printf("0 kinds=%s steps=%d messages=%d%s%s\n", kinds_str, nsteps, NMSG, loop ? " loopback" : "",
	       big_mib ? " big" : "");
	for (int k = 1; k <= nsteps; k++) {
		int n = snprintf(line, sizeof line, "%d", k);
		if (loop) {
			post_step(&sides[0], k, 0);
			post_step(&sides[1], k, 0);
			vt_sleep_ms(ms);
			late_step(&sides[0], k);
			late_step(&sides[1], k);
			n += snprintf(line + n, sizeof line - (size_t)n, " A");
			n += complete_step(&sides[0], k, line + n, sizeof line - (size_t)n);
			n += snprintf(line + n, sizeof line - (size_t)n, " B");
			complete_step(&sides[1], k, line + n, sizeof line - (size_t)n);
			if (k < nsteps) {
				prepare(&sides[0], k + 1);
				prepare(&sides[1], k + 1);
			}
		} else {
			post_step(me, k, 0);
			if (!me->busy)
				vt_sleep_ms(ms);
			late_step(me, k);
			complete_step(me, k, line + n, sizeof line - (size_t)n);
			if (k < nsteps)
				prepare(me, k + 1);
		}
		printf("%s\n", line);
		if (!loop)
			barrier(k);
	}
	uint64_t h;
	if (loop)
		h = final_checks(&sides[0]) ^ (final_checks(&sides[1]) * 31);
	else
		h = final_checks(me);
	printf("%d final checksum=%016llx\n", nsteps + 1, (unsigned long long)h);
	return 0;
}
