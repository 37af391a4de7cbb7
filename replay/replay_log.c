/* The replay log: a fixed-size file mapped MAP_SHARED (see replay_log.h). */
#include "replay/replay_log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/rawsys.h"

#define REPLAY_MAGIC 0x79616c7065726b63ull /* "ckreplay" */
#define REPLAY_HEADER 4096
#define REPLAY_DEFAULT_SIZE (256ull << 20)

/* The first page of the file; the records follow. The GDB extension
 * (tools/gdb/ckptmpi_reverse.py) reads it from the file. */
struct replay_header {
	uint64_t magic;
	uint64_t cap;        /* file size */
	uint64_t used;       /* end of the last record: the furthest point recorded */
	uint64_t records;    /* records up to used */
	uint64_t diverged;   /* divergences so far */
	uint64_t diverged_at; /* the record index of the last one */
	uint64_t full;       /* records were dropped: the log is full */
	char why[512];       /* the last divergence, said in words */
};

static struct replay_header *hdr; /* the mapping (shared, survives restarts) */
static uint64_t off = REPLAY_HEADER; /* next record: private, restored with the checkpoint */
static uint64_t index_;              /* its number */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void say(const char *s) { raw_write_all(2, s, strlen(s)); }

/* A %r in CKPTMPI_REPLAY_LOG stands for the rank the MPI launcher gave the
 * process: every rank of a job its own log. */
static const char *log_path(char *buf, size_t len)
{
	const char *path = getenv("CKPTMPI_REPLAY_LOG"), *pct, *rank;

	if (!path || !(pct = strstr(path, "%r")))
		return path;
	rank = getenv("OMPI_COMM_WORLD_RANK");
	if (!rank)
		rank = getenv("PMIX_RANK");
	if (!rank)
		rank = getenv("PMI_RANK");
	snprintf(buf, len, "%.*s%s%s", (int)(pct - path), path, rank ? rank : "0", pct + 2);
	return buf;
}

static int switch_on(const char *v) { return v && *v && strcmp(v, "0") && strcmp(v, "off"); }

__attribute__((constructor(101))) static void replay_open(void)
{
	const char *sz = getenv("CKPTMPI_REPLAY_SIZE");
	/* CKPTMPI_REPLAY_AGAIN: a fresh start that replays the log instead of
	 * recording anew (a debugger relaunching an MPI job from its start) */
	int again = switch_on(getenv("CKPTMPI_REPLAY_AGAIN"));
	uint64_t cap = REPLAY_DEFAULT_SIZE;
	char msg[4300], buf[4096];
	const char *path = log_path(buf, sizeof buf);
	void *m;
	int fd;

	if (!path || !*path)
		return;
	if (sz && *sz) {
		char *end;
		unsigned long long v = strtoull(sz, &end, 10);
		if (*end == 'M' || *end == 'm')
			v <<= 20;
		if (v >= 1ull << 20)
			cap = v;
	}
	if (again && (fd = open(path, O_RDWR | O_CLOEXEC)) >= 0) {
		off_t size = lseek(fd, 0, SEEK_END);
		m = size >= REPLAY_HEADER ? mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
		                                 MAP_SHARED, fd, 0)
		                          : MAP_FAILED;
		close(fd);
		if (m != MAP_FAILED && ((struct replay_header *)m)->magic == REPLAY_MAGIC &&
		    ((struct replay_header *)m)->cap == (uint64_t)size) {
			hdr = m;
			return;
		}
		if (m != MAP_FAILED)
			munmap(m, (size_t)size);
		snprintf(msg, sizeof msg, "ckptmpi-replay: %s: not a replay log: recorded anew\n",
		         path);
		say(msg);
	}
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || ftruncate(fd, (off_t)cap)) {
		snprintf(msg, sizeof msg, "ckptmpi-replay: %s: %s: nothing is recorded\n", path,
		         strerror(errno));
		say(msg);
		if (fd >= 0)
			close(fd);
		return;
	}
	m = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		snprintf(msg, sizeof msg, "ckptmpi-replay: mmap %s: %s: nothing is recorded\n", path,
		         strerror(errno));
		say(msg);
		return;
	}
	hdr = m;
	hdr->cap = cap;
	hdr->used = REPLAY_HEADER;
	hdr->magic = REPLAY_MAGIC;
}

