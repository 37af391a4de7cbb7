/* Lower half: the MPI side of a checkpoint and of a restart.
 *
 * A checkpoint of an MPI job (DESIGN.md, "MPI at a checkpoint"):
 *  1. Rank 0 decides and tells every rank (over the control network,
 *     core/ctl_net.h: the runtime uses no MPI beside the running program).
 *  2. Collectives: every communicator agrees on the highest number of
 *     collectives any member has entered (one exchange over the network
 *     per round, communicators known by a name every member gives them);
 *     members behind run on to it, nobody enters one beyond it. A thread
 *     that must pass a later collective to get there raises its target in
 *     the next round. A communicator a rank makes after the round (it
 *     was still inside the creating call) takes the target the round's
 *     reports give its name. No extra barrier while no checkpoint is
 *     asked for.
 *  3. With every rank settled and parked, over MPI (`ctl`, the runtime's
 *     own duplicate of MPI_COMM_WORLD): non-blocking collectives are
 *     completed, pending receives cancelled (to be posted again), and the
 *     messages still in flight — per-peer counts say how many — received
 *     into the queue the shim serves later receives from.
 * The shim's state (pmpi/vstate.h) is in the application's memory, so the
 * image carries it; a restart replays the creation log against the new
 * MPI and posts the cancelled receives again. */
#include <errno.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <limits.h>
#include <mpi.h>

#include "core/image.h"
#include "core/log.h"
#include "core/lowmem.h"
#include "core/park.h"
#include "pmpi/lower_replay.h"
#include "pmpi/replay_mpi.h"
#include "pmpi/mpi_index.h"
#include "pmpi/lower_ctl.h"
#include "storage/mpi_wait.h"
#include "pmpi/lower_job.h"
#include "core/ctl_net.h"
#include "core/procstate.h"

static MPI_Comm ctl = MPI_COMM_NULL;
static struct ckpt_mpi_state *st;
static int my_rank, nranks;
/* each rank's part of a step of the control network (nranks entries) */
static uint32_t *part_lens;

static void reports_drop(void);

/* A restart's steps over the control network run on the main thread (the
 * plugins' restore: this one's, then the verbs shadow's exchange); the
 * control thread takes none meanwhile, or the members' steps would pair
 * up differently (every member takes them in the same order). Set from
 * the start of a restart to the end of every plugin's restore. */
static int restoring;

/* The runtime's communicator, and its control network (core/ctl_net.h):
 * member 0's address goes to every rank over MPI here, before the program
 * runs; from then on the ranks talk over the network while the program
 * runs, and over `ctl` only with every rank's program parked (the drain,
 * the container's write in the pause, a restart). Without the network the
 * job runs on, without checkpoints (runtime_mpi_check says why). */
int runtime_mpi_ctl_init(void)
{
	char blob[CTLNET_BLOB] = "";
	int ok;

	if (MPI_Comm_dup(MPI_COMM_WORLD, &ctl) != MPI_SUCCESS)
		return -1;
	MPI_Comm_rank(ctl, &my_rank);
	MPI_Comm_size(ctl, &nranks);
	/* (CKPTMPI_RESTART is unset by now when a restart starts fresh) */
	__atomic_store_n(&restoring, getenv("CKPTMPI_RESTART") != NULL, __ATOMIC_RELEASE);
	free(part_lens);
	if (!(part_lens = calloc((size_t)nranks, sizeof *part_lens)))
		return -1;
	if (my_rank == 0 && ctlnet_listen(blob, sizeof blob))
		blob[0] = 0;
	if (MPI_Bcast(blob, sizeof blob, MPI_CHAR, 0, ctl) != MPI_SUCCESS)
		return -1;
	blob[sizeof blob - 1] = 0;
	ok = blob[0] && ctlnet_join(my_rank, nranks, blob, procstate_move_lower_fd) == 0;
	if (MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, ctl) != MPI_SUCCESS)
		ok = 0;
	if (!ok) {
		ctlnet_close();
		log_error("the runtime's control network is not up: this job runs without checkpoints "
		          "(see the first rank's message)");
	}
	return 0;
}

int runtime_mpi_rank(void) { return my_rank; }
int runtime_mpi_size(void) { return nranks; }

static struct ckpt_mpi_state *state(void)
{
	extern uint64_t control_link_mpi_state(void);
	if (!st) {
		struct ckpt_mpi_state *s = (void *)(uintptr_t)control_link_mpi_state();
		if (s && s->magic == CKPT_STATE_MAGIC)
			st = s;
	}
	return st;
}

void runtime_mpi_restored(void) { __atomic_store_n(&restoring, 0, __ATOMIC_RELEASE); }

/* The runtime may use MPI until the application's MPI_Finalize is past
 * its barrier (finalizing 2); from its start (1) no checkpoint begins.
 * The shim waits for ctl_busy to drop at each stage. */
int runtime_mpi_usable(void)
{
	if (__atomic_load_n(&restoring, __ATOMIC_ACQUIRE))
		return 0;
	if (!state())
		return 1;
	__atomic_store_n(&st->ctl_busy, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&st->finalizing, __ATOMIC_SEQ_CST) >= 2) {
		__atomic_store_n(&st->ctl_busy, 0, __ATOMIC_SEQ_CST);
		return 0;
	}
	return 1;
}

/* no new checkpoint once the program has begun MPI_Finalize */
int runtime_mpi_may_begin(void)
{
	return !state() || !__atomic_load_n(&st->finalizing, __ATOMIC_SEQ_CST);
}

void runtime_mpi_done(void)
{
	if (st)
		__atomic_store_n(&st->ctl_busy, 0, __ATOMIC_SEQ_CST);
}

/* ---- who starts a checkpoint: over the control network ---- */

void runtime_mpi_request(int why, uint64_t last_gen)
{
	if (ctlnet_request(why, last_gen))
		log_error("cannot pass the checkpoint request on to rank 0");
}

void runtime_mpi_begin(uint64_t gen, int why)
{
	ctlnet_begin(gen, why);
}

int runtime_mpi_poll(uint64_t last_gen, uint64_t *gen, int *why)
{
	return ctlnet_poll(last_gen, gen, why);
}

