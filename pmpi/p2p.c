/* Upper half: point-to-point communication and requests, by hand.
 *
 * Every request is a virtual handle whose entry also remembers what was
 * posted, so a checkpoint can finish or cancel it and post it again (after
 * a restart, too). Blocking calls are the non-blocking call plus a test
 * loop in the upper half: a thread waiting for a message is never inside
 * the MPI library for long, so it can always be parked.
 *
 * Counting for the drain at a checkpoint: a send is counted when MPI has
 * taken it (state POSTING -> ACTIVE), a receive when its completion is
 * accounted (ACTIVE -> DONE). Every transition of an entry, from posting
 * to the status handed to the program, happens inside one section
 * (pmpi/call.h): a thread is parked only between them, so the runtime
 * (pmpi/lower_cut.c) finds each entry INACTIVE, ACTIVE with MPI's request
 * not yet seen complete, or DONE with its status, never halfway. Blocking
 * calls are loops of sections; between two iterations the thread parks.
 *
 * Messages drained at a checkpoint wait in a queue; receives and probes
 * look there first, which keeps MPI's order of matching. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <mpi.h>

#include "pmpi/call.h"
#include "pmpi/lower_fast.h"
#include "pmpi/mpi_fntypes.h"
#include "pmpi/mpi_index.h"
#include "pmpi/replay_mpi.h"
#include "pmpi/shim.h"

_Static_assert(sizeof(MPI_Status) <= CKPT_STATUS_BYTES, "MPI_Status fits the entry");

#define LCALL(NAME, ...) CKPT_CALL(CKPT_MPI_MPI_##NAME, ckpt_fn_MPI_##NAME, __VA_ARGS__)
/* (the same from inside a section: no section of its own) */
#define LCALL_IN(NAME, ...) CKPT_CALL_IN(CKPT_MPI_MPI_##NAME, ckpt_fn_MPI_##NAME, __VA_ARGS__)
#define L(T, x) CKPT_HCAST(T, ckpt_in(CKPT_HVAL(x)))

static void mrr_wild_post(struct ckpt_vh *e);
static void mrr_pin(struct ckpt_vh *e);
static void mrr_wild_done(struct ckpt_vh *e);

/* ---- accounting ---- */

static inline int world_rank_of(uint64_t comm, int rank)
{
	struct ckpt_vh *c;
	if (rank < 0)
		return -1;
	if (__builtin_expect(comm == ckpt_st->world_upper, 1))
		return rank < ckpt_st->world_size ? rank : -1;
	c = ckpt_comm_entry(comm);
	if (!c)
		return ckpt_in(comm) == ckpt_st->self_real ? ckpt_st->world_rank : -1;
	return rank < c->u.c.size ? c->u.c.world[rank] : -1;
}

static inline void count(volatile uint64_t *tab, uint64_t comm, int rank)
{
	int w = world_rank_of(comm, rank);
	if (w < 0)
		return;
	if (ckpt_app_concurrent)
		__atomic_fetch_add(&tab[w], 1, __ATOMIC_RELAXED);
	else
		tab[w]++; /* (no locked instruction: pmpi/vtable.c) */
}

static void empty_status(MPI_Status *st)
{
	if (st == MPI_STATUS_IGNORE)
		return;
	memset(st, 0, sizeof *st);
	st->MPI_SOURCE = MPI_ANY_SOURCE;
	st->MPI_TAG = MPI_ANY_TAG;
	st->MPI_ERROR = MPI_SUCCESS;
	LCALL(Status_set_elements, st, L(MPI_Datatype, MPI_BYTE), 0);
}

/* ---- the queue of drained messages ---- */

/* first queued message matching; removed from the queue when `take` */
static struct ckpt_dmsg *dq_find(uint64_t comm, int src, int tag, int take)
{
	struct ckpt_dmsg **pp, *m = NULL;

	if (__builtin_expect(!__atomic_load_n(&ckpt_st->dq_count, __ATOMIC_ACQUIRE), 1))
		return NULL;
	if (src == MPI_PROC_NULL)
		return NULL;
	ckpt_state_lock();
	for (pp = &ckpt_st->dq_head; *pp; pp = &(*pp)->next) {
		if (ckpt_dmsg_matches(*pp, comm, src, tag, MPI_ANY_SOURCE, MPI_ANY_TAG)) {
			m = *pp;
			if (take) {
				*pp = m->next;
				__atomic_fetch_sub(&ckpt_st->dq_count, 1, __ATOMIC_ACQ_REL);
			}
			break;
		}
	}
	ckpt_state_unlock();
	return m;
}

static void dq_status(const struct ckpt_dmsg *m, MPI_Status *st)
{
	if (st == MPI_STATUS_IGNORE)
		return;
	int err = st->MPI_ERROR; /* the caller's: a probe leaves it */
	memset(st, 0, sizeof *st);
	st->MPI_SOURCE = m->source;
	st->MPI_TAG = m->tag;
	st->MPI_ERROR = err;
	LCALL(Status_set_elements, st, L(MPI_Datatype, MPI_BYTE), (int)m->bytes);
}

static void dq_free(struct ckpt_dmsg *m)
{
	munmap(m, sizeof *m + m->bytes);
}

/* a receive satisfied from the queue: unpack into the caller's buffer */
static int dq_deliver(struct ckpt_dmsg *m, void *buf, int count, MPI_Datatype dt, MPI_Status *st)
{
	int pos = 0, rc = MPI_SUCCESS;
	if (m->bytes)
		rc = LCALL(Unpack, m->data, (int)m->bytes, &pos, buf, count, L(MPI_Datatype, dt),
		           CKPT_HCAST(MPI_Comm, ckpt_in(m->comm)));
	dq_status(m, st);
	dq_free(m);
	return rc;
}

/* ---- requests ---- */

/* The request path's steps are inlined into each MPI call: a call between
 * them (registers saved, arguments moved) cost about as much as the step
 * itself (callgrind, bench/overhead_calls.c). */
#define HOT static inline __attribute__((always_inline))

static struct ckpt_vh *req_entry(MPI_Request r)
{
	uint64_t v = CKPT_HVAL(r);
	if (!CKPT_IS_VIRT(ckpt_st, v))
		return NULL;
	return &ckpt_st->vt[CKPT_VIDX(ckpt_st, v)];
}

HOT struct ckpt_vh *req_new(uint32_t rkind, uint32_t fn, const void *buf, int count,
                           MPI_Datatype dt, int peer, int tag, MPI_Comm comm, uint32_t *idx)
{
	struct ckpt_vh *e = ckpt_vh_take(CKPT_VK_REQUEST, ckpt_st->null_req_real, fn, idx);
	uint64_t order = 0;

	if (rkind == CKPT_RK_RECV) /* receives are posted again in this order */
		order = ckpt_app_concurrent
		        ? __atomic_fetch_add(&ckpt_st->post_order, 1, __ATOMIC_RELAXED)
		        : ckpt_st->post_order++;
	/* every field, one store each: a memset of the entry (rep stos)
	 * cost more than the rest of the post (perf, 8-byte exchanges) */
	e->u.r.state = CKPT_RS_POSTING;
	e->u.r.rkind = rkind;
	e->u.r.flag = 0;
	e->u.r.persistent = 0;
	e->u.r.mode = 0;
	e->u.r.cancel = 0;
	e->u.r.pad2 = 0;
	e->u.r.buf = (void *)buf;
	e->u.r.count = count;
	e->u.r.peer = peer;
	e->u.r.tag = tag;
	e->u.r.pad = 0;
	e->u.r.datatype = ckpt_logv(CKPT_HVAL(dt)); /* virtual, or the real predefined one */
	e->u.r.comm = CKPT_HVAL(comm);
	e->u.r.order = order;
	memset(e->u.r.status, 0, sizeof e->u.r.status);
	return e;
}

HOT int send_lower(struct ckpt_vh *e, uint32_t mode)
{
	void *b = e->u.r.buf;
	int n = e->u.r.count, peer = e->u.r.peer, tag = e->u.r.tag;
	MPI_Datatype dt = CKPT_HCAST(MPI_Datatype, ckpt_in(e->u.r.datatype));
	MPI_Comm c = CKPT_HCAST(MPI_Comm, ckpt_in(e->u.r.comm));
	MPI_Request *r = (MPI_Request *)&e->real;

	switch (mode) {
	case CKPT_SM_BUF:
		return LCALL_IN(Ibsend, b, n, dt, peer, tag, c, r);
	case CKPT_SM_SYNC:
		return LCALL_IN(Issend, b, n, dt, peer, tag, c, r);
	case CKPT_SM_READY:
		return LCALL_IN(Irsend, b, n, dt, peer, tag, c, r);
	default:
		return LCALL_IN(Isend, b, n, dt, peer, tag, c, r);
	}
}

