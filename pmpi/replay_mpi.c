/* The per-rank MPI replay log (replay_mpi.h): a fixed-size sparse file
 * DIR/replay/mpi.rank-R.log mapped MAP_SHARED, a page of header, then
 * records. Sequential records (completion calls, probes) are consumed in
 * order; a run of identical "not done" answers is one record with a
 * repeat count, so a program spinning on MPI_Test costs a counter.
 * Match records (what a wildcard receive got) are written when the
 * receive is handed to the program but are needed when it is posted:
 * they are out of band, looked up by the receive's number. */
#include "pmpi/replay_mpi.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/rawsys.h"
#include "core/traced.h"
#include "pmpi/call.h"
#include "pmpi/mpi_index.h"
#include "pmpi/shim.h"

#define MRR_MAGIC 0x676f6c69706d6b63ull /* "ckmpilog" */
#define MRR_HEADER 4096
#define MRR_DEFAULT_SIZE (64ull << 20)

enum { MRR_TEST = 1, MRR_PROBE = 2, MRR_MATCH = 3 };

struct mrr_header {
	uint64_t magic;
	uint64_t cap;     /* file size */
	uint64_t used;    /* end of the last record */
	uint64_t records; /* records written */
	int32_t rank, pad;
	uint64_t diverged;
	char why[512];    /* the divergence, said in words */
};

struct mrr_rec {
	uint16_t kind, nidx; /* nidx: TEST, indices (int32) after the record */
	uint32_t fn;         /* the call (CKPT_MPI_MPI_x) */
	int32_t n, arg;      /* TEST: request count; PROBE: asked source and tag */
	int32_t flag;        /* TEST: flag or outcount; PROBE: flag */
	uint32_t repeat;     /* the same outcome again, this many times */
	int32_t source, tag; /* PROBE, MATCH: the message */
	int64_t bytes;
	uint64_t seq;        /* MATCH: the wildcard receive's number */
};

int ckpt_mrr_on;
static struct mrr_header *hdr;      /* the mapping: shared, survives restarts */
static char path[4096];
static int replay_given;            /* CKPTMPI_MPI_REPLAY: the log must exist */
/* private, restored with a checkpoint: where this rank stands */
static uint64_t cur;                /* the current sequential record (0: none yet) */
static uint32_t cur_used;           /* its instances consumed */
static uint64_t mine_end;           /* hdr->used after our own last append */
static uint32_t wild_seq;
static volatile int lock_word;
static uint32_t epoch_seen;         /* the restart's ask this rank follows (vstate.h) */