int runtime_mpi_agree(int ok)
{
	int32_t v = ok != 0;
	return ctlnet_allreduce(&v, 1, CTLNET_MIN) == 0 && v;
}

/* the job's allgather (core/hooks.h): the ranks' tables of a plugin (the
 * verbs shadow's), over the control network */
int runtime_mpi_exchange(const void *mine, size_t len, void *all)
{
	if (len > UINT32_MAX / (size_t)nranks) {
		log_error("an exchange of %zu bytes per rank is too large", len);
		return -1;
	}
	if (ctlnet_allgather(mine, (uint32_t)len, all)) {
		log_error("the exchange of the ranks' tables failed (see the first rank's message)");
		return -1;
	}
	return 0;
}

/* ---- helpers over the shim's state ---- */

static int is_virt(uint64_t h) { return CKPT_IS_VIRT(st, h) && CKPT_VIDX(st, h) < st->vt_hwm; }

static uint64_t lower_of(uint64_t upper)
{
	if (is_virt(upper))
		return st->vt[CKPT_VIDX(st, upper)].real;
	if (upper == st->world_upper)
		return st->world_real;
	if (upper == st->self_upper)
		return st->self_real;
	return upper; /* MPICH: predefined handles are the same */
}

static int world_of(uint64_t comm_upper, int rank)
{
	const struct ckpt_vh *c;
	if (rank < 0)
		return -1;
	if (comm_upper == st->self_upper)
		return st->world_rank;
	c = comm_upper == st->world_upper ? &st->vt[CKPT_VT_WORLD]
	                                  : &st->vt[CKPT_VIDX(st, comm_upper)];
	return rank < c->u.c.size ? c->u.c.world[rank] : -1;
}

static void count(volatile uint64_t *tab, uint64_t comm, int rank)
{
	int w = world_of(comm, rank);
	if (w >= 0)
		tab[w]++;
}

/* The shim's collective gate (pmpi/call.h, ckpt_coll_enter) counts
 * its entry and then looks at `cut`; the cut stores `cut` and then reads
 * the counts: both sequentially consistent, so either the thread sees the
 * hold and backs out, or the cut sees its count. */
static void set_cut(int32_t c)
{
	__atomic_store_n(&st->cut, c, __ATOMIC_SEQ_CST);
	/* threads entering a collective count with a plain store (coll_asym):
	 * this makes every running thread pass a full barrier, so each either
	 * sees the new `cut` or has its count seen by the reads that follow */
	if (st->coll_asym &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
		/* (registered by the shim at start and at a restart; cannot fail
		 * then) a cut without the fence could miss an entry: stop */
		log_error("membarrier failed (%s): the collective cut cannot be made safely",
		          strerror(errno));
		abort();
	}
}

static void wake_gated(void)
{
	__atomic_fetch_add(&st->cut_seq, 1, __ATOMIC_ACQ_REL);
	syscall(SYS_futex, &st->cut_seq, FUTEX_WAKE_PRIVATE, 1 << 30, NULL, NULL, 0);
}

static int is_collective_fn(uint32_t fn)
{
	static const char *const colls[] = {
		"MPI_Ibarrier", "MPI_Ibcast", "MPI_Igather", "MPI_Igatherv", "MPI_Iscatter",
		"MPI_Iscatterv", "MPI_Iallgather", "MPI_Iallgatherv", "MPI_Ialltoall",
		"MPI_Ialltoallv", "MPI_Ialltoallw", "MPI_Ireduce", "MPI_Iallreduce",
		"MPI_Ireduce_scatter", "MPI_Ireduce_scatter_block", "MPI_Iscan", "MPI_Iexscan",
		"MPI_Ineighbor_allgather", "MPI_Ineighbor_allgatherv", "MPI_Ineighbor_alltoall",
		"MPI_Ineighbor_alltoallv", "MPI_Ineighbor_alltoallw",
		/* gated and counted on the parent like a collective (pmpi/upper_special.c) */
		"MPI_Comm_idup", "MPI_Comm_idup_with_info", NULL};
	if (fn >= CKPT_MPI_NFUNCS)
		return 0;
	for (int i = 0; colls[i]; i++)
		if (!strcmp(ckpt_mpi_names[fn], colls[i]))
			return 1;
	return 0;
}

/* A request MPI has not been seen to complete (ACTIVE, flag clear); with
 * rkind OTHER, of a non-blocking collective or of something the cut
 * cannot carry. */
static int req_pending(const struct ckpt_vh *e)
{
	return e->kind == CKPT_VK_REQUEST && e->u.r.state == CKPT_RS_ACTIVE && !e->u.r.flag;
}

/* What the checkpoint cannot carry yet: the first such object's maker. */
static int refusal(char *err, size_t len)
{
	if (st->refuse[0]) {
		snprintf(err, len, "MPI: %s", st->refuse);
		return 1;
	}
	for (uint32_t i = CKPT_VT_FIRST; i < st->vt_hwm; i++) {
		const struct ckpt_vh *e = &st->vt[i];
		if (e->kind == CKPT_VK_FREE || e->kind == CKPT_VK_MESSAGE)
			continue;
		if (e->kind == CKPT_VK_REQUEST) {
			if (req_pending(e) && e->u.r.rkind == CKPT_RK_OTHER && !is_collective_fn(e->fn)) {
				snprintf(err, len, "MPI: a request of %s is pending; not supported yet",
				         ckpt_mpi_names[e->fn]);
				return 1;
			}
			continue;
		}
		if (e->log < 0) {
			log_debug("entry %u kind %u fn %u: no creation record", i, e->kind, e->fn);
			snprintf(err, len, "MPI: an object made by %s cannot be restored yet",
			         e->fn < CKPT_MPI_NFUNCS ? ckpt_mpi_names[e->fn] : "?");
			return 1;
		}
		if (e->kind == CKPT_VK_COMM && e->u.c.inter) {
			snprintf(err, len, "MPI: intercommunicators (%s) are not supported yet",
			         ckpt_mpi_names[e->fn]);
			return 1;
		}
	}
	return 0;
}

/* ---- step 2: the collective cut ---- */

