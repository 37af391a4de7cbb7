/* Page data read behind the running program (storage/lazy_read.h).
 *
 * The kept chunks of every file (a generation and, for an incremental
 * one, its ancestors: their pages are disjoint) are read by the loader's
 * workers in file order; before each chunk a worker answers the faults
 * waiting on the userfaultfd, reading the touched page's chunk first. A
 * chunk is claimed once (an atomic flag), checked, and placed whole with
 * UFFDIO_COPY, which wakes whoever waits on its pages; a page already
 * there (EEXIST) is skipped. A touched page no chunk holds was never
 * stored: it is zeros. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "storage/chunk_job.h"
#include "storage/container_internal.h"
#include "storage/lazy_read.h"
#include "storage/parallel.h"

#define PAGE 4096ull

/* a kept job, its pieces in address order for the faults */
struct piece { uint64_t addr, len, off; };
struct source {
	struct ck_chunk_job *j;
	uint64_t *kept, nkept;      /* chunk numbers, ascending */
	uint8_t *claimed;           /* per kept chunk */
	struct piece *pieces;       /* spans in address order */
	size_t npieces;
};

static struct {
	int uffd, wp, keeping, refused;
	struct ck_lazy_range *r;
	size_t nr;
	int (*own_fd)(int fd);
	struct source *src;
	size_t nsrc;
	uint64_t pending;
	volatile uint64_t placed, next; /* next: over every source's kept chunks */
	void (*progress)(uint64_t, uint64_t);
	pthread_mutex_t fail_lock;
	char msg[600];
	volatile int failed;
	int streaming;              /* past ck_lazy_stream: chunks in order too */
} L = { .uffd = -1, .fail_lock = PTHREAD_MUTEX_INITIALIZER };

int ck_lazy_begin(int uffd, int wp, const struct ck_lazy_range *ranges, size_t n,
                  int (*own_fd)(int fd))
{
	ck_lazy_reset();
	if (!(L.r = malloc((n ? n : 1) * sizeof *L.r)))
		return -1;
	memcpy(L.r, ranges, n * sizeof *L.r);
	L.nr = n;
	L.uffd = uffd;
	L.wp = wp;
	L.own_fd = own_fd;
	L.keeping = 1;
	return 0;
}

int ck_lazy_keeping(void) { return L.keeping; }
int ck_lazy_refused(void) { return L.refused; }
void ck_lazy_refuse(void) { L.refused = 1; }
void ck_lazy_stop_keeping(void) { L.keeping = 0; }
uint64_t ck_lazy_pending(void) { return L.pending; }

void ck_lazy_reset(void)
{
	for (size_t i = 0; i < L.nsrc; i++) {
		struct source *s = &L.src[i];
		close(s->j->fd);
		free(s->j->chunks);
		free(s->j->spans);
		free((char *)s->j->path);
		free(s->j);
		free(s->kept);
		free(s->claimed);
		free(s->pieces);
	}
	free(L.src);
	free(L.r);
	L.src = NULL;
	L.nsrc = 0;
	L.r = NULL;
	L.nr = 0;
	L.keeping = L.refused = L.streaming = 0;
	L.pending = L.placed = L.next = 0;
	L.uffd = -1;
}