/* MPI has taken the send: count it. The entry is the posting thread's
 * alone (inside its section; the runtime looks only with it parked), so
 * no locked instruction (pmpi/vtable.c, ckpt_app_concurrent) */
HOT void send_taken(struct ckpt_vh *e)
{
	if (e->u.r.state == CKPT_RS_POSTING) {
		__atomic_store_n(&e->u.r.state, CKPT_RS_ACTIVE, __ATOMIC_RELEASE);
		count(ckpt_st->sent, e->u.r.comm, e->u.r.peer);
	}
}

HOT int post_send_inline(uint32_t mode, uint32_t fn, const void *buf, int count,
                         MPI_Datatype dt, int dest, int tag, MPI_Comm comm, MPI_Request *out)
{
	uint32_t i;
	struct ckpt_vh *e;
	int rc;

	ckpt_section_begin();
	e = req_new(CKPT_RK_SEND, fn, buf, count, dt, dest, tag, comm, &i);
	e->u.r.mode = (uint16_t)mode;
	rc = send_lower(e, mode);
	CKPT_RACE_DELAY();
	if (rc != MPI_SUCCESS) {
		ckpt_vh_release(i);
	} else {
		send_taken(e);
		*out = CKPT_HCAST(MPI_Request, CKPT_VVAL(ckpt_st, i));
	}
	ckpt_section_end();
	return rc;
}

/* (the blocking and rarer calls: one copy) */
static __attribute__((noinline)) int post_send(uint32_t mode, uint32_t fn, const void *buf,
                                               int count, MPI_Datatype dt, int dest, int tag,
                                               MPI_Comm comm, MPI_Request *out)
{
	return post_send_inline(mode, fn, buf, count, dt, dest, tag, comm, out);
}

/* Post a receive: from the queue of drained messages if one matches,
 * else to MPI (the runtime's re-posting follows the same rules). Called
 * inside a section. */
HOT int recv_start(struct ckpt_vh *e)
{
	struct ckpt_dmsg *m = dq_find(e->u.r.comm, e->u.r.peer, e->u.r.tag, 1);
	MPI_Datatype dt = CKPT_HCAST(MPI_Datatype, ckpt_in(e->u.r.datatype));
	int rc;

	if (m) {
		/* counted when it was drained */
		rc = dq_deliver(m, e->u.r.buf, e->u.r.count, dt, (MPI_Status *)e->u.r.status);
		e->u.r.flag = 1;
		__atomic_store_n(&e->u.r.state, CKPT_RS_DONE, __ATOMIC_RELEASE);
		return rc;
	}
	if (e->u.r.persistent)
		rc = LCALL_IN(Start, (MPI_Request *)&e->real);
	else
		rc = LCALL_IN(Irecv, e->u.r.buf, e->u.r.count, dt, e->u.r.peer, e->u.r.tag,
		              CKPT_HCAST(MPI_Comm, ckpt_in(e->u.r.comm)), (MPI_Request *)&e->real);
	CKPT_RACE_DELAY();
	if (rc == MPI_SUCCESS)
		__atomic_store_n(&e->u.r.state, CKPT_RS_ACTIVE, __ATOMIC_RELEASE);
	return rc;
}

HOT int post_recv_inline(uint32_t fn, void *buf, int count, MPI_Datatype dt, int src, int tag,
                         MPI_Comm comm, MPI_Request *out)
{
	uint32_t i;
	struct ckpt_vh *e;
	int rc;

	ckpt_section_begin();
	e = req_new(CKPT_RK_RECV, fn, buf, count, dt, src, tag, comm, &i);
	if (CKPT_MRR() && (src == MPI_ANY_SOURCE || tag == MPI_ANY_TAG))
		mrr_wild_post(e);
	rc = recv_start(e);
	if (rc != MPI_SUCCESS && e->u.r.state != CKPT_RS_DONE)
		ckpt_vh_release(i);
	else
		*out = CKPT_HCAST(MPI_Request, CKPT_VVAL(ckpt_st, i));
	ckpt_section_end();
	return rc;
}

static __attribute__((noinline)) int post_recv(uint32_t fn, void *buf, int count, MPI_Datatype dt,
                                               int src, int tag, MPI_Comm comm, MPI_Request *out)
{
	return post_recv_inline(fn, buf, count, dt, src, tag, comm, out);
}

static int is_cancelled(const MPI_Status *st)
{
	int c = 0;
	LCALL(Test_cancelled, st, &c);
	return c;
}

/* Account a completion MPI reported into the entry (flag and status),
 * once. The entry is the calling thread's alone, as in send_taken. */
HOT void req_account(struct ckpt_vh *e)
{
	if (e->u.r.state != CKPT_RS_ACTIVE)
		return;
	__atomic_store_n(&e->u.r.state, CKPT_RS_DONE, __ATOMIC_RELEASE);
	if (e->u.r.rkind == CKPT_RK_RECV) {
		const MPI_Status *st = (const MPI_Status *)e->u.r.status;
		/* (asking MPI costs a call: only after MPI_Cancel) */
		if (!e->u.r.cancel || !is_cancelled(st))
			count(ckpt_st->recvd, e->u.r.comm, st->MPI_SOURCE);
	}
}

/* Move an entry on if MPI completed it: 1 when DONE or inactive. Inside
 * a section, with req_consume when it says 1. */
HOT int req_poll(struct ckpt_vh *e, int *rc)
{
	switch (__atomic_load_n(&e->u.r.state, __ATOMIC_ACQUIRE)) {
	case CKPT_RS_DONE:
	case CKPT_RS_INACTIVE:
		return 1;
	case CKPT_RS_ACTIVE:
		break;
	default:
		return 0;
	}
	CKPT_RACE_DELAY();
	if (CKPT_MRR() && (e->u.r.pad2 & CKPT_MRR_SEQ) &&
	    !(e->u.r.pad2 & (CKPT_MRR_PINNED | CKPT_MRR_LOOKED)) && !e->u.r.flag)
		mrr_pin(e);
	if (!e->u.r.flag) {
		int r = LCALL_IN(Test, (MPI_Request *)&e->real, (int *)&e->u.r.flag,
		                 (MPI_Status *)e->u.r.status);
		if (r != MPI_SUCCESS) {
			*rc = r;
			e->u.r.flag = 1;
		}
		if (!e->u.r.flag)
			return 0;
	}
	req_account(e);
	return 1;
}

/* Hand a DONE (or inactive) request to the application. */
HOT void req_consume(struct ckpt_vh *e, MPI_Request *r, MPI_Status *st)
{
	if (e->u.r.state == CKPT_RS_INACTIVE) {
		empty_status(st);
		return;
	}
	if (CKPT_MRR() && e->u.r.pad2)
		mrr_wild_done(e);
	if (st != MPI_STATUS_IGNORE) {
		/* MPI_ERROR is the caller's (set only with MPI_ERR_IN_STATUS) */
		int err = st->MPI_ERROR;
		memcpy(st, e->u.r.status, sizeof *st);
		st->MPI_ERROR = err;
	}
	if (e->u.r.persistent) {
		e->u.r.flag = 0;
		__atomic_store_n(&e->u.r.state, CKPT_RS_INACTIVE, __ATOMIC_RELEASE);
		return;
	}
	ckpt_vh_release(CKPT_VIDX(ckpt_st, CKPT_HVAL(*r)));
	*r = MPI_REQUEST_NULL;
}

/* the fast paths (of blocking calls, below, and of waits): not while
 * recording or replaying, nor once a checkpoint has begun */
static inline int fast_ok(void)
{
	return __builtin_expect(!CKPT_MRR() && !ckpt_fast_off && ckpt_st->cut == CKPT_CUT_RUN, 1);
}

/* ---- waits in the lower half ----
 * MPI_Wait, MPI_Waitall, MPI_Waitany and MPI_Waitsome test their requests
 * in one call to the lower half (pmpi/lower_fast.c), not one MPI_Test call
 * (two switches of the thread pointer) per request per pass. The lower
 * half tests each entry's real request into the entry itself, inside the
 * waiting thread's section, and returns when all (or one) are complete or
 * a checkpoint begins; the completions are accounted before the section
 * ends, so the runtime finds every entry as the ordinary path leaves it. */
#define WAIT_LOWER_MAX 64

/* Inside a section: wait in the lower half until NEED of the K entries of
 * LIVE (ACTIVE, not seen complete) have completed, and account those that
 * did. Returns how many did not; *rc the first error. */