static int comm_live(const struct ckpt_vh *e)
{
	return e->kind == CKPT_VK_COMM && e->u.c.name;
}

/* What a rank reports of a communicator: its name and how far it got. */
struct cut_count {
	uint64_t name, count;
};

/* every rank's reports of the last round, sorted by name */
static struct cut_count *reports;
static size_t nreports;

static int by_name(const void *a, const void *b)
{
	const struct cut_count *x = a, *y = b;
	return (x->name > y->name) - (x->name < y->name);
}

/* the first report of NAME, or NULL */
static const struct cut_count *reports_of(uint64_t name)
{
	size_t lo = 0, hi = nreports;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (reports[mid].name < name)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < nreports && reports[lo].name == name ? &reports[lo] : NULL;
}

static struct ckpt_zombie *zombie(uint32_t k)
{
	return &st->zomb[k / CKPT_ZOMB_CHUNK][k % CKPT_ZOMB_CHUNK];
}

/* Each communicator's target: the highest count the last round's reports
 * give its name. Also for a communicator made after that round: a member
 * still inside the creating call when the ranks reported learns there how
 * far a faster member went on it (say, into its first collective), and
 * must follow, or that member waits for it for ever while it stops at 0.
 * Says whether a target rose (gated threads then look again). */
static int targets_from_reports(int since_round)
{
	int rose = 0;

	for (uint32_t i = 0; i < st->vt_hwm; i++) {
		struct ckpt_vh *e = &st->vt[i];
		const struct cut_count *c;
		uint64_t t = 0, old;
		if (i == CKPT_VT_SELF || !comm_live(e))
			continue;
		for (c = reports_of(e->u.c.name); c && c < reports + nreports &&
		                                  c->name == e->u.c.name; c++)
			if (c->count > t)
				t = c->count;
		old = __atomic_load_n(&e->u.c.target, __ATOMIC_RELAXED);
		if (t == old)
			continue; /* (the common case: no store into a running rank's table) */
		if (t > old) {
			rose = 1;
			if (since_round)
				log_debug("cut: communicator %u (%s), made since the round: target %llu",
				          i, i ? ckpt_mpi_names[e->fn] : "WORLD", (unsigned long long)t);
		}
		__atomic_store_n(&e->u.c.target, t, __ATOMIC_RELEASE);
	}
	return rose;
}

/* One round: every rank reports each communicator it has (and each it
 * freed but others may still owe collectives on) with the collectives
 * entered or wanted; each communicator's target is the highest count
 * reported for its name. One exchange over the control network whatever the ranks'
 * communicators are: a rank that has not made a communicator yet (its
 * creation is still ahead of it on the parent), or freed it already,
 * takes part all the same, which an exchange over each communicator
 * could not ask of it. */
static int agree_targets(void)
{
	uint32_t n = st->vt_hwm, nz = __atomic_load_n(&st->nzomb, __ATOMIC_ACQUIRE);
	struct cut_count *mine = malloc(((size_t)n + nz + 1) * sizeof *mine);
	uint32_t *lens = part_lens;
	void *all = NULL;
	size_t k = 0, total = 0;
	int rc = -1, ok;

	for (uint32_t i = 0; mine && i < n; i++) {
		struct ckpt_vh *e = &st->vt[i];
		uint64_t seq, want;
		if (i == CKPT_VT_SELF || !comm_live(e))
			continue;
		seq = e->u.c.seq;
		want = e->u.c.want;
		mine[k].name = e->u.c.name;
		mine[k++].count = seq > want ? seq : want;
	}
	for (uint32_t z = 0; mine && z < nz; z++) {
		mine[k].name = zombie(z)->name;
		mine[k++].count = zombie(z)->seq;
	}
	ok = mine && k * sizeof *mine <= UINT32_MAX;
	if (!ok)
		log_error("cut: %zu communicators to agree on: no memory, or too many", k);
	/* every rank takes the step, whatever happened here */
	if (ctlnet_allgatherv(ok ? mine : NULL, ok ? (uint32_t)(k * sizeof *mine) : 0, ok, &all, lens))
		goto out;
	for (int r = 0; r < nranks; r++)
		total += lens[r];
	reports_drop();
	reports = all;
	all = NULL;
	nreports = total / sizeof *reports;
	qsort(reports, nreports, sizeof *reports, by_name);
	targets_from_reports(0);
	rc = 0;
out:
	free(all);
	free(mine);
	return rc;
}

/* With every thread parked: a freed communicator every member has
 * reported as far as this rank got on it needs the cut no more. */
static void zombies_prune(void)
{
	uint32_t nz = st->nzomb, kept = 0;

	for (uint32_t z = 0; z < nz; z++) {
		struct ckpt_zombie *zz = zombie(z);
		const struct cut_count *c;
		int32_t there = 0;
		for (c = reports_of(zz->name); c && c < reports + nreports && c->name == zz->name; c++)
			if (c->count >= zz->seq)
				there++;
		if (there >= zz->size)
			continue;
		if (kept != z)
			*zombie(kept) = *zz;
		kept++;
	}
	if (kept != nz)
		log_debug("cut: %u freed communicator(s) settled everywhere, %u kept", nz - kept, kept);
	st->nzomb = kept;
}

static void reports_drop(void)
{
	free(reports);
	reports = NULL;
	nreports = 0;
}

/* every communicator at its target, no thread inside a collective, and
 * none between making an object and recording it */
static int settled(void)
{
	if (__atomic_load_n(&st->creating, __ATOMIC_SEQ_CST))
		return 0;
	for (uint32_t i = 0; i < st->vt_hwm; i++) {
		const struct ckpt_vh *e = &st->vt[i];
		if (i == CKPT_VT_SELF || !comm_live(e))
			continue;
		if (e->u.c.seq < e->u.c.target || e->u.c.done != e->u.c.seq)
			return 0;
	}
	return 1;
}