static void lock(void)
{
	while (__atomic_exchange_n(&lock_word, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(&lock_word, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
}
static void unlock(void) { __atomic_store_n(&lock_word, 0, __ATOMIC_RELEASE); }

__attribute__((constructor)) static void mrr_env(void)
{
	const char *rec = getenv("CKPTMPI_MPI_RECORD"), *rep = getenv("CKPTMPI_MPI_REPLAY");
	if (rep && *rep && strcmp(rep, "0") && strcmp(rep, "off")) {
		replay_given = 1;
		ckpt_mrr_on = 1;
	} else if (rec && *rec && strcmp(rec, "0") && strcmp(rec, "off")) {
		ckpt_mrr_on = 1;
	}
}

static int rank_now(void) { return ckpt_st ? ckpt_st->world_rank : -1; }

static void say(const char *s) { raw_write_all(2, s, strlen(s)); }

static __attribute__((noreturn)) void open_failed(const char *what)
{
	char msg[4400];
	snprintf(msg, sizeof msg, "ckptmpi[%d]: MPI replay log %s: %s: %s\n", rank_now(), path, what,
	         strerror(errno));
	say(msg);
	_exit(CKPT_MRR_EXIT_DIVERGED);
}

/* Open (replay) or create (record) the rank's log; the first event of a
 * rank calls it, MPI_Init having told the rank. */
static void mrr_open(void)
{
	const char *rep = getenv("CKPTMPI_MPI_REPLAY"), *sz = getenv("CKPTMPI_MPI_REPLAY_SIZE");
	const char *d = getenv("CKPTMPI_DIR");
	uint64_t cap = MRR_DEFAULT_SIZE;
	struct stat st;
	int fd = -1, r = rank_now(), from_cut = 0;
	void *m;

	if (ckpt_st && ckpt_st->mrr_epoch != epoch_seen) {
		/* a restart asked (CKPTMPI_MPI_RECORD/REPLAY given to it): a log
		 * that begins at the cut; wild_seq goes on from the image, the
		 * same in the recording and in every replay */
		epoch_seen = ckpt_st->mrr_epoch;
		replay_given = ckpt_st->mrr_replay;
		rep = d = ckpt_st->mrr_dir;
		from_cut = 1;
		cur = 0;
		cur_used = 0;
		mine_end = 0;
	}

	if (replay_given) {
		/* a checkpoint directory (DIR/replay/...) or the replay directory itself */
		snprintf(path, sizeof path, "%s/replay/mpi.rank-%d.log", rep, r);
		if (access(path, F_OK))
			snprintf(path, sizeof path, "%s/mpi.rank-%d.log", rep, r);
		fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		/* a replay from the cut whose recording launch was ended before
		 * this rank's first MPI call (a debugger going back from a stop
		 * before it): nothing was decided, nothing to replay; live from
		 * the cut, recorded, as that launch ran */
		if (fd < 0 && errno == ENOENT && from_cut)
			replay_given = 0;
		else if (fd < 0)
			open_failed("cannot open (CKPTMPI_MPI_REPLAY)");
	}
	if (replay_given) {
		if (fstat(fd, &st))
			open_failed("fstat");
		cap = (uint64_t)st.st_size;
		if (cap < MRR_HEADER) {
			errno = EINVAL;
			open_failed("not an MPI replay log");
		}
	} else {
		char dir[4000];
		if (sz && *sz) {
			char *end;
			unsigned long long v = strtoull(sz, &end, 10);
			if (*end == 'M' || *end == 'm')
				v <<= 20;
			if (v >= 1ull << 20)
				cap = v;
		}
		snprintf(dir, sizeof dir, "%s/replay", d && *d ? d : ".");
		if (mkdir(dir, 0700) && errno != EEXIST)
			open_failed("cannot make the directory");
		snprintf(path, sizeof path, "%s/mpi.rank-%d.log", dir, r);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			open_failed("cannot create (CKPTMPI_MPI_RECORD)");
		if (ftruncate(fd, (off_t)cap))
			open_failed("ftruncate");
	}
	m = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		open_failed("mmap");
	close(fd);
	if (replay_given) {
		struct mrr_header *h = m;
		if (h->magic != MRR_MAGIC || h->cap != cap || h->used > cap || h->used < MRR_HEADER) {
			errno = EINVAL;
			open_failed("not an MPI replay log");
		}
		if (h->rank != r) {
			errno = EINVAL;
			open_failed("written by another rank");
		}
		hdr = h;
		return;
	}
	hdr = m;
	hdr->cap = cap;
	hdr->rank = r;
	hdr->used = MRR_HEADER;
	mine_end = MRR_HEADER;
	hdr->magic = MRR_MAGIC;
}

static inline void ensure_open(void)
{
	if (__builtin_expect(!hdr || (ckpt_st && ckpt_st->mrr_epoch != epoch_seen), 0))
		mrr_open();
}

static struct mrr_rec *at(uint64_t off) { return (struct mrr_rec *)(void *)((char *)hdr + off); }
static uint64_t rec_size(const struct mrr_rec *r)
{
	return sizeof *r + (((size_t)r->nidx * 4 + 7) & ~(size_t)7);
}

/* The next sequential record after `cur` (MATCH records are passed), 0
 * when the log holds none. */
static uint64_t next_seq(void)
{
	uint64_t o = cur ? cur + rec_size(at(cur)) : MRR_HEADER;
	uint64_t end = __atomic_load_n(&hdr->used, __ATOMIC_ACQUIRE);
	while (o + sizeof(struct mrr_rec) <= end && at(o)->kind == MRR_MATCH)
		o += rec_size(at(o));
	return o + sizeof(struct mrr_rec) <= end ? o : 0;
}

/* The record the next event replays, or NULL (past the end: record). */
static struct mrr_rec *replay_peek(void)
{
	uint64_t o;
	if (cur && cur_used < at(cur)->repeat + 1)
		return at(cur);
	o = next_seq();
	if (!o)
		return NULL;
	cur = o;
	cur_used = 0;
	return at(cur);
}

static uint64_t position(void) { return cur ? (cur - MRR_HEADER) : 0; }

static struct mrr_rec *append(size_t extra)
{
	uint64_t o = hdr->used;
	struct mrr_rec *r;
	if (o + sizeof *r + extra > hdr->cap) {
		char msg[4400];
		snprintf(msg, sizeof msg,
		         "ckptmpi[%d]: MPI replay log %s is full (CKPTMPI_MPI_REPLAY_SIZE): nothing "
		         "more is recorded\n", rank_now(), path);
		say(msg);
		ckpt_mrr_on = 0;
		return NULL;
	}
	r = at(o);
	memset(r, 0, sizeof *r);
	return r;
}

static void appended(struct mrr_rec *r)
{
	uint64_t end = (uint64_t)((char *)r - (char *)hdr) + rec_size(r);
	hdr->records++;
	__atomic_store_n(&hdr->used, end, __ATOMIC_RELEASE);
	mine_end = end;
}

static void test_desc(char *out, size_t len, uint32_t fn, int n)
{
	snprintf(out, len, "%s(%d requests)", fn < CKPT_MPI_NFUNCS ? ckpt_mpi_names[fn] : "?", n);
}

static void rec_desc(char *out, size_t len, const struct mrr_rec *r)
{
	const char *name = r->fn < CKPT_MPI_NFUNCS ? ckpt_mpi_names[r->fn] : "?";
	if (r->kind == MRR_TEST)
		snprintf(out, len, "%s(%d requests) -> %d", name, r->n, r->flag);
	else
		snprintf(out, len, "%s(source %d, tag %d) -> flag %d, from %d tag %d, %lld bytes", name,
		         r->n, r->arg, r->flag, r->source, r->tag, (long long)r->bytes);
}

/* ---- wildcard receives ---- */

uint32_t ckpt_mrr_wild_seq(void)
{
	return __atomic_add_fetch(&wild_seq, 1, __ATOMIC_RELAXED) & CKPT_MRR_SEQ;
}

static struct mrr_rec *match_lookup(uint32_t seq, uint64_t from)
{
	uint64_t end = __atomic_load_n(&hdr->used, __ATOMIC_ACQUIRE);
	for (uint64_t o = from; o + sizeof(struct mrr_rec) <= end; o += rec_size(at(o)))
		if (at(o)->kind == MRR_MATCH && at(o)->seq == seq)
			return at(o);
	return NULL;
}

/* The recorded match of wildcard receive SEQ: 1 and *r, 0 (a replay
 * whose log does not hold it) or -1 (recording). The caller holds the lock,
 * or has every program thread stopped (ckpt_mrr_match_peek). */
static int match_answer(uint32_t seq, struct mrr_rec **r)
{
	/* the log holds more than this incarnation wrote: a replay */
	int replaying = __atomic_load_n(&hdr->used, __ATOMIC_ACQUIRE) != mine_end;

	*r = replaying ? match_lookup(seq, MRR_HEADER) : NULL;
	return *r ? 1 : replaying ? 0 : -1;
}

int ckpt_mrr_match_find(uint32_t seq, int *source, int *tag, int64_t *bytes)
{
	struct mrr_rec *r;
	int f;

	ensure_open();
	lock();
	f = match_answer(seq, &r);
	if (r) {
		*source = r->source;
		*tag = r->tag;
		*bytes = r->bytes;
	}
	unlock();
	return f;
}

int ckpt_mrr_match_peek(uint32_t seq, int *source, int *tag)
{
	struct mrr_rec *r;
	int f;

	/* without the lock: the program's threads are stopped, and one may
	 * hold it (stopped inside a recorder, or restored so): records up to
	 * `used` are whole; mine_end, stale in the middle of an append, can
	 * only make a recording rank look (and find nothing) */
	if (!hdr || (ckpt_st && ckpt_st->mrr_epoch != epoch_seen))
		return -1;
	f = match_answer(seq, &r);
	if (r) {
		*source = r->source;
		*tag = r->tag;
	}
	return f;
}

void ckpt_mrr_match_done(uint32_t seq, int source, int tag, int64_t bytes)
{
	struct mrr_rec *r;
	ensure_open();
	lock();
	r = hdr->used != mine_end ? match_lookup(seq, MRR_HEADER) : NULL;
	if (r) {
		if (r->source != source || r->tag != tag || r->bytes != bytes) {
			struct mrr_rec want = *r;
			uint64_t pos = (uint64_t)((char *)r - (char *)hdr) - MRR_HEADER;
			unlock();
			ckpt_mrr_diverged(CKPT_MPI_MPI_Recv,
			                  "wildcard receive %u got a message from %d tag %d, %lld bytes "
			                  "where the recorded run got one from %d tag %d, %lld bytes "
			                  "(record at offset %llu",
			                  seq, source, tag, (long long)bytes, want.source, want.tag,
			                  (long long)want.bytes, (unsigned long long)pos);
			return;
		}
	} else if ((r = append(0))) {
		r->kind = MRR_MATCH;
		r->fn = CKPT_MPI_MPI_Recv;
		r->seq = seq;
		r->source = source;
		r->tag = tag;
		r->bytes = bytes;
		appended(r);
	}
	unlock();
}

/* ---- completion calls ---- */

int ckpt_mrr_test_replay(uint32_t fn, int n, int *flag, int *idx, int cap, int *nidx)
{
	struct mrr_rec *r, want;
	char seen[128], rec[160];
	uint64_t pos;

	ensure_open();
	lock();
	r = replay_peek();
	if (!r) {
		unlock();
		return 0;
	}
	if (r->kind != MRR_TEST || r->fn != fn || r->n != n || r->nidx > cap) {
		want = *r;
		pos = position();
		unlock();
		test_desc(seen, sizeof seen, fn, n);
		rec_desc(rec, sizeof rec, &want);
		ckpt_mrr_diverged(fn, "the program called %s where the recorded run called %s (record "
		                  "at offset %llu", seen, rec, (unsigned long long)pos);
		return 0;
	}
	*flag = r->flag;
	*nidx = r->nidx;
	if (r->nidx)
		memcpy(idx, r + 1, (size_t)r->nidx * 4);
	cur_used++;
	unlock();
	return 1;
}

void ckpt_mrr_test_record(uint32_t fn, int n, int flag, const int *idx, int nidx)
{
	struct mrr_rec *r;
	ensure_open();
	lock();
	/* a checkpoint came between the call and this record: the log holds
	 * it already (written after the checkpoint), the restart replays past it */
	if ((r = replay_peek())) {
		if (r->kind == MRR_TEST && r->fn == fn && r->n == n && r->flag == flag &&
		    r->nidx == nidx && (!nidx || !memcmp(r + 1, idx, (size_t)nidx * 4))) {
			cur_used++;
			unlock();
			return;
		}
		struct mrr_rec want = *r;
		char seen[128], rec[160];
		uint64_t pos = position();
		unlock();
		test_desc(seen, sizeof seen, fn, n);
		rec_desc(rec, sizeof rec, &want);
		ckpt_mrr_diverged(fn, "the program's %s answered %d where the recorded run's %s (record "
		                  "at offset %llu", seen, flag, rec, (unsigned long long)pos);
		return;
	}
	/* the same "nothing yet" as the last record: one more of it */
	if (cur && !nidx && hdr->used == mine_end) {
		r = at(cur);
		if (r->kind == MRR_TEST && r->fn == fn && r->n == n && r->flag == flag && !r->nidx &&
		    cur_used == r->repeat + 1) {
			r->repeat++;
			cur_used++;
			unlock();
			return;
		}
	}
	if ((r = append((size_t)nidx * 4 + 8))) {
		r->kind = MRR_TEST;
		r->fn = fn;
		r->n = n;
		r->flag = flag;
		r->nidx = (uint16_t)nidx;
		if (nidx)
			memcpy(r + 1, idx, (size_t)nidx * 4);
		cur = (uint64_t)((char *)r - (char *)hdr);
		cur_used = 1;
		appended(r);
	}
	unlock();
}

/* ---- probes ---- */

int ckpt_mrr_probe_replay(uint32_t fn, int src, int tag, int *flag, int *source, int *rtag,
                          int64_t *bytes)
{
	struct mrr_rec *r, want;
	char rec[160];
	uint64_t pos;

	ensure_open();
	lock();
	r = replay_peek();
	if (!r) {
		unlock();
		return 0;
	}
	if (r->kind != MRR_PROBE || r->fn != fn || r->n != src || r->arg != tag) {
		want = *r;
		pos = position();
		unlock();
		rec_desc(rec, sizeof rec, &want);
		ckpt_mrr_diverged(fn, "the program called %s(source %d, tag %d) where the recorded run "
		                  "called %s (record at offset %llu", ckpt_mpi_names[fn], src, tag, rec,
		                  (unsigned long long)pos);
		return 0;
	}
	*flag = r->flag;
	*source = r->source;
	*rtag = r->tag;
	*bytes = r->bytes;
	cur_used++;
	unlock();
	return 1;
}

void ckpt_mrr_probe_record(uint32_t fn, int src, int tag, int flag, int source, int rtag,
                           int64_t bytes)
{
	struct mrr_rec *r;
	if (!flag)
		source = rtag = 0, bytes = 0;
	ensure_open();
	lock();
	/* as in ckpt_mrr_test_record: recorded already after a checkpoint */
	if ((r = replay_peek())) {
		if (r->kind == MRR_PROBE && r->fn == fn && r->n == src && r->arg == tag &&
		    r->flag == flag && r->source == source && r->tag == rtag && r->bytes == bytes) {
			cur_used++;
			unlock();
			return;
		}
		struct mrr_rec want = *r;
		char rec[160];
		uint64_t pos = position();
		unlock();
		rec_desc(rec, sizeof rec, &want);
		ckpt_mrr_diverged(fn, "the program's %s(source %d, tag %d) found flag %d, from %d tag %d "
		                  "where the recorded run's %s (record at offset %llu",
		                  ckpt_mpi_names[fn], src, tag, flag, source, rtag, rec,
		                  (unsigned long long)pos);
		return;
	}
	if (cur && !flag && hdr->used == mine_end) {
		r = at(cur);
		if (r->kind == MRR_PROBE && r->fn == fn && r->n == src && r->arg == tag && !r->flag &&
		    cur_used == r->repeat + 1) {
			r->repeat++;
			cur_used++;
			unlock();
			return;
		}
	}
	if ((r = append(0))) {
		r->kind = MRR_PROBE;
		r->fn = fn;
		r->n = src;
		r->arg = tag;
		r->flag = flag;
		r->source = source;
		r->tag = rtag;
		r->bytes = bytes;
		cur = (uint64_t)((char *)r - (char *)hdr);
		cur_used = 1;
		appended(r);
	}
	unlock();
}

/* ---- divergence ---- */

static const char *volatile last_why;

__attribute__((noinline)) void ckptmpi_mpi_replay_diverged(const char *why)
{
	last_why = why;
	__asm__ volatile("" ::: "memory");
}

void ckpt_mrr_diverged(uint32_t fn, const char *fmt, ...)
{
	char why[512], msg[5000];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	/* WHY ends in "(record at offset N" when it knows the position */
	snprintf(msg, sizeof msg, "ckptmpi[%d]: MPI replay diverged in %s, %s%slog %s)\n", rank_now(),
	         fn < CKPT_MPI_NFUNCS ? ckpt_mpi_names[fn] : "?", why,
	         strstr(why, "(record at offset") ? ", " : " (", path);
	say(msg);
	if (hdr) {
		memcpy(hdr->why, why, sizeof hdr->why);
		__atomic_fetch_add(&hdr->diverged, 1, __ATOMIC_RELEASE);
	}
	ckptmpi_mpi_replay_diverged(why);
	if (!process_traced())
		_exit(CKPT_MRR_EXIT_DIVERGED);
	raise(SIGTRAP);
	/* the debugger let it go on: live from here, recorded after the
	 * last record this rank replayed */
	lock();
	if (hdr) {
		uint64_t o = cur ? cur + rec_size(at(cur)) : MRR_HEADER;
		hdr->used = o;
		mine_end = o;
	}
	unlock();
}