HOT int wait_lower(struct ckpt_vh **live, int k, int need, int *rc)
{
	int left = 0;
	*rc = CKPT_CALL_IN(CKPT_LOWER_WAIT_FAST, ckpt_lower_wait_fast_fn, live, k, need,
	                   &ckpt_st->cut);
	CKPT_RACE_DELAY();
	for (int i = 0; i < k; i++) {
		if (live[i]->u.r.flag)
			req_account(live[i]);
		else
			left++;
	}
	return left;
}

/* a plain active entry, which the lower half may wait for */
static inline int wait_lower_ok(const struct ckpt_vh *e)
{
	return e->u.r.state == CKPT_RS_ACTIVE && !e->u.r.flag;
}

/* The entries of RS that MPI still has, into LIVE: how many, or -1 when
 * the lower half is not for them (more than WAIT_LOWER_MAX requests, an
 * entry neither plain active nor inactive, nor DONE unless DONE_OK) */
HOT int live_entries(int n, MPI_Request rs[], struct ckpt_vh **live, int done_ok)
{
	int k = 0;

	if (n > WAIT_LOWER_MAX)
		return -1;
	for (int i = 0; i < n; i++) {
		struct ckpt_vh *e = req_entry(rs[i]);
		if (!e)
			continue;
		if (wait_lower_ok(e))
			live[k++] = e;
		else if (e->u.r.state != CKPT_RS_INACTIVE &&
		         (!done_ok || e->u.r.state != CKPT_RS_DONE))
			return -1;
	}
	return k;
}

static int wait_one(MPI_Request *r, MPI_Status *st)
{
	struct ckpt_vh *e = req_entry(*r);
	unsigned spins = 0;
	int rc = MPI_SUCCESS;

	if (!e) {
		if (CKPT_HVAL(*r) == CKPT_HVAL(MPI_REQUEST_NULL)) {
			empty_status(st);
			return MPI_SUCCESS;
		}
		return LCALL(Wait, r, st);
	}
	for (;;) {
		int done;
		ckpt_section_begin();
		if (fast_ok() && wait_lower_ok(e))
			wait_lower(&e, 1, 1, &rc);
		done = req_poll(e, &rc);
		if (done)
			req_consume(e, r, st);
		ckpt_section_end();
		if (done)
			return rc;
		ckpt_spin_relax(&spins);
	}
}

/* ---- point-to-point ---- */

int PMPI_Isend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
               MPI_Request *req)
{
	return post_send_inline(CKPT_SM_STD, CKPT_MPI_MPI_Isend, buf, count, dt, dest, tag, comm, req);
}
int PMPI_Ibsend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
                MPI_Request *req)
{
	return post_send(CKPT_SM_BUF, CKPT_MPI_MPI_Ibsend, buf, count, dt, dest, tag, comm, req);
}
int PMPI_Issend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
                MPI_Request *req)
{
	return post_send(CKPT_SM_SYNC, CKPT_MPI_MPI_Issend, buf, count, dt, dest, tag, comm, req);
}
int PMPI_Irsend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
                MPI_Request *req)
{
	return post_send(CKPT_SM_READY, CKPT_MPI_MPI_Irsend, buf, count, dt, dest, tag, comm, req);
}

/* ---- the fast path of blocking calls ----
 *
 * A blocking standard send or receive is posted and tested in one call
 * to the lower half (pmpi/lower_fast.c: one switch of the thread pointer
 * for the whole call), inside one section, with no request entry: while
 * the thread is in the section or in the lower half no checkpoint can see
 * it, and the lower half gives it back as soon as a checkpoint begins
 * (the cut leaves RUN). Then it makes the entry the ordinary path would
 * have made (the request as posted, ACTIVE: the drain cancels a receive
 * and waits for a send like any other), leaves the section — parking
 * there — and waits as the ordinary path does. So the common call pays
 * MPI's calls, one switch and the counting, not the entries. The replay's
 * hooks, the queue of drained messages and a checkpoint under way take
 * the ordinary path. */

/* a checkpoint began: the request posted at the fast path becomes an
 * entry, handed back as the application's request R */
__attribute__((noinline, cold)) static void
fast_to_entry(uint32_t rkind, uint32_t fn, const void *buf, int n, MPI_Datatype dt, int peer,
              int tag, MPI_Comm comm, MPI_Request lr, MPI_Request *r)
{
	uint32_t i;
	struct ckpt_vh *e = req_new(rkind, fn, buf, n, dt, peer, tag, comm, &i);
	e->real = CKPT_HVAL(lr);
	__atomic_store_n(&e->u.r.state, CKPT_RS_ACTIVE, __ATOMIC_RELEASE);
	*r = CKPT_HCAST(MPI_Request, CKPT_VVAL(ckpt_st, i));
}

#define FAST(ops, nops, comm, st)                                                                \
	CKPT_CALL_IN(CKPT_LOWER_P2P_FAST, ckpt_lower_p2p_fast_fn, ops, nops, L(MPI_Comm, comm), st, \
	             &ckpt_st->cut)

static inline void fast_op(struct ckpt_fast_op *o, int recv, const void *buf, int n,
                           MPI_Datatype dt, int peer, int tag)
{
	o->buf = (void *)buf;
	o->dt = L(MPI_Datatype, dt);
	o->n = n;
	o->peer = peer;
	o->tag = tag;
	o->recv = recv;
}

static int send_fast(uint32_t fn, const void *buf, int n, MPI_Datatype dt, int dest, int tag,
                     MPI_Comm comm)
{
	struct ckpt_fast_op o;
	MPI_Request r;
	int rc;

	ckpt_section_begin();
	fast_op(&o, 0, buf, n, dt, dest, tag);
	rc = FAST(&o, 1, comm, MPI_STATUS_IGNORE);
	CKPT_RACE_DELAY();
	if (__builtin_expect(o.state != CKPT_FAST_FAILED, 1)) {
		count(ckpt_st->sent, CKPT_HVAL(comm), dest); /* MPI has taken it */
		if (o.state == CKPT_FAST_PENDING) {
			fast_to_entry(CKPT_RK_SEND, fn, buf, n, dt, dest, tag, comm, o.req, &r);
			ckpt_section_end();
			return wait_one(&r, MPI_STATUS_IGNORE);
		}
	}
	ckpt_section_end();
	return rc;
}

/* (drained messages come only while the thread is parked: a receive
 * checks for them inside its section) */
static inline int dq_empty(void)
{
	return __builtin_expect(!__atomic_load_n(&ckpt_st->dq_count, __ATOMIC_ACQUIRE), 1);
}

static int recv_fast(uint32_t fn, void *buf, int n, MPI_Datatype dt, int src, int tag,
                     MPI_Comm comm, MPI_Status *st)
{
	struct ckpt_fast_op o;
	MPI_Request r;
	MPI_Status own, *s = st == MPI_STATUS_IGNORE ? &own : st;
	int rc;

	ckpt_section_begin();
	if (!dq_empty()) {
		ckpt_section_end();
		rc = post_recv(fn, buf, n, dt, src, tag, comm, &r);
		return rc == MPI_SUCCESS ? wait_one(&r, st) : rc;
	}
	fast_op(&o, 1, buf, n, dt, src, tag);
	rc = FAST(&o, 1, comm, s);
	CKPT_RACE_DELAY();
	if (__builtin_expect(o.state == CKPT_FAST_DONE, 1)) {
		/* (the application has no handle: nobody cancels it) */
		count(ckpt_st->recvd, CKPT_HVAL(comm), s->MPI_SOURCE);
	} else if (o.state == CKPT_FAST_PENDING) {
		fast_to_entry(CKPT_RK_RECV, fn, buf, n, dt, src, tag, comm, o.req, &r);
		ckpt_section_end();
		return wait_one(&r, st);
	}
	ckpt_section_end();
	return rc;
}

static int sendrecv_slow(const void *sbuf, int scount, MPI_Datatype sdt, int dest, int stag,
                         void *rbuf, int rcount, MPI_Datatype rdt, int src, int rtag,
                         MPI_Comm comm, MPI_Status *st);