/* a thread waits to enter a collective beyond its target */
static int wants_more(void)
{
	if (!__atomic_load_n(&st->gated, __ATOMIC_ACQUIRE))
		return 0;
	for (uint32_t i = 0; i < st->vt_hwm; i++) {
		const struct ckpt_vh *e = &st->vt[i];
		if (i != CKPT_VT_SELF && comm_live(e) && e->u.c.want > e->u.c.target)
			return 1;
	}
	return 0;
}

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* when a cut (and, separately, its drain) is given up: CKPTMPI_CUT_TIMEOUT */
static double cut_deadline(void)
{
	const char *t = getenv("CKPTMPI_CUT_TIMEOUT");
	return now_s() + (t ? atof(t) : 120.0);
}

/* A parked rank keeps its MPI moving while it waits for the last vote
 * (the others may still be parking, or one found itself unsettled after
 * parking and runs on). Another rank may be waiting for something only
 * this rank's MPI can advance: a non-blocking collective this rank
 * started (an MPI_Comm_idup, whose MPI_Wait stands between that rank and
 * its target: seen in the storm test, the cut timed out), the rendezvous
 * of a send this rank posted, or a message sent here that needs this rank
 * to match it (a synchronous or rendezvous send). The cut's rounds go over
 * the control network, not MPI, so nothing else calls MPI here. A probe
 * on `ctl` (where nothing is in flight during the cut) drives the
 * progress engine; sends and non-blocking collectives are tested as the
 * drain tests them (a completion sets the entry's flag: seen complete,
 * accounted by the shim or the drain); receives are left to the drain,
 * which finds those MPI completed meanwhile. Only with every thread
 * parked. An error here is MPI's on a request the drain tests again: it
 * is reported there. */
static void progress_parked(void)
{
	int flag = 0, e;
	MPI_Status s;

	if ((e = MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, ctl, &flag, &s)) != MPI_SUCCESS)
		log_debug("cut: MPI_Iprobe on the runtime's communicator: error %d", e);
	for (uint32_t i = CKPT_VT_FIRST; i < st->vt_hwm; i++) {
		struct ckpt_vh *r = &st->vt[i];
		if (!req_pending(r))
			continue;
		if (r->u.r.rkind == CKPT_RK_SEND ||
		    (r->u.r.rkind == CKPT_RK_OTHER && is_collective_fn(r->fn)))
			MPI_Test((MPI_Request *)&r->real, (int *)&r->u.r.flag,
			         (MPI_Status *)r->u.r.status);
	}
}

/* Each round every rank reports one of these; the worst (highest) wins.
 * READY: settled, its threads still running. */
enum { CUT_SETTLED, CUT_READY, CUT_NOT_YET, CUT_PARK_FAILED, CUT_FINALIZING, CUT_TIMEOUT };

/* A rank parks its threads only once every rank is settled (the vote says
 * READY): until then a settled rank runs on, its collectives held at the
 * gate, because a rank still on its way to a target may wait for it, for
 * a message it sends after some computing (a point-to-point dependency
 * the counts do not see: parked at once, it left that rank waiting until
 * CKPTMPI_CUT_TIMEOUT) or for its MPI's progress. A settled rank stays
 * settled while it runs: the gate lets no collective past its target. */
static int cut_collectives(struct park_result *parked, int *is_parked, char *err, size_t len)
{
	double limit = cut_deadline();

	set_cut(CKPT_CUT_HOLD);
	wake_gated();
	for (int round = 0;; round++) {
		int all_settled = 0; /* the last vote: every rank settled */
		if (agree_targets()) {
			snprintf(err, len, "MPI: agreeing on a cut failed");
			return -1;
		}
		set_cut(CKPT_CUT_RUNON);
		wake_gated();
		log_debug("cut round %d", round);
		for (;;) {
			/* v[0]: this rank's outcome, then the worst of every rank's (enum
			 * above); v[1]: whether it wants higher targets, then any rank */
			int32_t v[2] = {CUT_SETTLED, 0};
			int ok;
			if (!*is_parked && targets_from_reports(1))
				wake_gated();
			ok = settled();
			if (ok && !*is_parked && all_settled) {
				if (park_all(parked)) {
					/* sticky: this rank's threads run, its
					 * memory cannot be captured */
					snprintf(err, len, "%s", log_last_error());
					v[0] = CUT_PARK_FAILED;
				} else {
					*is_parked = 1;
					ok = settled();
				}
			}
			if (!ok && *is_parked) {
				park_release();
				*is_parked = 0;
			}
			if (v[0] == CUT_SETTLED)
				v[0] = !ok ? CUT_NOT_YET : *is_parked ? CUT_SETTLED : CUT_READY;
			v[1] = !ok && wants_more();
			if (__atomic_load_n(&st->finalizing, __ATOMIC_SEQ_CST) && v[0] < CUT_FINALIZING)
				v[0] = CUT_FINALIZING;
			if (now_s() > limit && v[0] < CUT_TIMEOUT)
				v[0] = CUT_TIMEOUT;
			if (ctlnet_allreduce(v, 2, CTLNET_MAX))
				v[0] = CUT_TIMEOUT;
			if (v[0] >= CUT_PARK_FAILED) {
				for (uint32_t i = 0; i < st->vt_hwm; i++) {
					const struct ckpt_vh *e = &st->vt[i];
					if (i != CKPT_VT_SELF && comm_live(e) &&
					    (e->u.c.seq < e->u.c.target || e->u.c.done != e->u.c.seq))
						log_info("cut: communicator %u (%s) entered %llu, left %llu, "
						         "target %llu", i, i ? ckpt_mpi_names[e->fn] : "WORLD",
						         (unsigned long long)e->u.c.seq,
						         (unsigned long long)e->u.c.done,
						         (unsigned long long)e->u.c.target);
				}
				if (!err[0] || v[0] == CUT_FINALIZING)
					snprintf(err, len, "%s",
					         v[0] == CUT_TIMEOUT
					                 ? "MPI: no consistent cut within the time limit "
					                   "(CKPTMPI_CUT_TIMEOUT)"
					         : v[0] == CUT_FINALIZING
					                 ? "MPI: the program is finalizing MPI on a rank: "
					                   "no checkpoint"
					                 : "a rank could not stop its threads (see its message)");
				if (*is_parked) {
					park_release();
					*is_parked = 0;
				}
				return -1;
			}
			if (v[0] == CUT_SETTLED)
				return 0;
			all_settled = v[0] == CUT_READY;
			if (all_settled)
				continue; /* park now */
			if (v[1])
				break; /* raise the targets */
			if (*is_parked)
				progress_parked();
			usleep(2000);
		}
	}
}