int replay_on(void) { return hdr != NULL; }

static const char *kind_name(uint32_t k)
{
	switch (k) {
	case REPLAY_READ: return "read";
	case REPLAY_CLOCK: return "clock_gettime";
	case REPLAY_GETTIMEOFDAY: return "gettimeofday";
	case REPLAY_TIME: return "time";
	case REPLAY_GETRANDOM: return "getrandom";
	}
	return "?";
}

static void describe(char *out, size_t len, uint32_t kind, int64_t a, int64_t b)
{
	switch (kind) {
	case REPLAY_READ:
		snprintf(out, len, "read(fd %lld, %lld bytes)", (long long)a, (long long)b);
		break;
	case REPLAY_CLOCK:
		snprintf(out, len, "clock_gettime(clock %lld)", (long long)a);
		break;
	case REPLAY_GETRANDOM:
		snprintf(out, len, "getrandom(%lld bytes, flags %#llx)", (long long)a,
		         (unsigned long long)b);
		break;
	default:
		snprintf(out, len, "%s()", kind_name(kind));
	}
}

/* The recorded future cannot happen: say so, drop it, go live. */
static void diverge(const struct replay_rec *r, uint32_t kind, int64_t a, int64_t b)
{
	char want[128], had[128], msg[700];

	describe(want, sizeof want, kind, a, b);
	describe(had, sizeof had, r->kind, r->a, r->b);
	snprintf(hdr->why, sizeof hdr->why,
	         "call %llu: the program called %s where the recorded run called %s",
	         (unsigned long long)index_ + 1, want, had);
	hdr->diverged_at = index_;
	__atomic_fetch_add(&hdr->diverged, 1, __ATOMIC_RELEASE);
	hdr->used = off;
	hdr->records = index_;
	snprintf(msg, sizeof msg,
	         "ckptmpi-replay: the re-execution diverged from the recorded run (%s); it runs "
	         "live from here\n", hdr->why);
	say(msg);
	ckptmpi_replay_diverged(hdr->why);
}

/* Called at a divergence, with it said in words: `ckptmpi debug` stops
 * the program here (a breakpoint of its own). */
static const char *volatile last_why;

__attribute__((noinline)) void ckptmpi_replay_diverged(const char *why)
{
	last_why = why;
}

static size_t padded(size_t n) { return (n + 7) & ~(size_t)7; }

int replay_next(uint32_t kind, int64_t a, int64_t b, struct replay_rec *out, void *data,
                size_t cap)
{
	struct replay_rec r;
	int hit = 0;

	pthread_mutex_lock(&lock);
	if (off + sizeof r <= hdr->used) {
		memcpy(&r, (char *)hdr + off, sizeof r);
		if (r.kind != kind || r.a != a || r.b != b || r.len > cap) {
			diverge(&r, kind, a, b);
		} else {
			*out = r;
			memcpy(data, (char *)hdr + off + sizeof r, r.len);
			off += sizeof r + padded(r.len);
			index_++;
			hit = 1;
		}
	}
	pthread_mutex_unlock(&lock);
	return hit;
}

void replay_record(uint32_t kind, int64_t a, int64_t b, int64_t ret, int err, const void *data,
                   size_t len)
{
	struct replay_rec r = {kind, (uint32_t)len, a, b, ret, err, 0};

	pthread_mutex_lock(&lock);
	if (off < hdr->used) {
		/* another thread's record came in between: a different
		 * interleaving than the recorded one */
		diverge((struct replay_rec *)(void *)((char *)hdr + off), kind, a, b);
	}
	if (off + sizeof r + padded(len) > hdr->cap) {
		if (!hdr->full)
			say("ckptmpi-replay: the replay log is full (CKPTMPI_REPLAY_SIZE): what the "
			    "program reads from here on is not recorded\n");
		hdr->full = 1;
	} else {
		memcpy((char *)hdr + off, &r, sizeof r);
		if (len)
			memcpy((char *)hdr + off + sizeof r, data, len);
		off += sizeof r + padded(len);
		index_++;
		hdr->records = index_;
		__atomic_store_n(&hdr->used, off, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&lock);
}