/* MPI_Sendrecv: its receive, then its send, in one call to the lower half */
static int sendrecv_fast(const void *sbuf, int scount, MPI_Datatype sdt, int dest, int stag,
                         void *rbuf, int rcount, MPI_Datatype rdt, int src, int rtag,
                         MPI_Comm comm, MPI_Status *st)
{
	struct ckpt_fast_op o[2];
	MPI_Request r[2];
	MPI_Status own, *s = st == MPI_STATUS_IGNORE ? &own : st;
	int rc, r2;

	ckpt_section_begin();
	if (!dq_empty()) {
		ckpt_section_end();
		return sendrecv_slow(sbuf, scount, sdt, dest, stag, rbuf, rcount, rdt, src, rtag, comm,
		                     st);
	}
	fast_op(&o[0], 1, rbuf, rcount, rdt, src, rtag);
	fast_op(&o[1], 0, sbuf, scount, sdt, dest, stag);
	rc = FAST(o, 2, comm, s);
	CKPT_RACE_DELAY();
	if (o[1].state != CKPT_FAST_FAILED)
		count(ckpt_st->sent, CKPT_HVAL(comm), dest);
	if (o[0].state == CKPT_FAST_DONE)
		count(ckpt_st->recvd, CKPT_HVAL(comm), s->MPI_SOURCE);
	if (__builtin_expect(o[0].state != CKPT_FAST_PENDING && o[1].state != CKPT_FAST_PENDING, 1)) {
		ckpt_section_end();
		return rc;
	}
	r[0] = r[1] = MPI_REQUEST_NULL;
	if (o[0].state == CKPT_FAST_PENDING)
		fast_to_entry(CKPT_RK_RECV, CKPT_MPI_MPI_Sendrecv, rbuf, rcount, rdt, src, rtag, comm,
		              o[0].req, &r[0]);
	if (o[1].state == CKPT_FAST_PENDING)
		fast_to_entry(CKPT_RK_SEND, CKPT_MPI_MPI_Sendrecv, sbuf, scount, sdt, dest, stag, comm,
		              o[1].req, &r[1]);
	ckpt_section_end();
	r2 = wait_one(&r[1], MPI_STATUS_IGNORE);
	if (rc == MPI_SUCCESS)
		rc = r2;
	r2 = o[0].state == CKPT_FAST_PENDING ? wait_one(&r[0], st) : MPI_SUCCESS;
	return rc != MPI_SUCCESS ? rc : r2;
}

/* (apart, so that the fast path's caller saves no more registers) */
static __attribute__((noinline)) int send_ordinary(uint32_t mode, uint32_t fn, const void *buf,
                                                   int count, MPI_Datatype dt, int dest, int tag,
                                                   MPI_Comm comm)
{
	MPI_Request r;
	int rc = post_send(mode, fn, buf, count, dt, dest, tag, comm, &r);
	return rc == MPI_SUCCESS ? wait_one(&r, MPI_STATUS_IGNORE) : rc;
}

static int send_blocking(uint32_t mode, uint32_t fn, const void *buf, int count, MPI_Datatype dt,
                         int dest, int tag, MPI_Comm comm)
{
	if (mode == CKPT_SM_STD && fast_ok())
		return send_fast(fn, buf, count, dt, dest, tag, comm);
	return send_ordinary(mode, fn, buf, count, dt, dest, tag, comm);
}

int PMPI_Send(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm)
{
	return send_blocking(CKPT_SM_STD, CKPT_MPI_MPI_Send, buf, count, dt, dest, tag, comm);
}
int PMPI_Bsend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm)
{
	return send_blocking(CKPT_SM_BUF, CKPT_MPI_MPI_Bsend, buf, count, dt, dest, tag, comm);
}
int PMPI_Ssend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm)
{
	return send_blocking(CKPT_SM_SYNC, CKPT_MPI_MPI_Ssend, buf, count, dt, dest, tag, comm);
}
int PMPI_Rsend(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm)
{
	return send_blocking(CKPT_SM_READY, CKPT_MPI_MPI_Rsend, buf, count, dt, dest, tag, comm);
}

int PMPI_Irecv(void *buf, int count, MPI_Datatype dt, int src, int tag, MPI_Comm comm,
               MPI_Request *req)
{
	return post_recv_inline(CKPT_MPI_MPI_Irecv, buf, count, dt, src, tag, comm, req);
}

int PMPI_Recv(void *buf, int count, MPI_Datatype dt, int src, int tag, MPI_Comm comm,
              MPI_Status *st)
{
	MPI_Request r;
	int rc;
	if (fast_ok())
		return recv_fast(CKPT_MPI_MPI_Recv, buf, count, dt, src, tag, comm, st);
	rc = post_recv(CKPT_MPI_MPI_Recv, buf, count, dt, src, tag, comm, &r);
	return rc == MPI_SUCCESS ? wait_one(&r, st) : rc;
}

int PMPI_Sendrecv(const void *sbuf, int scount, MPI_Datatype sdt, int dest, int stag, void *rbuf,
                  int rcount, MPI_Datatype rdt, int src, int rtag, MPI_Comm comm, MPI_Status *st)
{
	if (fast_ok())
		return sendrecv_fast(sbuf, scount, sdt, dest, stag, rbuf, rcount, rdt, src, rtag, comm,
		                     st);
	return sendrecv_slow(sbuf, scount, sdt, dest, stag, rbuf, rcount, rdt, src, rtag, comm, st);
}

static int sendrecv_slow(const void *sbuf, int scount, MPI_Datatype sdt, int dest, int stag,
                         void *rbuf, int rcount, MPI_Datatype rdt, int src, int rtag,
                         MPI_Comm comm, MPI_Status *st)
{
	MPI_Request rr, sr;
	int rc = post_recv(CKPT_MPI_MPI_Sendrecv, rbuf, rcount, rdt, src, rtag, comm, &rr);
	if (rc != MPI_SUCCESS)
		return rc;
	rc = post_send(CKPT_SM_STD, CKPT_MPI_MPI_Sendrecv, sbuf, scount, sdt, dest, stag, comm, &sr);
	if (rc == MPI_SUCCESS)
		rc = wait_one(&sr, MPI_STATUS_IGNORE);
	{
		int r2 = wait_one(&rr, st);
		return rc != MPI_SUCCESS ? rc : r2;
	}
}

int PMPI_Sendrecv_replace(void *buf, int count, MPI_Datatype dt, int dest, int stag, int src,
                          int rtag, MPI_Comm comm, MPI_Status *st)
{
	int size = 0, pos = 0, rc;
	void *tmp;

	rc = LCALL(Pack_size, count, L(MPI_Datatype, dt), L(MPI_Comm, comm), &size);
	if (rc != MPI_SUCCESS)
		return rc;
	tmp = malloc(size ? (size_t)size : 1);
	if (!tmp)
		return MPI_ERR_NO_MEM;
	rc = LCALL(Pack, buf, count, L(MPI_Datatype, dt), tmp, size, &pos, L(MPI_Comm, comm));
	if (rc == MPI_SUCCESS)
		rc = PMPI_Sendrecv(tmp, pos, MPI_PACKED, dest, stag, buf, count, dt, src, rtag, comm, st);
	free(tmp);
	return rc;
}

/* ---- completion ---- */

int PMPI_Wait(MPI_Request *r, MPI_Status *st) { return wait_one(r, st); }

/* (inline into MPI_Test, whose polling loops call it most: hpcc's
 * RandomAccess tests its receive between any two updates) */
HOT int test_live(MPI_Request *r, int *flag, MPI_Status *st)
{
	struct ckpt_vh *e = req_entry(*r);
	int rc = MPI_SUCCESS;

	if (!e) {
		if (CKPT_HVAL(*r) == CKPT_HVAL(MPI_REQUEST_NULL)) {
			*flag = 1;
			empty_status(st);
			return MPI_SUCCESS;
		}
		return LCALL(Test, r, flag, st);
	}
	ckpt_section_begin();
	*flag = req_poll(e, &rc);
	if (*flag)
		req_consume(e, r, st);
	ckpt_section_end();
	return rc;
}

int PMPI_Request_get_status(MPI_Request r, int *flag, MPI_Status *st)
{
	struct ckpt_vh *e = req_entry(r);
	int rc = MPI_SUCCESS;

	if (!e) {
		*flag = 1;
		empty_status(st);
		return MPI_SUCCESS;
	}
	ckpt_section_begin();
	*flag = req_poll(e, &rc);
	if (*flag && st != MPI_STATUS_IGNORE) {
		if (e->u.r.state == CKPT_RS_INACTIVE)
			empty_status(st);
		else {
			int err = st->MPI_ERROR; /* the caller's */
			memcpy(st, e->u.r.status, sizeof *st);
			st->MPI_ERROR = err;
		}
	}
	ckpt_section_end();
	return rc;
}

static MPI_Status *status_at(MPI_Status *sts, int i)
{
	return sts == MPI_STATUSES_IGNORE ? MPI_STATUS_IGNORE : &sts[i];
}

/* poll every request; how many are complete (null counts as complete) */
static int poll_all(int n, MPI_Request *rs, int *rc)
{
	int done = 0;
	for (int i = 0; i < n; i++) {
		struct ckpt_vh *e = req_entry(rs[i]);
		if (!e || req_poll(e, rc))
			done++;
	}
	return done;
}

HOT void consume_all(int n, MPI_Request *rs, MPI_Status *sts)
{
	for (int i = 0; i < n; i++) {
		struct ckpt_vh *e = req_entry(rs[i]);
		if (e)
			req_consume(e, &rs[i], status_at(sts, i));
		else
			empty_status(status_at(sts, i));
	}
}