/* the first range ending after addr */
static size_t range_at(uint64_t addr)
{
	size_t lo = 0, hi = L.nr;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (L.r[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int ck_lazy_covers(uint64_t addr, uint64_t len)
{
	uint64_t end = addr + len, in = 0;

	if (!L.nr || !len)
		return 0;
	for (size_t i = range_at(addr); i < L.nr && L.r[i].start < end; i++) {
		uint64_t a = L.r[i].start > addr ? L.r[i].start : addr;
		uint64_t b = L.r[i].end < end ? L.r[i].end : end;

		in += b - a;
	}
	return !in ? 0 : in == len ? 1 : 2;
}

/* UFFDIO_COPY of whole pages; a page already there is skipped */
static int uffd_place(uint64_t dst, const uint8_t *src, uint64_t len)
{
	while (len) {
		struct uffdio_copy c = { .dst = dst, .src = (uint64_t)(uintptr_t)src, .len = len,
		                         .mode = L.wp ? UFFDIO_COPY_MODE_WP : 0 };
		uint64_t done;

		if (ioctl(L.uffd, UFFDIO_COPY, &c) == 0) {
			__atomic_fetch_add(&L.placed, len, __ATOMIC_RELAXED);
			return 0;
		}
		if (errno == EAGAIN || errno == EINTR) {
			done = c.copy > 0 ? (uint64_t)c.copy : 0;
		} else if (errno == EEXIST) {
			/* the pages before it were placed; it is there already */
			done = (c.copy > 0 ? (uint64_t)c.copy : 0) + PAGE;
			struct uffdio_range w = { dst + done - PAGE, PAGE };
			(void)ioctl(L.uffd, UFFDIO_WAKE, &w);
		} else {
			return -1;
		}
		if (done > len)
			done = len;
		__atomic_fetch_add(&L.placed, done, __ATOMIC_RELAXED);
		dst += done;
		src += done;
		len -= done;
	}
	return 0;
}

int ck_lazy_place(uint8_t *dst, const uint8_t *src, uint64_t len)
{
	uint64_t a = (uint64_t)(uintptr_t)dst, end = a + len;

	if (!L.nr) {
		memcpy(dst, src, len);
		return 0;
	}
	while (a < end) {
		size_t i = range_at(a);
		uint64_t b;

		if (i < L.nr && L.r[i].start <= a) {
			b = L.r[i].end < end ? L.r[i].end : end;
			if (uffd_place(a, src + (a - (uint64_t)(uintptr_t)dst), b - a))
				return -1;
		} else {
			b = i < L.nr && L.r[i].start < end ? L.r[i].start : end;
			memcpy((uint8_t *)(uintptr_t)a, src + (a - (uint64_t)(uintptr_t)dst), b - a);
		}
		a = b;
	}
	return 0;
}

static int cmp_piece(const void *x, const void *y)
{
	const struct piece *a = x, *b = y;

	return a->addr < b->addr ? -1 : a->addr > b->addr;
}

int ck_lazy_keep(struct ck_chunk_job *j, const uint64_t *kept, uint64_t n)
{
	struct source *v = realloc(L.src, (L.nsrc + 1) * sizeof *v), *s;
	struct ck_chunk_job *copy = malloc(sizeof *copy);
	int fd = fcntl(j->fd, F_DUPFD_CLOEXEC, 3);

	if (v)
		L.src = v;
	if (!v || !copy || fd < 0 || (L.own_fd && (fd = L.own_fd(fd)) < 0)) {
		free(copy);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	s = &L.src[L.nsrc];
	memset(s, 0, sizeof *s);
	*copy = *j;
	copy->c = NULL;
	copy->fd = fd;
	copy->order = NULL;
	copy->path = strdup(j->path);
	pthread_mutex_init(&copy->lock, NULL);
	s->j = copy;
	s->kept = malloc(n * sizeof *s->kept);
	s->claimed = calloc(n, 1);
	s->pieces = malloc((j->nspans ? j->nspans : 1) * sizeof *s->pieces);
	if (!copy->path || !s->kept || !s->claimed || !s->pieces) {
		free((char *)copy->path);
		free(copy);
		free(s->kept);
		free(s->claimed);
		free(s->pieces);
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	memcpy(s->kept, kept, n * sizeof *kept);
	s->nkept = n;
	for (size_t i = 0; i < j->nspans; i++)
		s->pieces[i] = (struct piece){ (uint64_t)(uintptr_t)j->spans[i].dst, j->spans[i].len,
		                               j->spans[i].off };
	s->npieces = j->nspans;
	qsort(s->pieces, s->npieces, sizeof *s->pieces, cmp_piece);
	for (uint64_t i = 0; i < n; i++) {
		/* the bytes of chunk kept[i] that go to memory */
		uint64_t off = kept[i] * CK_MEMORY_CHUNK, end = off + CK_MEMORY_CHUNK;
		for (size_t k = ck_chunk_job_span_at(j, off); k < j->nspans && j->spans[k].off < end;
		     k++) {
			uint64_t a = j->spans[k].off > off ? j->spans[k].off : off;
			uint64_t b = j->spans[k].off + j->spans[k].len < end ?
			             j->spans[k].off + j->spans[k].len : end;
			L.pending += b - a;
		}
	}
	L.nsrc++;
	return 0;
}

static void lazy_fail(const char *msg)
{
	pthread_mutex_lock(&L.fail_lock);
	if (!L.failed) {
		snprintf(L.msg, sizeof L.msg, "%s", msg);
		L.failed = 1;
	}
	pthread_mutex_unlock(&L.fail_lock);
}

/* Kept chunk i of source s, once. 0, or -1 (L.msg). */
static int load(struct source *s, uint64_t i, struct ck_chunk_worker *wk)
{
	if (__atomic_exchange_n(&s->claimed[i], 1, __ATOMIC_ACQ_REL))
		return 0;
	if (ck_chunk_job_read(s->j, wk, s->kept[i])) {
		lazy_fail(s->j->msg);
		return -1;
	}
	return 0;
}

/* The kept chunk holding the page at addr: 1 (*s, *i), or 0 (none). */
static int find(uint64_t addr, struct source **sp, uint64_t *ip)
{
	for (size_t n = 0; n < L.nsrc; n++) {
		struct source *s = &L.src[n];
		size_t lo = 0, hi = s->npieces;
		uint64_t k;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (s->pieces[mid].addr + s->pieces[mid].len <= addr)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == s->npieces || s->pieces[lo].addr > addr)
			continue;
		k = (s->pieces[lo].off + (addr - s->pieces[lo].addr)) / CK_MEMORY_CHUNK;
		/* kept chunks are ascending */
		lo = 0;
		hi = s->nkept;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (s->kept[mid] < k)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < s->nkept && s->kept[lo] == k) {
			*sp = s;
			*ip = lo;
			return 1;
		}
	}
	return 0;
}

static const uint8_t zero_page[PAGE] __attribute__((aligned(4096)));

/* One fault: its chunk now, or a page of zeros. 0, or -1. */
static int answer(uint64_t addr, struct ck_chunk_worker *wk)
{
	struct source *s;
	uint64_t i;

	addr &= ~(PAGE - 1);
	if (wk && find(addr, &s, &i)) {
		if (load(s, i, wk))
			return -1;
		/* claimed by another worker: its copy wakes the thread */
		return 0;
	}
	if (uffd_place(addr, zero_page, PAGE)) {
		char m[200];
		snprintf(m, sizeof m, "a page of zeros cannot be placed at %#llx: %s",
		         (unsigned long long)addr, strerror(errno));
		lazy_fail(m);
		return -1;
	}
	return 0;
}

/* Every fault waiting now (timeout_ms: how long to wait for the first). */
static int answer_faults(int timeout_ms, struct ck_chunk_worker *wk)
{
	struct uffd_msg m[16];
	struct pollfd p = { L.uffd, POLLIN, 0 };
	ssize_t n;

	if (timeout_ms && poll(&p, 1, timeout_ms) <= 0)
		return 0;
	while ((n = read(L.uffd, m, sizeof m)) > 0) {
		for (ssize_t k = 0; k < n / (ssize_t)sizeof m[0]; k++)
			if (m[k].event == UFFD_EVENT_PAGEFAULT &&
			    answer(m[k].arg.pagefault.address, wk))
				return -1;
	}
	return 0;
}

static int worker(void *arg, unsigned w)
{
	struct ck_chunk_worker wk;
	uint64_t total = 0, reported = 0;
	(void)arg;

	if (ck_chunk_worker_init(&wk)) {
		lazy_fail("out of memory for reading behind the program");
		return -1;
	}
	for (size_t n = 0; n < L.nsrc; n++)
		total += L.src[n].nkept;
	for (;;) {
		int streaming = __atomic_load_n(&L.streaming, __ATOMIC_ACQUIRE);
		uint64_t g, at;
		size_t n;

		/* until the process runs, only what it touches (a fault waited
		 * for up to 1 ms a pass) */
		if (L.failed || answer_faults(streaming ? 0 : 1, &wk))
			break;
		if (!streaming)
			continue;
		g = __atomic_fetch_add(&L.next, 1, __ATOMIC_RELAXED);
		at = g;
		if (g >= total)
			break;
		for (n = 0; at >= L.src[n].nkept; n++)
			at -= L.src[n].nkept;
		if (load(&L.src[n], at, &wk))
			break;
		if (!w && L.progress && L.placed - reported >= CK_PROGRESS_STEP) {
			reported = L.placed;
			L.progress(reported < L.pending ? reported : L.pending, L.pending);
		}
	}
	ck_chunk_worker_free(&wk);
	return L.failed ? -1 : 0;
}

void ck_lazy_stream(void) { __atomic_store_n(&L.streaming, 1, __ATOMIC_RELEASE); }

int ck_lazy_load(unsigned workers, void (*progress)(uint64_t done, uint64_t total))
{
	L.keeping = 0;
	L.progress = progress;
	if (ck_parallel(workers ? workers : 1, worker, NULL) || L.failed) {
		ck_set_error("%s", L.msg[0] ? L.msg : "reading behind the program failed");
		return -1;
	}
	if (progress)
		progress(L.pending, L.pending);
	return 0;
}

void ck_lazy_serve(void)
{
	/* nothing left to load: every touch is of a page of zeros (one that
	 * cannot be placed, out of memory, leaves its thread waiting) */
	for (;;)
		(void)answer_faults(-1, NULL);
}