/* ---- step 3: drain ---- */

static void account(struct ckpt_vh *e)
{
	if (e->u.r.state != CKPT_RS_ACTIVE)
		return;
	e->u.r.state = CKPT_RS_DONE;
	if (e->u.r.rkind == CKPT_RK_RECV) {
		int c = 0;
		MPI_Test_cancelled((MPI_Status *)e->u.r.status, &c);
		if (!c)
			count(st->recvd, e->u.r.comm, ((MPI_Status *)e->u.r.status)->MPI_SOURCE);
	}
}

static struct ckpt_dmsg *dmsg_new(uint64_t bytes)
{
	/* in the application's memory, so the image carries it (and the
	 * shim unmaps it once delivered) */
	return lowmem_map_upper(sizeof(struct ckpt_dmsg) + bytes);
}

static void dq_append(struct ckpt_dmsg *m)
{
	struct ckpt_dmsg **pp = &st->dq_head;
	while (*pp)
		pp = &(*pp)->next;
	m->next = NULL;
	*pp = m;
	st->dq_count++;
}

static int drain_one(uint64_t comm_upper, MPI_Comm c)
{
	MPI_Status s;
	int flag = 0, bytes = 0;
	struct ckpt_dmsg *m;

	if (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, c, &flag, &s) != MPI_SUCCESS || !flag)
		return 0;
	MPI_Get_count(&s, MPI_BYTE, &bytes);
	m = dmsg_new((uint64_t)bytes);
	if (!m)
		return -1;
	m->comm = comm_upper;
	m->source = s.MPI_SOURCE;
	m->tag = s.MPI_TAG;
	m->bytes = (uint64_t)bytes;
	MPI_Recv(m->data, bytes, MPI_BYTE, s.MPI_SOURCE, s.MPI_TAG, c, MPI_STATUS_IGNORE);
	dq_append(m);
	count(st->recvd, comm_upper, s.MPI_SOURCE);
	return 1;
}

/* Messages matched by MPI_Mprobe but not yet received: into the queue. */
static int drain_matched(void)
{
	for (uint32_t i = CKPT_VT_FIRST; i < st->vt_hwm; i++) {
		struct ckpt_vh *e = &st->vt[i];
		struct ckpt_dmsg *m;
		MPI_Message msg;
		if (e->kind != CKPT_VK_MESSAGE || e->u.m.msg)
			continue;
		m = dmsg_new(e->u.m.bytes);
		if (!m)
			return -1;
		msg = CKPT_HCAST(MPI_Message, e->real);
		MPI_Mrecv(m->data, (int)e->u.m.bytes, MPI_BYTE, &msg, MPI_STATUS_IGNORE);
		m->comm = e->u.m.comm;
		m->source = e->u.m.source;
		m->tag = e->u.m.tag;
		m->bytes = e->u.m.bytes;
		e->u.m.msg = m;
		e->real = 0;
		count(st->recvd, m->comm, m->source);
	}
	return 0;
}

/* Everything local: no rank waits for another here. Every thread is
 * parked outside the shim's sections, so each request entry is INACTIVE,
 * ACTIVE (MPI's request not yet seen complete), DONE or (a receive)
 * REPOST from a failed earlier attempt; anything else is a bug. */
static int drain_local(char *err, size_t len)
{
	/* a. collectives every member has entered complete now */
	for (uint32_t i = CKPT_VT_FIRST; i < st->vt_hwm; i++) {
		struct ckpt_vh *e = &st->vt[i];
		if (req_pending(e) && e->u.r.rkind == CKPT_RK_OTHER && is_collective_fn(e->fn)) {
			MPI_Wait((MPI_Request *)&e->real, (MPI_Status *)e->u.r.status);
			e->u.r.flag = 1;
		}
	}
	for (uint32_t i = CKPT_VT_FIRST; i < st->vt_hwm; i++) {
		const struct ckpt_vh *e = &st->vt[i];
		if (e->kind == CKPT_VK_REQUEST && e->u.r.state == CKPT_RS_POSTING) {
			snprintf(err, len, "MPI: internal error: request %u (%s) parked while being "
			         "posted", i, ckpt_mpi_names[e->fn]);
			return -1;
		}
	}
	/* b. pending receives: cancelled, posted again after the checkpoint */
	for (uint32_t i = CKPT_VT_FIRST; i < st->vt_hwm; i++) {
		struct ckpt_vh *e = &st->vt[i];
		int c = 0;
		if (e->kind != CKPT_VK_REQUEST || e->u.r.rkind != CKPT_RK_RECV ||
		    e->u.r.state != CKPT_RS_ACTIVE)
			continue;
		/* cancelled by the program already: once is all (Open MPI 4.1
		 * takes the request out of its queue again on a second cancel,
		 * through stale links: SIGSEGV) */
		if (!e->u.r.cancel)
			MPI_Cancel((MPI_Request *)&e->real);
		MPI_Wait((MPI_Request *)&e->real, (MPI_Status *)e->u.r.status);
		MPI_Test_cancelled((MPI_Status *)e->u.r.status, &c);
		if (c && e->u.r.cancel) {
			/* the program cancelled it itself: it stays cancelled */
			e->u.r.flag = 1;
			e->u.r.state = CKPT_RS_DONE;
		} else if (c) {
			e->u.r.state = CKPT_RS_REPOST;
			e->u.r.flag = 0;
		} else {
			e->u.r.flag = 1;
			account(e);
		}
	}
	if (drain_matched()) {
		snprintf(err, len, "MPI: no memory for drained messages");
		return -1;
	}
	return 0;
}

/* Receive what is still in flight until every count matches; pending
 * sends complete meanwhile. */