static int testall_live(int n, MPI_Request rs[], int *flag, MPI_Status sts[])
{
	int rc = MPI_SUCCESS;
	ckpt_section_begin();
	*flag = poll_all(n, rs, &rc) == n;
	if (*flag)
		consume_all(n, rs, sts);
	ckpt_section_end();
	return rc;
}

/* MPI_Waitall in one section and one pass when the lower half can wait
 * for every request still in MPI: 1 when done (RC its result), 0 when the
 * ordinary loop must go on (a checkpoint began, an entry the lower half
 * does not wait for, too many requests) */
static int waitall_lower(int n, MPI_Request rs[], MPI_Status sts[], int *rc)
{
	struct ckpt_vh *live[WAIT_LOWER_MAX];
	int k, done = 0;

	ckpt_section_begin();
	if (!fast_ok() || (k = live_entries(n, rs, live, 1)) < 0)
		goto out;
	if (k && wait_lower(live, k, k, rc)) {
		done = *rc != MPI_SUCCESS; /* (returned, as the ordinary loop does) */
		goto out;
	}
	consume_all(n, rs, sts); /* (a failed test completed its request, as in req_poll) */
	done = 1;
out:
	ckpt_section_end();
	return done;
}

int PMPI_Waitall(int n, MPI_Request rs[], MPI_Status sts[])
{
	unsigned spins = 0;
	int flag = 0, rc = MPI_SUCCESS;
	if (waitall_lower(n, rs, sts, &rc))
		return rc;
	while ((rc = testall_live(n, rs, &flag, sts)) == MPI_SUCCESS && !flag)
		ckpt_spin_relax(&spins);
	return rc;
}

/* Inside a section, for MPI_Waitany and MPI_Waitsome: wait in the lower
 * half until one of the requests of RS completes, when every one MPI still
 * has is a plain active entry (none is complete yet) */
static void wait_lower_one(int n, MPI_Request rs[], int *rc)
{
	struct ckpt_vh *live[WAIT_LOWER_MAX];
	int k;

	if (fast_ok() && (k = live_entries(n, rs, live, 0)) > 0)
		wait_lower(live, k, 1, rc);
}

/* index of a completed active request, MPI_UNDEFINED if none is active */
static int any_one(int n, MPI_Request *rs, int *active, int *rc)
{
	*active = 0;
	for (int i = 0; i < n; i++) {
		struct ckpt_vh *e = req_entry(rs[i]);
		if (!e || e->u.r.state == CKPT_RS_INACTIVE)
			continue;
		(*active)++;
		if (req_poll(e, rc))
			return i;
	}
	return MPI_UNDEFINED;
}

/* (WAIT: first wait in the lower half, when it can) */
static int testany_live(int n, MPI_Request rs[], int *idx, int *flag, MPI_Status *st, int wait)
{
	int active, rc = MPI_SUCCESS;
	ckpt_section_begin();
	if (wait)
		wait_lower_one(n, rs, &rc);
	*idx = any_one(n, rs, &active, &rc);
	*flag = *idx != MPI_UNDEFINED || !active;
	if (*idx != MPI_UNDEFINED)
		req_consume(req_entry(rs[*idx]), &rs[*idx], st);
	else if (!active)
		empty_status(st);
	ckpt_section_end();
	return rc;
}

static int waitany_live(int n, MPI_Request rs[], int *idx, MPI_Status *st)
{
	unsigned spins = 0;
	int flag = 0, rc;
	while ((rc = testany_live(n, rs, idx, &flag, st, 1)) == MPI_SUCCESS && !flag)
		ckpt_spin_relax(&spins);
	return rc;
}

static int testsome_live(int n, MPI_Request rs[], int *outcount, int idx[], MPI_Status sts[],
                         int wait)
{
	int active = 0, rc = MPI_SUCCESS;
	ckpt_section_begin();
	if (wait)
		wait_lower_one(n, rs, &rc);
	*outcount = 0;
	for (int i = 0; i < n; i++) {
		struct ckpt_vh *e = req_entry(rs[i]);
		if (!e || e->u.r.state == CKPT_RS_INACTIVE)
			continue;
		active++;
		if (req_poll(e, &rc)) {
			req_consume(e, &rs[i], status_at(sts, *outcount));
			idx[(*outcount)++] = i;
		}
	}
	if (!active)
		*outcount = MPI_UNDEFINED;
	ckpt_section_end();
	return rc;
}

static int waitsome_live(int n, MPI_Request rs[], int *outcount, int idx[], MPI_Status sts[])
{
	unsigned spins = 0;
	int rc;
	while ((rc = testsome_live(n, rs, outcount, idx, sts, 1)) == MPI_SUCCESS && *outcount == 0)
		ckpt_spin_relax(&spins);
	return rc;
}

int PMPI_Cancel(MPI_Request *r)
{
	struct ckpt_vh *e = req_entry(*r);
	int rc = MPI_SUCCESS;

	if (!e)
		return LCALL(Cancel, r);
	ckpt_section_begin();
	if (e->u.r.state == CKPT_RS_ACTIVE && !e->u.r.flag) {
		e->u.r.cancel = 1;
		rc = LCALL(Cancel, (MPI_Request *)&e->real);
	} /* else complete already (or from the queue) */
	ckpt_section_end();
	return rc;
}

int PMPI_Request_free(MPI_Request *r)
{
	struct ckpt_vh *e = req_entry(*r);
	int rc = MPI_SUCCESS;

	if (!e)
		return LCALL(Request_free, r);
	ckpt_section_begin();
	if (e->u.r.state == CKPT_RS_ACTIVE && !e->u.r.flag) {
		/* MPI finishes it unseen: a receive would escape the drain's count */
		if (e->u.r.rkind == CKPT_RK_RECV && !ckpt_st->refuse[0])
			strcpy(ckpt_st->refuse, "a receive request was freed before it completed "
			                        "(MPI_Request_free)");
		if (e->u.r.persistent) {
			ckpt_section_end();
			return MPI_ERR_REQUEST;
		}
		rc = LCALL(Request_free, (MPI_Request *)&e->real);
	} else if (e->u.r.persistent && e->real != ckpt_st->null_req_real) {
		rc = LCALL(Request_free, (MPI_Request *)&e->real);
	}
	ckpt_vh_release(CKPT_VIDX(ckpt_st, CKPT_HVAL(*r)));
	*r = MPI_REQUEST_NULL;
	ckpt_section_end();
	return rc;
}

/* ---- persistent requests ---- */

static int init_persistent(uint32_t rkind, uint32_t mode, uint32_t fn, const void *buf, int count,
                           MPI_Datatype dt, int peer, int tag, MPI_Comm comm, MPI_Request *out)
{
	uint32_t i;
	struct ckpt_vh *e;
	MPI_Datatype ldt;
	MPI_Comm lc;
	MPI_Request *lr;
	int rc;

	ckpt_section_begin();
	e = req_new(rkind, fn, buf, count, dt, peer, tag, comm, &i);
	ldt = L(MPI_Datatype, dt);
	lc = L(MPI_Comm, comm);
	lr = (MPI_Request *)&e->real;
	e->u.r.persistent = 1;
	e->u.r.mode = (uint16_t)mode;
	if (rkind == CKPT_RK_RECV)
		rc = LCALL(Recv_init, (void *)buf, count, ldt, peer, tag, lc, lr);
	else if (mode == CKPT_SM_BUF)
		rc = LCALL(Bsend_init, buf, count, ldt, peer, tag, lc, lr);
	else if (mode == CKPT_SM_SYNC)
		rc = LCALL(Ssend_init, buf, count, ldt, peer, tag, lc, lr);
	else if (mode == CKPT_SM_READY)
		rc = LCALL(Rsend_init, buf, count, ldt, peer, tag, lc, lr);
	else
		rc = LCALL(Send_init, buf, count, ldt, peer, tag, lc, lr);
	if (rc != MPI_SUCCESS) {
		ckpt_vh_release(i);
	} else {
		e->u.r.state = CKPT_RS_INACTIVE;
		*out = CKPT_HCAST(MPI_Request, CKPT_VVAL(ckpt_st, i));
	}
	ckpt_section_end();
	return rc;
}

