/* Upper half: the virtual-handle table, the creation log and the
 * collective counters of pmpi/vstate.h.
 *
 * Everything is in memory the shim maps itself (so it is saved with the
 * application) and is changed under one spin lock: creations and frees
 * are rare next to communication, and requests take the lock only to get
 * and return an entry. */
#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mpi.h>

#include "core/link.h"
#include "pmpi/call.h"
#include "pmpi/mpi_fntypes.h"
#include "pmpi/mpi_index.h"
#include "pmpi/shim.h"

struct ckpt_mpi_state *ckpt_st;
int ckpt_fast_off;

void ckpt_state_lock(void)
{
	while (__atomic_exchange_n(&ckpt_st->lock, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&ckpt_st->lock, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
}

void ckpt_state_unlock(void) { __atomic_store_n(&ckpt_st->lock, 0, __ATOMIC_RELEASE); }

static void *map_upper(size_t bytes)
{
	/* reserved, never committed until touched: untouched pages cost
	 * nothing in memory or in the image */
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void comm_setup_world_self(void)
{
	struct ckpt_vh *w = &ckpt_st->vt[CKPT_VT_WORLD], *s = &ckpt_st->vt[CKPT_VT_SELF];
	int n = ckpt_st->world_size;

	w->kind = s->kind = CKPT_VK_COMM;
	w->log = s->log = 0;
	w->real = ckpt_st->world_real;
	s->real = ckpt_st->self_real;
	w->u.c.size = n;
	s->u.c.size = 1;
	w->u.c.world = map_upper(sizeof(int32_t) * (size_t)n);
	s->u.c.world = map_upper(sizeof(int32_t));
	for (int i = 0; i < n; i++)
		w->u.c.world[i] = i;
	s->u.c.world[0] = ckpt_st->world_rank;
	/* the world's shadow is the runtime's control communicator; set by
	 * the runtime (ckptmpi_link.mpi_ctl) */
}

int ckpt_state_init(struct ckptmpi_link *link)
{
	struct ckpt_mpi_state *st = mmap((void *)(uintptr_t)CKPT_STATE_ADDR, sizeof *st,
	                                 PROT_READ | PROT_WRITE,
	                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	MPI_Comm world = MPI_COMM_WORLD, self = MPI_COMM_SELF;
	MPI_Request rnull = MPI_REQUEST_NULL;
	MPI_Comm cnull = MPI_COMM_NULL;
	int n = 0, r = 0;

	if (st == MAP_FAILED || (uintptr_t)st != CKPT_STATE_ADDR)
		return -1;
	st->magic = CKPT_STATE_MAGIC;
	st->vt = map_upper(sizeof(struct ckpt_vh) * CKPT_VT_MAX);
	st->log_cap = 1u << 24; /* words: 128 MiB reserved */
	st->log = map_upper(st->log_cap * sizeof(uint64_t));
	if (!st->vt || !st->log)
		return -1;
	st->vt_hwm = CKPT_VT_FIRST;
	ckpt_st = st;
	st->world_upper = CKPT_HVAL(world);
	st->self_upper = CKPT_HVAL(self);
	st->world_real = ckpt_in(CKPT_HVAL(world));
	st->self_real = ckpt_in(CKPT_HVAL(self));
	st->null_comm_real = ckpt_in(CKPT_HVAL(cnull));
	st->null_req_real = ckpt_in(CKPT_HVAL(rnull));
	CKPT_CALL(CKPT_MPI_MPI_Comm_size, ckpt_fn_MPI_Comm_size, CKPT_HCAST(MPI_Comm, st->world_real), &n);
	CKPT_CALL(CKPT_MPI_MPI_Comm_rank, ckpt_fn_MPI_Comm_rank, CKPT_HCAST(MPI_Comm, st->world_real), &r);
	st->world_size = n;
	st->world_rank = r;
	st->sent = map_upper(sizeof(uint64_t) * (size_t)n);
	st->recvd = map_upper(sizeof(uint64_t) * (size_t)n);
	if (!st->sent || !st->recvd)
		return -1;
	comm_setup_world_self();
	/* the collective gate's asymmetric fence (ckpt_coll_enter): the cut
	 * issues membarrier, threads entering a collective only a store */
	ckpt_fast_off = getenv("CKPTMPI_FASTPATH") && !strcmp(getenv("CKPTMPI_FASTPATH"), "0");
	st->coll_asym = !ckpt_fast_off &&
	                syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
	st->tls_lower_fs_off = (int64_t)((uintptr_t)&ckpt_lower_fs - ckpt_get_fs());
	__atomic_store_n(&link->mpi_state, (uint64_t)(uintptr_t)st, __ATOMIC_RELEASE);
	return 0;
}

static uint32_t entry_get(void)
{
	uint32_t i;

	ckpt_state_lock();
	i = ckpt_st->free_head;
	if (i) {
		ckpt_st->free_head = ckpt_st->vt[i].next_free;
	} else if (ckpt_st->vt_hwm < CKPT_VT_MAX) {
		i = ckpt_st->vt_hwm++;
	}
	ckpt_state_unlock();
	if (!i) {
		fprintf(stderr, "ckptmpi: rank %d: more than %u live MPI handles\n",
		        ckpt_st->world_rank, CKPT_VT_MAX);
		abort();
	}
	return i;
}

void ckpt_vh_release(uint32_t i)
{
	struct ckpt_vh *e = &ckpt_st->vt[i];
	if (i < CKPT_VT_FIRST)
		return;
	ckpt_state_lock();
	e->kind = CKPT_VK_FREE;
	e->next_free = ckpt_st->free_head;
	ckpt_st->free_head = i;
	ckpt_state_unlock();
}

struct ckpt_vh *ckpt_vh_alloc(uint32_t kind, uint64_t real, uint32_t fn, uint32_t *idx)
{
	uint32_t i = entry_get();
	struct ckpt_vh *e = &ckpt_st->vt[i];

	memset(&e->u, 0, sizeof e->u);
	e->real = real;
	e->fn = fn;
	e->log = -1;
	e->kind = kind;
	*idx = i;
	return e;
}

/* A communicator's size and ranks in the world, from the lower
 * communicator C (the new one, or the parent of a dup: the same groups). */
static void comm_fill(struct ckpt_vh *e, MPI_Comm c)
{
	MPI_Group g, wg;
	int inter = 0, n = 0, *ranks;

	CKPT_CALL(CKPT_MPI_MPI_Comm_test_inter, ckpt_fn_MPI_Comm_test_inter, c, &inter);
	e->u.c.inter = inter;
	if (inter) {
		CKPT_CALL(CKPT_MPI_MPI_Comm_remote_size, ckpt_fn_MPI_Comm_remote_size, c, &n);
		CKPT_CALL(CKPT_MPI_MPI_Comm_remote_group, ckpt_fn_MPI_Comm_remote_group, c, &g);
	} else {
		CKPT_CALL(CKPT_MPI_MPI_Comm_size, ckpt_fn_MPI_Comm_size, c, &n);
		CKPT_CALL(CKPT_MPI_MPI_Comm_group, ckpt_fn_MPI_Comm_group, c, &g);
	}
	e->u.c.size = n;
	e->u.c.world = map_upper(sizeof(int32_t) * (size_t)(n ? n : 1));
	ranks = map_upper(sizeof(int) * (size_t)(n ? n : 1));
	for (int i = 0; i < n; i++)
		ranks[i] = i;
	CKPT_CALL(CKPT_MPI_MPI_Comm_group, ckpt_fn_MPI_Comm_group,
	          CKPT_HCAST(MPI_Comm, ckpt_st->world_real), &wg);
	CKPT_CALL(CKPT_MPI_MPI_Group_translate_ranks, ckpt_fn_MPI_Group_translate_ranks, g, n, ranks,
	          wg, e->u.c.world);
	munmap(ranks, sizeof(int) * (size_t)(n ? n : 1));
	CKPT_CALL(CKPT_MPI_MPI_Group_free, ckpt_fn_MPI_Group_free, &g);
	CKPT_CALL(CKPT_MPI_MPI_Group_free, ckpt_fn_MPI_Group_free, &wg);
}

/* A communicator created collectively: its size, its ranks in the world
 * and a shadow of ckptmpi's own for agreeing on a cut (made now, while
 * every member is here). */
static void comm_setup(struct ckpt_vh *e, uint32_t fn)
{
	MPI_Comm c = CKPT_HCAST(MPI_Comm, e->real), shadow;

	(void)fn;
	comm_fill(e, c);
	/* a split, not a dup: a dup would copy (and call back for) the
	 * application's attributes */
	if (CKPT_CALL(CKPT_MPI_MPI_Comm_split, ckpt_fn_MPI_Comm_split, c, 0, 0, &shadow) ==
	    MPI_SUCCESS)
		e->u.c.shadow = CKPT_HVAL(shadow);
}

uint64_t ckpt_vh_new(uint32_t kind, uint64_t real, uint32_t fn)
{
	uint64_t up;
	struct ckpt_vh *e;
	uint32_t i;

	if (kind == CKPT_VK_KEYVAL)
		return real;
	/* MPICH gives a collective that completed at once a builtin request
	 * (predefined-looking, not null): it still needs its entry, so that
	 * the completion calls see it and make it null */
	if (ckpt_predef_out(real, &up) && (kind != CKPT_VK_REQUEST || real == ckpt_st->null_req_real))
		return up;
	e = ckpt_vh_alloc(kind, real, fn, &i);
	if (kind == CKPT_VK_COMM)
		comm_setup(e, fn);
	if (kind == CKPT_VK_REQUEST) {
		/* a request made by a call the shim does not follow (a
		 * non-blocking collective, I/O, ...) */
		e->u.r.state = CKPT_RS_ACTIVE;
		e->u.r.rkind = CKPT_RK_OTHER;
	}
	return CKPT_VVAL(ckpt_st, i);
}

/* ---- MPI_Comm_idup: a communicator whose shadow is not made yet ----
 *
 * The new communicator's entry is made at the call (its groups are its
 * parent's); its shadow can only be made once the communicator is
 * complete, which is when the application may use it: at its first
 * collective (every member gets there, in the same order), by a split
 * like any other shadow. Until then the cut does not see the communicator
 * (pmpi/lower_cut.c: no shadow, not live). */
#define IDUP_MAX 1024
static uint32_t idup_pend[IDUP_MAX]; /* entries whose shadow is to be made (0: free slot) */
static volatile int idup_npend;

uint64_t ckpt_vh_new_idup(uint64_t real, uint64_t parent_real, uint32_t fn)
{
	uint32_t i;
	struct ckpt_vh *e = ckpt_vh_alloc(CKPT_VK_COMM, real, fn, &i);
	int k;

	comm_fill(e, CKPT_HCAST(MPI_Comm, parent_real));
	ckpt_state_lock();
	for (k = 0; k < IDUP_MAX && idup_pend[k]; k++)
		;
	if (k < IDUP_MAX) {
		idup_pend[k] = i;
		__atomic_fetch_add(&idup_npend, 1, __ATOMIC_RELEASE);
	}
	ckpt_state_unlock();
	return CKPT_VVAL(ckpt_st, i);
}

/* entry I's shadow is to be made: 1 (and forget it) if so */
static int idup_take(uint32_t i)
{
	int found = 0;

	if (__builtin_expect(!__atomic_load_n(&idup_npend, __ATOMIC_ACQUIRE), 1))
		return 0;
	ckpt_state_lock();
	for (int k = 0; k < IDUP_MAX; k++)
		if (idup_pend[k] == i) {
			idup_pend[k] = 0;
			__atomic_fetch_sub(&idup_npend, 1, __ATOMIC_RELEASE);
			found = 1;
			break;
		}
	ckpt_state_unlock();
	return found;
}

/* the first collective on a communicator made by MPI_Comm_idup */
static void idup_finish(uint32_t i)
{
	struct ckpt_vh *e = &ckpt_st->vt[i];
	MPI_Comm shadow;

	if (!idup_take(i))
		return;
	if (CKPT_CALL(CKPT_MPI_MPI_Comm_split, ckpt_fn_MPI_Comm_split, CKPT_HCAST(MPI_Comm, e->real),
	              0, 0, &shadow) == MPI_SUCCESS)
		e->u.c.shadow = CKPT_HVAL(shadow);
}

/* MPI_Comm_free: the shadow goes with the communicator (each holds one of
 * MPI's context ids: MPICH has 2048), and so does the world-rank map */
void ckpt_comm_freeing(uint64_t comm)
{
	struct ckpt_vh *e;
	uint32_t i;

	if (!CKPT_IS_VIRT(ckpt_st, comm))
		return;
	i = CKPT_VIDX(ckpt_st, comm);
	e = &ckpt_st->vt[i];
	if (e->kind != CKPT_VK_COMM)
		return;
	(void)idup_take(i); /* never used collectively: no shadow */
	if (e->u.c.shadow) {
		MPI_Comm s = CKPT_HCAST(MPI_Comm, e->u.c.shadow);
		e->u.c.shadow = 0;
		CKPT_CALL(CKPT_MPI_MPI_Comm_free, ckpt_fn_MPI_Comm_free, &s);
	}
}

void ckpt_refuse_call(uint32_t fn)
{
	if (!ckpt_st->refuse[0])
		snprintf(ckpt_st->refuse, sizeof ckpt_st->refuse,
		         "%s was called (what it makes or moves is not restored)",
		         ckpt_mpi_names[fn]);
}

uint64_t ckpt_vh_update(uint32_t kind, uint64_t old, uint64_t real, uint32_t fn)
{
	uint64_t up;

	if (kind == CKPT_VK_KEYVAL || !CKPT_IS_VIRT(ckpt_st, old))
		return ckpt_vh_new(kind, real, fn);
	if (ckpt_predef_out(real, &up)) {
		/* MPI freed the object (or completed the request) */
		ckpt_vh_release(CKPT_VIDX(ckpt_st, old));
		return up;
	}
	ckpt_st->vt[CKPT_VIDX(ckpt_st, old)].real = real;
	return old;
}

uint64_t ckpt_vh_upper_of(uint32_t kind, uint64_t real)
{
	static volatile uint32_t last; /* a hint: callbacks see the same type again and again */
	uint64_t up;

	if (ckpt_predef_out(real, &up))
		return up;
	if (last < ckpt_st->vt_hwm && ckpt_st->vt[last].kind == kind && ckpt_st->vt[last].real == real)
		return CKPT_VVAL(ckpt_st, last);
	for (uint32_t i = CKPT_VT_FIRST; i < ckpt_st->vt_hwm; i++)
		if (ckpt_st->vt[i].kind == kind && ckpt_st->vt[i].real == real) {
			last = i;
			return CKPT_VVAL(ckpt_st, i);
		}
	return real;
}

void ckpt_unrestorable(uint32_t fn)
{
	if (!ckpt_st->refuse[0])
		snprintf(ckpt_st->refuse, sizeof ckpt_st->refuse, "%s made an object that is not "
		         "restored yet", ckpt_mpi_names[fn]);
}

void ckpt_keyval_created(uint32_t fn)
{
	if (!ckpt_st->refuse[0])
		snprintf(ckpt_st->refuse, sizeof ckpt_st->refuse,
		         "attribute keys (%s) are not restored yet", ckpt_mpi_names[fn]);
}

/* ---- creation log ---- */

static uint64_t *log_rec;

uint64_t *ckpt_log_begin(uint32_t fn, size_t words)
{
	ckpt_state_lock();
	if (ckpt_st->log_words + 1 + words > ckpt_st->log_cap) {
		ckpt_state_unlock();
		if (!ckpt_st->refuse[0])
			snprintf(ckpt_st->refuse, sizeof ckpt_st->refuse,
			         "the creation log is full (%s)", ckpt_mpi_names[fn]);
		return NULL;
	}
	log_rec = ckpt_st->log + ckpt_st->log_words;
	log_rec[0] = CKPT_LOG_HDR(fn, words);
	return log_rec + 1;
}

void ckpt_log_end(uint64_t *w)
{
	uint64_t *rec = log_rec, words = rec[0] & 0xffffffffu;
	uint32_t n = ckpt_st->nrec;
	uint32_t fn = (uint32_t)(rec[0] >> 32);

	(void)w;
	/* the outputs (the newest entries made by this call) belong to it */
	ckpt_st->log_words += 1 + words;
	ckpt_st->nrec = n + 1;
	for (uint64_t k = 1; k <= words; k++) {
		uint64_t v = rec[k];
		if (CKPT_IS_VIRT(ckpt_st, v) && CKPT_VIDX(ckpt_st, v) < ckpt_st->vt_hwm) {
			struct ckpt_vh *e = &ckpt_st->vt[CKPT_VIDX(ckpt_st, v)];
			if (e->log < 0 && e->fn == fn)
				e->log = (int32_t)n;
		}
	}
	ckpt_state_unlock();
}

uint64_t ckpt_logv(uint64_t h)
{
	return CKPT_IS_VIRT(ckpt_st, h) ? h : ckpt_predef_in(h);
}

/* ---- collectives: counted, and held at a checkpoint's cut ---- */

struct ckpt_vh *ckpt_comm_entry(uint64_t h)
{
	uint64_t real;
	if (CKPT_IS_VIRT(ckpt_st, h))
		return &ckpt_st->vt[CKPT_VIDX(ckpt_st, h)];
	real = ckpt_predef_in(h);
	if (real == ckpt_st->world_real)
		return &ckpt_st->vt[CKPT_VT_WORLD];
	return NULL; /* MPI_COMM_SELF is nobody else's business; null is an error */
}

static void futex_wait(volatile int32_t *w, int32_t v)
{
	syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}

struct ckpt_vh *ckpt_coll_enter_slow(uint64_t comm)
{
	struct ckpt_vh *e = ckpt_comm_entry(comm);

	if (!e)
		return NULL;
	/* A communicator of MPI_Comm_idup gets its shadow at its first
	 * collective (a split: blocking, and no checkpoint can stop a thread
	 * inside it): made only once the gate is passed. The cut does not see
	 * the communicator before (no shadow: its target stays 0), so while a
	 * checkpoint is under way the thread waits here, parkable, instead of
	 * blocking in the split on a member the cut holds at another
	 * communicator's gate. */
	int shadowless = !e->u.c.shadow && e != ckpt_st->vt;
	/* count the entry first, then look at the cut (both sequentially
	 * consistent, as the cut's store of `cut` and its reads of the
	 * counts): either the cut sees this entry, or this thread sees the
	 * cut and takes its entry back until it may pass */
	for (;;) {
		uint64_t n;
		int32_t seq, cut;
		if (__builtin_expect(ckpt_st->coll_asym, 1)) {
			/* one thread at a time enters collectives on a communicator
			 * (MPI-3.1 5.13: the program orders them), so a plain store;
			 * the cut's membarrier after its store of `cut` is the fence
			 * between this store and the load below (pmpi/lower_cut.c) */
			n = __atomic_load_n(&e->u.c.seq, __ATOMIC_RELAXED) + 1;
			__atomic_store_n(&e->u.c.seq, n, __ATOMIC_RELAXED);
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
		} else {
			n = __atomic_add_fetch(&e->u.c.seq, 1, __ATOMIC_SEQ_CST);
		}
		CKPT_RACE_DELAY();
		cut = __atomic_load_n(&ckpt_st->cut, __ATOMIC_SEQ_CST);
		if (__builtin_expect(cut == CKPT_CUT_RUN, 1) ||
		    (cut == CKPT_CUT_RUNON && n <= e->u.c.target)) {
			if (shadowless)
				idup_finish((uint32_t)(e - ckpt_st->vt));
			return e;
		}
		/* a checkpoint is agreeing on where every communicator stops:
		 * enter only collectives before that point */
		seq = __atomic_load_n(&ckpt_st->cut_seq, __ATOMIC_ACQUIRE);
		if (e->u.c.want < n)
			e->u.c.want = n;
		__atomic_fetch_sub(&e->u.c.seq, 1, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&ckpt_st->gated, 1, __ATOMIC_ACQ_REL);
		for (;;) {
			cut = __atomic_load_n(&ckpt_st->cut, __ATOMIC_SEQ_CST);
			if (cut == CKPT_CUT_RUN ||
			    (cut == CKPT_CUT_RUNON && e->u.c.seq < e->u.c.target))
				break;
			futex_wait(&ckpt_st->cut_seq, seq);
			seq = __atomic_load_n(&ckpt_st->cut_seq, __ATOMIC_ACQUIRE);
		}
		__atomic_fetch_sub(&ckpt_st->gated, 1, __ATOMIC_ACQ_REL);
	}
}