static int drain_in_flight(const uint64_t *expect, double limit, char *err, size_t len)
{
	unsigned polls = 0;
	int pending;
	do {
		pending = 0;
		for (int r = 0; r < nranks; r++)
			if (st->recvd[r] < expect[r])
				pending = 1;
		for (uint32_t i = 0; i < st->vt_hwm; i++) {
			struct ckpt_vh *e = &st->vt[i];
			/* every communicator the program has */
			if (e->kind == CKPT_VK_COMM && e->real != st->null_comm_real &&
			    !e->u.c.inter) {
				uint64_t up = i == CKPT_VT_WORLD ? st->world_upper
				            : i == CKPT_VT_SELF  ? st->self_upper
				                                 : CKPT_VVAL(st, i);
				if (drain_one(up, CKPT_HCAST(MPI_Comm, e->real)) < 0) {
					snprintf(err, len, "MPI: no memory for drained messages");
					return -1;
				}
			} else if (e->kind == CKPT_VK_REQUEST && e->u.r.rkind == CKPT_RK_SEND &&
			           e->u.r.state == CKPT_RS_ACTIVE) {
				MPI_Test((MPI_Request *)&e->real, (int *)&e->u.r.flag,
				         (MPI_Status *)e->u.r.status);
				if (e->u.r.flag)
					e->u.r.state = CKPT_RS_DONE;
				else
					pending = 1;
			}
		}
		if (pending && now_s() > limit) {
			for (int r = 0; r < nranks; r++)
				if (st->recvd[r] < expect[r])
					log_info("drain: from rank %d: %llu of %llu message(s) arrived", r,
					         (unsigned long long)st->recvd[r],
					         (unsigned long long)expect[r]);
			snprintf(err, len, "MPI: messages in flight did not arrive within the time "
			         "limit (CKPTMPI_CUT_TIMEOUT)");
			return -1;
		}
		if (pending)
			mpi_poll_backoff(&polls);
	} while (pending);
	return 0;
}

/* The drain: every rank takes every collective step whatever happened
 * locally, and the outcome is agreed on, so a failure on one rank fails
 * the checkpoint on all (none is left waiting in a collective). */
static int drain(char *err, size_t len)
{
	uint64_t *expect = calloc((size_t)nranks, sizeof *expect);
	double limit = cut_deadline();
	int ok;

	ok = expect && drain_local(err, len) == 0;
	if (!expect && !err[0])
		snprintf(err, len, "MPI: no memory for the drain");
	if (!runtime_mpi_agree(ok))
		goto fail;
	/* how many messages each peer sent here */
	if (ctl_alltoall((void *)st->sent, expect, 1, MPI_UINT64_T, ctl) != MPI_SUCCESS) {
		snprintf(err, len, "MPI: exchanging message counts failed");
		ok = 0;
	}
	if (ok)
		ok = drain_in_flight(expect, limit, err, len) == 0;
	if (!runtime_mpi_agree(ok))
		goto fail;
	free(expect);
	log_debug("drained: %d message(s) queued", st->dq_count);
	return 0;
fail:
	if (!err[0])
		snprintf(err, len, "MPI: the drain failed on another rank (see its message)");
	free(expect);
	return -1;
}

int runtime_mpi_quiesce(struct park_result *parked, char *err, size_t len)
{
	int is_parked = 0, ok;

	err[0] = 0;
	if (!state()) {
		/* the program has not loaded the shim: nothing of MPI to keep */
		ok = park_all(parked) == 0;
		if (runtime_mpi_agree(ok))
			return 0;
		if (ok)
			park_release();
		snprintf(err, len, "a rank could not stop its threads (see its message)");
		return -1;
	}
	/* a checkpoint racing MPI_Finalize is given up at once (the rank in
	 * MPI_Finalize waits for its control thread to leave MPI) */
	if (!runtime_mpi_agree(!__atomic_load_n(&st->finalizing, __ATOMIC_SEQ_CST))) {
		snprintf(err, len, "MPI: the program is finalizing MPI on a rank: no checkpoint");
		return -1;
	}
	if (cut_collectives(parked, &is_parked, err, len)) {
		reports_drop();
		set_cut(CKPT_CUT_RUN);
		wake_gated();
		return -1;
	}
	zombies_prune();
	reports_drop();
	/* every thread is parked now, none halfway through making an object */
	ok = !refusal(err, len);
	if (!runtime_mpi_agree(ok)) {
		if (ok)
			snprintf(err, len, "MPI: another rank cannot checkpoint (see its message)");
		goto fail;
	}
	if (drain(err, len))
		goto fail;
	return 0;
fail:
	runtime_mpi_resume(); /* receives the drain cancelled are posted again */
	park_release();
	return -1;
}

/* ---- after the checkpoint (or restart): receives posted again ---- */

static int by_order(const void *a, const void *b)
{
	const struct ckpt_vh *x = *(struct ckpt_vh *const *)a, *y = *(struct ckpt_vh *const *)b;
	return (x->u.r.order > y->u.r.order) - (x->u.r.order < y->u.r.order);
}

static struct ckpt_dmsg *dq_take(uint64_t comm, int src, int tag)
{
	struct ckpt_dmsg **pp;
	for (pp = &st->dq_head; *pp; pp = &(*pp)->next) {
		struct ckpt_dmsg *m = *pp;
		if (ckpt_dmsg_matches(m, comm, src, tag, MPI_ANY_SOURCE, MPI_ANY_TAG)) {
			*pp = m->next;
			st->dq_count--;
			return m;
		}
	}
	return NULL;
}

/* A wildcard receive of an MPI replay: posted again with the source and
 * tag of the message the recorded run gave it, as the cut's other
 * receives are, in their order. Pinned later, when first polled, it would
 * sit behind the wildcard receives posted after it, and one of those,
 * posted again as a wildcard, could take its message first: it would
 * then wait for ever (an MPI_Test loop on the first of several
 * MPI_ANY_SOURCE receives, restarted from a checkpoint taken while they
 * were pending). */
static void repost_pin(struct ckpt_vh *e)
{
	int s, t, f;

	if (!(e->u.r.pad2 & CKPT_MRR_SEQ) || (e->u.r.pad2 & CKPT_MRR_PINNED) || !st->mrr_on ||
	    !*st->mrr_on || !st->mrr_match_peek)
		return;
	f = st->mrr_match_peek(e->u.r.pad2 & CKPT_MRR_SEQ, &s, &t);
	if (f < 0)
		return; /* recording, or pinned when first polled */
	e->u.r.pad2 |= CKPT_MRR_LOOKED;
	if (f == 0)
		return;
	e->u.r.pad2 |= CKPT_MRR_PINNED;
	e->u.r.peer = s;
	e->u.r.tag = t;
}