int PMPI_Send_init(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
                   MPI_Request *r)
{
	return init_persistent(CKPT_RK_SEND, CKPT_SM_STD, CKPT_MPI_MPI_Send_init, buf, count, dt,
	                       dest, tag, comm, r);
}
int PMPI_Bsend_init(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
                    MPI_Request *r)
{
	return init_persistent(CKPT_RK_SEND, CKPT_SM_BUF, CKPT_MPI_MPI_Bsend_init, buf, count, dt,
	                       dest, tag, comm, r);
}
int PMPI_Ssend_init(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
                    MPI_Request *r)
{
	return init_persistent(CKPT_RK_SEND, CKPT_SM_SYNC, CKPT_MPI_MPI_Ssend_init, buf, count, dt,
	                       dest, tag, comm, r);
}
int PMPI_Rsend_init(const void *buf, int count, MPI_Datatype dt, int dest, int tag, MPI_Comm comm,
                    MPI_Request *r)
{
	return init_persistent(CKPT_RK_SEND, CKPT_SM_READY, CKPT_MPI_MPI_Rsend_init, buf, count, dt,
	                       dest, tag, comm, r);
}
int PMPI_Recv_init(void *buf, int count, MPI_Datatype dt, int src, int tag, MPI_Comm comm,
                   MPI_Request *r)
{
	return init_persistent(CKPT_RK_RECV, CKPT_SM_STD, CKPT_MPI_MPI_Recv_init, buf, count, dt,
	                       src, tag, comm, r);
}

int PMPI_Start(MPI_Request *r)
{
	struct ckpt_vh *e = req_entry(*r);
	int rc;

	if (!e)
		return LCALL(Start, r);
	if (e->u.r.state != CKPT_RS_INACTIVE)
		return MPI_ERR_REQUEST;
	ckpt_section_begin();
	e->u.r.flag = 0;
	e->u.r.cancel = 0; /* a new activation: the last one's MPI_Cancel is not its */
	e->u.r.order = __atomic_fetch_add(&ckpt_st->post_order, 1, __ATOMIC_RELAXED);
	if (e->u.r.rkind == CKPT_RK_RECV) {
		rc = recv_start(e);
		if (rc != MPI_SUCCESS && e->u.r.state != CKPT_RS_DONE)
			e->u.r.state = CKPT_RS_INACTIVE;
	} else {
		__atomic_store_n(&e->u.r.state, CKPT_RS_POSTING, __ATOMIC_RELEASE);
		rc = LCALL(Start, (MPI_Request *)&e->real);
		CKPT_RACE_DELAY();
		if (rc != MPI_SUCCESS)
			e->u.r.state = CKPT_RS_INACTIVE;
		else
			send_taken(e);
	}
	ckpt_section_end();
	return rc;
}

int PMPI_Startall(int n, MPI_Request rs[])
{
	for (int i = 0; i < n; i++) {
		int rc = PMPI_Start(&rs[i]);
		if (rc != MPI_SUCCESS)
			return rc;
	}
	return MPI_SUCCESS;
}

/* ---- probes ---- */

static int iprobe_live(int src, int tag, MPI_Comm comm, int *flag, MPI_Status *st)
{
	struct ckpt_dmsg *m;
	int rc = MPI_SUCCESS;

	ckpt_section_begin();
	m = dq_find(CKPT_HVAL(comm), src, tag, 0);
	if (m) {
		*flag = 1;
		dq_status(m, st);
	} else {
		CKPT_RACE_DELAY();
		rc = LCALL(Iprobe, src, tag, L(MPI_Comm, comm), flag, st);
	}
	ckpt_section_end();
	return rc;
}

static int probe_live(int src, int tag, MPI_Comm comm, MPI_Status *st)
{
	unsigned spins = 0;
	int flag = 0, rc;
	while ((rc = iprobe_live(src, tag, comm, &flag, st)) == MPI_SUCCESS && !flag)
		ckpt_spin_relax(&spins);
	return rc;
}

/* A matched message: from the queue (entry holds it) or MPI's own. */
static int improbe(int src, int tag, MPI_Comm comm, int *flag, MPI_Message *msg, MPI_Status *st)
{
	struct ckpt_dmsg *m = dq_find(CKPT_HVAL(comm), src, tag, 1);
	MPI_Message lm;
	uint32_t i;
	int rc;

	if (m) {
		struct ckpt_vh *e = ckpt_vh_alloc(CKPT_VK_MESSAGE, 0, CKPT_MPI_MPI_Improbe, &i);
		e->u.m.msg = m;
		e->log = 0;
		dq_status(m, st);
		*flag = 1;
		*msg = CKPT_HCAST(MPI_Message, CKPT_VVAL(ckpt_st, i));
		return MPI_SUCCESS;
	}
	MPI_Status own;
	rc = LCALL(Improbe, src, tag, L(MPI_Comm, comm), flag, &lm, &own);
	if (rc == MPI_SUCCESS && *flag) {
		if (st != MPI_STATUS_IGNORE) {
			int err = st->MPI_ERROR; /* the caller's (own's is garbage) */
			*st = own;
			st->MPI_ERROR = err;
		}
		uint64_t up;
		if (ckpt_predef_out(CKPT_HVAL(lm), &up)) { /* MPI_MESSAGE_NO_PROC */
			*msg = CKPT_HCAST(MPI_Message, up);
		} else {
			struct ckpt_vh *e = ckpt_vh_alloc(CKPT_VK_MESSAGE, CKPT_HVAL(lm),
			                                  CKPT_MPI_MPI_Improbe, &i);
			e->log = 0;
			e->u.m.msg = NULL;
			e->u.m.comm = CKPT_HVAL(comm);
			e->u.m.source = own.MPI_SOURCE;
			e->u.m.tag = own.MPI_TAG;
			{
				int bytes = 0;
				LCALL(Get_count, &own, L(MPI_Datatype, MPI_BYTE), &bytes);
				e->u.m.bytes = (uint64_t)bytes;
			}
			*msg = CKPT_HCAST(MPI_Message, CKPT_VVAL(ckpt_st, i));
		}
	}
	return rc;
}

static int improbe_live(int src, int tag, MPI_Comm comm, int *flag, MPI_Message *msg,
                        MPI_Status *st)
{
	int rc;
	ckpt_section_begin();
	rc = improbe(src, tag, comm, flag, msg, st);
	ckpt_section_end();
	return rc;
}

static int mprobe_live(int src, int tag, MPI_Comm comm, MPI_Message *msg, MPI_Status *st)
{
	unsigned spins = 0;
	int flag = 0, rc;
	while ((rc = improbe_live(src, tag, comm, &flag, msg, st)) == MPI_SUCCESS && !flag)
		ckpt_spin_relax(&spins);
	return rc;
}

static int imrecv(void *buf, int count, MPI_Datatype dt, MPI_Message *msg, MPI_Request *req)
{
	uint64_t v = CKPT_HVAL(*msg);
	struct ckpt_vh *me, *e;
	uint32_t i;
	int rc;

	if (!CKPT_IS_VIRT(ckpt_st, v)) {
		/* MPI_MESSAGE_NO_PROC: a receive from MPI_PROC_NULL */
		MPI_Message lm = L(MPI_Message, *msg);
		e = req_new(CKPT_RK_OTHER, CKPT_MPI_MPI_Imrecv, buf, count, dt, MPI_PROC_NULL, 0,
		            MPI_COMM_SELF, &i);
		rc = LCALL(Imrecv, buf, count, L(MPI_Datatype, dt), &lm, (MPI_Request *)&e->real);
		e->u.r.state = CKPT_RS_ACTIVE;
		*req = CKPT_HCAST(MPI_Request, CKPT_VVAL(ckpt_st, i));
		*msg = MPI_MESSAGE_NULL;
		return rc;
	}
	me = &ckpt_st->vt[CKPT_VIDX(ckpt_st, v)];
	e = req_new(CKPT_RK_RECV, CKPT_MPI_MPI_Imrecv, buf, count, dt, 0, 0, MPI_COMM_SELF, &i);
	if (me->u.m.msg) {
		e->u.r.comm = me->u.m.msg->comm;
		rc = dq_deliver(me->u.m.msg, buf, count, dt, (MPI_Status *)e->u.r.status);
		e->u.r.flag = 1;
		e->u.r.state = CKPT_RS_DONE;
	} else {
		MPI_Message lm = CKPT_HCAST(MPI_Message, me->real);
		e->u.r.comm = me->u.m.comm;
		rc = LCALL(Imrecv, buf, count, L(MPI_Datatype, dt), &lm, (MPI_Request *)&e->real);
		e->u.r.state = CKPT_RS_ACTIVE;
	}
	ckpt_vh_release(CKPT_VIDX(ckpt_st, v));
	*msg = MPI_MESSAGE_NULL;
	*req = CKPT_HCAST(MPI_Request, CKPT_VVAL(ckpt_st, i));
	return rc;
}

int PMPI_Imrecv(void *buf, int count, MPI_Datatype dt, MPI_Message *msg, MPI_Request *req)
{
	int rc;
	ckpt_section_begin();
	rc = imrecv(buf, count, dt, msg, req);
	ckpt_section_end();
	return rc;
}

