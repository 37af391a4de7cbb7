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
#include "pmpi/replay_mpi.h"
#include "pmpi/shim.h"

struct ckpt_mpi_state *ckpt_st;
int ckpt_fast_off;
/* 1 while the program may call MPI from several threads at once (it has
 * MPI at MPI_THREAD_MULTIPLE, or has not initialised it yet): the
 * bookkeeping its threads share (the entries' free list, the message
 * counts, the posting order) then takes locked instructions. Below
 * MULTIPLE one thread at a time calls MPI (the program's promise), and
 * the runtime reads the bookkeeping only with the threads parked: plain
 * stores do. A locked instruction just after MPI's own call waits for
 * MPI's stores (to the peer's shared memory) to drain: three quarters of
 * what posting a send cost (perf, 2026-12-01). Part of the upper half's
 * memory, so a restarted program keeps it. */
int ckpt_app_concurrent = 1;

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
	w->u.c.name = 1; /* SELF is nobody else's business: not in the cut */
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
	st->mrr_on = &ckpt_mrr_on;
	st->mrr_match_peek = ckpt_mrr_match_peek;
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

uint32_t ckpt_vh_get_slow(void)
{
	uint32_t i;

	if (ckpt_app_concurrent)
		ckpt_state_lock();
	i = ckpt_st->free_head;
	if (i) {
		ckpt_st->free_head = ckpt_st->vt[i].next_free;
	} else if (ckpt_st->vt_hwm < CKPT_VT_MAX) {
		i = ckpt_st->vt_hwm++;
	}
	if (ckpt_app_concurrent)
		ckpt_state_unlock();
	if (!i) {
		fprintf(stderr, "ckptmpi: rank %d: more than %u live MPI handles\n",
		        ckpt_st->world_rank, CKPT_VT_MAX);
		abort();
	}
	return i;
}

void ckpt_vh_put_slow(uint32_t i)
{
	struct ckpt_vh *e = &ckpt_st->vt[i];
	if (ckpt_app_concurrent)
		ckpt_state_lock();
	e->kind = CKPT_VK_FREE;
	e->next_free = ckpt_st->free_head;
	ckpt_st->free_head = i;
	if (ckpt_app_concurrent)
		ckpt_state_unlock();
}

struct ckpt_vh *ckpt_vh_alloc(uint32_t kind, uint64_t real, uint32_t fn, uint32_t *idx)
{
	struct ckpt_vh *e = ckpt_vh_take(kind, real, fn, idx);
	memset(&e->u, 0, sizeof e->u);
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
 * and its name for the cut, the same on every member: rank 0 of the new
 * communicator numbers it and tells the others (every member is in the
 * creating call now; the application has not seen the communicator yet,
 * so nothing of its own can be matched by this broadcast). */
static void comm_setup(struct ckpt_vh *e, uint32_t fn)
{
	MPI_Comm c = CKPT_HCAST(MPI_Comm, e->real);
	uint64_t name = 0;
	int rank = -1;

	(void)fn;
	comm_fill(e, c);
	if (e->u.c.inter)
		return; /* refused at a checkpoint: never in the cut */
	CKPT_CALL(CKPT_MPI_MPI_Comm_rank, ckpt_fn_MPI_Comm_rank, c, &rank);
	if (rank == 0) /* world rank + 1 above, a count below: never 1 (the world) */
		name = ((uint64_t)(e->u.c.world[0] + 1) << 32) |
		       (__atomic_add_fetch(&ckpt_st->names_made, 1, __ATOMIC_RELAXED) & 0xffffffffu);
	else
		CKPT_RACE_DELAY_CREATING();
	if (CKPT_CALL(CKPT_MPI_MPI_Bcast, ckpt_fn_MPI_Bcast, &name, 1,
	              CKPT_HCAST(MPI_Datatype, ckpt_in(CKPT_HVAL(MPI_UINT64_T))), 0,
	              c) == MPI_SUCCESS)
		e->u.c.name = name;
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

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finaliser */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* MPI_Comm_idup: nothing can be said over the new communicator before the
 * request completes, so its name comes from its parent's and from the
 * idup's place among the parent's collectives (SEQ), which every member
 * shares; the top bit keeps it apart from numbered names. */
uint64_t ckpt_vh_new_idup(uint64_t real, uint64_t parent_real, uint64_t parent_name,
                          uint64_t seq, uint32_t fn)
{
	uint32_t i;
	struct ckpt_vh *e = ckpt_vh_alloc(CKPT_VK_COMM, real, fn, &i);

	comm_fill(e, CKPT_HCAST(MPI_Comm, parent_real));
	if (parent_name && !e->u.c.inter)
		e->u.c.name = mix64(parent_name ^ mix64(seq)) | (1ull << 63);
	return CKPT_VVAL(ckpt_st, i);
}

/* MPI_Comm_free: a member still behind on the communicator's collectives
 * must get as far as this rank did before a checkpoint can be taken: the
 * count stays with the cut (a zombie) until every member has reported as
 * much (pmpi/lower_cut.c). */
void ckpt_comm_freeing(uint64_t comm)
{
	struct ckpt_vh *e;
	struct ckpt_zombie *z;
	uint32_t n, c;

	if (!CKPT_IS_VIRT(ckpt_st, comm))
		return;
	e = &ckpt_st->vt[CKPT_VIDX(ckpt_st, comm)];
	if (e->kind != CKPT_VK_COMM || !e->u.c.name || !e->u.c.seq || e->u.c.size < 2)
		return;
	ckpt_state_lock();
	n = ckpt_st->nzomb;
	c = n / CKPT_ZOMB_CHUNK;
	if (c >= CKPT_ZOMB_CHUNKS) {
		ckpt_state_unlock();
		if (!ckpt_st->refuse[0])
			snprintf(ckpt_st->refuse, sizeof ckpt_st->refuse,
			         "more than %u communicators were freed since the last checkpoint",
			         CKPT_ZOMB_CHUNK * CKPT_ZOMB_CHUNKS);
		return;
	}
	if (!ckpt_st->zomb[c])
		ckpt_st->zomb[c] = map_upper(CKPT_ZOMB_CHUNK * sizeof *z);
	if (!ckpt_st->zomb[c]) {
		ckpt_state_unlock();
		fprintf(stderr, "ckptmpi: rank %d: out of memory for freed communicators\n",
		        ckpt_st->world_rank);
		abort();
	}
	z = &ckpt_st->zomb[c][n % CKPT_ZOMB_CHUNK];
	z->name = e->u.c.name;
	z->seq = e->u.c.seq;
	z->size = e->u.c.size;
	/* the entry is written before the count that shows it to the cut */
	__atomic_store_n(&ckpt_st->nzomb, n + 1, __ATOMIC_RELEASE);
	ckpt_state_unlock();
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