/* A receive's buffer touched page by page from here (user mode): at a
 * lazy restart its pages come in now, before a peer may write them
 * through the kernel (a single-copy transfer), which cannot wait for a
 * page. Elsewhere they are there already: a read each. */
static void touch_buffer(const struct ckpt_vh *e, MPI_Datatype dt)
{
	MPI_Aint lb = 0, extent = 0, tlb = 0, textent = 0;
	uintptr_t a, end;

	if (e->u.r.count <= 0 || !e->u.r.buf ||
	    MPI_Type_get_extent(dt, &lb, &extent) != MPI_SUCCESS ||
	    MPI_Type_get_true_extent(dt, &tlb, &textent) != MPI_SUCCESS || textent <= 0)
		return;
	a = (uintptr_t)e->u.r.buf + (uintptr_t)tlb;
	end = a + (uintptr_t)((MPI_Aint)(e->u.r.count - 1) * extent + textent);
	if (extent < 0) /* (a negative stride: from the last element) */
		return;
	for (a &= ~(uintptr_t)4095; a < end; a += 4096)
		(void)*(volatile const char *)a;
}

static void repost(struct ckpt_vh *e)
{
	MPI_Datatype dt = CKPT_HCAST(MPI_Datatype, lower_of(e->u.r.datatype));
	MPI_Comm c = CKPT_HCAST(MPI_Comm, lower_of(e->u.r.comm));
	MPI_Status *s = (MPI_Status *)e->u.r.status;
	struct ckpt_dmsg *m;

	repost_pin(e);
	touch_buffer(e, dt);
	m = dq_take(e->u.r.comm, e->u.r.peer, e->u.r.tag);
	if (m) {
		int pos = 0;
		if (m->bytes)
			MPI_Unpack(m->data, (int)m->bytes, &pos, e->u.r.buf, e->u.r.count, dt, c);
		memset(s, 0, sizeof *s);
		s->MPI_SOURCE = m->source;
		s->MPI_TAG = m->tag;
		s->MPI_ERROR = MPI_SUCCESS;
		MPI_Status_set_elements(s, MPI_BYTE, (int)m->bytes);
		munmap(m, sizeof *m + m->bytes);
		e->u.r.flag = 1;
		e->u.r.state = CKPT_RS_DONE;
		return;
	}
	if (e->u.r.persistent)
		MPI_Start((MPI_Request *)&e->real);
	else
		MPI_Irecv(e->u.r.buf, e->u.r.count, dt, e->u.r.peer, e->u.r.tag, c,
		          (MPI_Request *)&e->real);
	e->u.r.flag = 0;
	e->u.r.state = CKPT_RS_ACTIVE;
}

void runtime_mpi_resume(void)
{
	struct ckpt_vh **list;
	size_t n = 0;

	if (!state())
		return;
	list = calloc(st->vt_hwm ? st->vt_hwm : 1, sizeof *list);
	for (uint32_t i = CKPT_VT_FIRST; list && i < st->vt_hwm; i++) {
		struct ckpt_vh *e = &st->vt[i];
		if (e->kind == CKPT_VK_REQUEST && e->u.r.state == CKPT_RS_REPOST)
			list[n++] = e;
	}
	if (list) {
		qsort(list, n, sizeof *list, by_order);
		for (size_t k = 0; k < n; k++)
			repost(list[k]);
	}
	free(list);
	set_cut(CKPT_CUT_RUN);
	wake_gated();
}

/* ---- restart: replay the creation log ---- */

static uint64_t *rp_real;
static uint32_t *rp_kind;

uint64_t ckpt_rp_in(uint64_t v)
{
	if (is_virt(v))
		return rp_real[CKPT_VIDX(st, v)];
	return v; /* logged as the real predefined handle */
}

static void free_real(uint32_t kind, uint64_t real)
{
	switch (kind) {
	case CKPT_VK_COMM: {
		MPI_Comm c = CKPT_HCAST(MPI_Comm, real);
		MPI_Comm_free(&c);
		break;
	}
	case CKPT_VK_DATATYPE: {
		MPI_Datatype t = CKPT_HCAST(MPI_Datatype, real);
		MPI_Type_free(&t);
		break;
	}
	case CKPT_VK_GROUP: {
		MPI_Group g = CKPT_HCAST(MPI_Group, real);
		MPI_Group_free(&g);
		break;
	}
	case CKPT_VK_OP: {
		MPI_Op o = CKPT_HCAST(MPI_Op, real);
		MPI_Op_free(&o);
		break;
	}
	case CKPT_VK_ERRHANDLER: {
		MPI_Errhandler h = CKPT_HCAST(MPI_Errhandler, real);
		MPI_Errhandler_free(&h);
		break;
	}
	case CKPT_VK_INFO: {
		MPI_Info info = CKPT_HCAST(MPI_Info, real);
		MPI_Info_free(&info);
		break;
	}
	}
}

static uint32_t replay_fn;

static uint32_t kind_made_by(uint32_t fn)
{
	const char *n = ckpt_mpi_names[fn];
	if (!strncmp(n, "MPI_Type_", 9))
		return CKPT_VK_DATATYPE;
	if (!strncmp(n, "MPI_Group_", 10) || !strcmp(n, "MPI_Comm_group"))
		return CKPT_VK_GROUP;
	if (!strcmp(n, "MPI_Op_create"))
		return CKPT_VK_OP;
	if (strcasestr(n, "errhandler"))
		return CKPT_VK_ERRHANDLER;
	if (!strncmp(n, "MPI_Info_", 9))
		return CKPT_VK_INFO;
	return CKPT_VK_COMM;
}

void ckpt_rp_out(uint64_t v, uint64_t real)
{
	uint32_t i, kind;
	if (!is_virt(v))
		return;
	i = CKPT_VIDX(st, v);
	kind = kind_made_by(replay_fn);
	if (rp_real[i] && rp_real[i] != real) /* an object freed before the index was reused */
		free_real(rp_kind[i], rp_real[i]);
	rp_real[i] = real;
	rp_kind[i] = kind;
}