int PMPI_Mrecv(void *buf, int count, MPI_Datatype dt, MPI_Message *msg, MPI_Status *st)
{
	MPI_Request r;
	int rc = PMPI_Imrecv(buf, count, dt, msg, &r);
	return rc == MPI_SUCCESS ? wait_one(&r, st) : rc;
}

/* ---- record and replay of outcomes (replay_mpi.h) ---- */

static int64_t status_bytes(const MPI_Status *st)
{
	int b = 0;
	LCALL(Get_count, st, L(MPI_Datatype, MPI_BYTE), &b);
	return b;
}

/* A wildcard receive being posted: numbered; in a replay, posted with the
 * source and tag of the message the recorded run matched. */
static __attribute__((noinline)) void mrr_wild_post(struct ckpt_vh *e)
{
	uint32_t seq = ckpt_mrr_wild_seq();
	int s, t, f;
	int64_t b;

	e->u.r.pad2 = seq;
	f = ckpt_mrr_match_find(seq, &s, &t, &b);
	if (f > 0) {
		e->u.r.peer = s;
		e->u.r.tag = t;
		e->u.r.pad2 |= CKPT_MRR_PINNED | CKPT_MRR_LOOKED;
	} else if (f == 0) {
		e->u.r.pad2 |= CKPT_MRR_LOOKED;
	}
}

/* Another message than the recorded one matched the wildcard receive E
 * before mrr_pin could cancel it: it joins the queue of drained messages
 * (after those, which are older), for the receive that takes it. */
static void mrr_keep(struct ckpt_vh *e, const MPI_Status *st)
{
	MPI_Datatype dt = CKPT_HCAST(MPI_Datatype, ckpt_in(e->u.r.datatype));
	MPI_Comm c = CKPT_HCAST(MPI_Comm, ckpt_in(e->u.r.comm));
	struct ckpt_dmsg *m, **pp;
	int n = 0, size = 0, pos = 0;

	LCALL(Get_count, st, dt, &n);
	if (n == MPI_UNDEFINED || LCALL(Pack_size, n, dt, c, &size) != MPI_SUCCESS)
		ckpt_mrr_diverged(CKPT_MPI_MPI_Recv, "a message from %d tag %d that the recorded run "
		                  "did not receive here cannot be kept", st->MPI_SOURCE, st->MPI_TAG);
	m = mmap(NULL, sizeof *m + (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
	         -1, 0);
	if (m == MAP_FAILED) {
		ckpt_mrr_diverged(CKPT_MPI_MPI_Recv, "no memory to keep a message from %d tag %d",
		                  st->MPI_SOURCE, st->MPI_TAG);
		return;
	}
	LCALL(Pack, e->u.r.buf, n, dt, m->data, size, &pos, c);
	m->next = NULL;
	m->comm = e->u.r.comm;
	m->source = st->MPI_SOURCE;
	m->tag = st->MPI_TAG;
	m->bytes = (uint64_t)pos;
	count(ckpt_st->recvd, e->u.r.comm, st->MPI_SOURCE); /* as the drain counts */
	ckpt_state_lock();
	for (pp = &ckpt_st->dq_head; *pp; pp = &(*pp)->next)
		;
	*pp = m;
	__atomic_fetch_add(&ckpt_st->dq_count, 1, __ATOMIC_ACQ_REL);
	ckpt_state_unlock();
}

/* A wildcard receive posted before the checkpoint a replay restarted
 * from (the runtime posted it again as it was): cancelled and posted
 * again with the recorded source and tag; a message that matched it
 * meanwhile is kept for later unless it is the recorded one. Inside a
 * section. */
static __attribute__((noinline)) void mrr_pin(struct ckpt_vh *e)
{
	int s, t, f, c = 0;
	int64_t b;
	MPI_Status st;

	f = ckpt_mrr_match_find(e->u.r.pad2 & CKPT_MRR_SEQ, &s, &t, &b);
	if (f < 0)
		return; /* recording: nothing to follow */
	e->u.r.pad2 |= CKPT_MRR_LOOKED;
	if (f == 0)
		return;
	e->u.r.pad2 |= CKPT_MRR_PINNED;
	LCALL(Cancel, (MPI_Request *)&e->real);
	LCALL(Wait, (MPI_Request *)&e->real, &st);
	LCALL(Test_cancelled, &st, &c);
	if (!c && st.MPI_SOURCE == s && st.MPI_TAG == t) {
		memcpy(e->u.r.status, &st, sizeof st);
		e->u.r.flag = 1;
		return;
	}
	if (!c)
		mrr_keep(e, &st);
	e->u.r.peer = s;
	e->u.r.tag = t;
	recv_start(e);
}

static __attribute__((noinline)) void mrr_wild_done(struct ckpt_vh *e)
{
	const MPI_Status *st = (const MPI_Status *)e->u.r.status;
	if (e->u.r.cancel && is_cancelled(st))
		return;
	ckpt_mrr_match_done(e->u.r.pad2 & CKPT_MRR_SEQ, st->MPI_SOURCE, st->MPI_TAG,
	                    status_bytes(st));
}

/* the replayed outcome of a completion call, or -1: run it live */
static int mrr_test_rp(uint32_t fn, int n, int *flag, int *idx, int cap, int *nidx)
{
	return ckpt_mrr_test_replay(fn, n, flag, idx, cap, nidx) ? 0 : -1;
}

/* Every recorder below asks the log, makes the live call and records its
 * outcome inside one section: a checkpoint cut between the look at the
 * log and the record would be restarted into the live call again, in a
 * new lower half, while the log already holds what the recorded run's
 * same call answered after the checkpoint; the two can differ (a test
 * that finds its request done, where the recorded one did not), and the
 * replay would diverge. The blocking ones leave the section between
 * rounds, so a checkpoint can come while they wait; a replayed outcome
 * is waited for outside it. */
static int mrr_test(MPI_Request *r, int *flag, MPI_Status *st)
{
	int f, idx[1], ni, rc;

	ckpt_section_begin();
	if (!mrr_test_rp(CKPT_MPI_MPI_Test, 1, &f, idx, 0, &ni)) {
		ckpt_section_end();
		*flag = f;
		return f ? wait_one(r, st) : MPI_SUCCESS;
	}
	rc = test_live(r, flag, st);
	ckpt_mrr_test_record(CKPT_MPI_MPI_Test, 1, *flag, NULL, 0);
	ckpt_section_end();
	return rc;
}

static int mrr_testall(int n, MPI_Request rs[], int *flag, MPI_Status sts[])
{
	int f, ni, rc;

	ckpt_section_begin();
	if (!mrr_test_rp(CKPT_MPI_MPI_Testall, n, &f, NULL, 0, &ni)) {
		ckpt_section_end();
		*flag = f;
		return f ? PMPI_Waitall(n, rs, sts) : MPI_SUCCESS;
	}
	rc = testall_live(n, rs, flag, sts);
	ckpt_mrr_test_record(CKPT_MPI_MPI_Testall, n, *flag, NULL, 0);
	ckpt_section_end();
	return rc;
}

/* the recorded outcome of a Testany/Waitany: the index, waited for alone */
static int mrr_any_replayed(int f, int ni, int i, int n, MPI_Request rs[], int *idx, int *flag,
                            MPI_Status *st)
{
	*flag = f;
	*idx = MPI_UNDEFINED;
	if (!f)
		return MPI_SUCCESS;
	if (!ni) /* no active request: as live */
		return testany_live(n, rs, idx, flag, st, 0);
	*idx = i;
	return wait_one(&rs[i], st);
}

/* Testany, Waitany. A blocking call asks the log at every round: after a
 * restart from a checkpoint taken while it waited, the outcome is there. */
static int mrr_any(uint32_t fn, int n, MPI_Request rs[], int *idx, int *flag, MPI_Status *st)
{
	unsigned spins = 0;
	int f, i[1], ni, rc;

	for (;;) {
		ckpt_section_begin();
		if (!mrr_test_rp(fn, n, &f, i, 1, &ni)) {
			ckpt_section_end();
			return mrr_any_replayed(f, ni, i[0], n, rs, idx, flag, st);
		}
		rc = testany_live(n, rs, idx, flag, st, 0);
		if (rc != MPI_SUCCESS || *flag || fn != CKPT_MPI_MPI_Waitany)
			break;
		ckpt_section_end();
		ckpt_spin_relax(&spins);
	}
	ckpt_mrr_test_record(fn, n, *flag, idx, *idx != MPI_UNDEFINED && *flag);
	ckpt_section_end();
	return rc;
}

/* Testsome, Waitsome: exactly the recorded indices */
static int mrr_some(uint32_t fn, int n, MPI_Request rs[], int *outcount, int idx[],
                    MPI_Status sts[])
{
	unsigned spins = 0;
	int f, ni, rc = MPI_SUCCESS;

	for (;;) {
		ckpt_section_begin();
		if (!mrr_test_rp(fn, n, &f, idx, n, &ni)) {
			ckpt_section_end();
			*outcount = f;
			if (f == MPI_UNDEFINED)
				return testsome_live(n, rs, outcount, idx, sts, 0);
			for (int k = 0; k < ni; k++) {
				int r = wait_one(&rs[idx[k]], status_at(sts, k));
				if (r != MPI_SUCCESS)
					rc = r;
			}
			return rc;
		}
		rc = testsome_live(n, rs, outcount, idx, sts, 0);
		if (rc != MPI_SUCCESS || *outcount != 0 || fn != CKPT_MPI_MPI_Waitsome)
			break;
		ckpt_section_end();
		ckpt_spin_relax(&spins);
	}
	ckpt_mrr_test_record(fn, n, *outcount, idx, *outcount > 0 ? *outcount : 0);
	ckpt_section_end();
	return rc;
}

static void probe_status(const MPI_Status *own, MPI_Status *st)
{
	if (st != MPI_STATUS_IGNORE) {
		int err = st->MPI_ERROR; /* the caller's */
		*st = *own;
		st->MPI_ERROR = err;
	}
}

static void mrr_check_bytes(uint32_t fn, int s, int t, int64_t b, const MPI_Status *own)
{
	int64_t now = status_bytes(own);
	if (now != b)
		ckpt_mrr_diverged(fn, "the recorded message from %d tag %d had %lld bytes, the one "
		                  "there now has %lld", s, t, (long long)b, (long long)now);
}

/* Iprobe, Probe, and with MSG Improbe, Mprobe: the recorded flag; a
 * recorded message is waited for (and, with MSG, taken). The blocking
 * ones ask the log at every round (see mrr_any). */
static int mrr_probe(uint32_t fn, int src, int tag, MPI_Comm comm, int *flag, MPI_Message *msg,
                     MPI_Status *st)
{
	int blocking = fn == CKPT_MPI_MPI_Probe || fn == CKPT_MPI_MPI_Mprobe;
	unsigned spins = 0;
	int f, s, t, rc;
	int64_t b;
	MPI_Status own;

	own.MPI_ERROR = MPI_SUCCESS;
	for (;;) {
		ckpt_section_begin();
		if (ckpt_mrr_probe_replay(fn, src, tag, &f, &s, &t, &b)) {
			ckpt_section_end();
			*flag = f;
			if (!f)
				return MPI_SUCCESS;
			rc = msg ? mprobe_live(s, t, comm, msg, &own) : probe_live(s, t, comm, &own);
			if (rc == MPI_SUCCESS) {
				mrr_check_bytes(fn, s, t, b, &own);
				probe_status(&own, st);
			}
			return rc;
		}
		rc = msg ? improbe_live(src, tag, comm, flag, msg, &own)
		         : iprobe_live(src, tag, comm, flag, &own);
		if (rc != MPI_SUCCESS || *flag || !blocking)
			break;
		ckpt_section_end();
		ckpt_spin_relax(&spins);
	}
	ckpt_mrr_probe_record(fn, src, tag, *flag, own.MPI_SOURCE, own.MPI_TAG,
	                      *flag ? status_bytes(&own) : 0);
	ckpt_section_end();
	if (rc == MPI_SUCCESS && *flag)
		probe_status(&own, st);
	return rc;
}

int PMPI_Test(MPI_Request *r, int *flag, MPI_Status *st)
{
	if (__builtin_expect(CKPT_MRR(), 0))
		return mrr_test(r, flag, st);
	return test_live(r, flag, st);
}
int PMPI_Testall(int n, MPI_Request rs[], int *flag, MPI_Status sts[])
{
	if (CKPT_MRR())
		return mrr_testall(n, rs, flag, sts);
	return testall_live(n, rs, flag, sts);
}
int PMPI_Testany(int n, MPI_Request rs[], int *idx, int *flag, MPI_Status *st)
{
	if (CKPT_MRR())
		return mrr_any(CKPT_MPI_MPI_Testany, n, rs, idx, flag, st);
	return testany_live(n, rs, idx, flag, st, 0);
}
int PMPI_Waitany(int n, MPI_Request rs[], int *idx, MPI_Status *st)
{
	int flag;
	if (CKPT_MRR())
		return mrr_any(CKPT_MPI_MPI_Waitany, n, rs, idx, &flag, st);
	return waitany_live(n, rs, idx, st);
}
int PMPI_Testsome(int n, MPI_Request rs[], int *outcount, int idx[], MPI_Status sts[])
{
	if (CKPT_MRR())
		return mrr_some(CKPT_MPI_MPI_Testsome, n, rs, outcount, idx, sts);
	return testsome_live(n, rs, outcount, idx, sts, 0);
}
int PMPI_Waitsome(int n, MPI_Request rs[], int *outcount, int idx[], MPI_Status sts[])
{
	if (CKPT_MRR())
		return mrr_some(CKPT_MPI_MPI_Waitsome, n, rs, outcount, idx, sts);
	return waitsome_live(n, rs, outcount, idx, sts);
}
int PMPI_Iprobe(int src, int tag, MPI_Comm comm, int *flag, MPI_Status *st)
{
	if (CKPT_MRR())
		return mrr_probe(CKPT_MPI_MPI_Iprobe, src, tag, comm, flag, NULL, st);
	return iprobe_live(src, tag, comm, flag, st);
}
int PMPI_Probe(int src, int tag, MPI_Comm comm, MPI_Status *st)
{
	int flag;
	if (CKPT_MRR())
		return mrr_probe(CKPT_MPI_MPI_Probe, src, tag, comm, &flag, NULL, st);
	return probe_live(src, tag, comm, st);
}
int PMPI_Improbe(int src, int tag, MPI_Comm comm, int *flag, MPI_Message *msg, MPI_Status *st)
{
	if (CKPT_MRR())
		return mrr_probe(CKPT_MPI_MPI_Improbe, src, tag, comm, flag, msg, st);
	return improbe_live(src, tag, comm, flag, msg, st);
}
int PMPI_Mprobe(int src, int tag, MPI_Comm comm, MPI_Message *msg, MPI_Status *st)
{
	int flag;
	if (CKPT_MRR())
		return mrr_probe(CKPT_MPI_MPI_Mprobe, src, tag, comm, &flag, msg, st);
	return mprobe_live(src, tag, comm, msg, st);
}

#pragma weak MPI_Isend = PMPI_Isend
#pragma weak MPI_Ibsend = PMPI_Ibsend
#pragma weak MPI_Issend = PMPI_Issend
#pragma weak MPI_Irsend = PMPI_Irsend
#pragma weak MPI_Send = PMPI_Send
#pragma weak MPI_Bsend = PMPI_Bsend
#pragma weak MPI_Ssend = PMPI_Ssend
#pragma weak MPI_Rsend = PMPI_Rsend
#pragma weak MPI_Irecv = PMPI_Irecv
#pragma weak MPI_Recv = PMPI_Recv
#pragma weak MPI_Sendrecv = PMPI_Sendrecv
#pragma weak MPI_Sendrecv_replace = PMPI_Sendrecv_replace
#pragma weak MPI_Wait = PMPI_Wait
#pragma weak MPI_Test = PMPI_Test
#pragma weak MPI_Request_get_status = PMPI_Request_get_status
#pragma weak MPI_Waitall = PMPI_Waitall
#pragma weak MPI_Testall = PMPI_Testall
#pragma weak MPI_Waitany = PMPI_Waitany
#pragma weak MPI_Testany = PMPI_Testany
#pragma weak MPI_Waitsome = PMPI_Waitsome
#pragma weak MPI_Testsome = PMPI_Testsome
#pragma weak MPI_Cancel = PMPI_Cancel
#pragma weak MPI_Request_free = PMPI_Request_free
#pragma weak MPI_Send_init = PMPI_Send_init
#pragma weak MPI_Bsend_init = PMPI_Bsend_init
#pragma weak MPI_Ssend_init = PMPI_Ssend_init
#pragma weak MPI_Rsend_init = PMPI_Rsend_init
#pragma weak MPI_Recv_init = PMPI_Recv_init
#pragma weak MPI_Start = PMPI_Start
#pragma weak MPI_Startall = PMPI_Startall
#pragma weak MPI_Iprobe = PMPI_Iprobe
#pragma weak MPI_Probe = PMPI_Probe
#pragma weak MPI_Improbe = PMPI_Improbe
#pragma weak MPI_Mprobe = PMPI_Mprobe
#pragma weak MPI_Imrecv = PMPI_Imrecv
#pragma weak MPI_Mrecv = PMPI_Mrecv