static int recreate_persistent(struct ckpt_vh *e)
{
	MPI_Datatype dt = CKPT_HCAST(MPI_Datatype, lower_of(e->u.r.datatype));
	MPI_Comm c = CKPT_HCAST(MPI_Comm, lower_of(e->u.r.comm));
	MPI_Request *r = (MPI_Request *)&e->real;
	void *b = e->u.r.buf;
	int n = e->u.r.count, p = e->u.r.peer, t = e->u.r.tag;

	e->real = 0;
	if (e->u.r.rkind == CKPT_RK_RECV)
		return MPI_Recv_init(b, n, dt, p, t, c, r);
	switch (e->u.r.mode) {
	case CKPT_SM_BUF:
		return MPI_Bsend_init(b, n, dt, p, t, c, r);
	case CKPT_SM_SYNC:
		return MPI_Ssend_init(b, n, dt, p, t, c, r);
	case CKPT_SM_READY:
		return MPI_Rsend_init(b, n, dt, p, t, c, r);
	default:
		return MPI_Send_init(b, n, dt, p, t, c, r);
	}
}

static void mrr_ask_restored(void);

int runtime_mpi_restore(const struct ck_image *img)
{
	int have = 0;
	uint64_t off = 0;

	for (size_t i = 0; i < img->nregions; i++)
		if (img->regions[i].start <= CKPT_STATE_ADDR && CKPT_STATE_ADDR < img->regions[i].end)
			have = 1;
	if (!have)
		return 0; /* the program had not loaded the shim */
	st = (struct ckpt_mpi_state *)(uintptr_t)CKPT_STATE_ADDR;
	if (st->magic != CKPT_STATE_MAGIC) {
		log_error("restart: the MPI state in the image is damaged");
		return -1;
	}
	if (st->world_size != nranks) {
		log_error("restart: the image is of a %d-rank job, this one has %d ranks",
		          st->world_size, nranks);
		return -1;
	}
	/* the collective gate's fence belongs to the process: register this
	 * one, or make the threads count with locked instructions again */
	if (st->coll_asym &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0)
		st->coll_asym = 0;
	/* the lower contexts the threads borrowed died with the old process:
	 * each thread gets a new one at its next MPI call (none from the
	 * free list either) */
	st->n_ctx_free = 0;
	st->ctx_lock = 0;
	for (size_t i = 0; i < img->nthreads; i++)
		if (img->threads[i].fs_base)
			*(uint64_t *)(uintptr_t)(img->threads[i].fs_base + (uint64_t)st->tls_lower_fs_off) = 0;
	rp_real = calloc(st->vt_hwm + 1, sizeof *rp_real);
	rp_kind = calloc(st->vt_hwm + 1, sizeof *rp_kind);
	if (!rp_real || !rp_kind)
		return -1;
	for (uint32_t r = 0; r < st->nrec; r++) {
		uint64_t hdr = st->log[off];
		uint32_t fn = (uint32_t)(hdr >> 32);
		int rc;
		replay_fn = fn;
		rc = ckpt_replay_record(fn, &st->log[off + 1]);
		if (rc != MPI_SUCCESS) {
			log_error("restart: replaying %s (record %u) failed: %d",
			          fn < CKPT_MPI_NFUNCS ? ckpt_mpi_names[fn] : "?", r, rc);
			return -1;
		}
		off += 1 + (hdr & 0xffffffffu);
	}
	/* bind the live entries; what is dead is freed */
	for (uint32_t i = CKPT_VT_FIRST; i < st->vt_hwm; i++) {
		struct ckpt_vh *e = &st->vt[i];
		if (e->kind == CKPT_VK_REQUEST)
			continue;
		if (e->kind == CKPT_VK_MESSAGE || e->kind == CKPT_VK_FREE) {
			if (rp_real[i])
				free_real(rp_kind[i], rp_real[i]);
			continue;
		}
		e->real = rp_real[i];
	}
	/* then the persistent requests, over the new objects */
	for (uint32_t i = CKPT_VT_FIRST; i < st->vt_hwm; i++) {
		struct ckpt_vh *e = &st->vt[i];
		if (e->kind == CKPT_VK_REQUEST && e->u.r.persistent &&
		    recreate_persistent(e) != MPI_SUCCESS) {
			log_error("restart: re-creating a persistent request failed");
			return -1;
		}
	}
	free(rp_real);
	free(rp_kind);
	log_debug("restart: %u creation record(s) replayed", st->nrec);
	{
		extern void control_link_set_mpi_state(uint64_t);
		extern void control_link_set_section(int64_t);
		control_link_set_mpi_state((uint64_t)(uintptr_t)st);
		control_link_set_section(st->section_tls_off);
	}
	mrr_ask_restored();
	runtime_mpi_resume();
	return 0;
}

static int switch_on(const char *v) { return v && *v && strcmp(v, "0") && strcmp(v, "off"); }

/* CKPTMPI_MPI_RECORD or CKPTMPI_MPI_REPLAY given to a restart: the log
 * begins at the cut (a debugger's re-executions from a generation replay
 * what its first run from there recorded). Told to the restored shim
 * through the state: its environment is the image's. */
static void mrr_ask_restored(void)
{
	const char *rec = getenv("CKPTMPI_MPI_RECORD"), *rep = getenv("CKPTMPI_MPI_REPLAY");
	const char *dir = getenv("CKPTMPI_DIR");

	if (!st->mrr_on || !(switch_on(rep) || switch_on(rec)))
		return;
	st->mrr_replay = switch_on(rep);
	snprintf(st->mrr_dir, sizeof st->mrr_dir, "%s",
	         st->mrr_replay ? rep : dir && *dir ? dir : ".");
	st->mrr_epoch++;
	*st->mrr_on = 1;
	log_info("restart: MPI outcomes %s %s", st->mrr_replay ? "replayed from" : "recorded in",
	         st->mrr_dir);
}


MPI_Comm runtime_mpi_ctl(void) { return ctl; }
