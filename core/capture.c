#include "core/capture.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include "core/control.h"
#include "core/dirty_pages.h"
#include "core/intervals.h"
#include "core/loader.h"
#include "core/log.h"
#include "core/lowmem.h"
#include "core/maps.h"
#include "core/procstate.h"

#define PAGE 4096ull
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE (1ull << 61)
/* write-tracked and not written since: on a swapped entry, either a page
 * swapped out or the marker write tracking leaves on an unpopulated page
 * (which reads as zeros); without CAP_SYS_ADMIN the two look the same */
#define PM_UFFD_WP (1ull << 57)

#define MAX_BORROWED 256
static struct ck_region borrowed[MAX_BORROWED];
static int n_borrowed;

struct vec { void *v; size_t n, cap, elem; };

static void *vec_push(struct vec *v)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		void *nv = realloc(v->v, cap * v->elem);
		if (!nv)
			return NULL;
		v->v = nv;
		v->cap = cap;
	}
	return (char *)v->v + v->elem * v->n++;
}

static int page_is_zero(const void *p)
{
	const uint64_t *w = p;
	for (size_t i = 0; i < PAGE / 8; i += 8)
		if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7])
			return 0;
	return 1;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static int classify(const struct map_entry *e, int *all_pages)
{
	int anon_path = e->path[0] == 0 || e->path[0] == '[';
	int deleted = ends_with(e->path, " (deleted)");

	*all_pages = 0;
	if (e->shared) {
		if (anon_path || deleted || !strncmp(e->path, "/dev/zero", 9) ||
		    !strncmp(e->path, "/memfd:", 7) || !strncmp(e->path, "/SYSV", 5)) {
			*all_pages = !anon_path;
			return CK_REGION_SHARED_ANON;
		}
		return CK_REGION_FILE_SHARED;
	}
	if (anon_path)
		return CK_REGION_ANON;
	if (deleted || !strncmp(e->path, "/memfd:", 7)) {
		*all_pages = 1;
		return CK_REGION_ANON;
	}
	return CK_REGION_FILE_PRIVATE;
}

static int incremental;
/* zero pages looked for by whoever writes the image, not at the cut
 * (capture_settle_zero_pages): reading every page of a large image is
 * most of a pause otherwise */
static int defer_zero, zero_deferred;
/* present zero pages are stored (CAPTURE_ZERO_KEPT): only pages that may
 * be unpopulated are looked at */
static int keep_zero_pages;

void capture_set_incremental(int on) { incremental = on; }

/* Pages swapped out so far, machine-wide (to swap or zswap), from
 * /proc/vmstat; -1 when it cannot be read. */
static long long swapped_out_count(void)
{
	char buf[16384];
	long long total = 0;
	int fd = open("/proc/vmstat", O_RDONLY | O_CLOEXEC), found = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, "pswpout ", 8) || !strncmp(l, "zswpout ", 8)) {
			total += atoll(l + 8);
			found++;
		}
	return found ? total : -1;
}

/* A page the write tracking marked unpopulated shows in the page table as
 * a swapped page (without CAP_SYS_ADMIN the two look the same), and
 * reading it to find it is zero maps a page in (0.4 s for the 640 MiB an
 * MPI layer reserves). Without swap on the machine there is no swapped
 * page: mincore() then tells a marker (0) from a page being migrated (1).
 * Set for one capture; the count of swapped pages, taken before, must be
 * the same after it, or the capture fails. */
static int markers_known;
static long long swapouts_before;

static void markers_check_begin(void)
{
	struct sysinfo si;

	markers_known = sysinfo(&si) == 0 && si.totalswap == 0 &&
	                (swapouts_before = swapped_out_count()) >= 0;
}

static int markers_check_end(void)
{
	if (markers_known && swapped_out_count() != swapouts_before) {
		log_error("swap was switched on while the checkpoint looked at memory: "
		          "this checkpoint is not taken (the next one is)");
		return -1;
	}
	return 0;
}

/* A pagemap entry that is a swapped page or a write-tracking marker */
static int may_be_marker(uint64_t e)
{
	return (e & (PM_PRESENT | PM_SWAPPED | PM_UFFD_WP)) == (PM_SWAPPED | PM_UFFD_WP);
}

/* Of the n pages at `at` (pagemap entries pm): 1 for each that is a
 * tracking marker of an anonymous region (reads as zeros). mc: n bytes,
 * or NULL when no page could be one. */
static const unsigned char *markers_in(uint64_t at, const uint64_t *pm, uint64_t n,
                                       unsigned char *mc)
{
	uint64_t i;

	if (!markers_known)
		return NULL;
	for (i = 0; i < n && !may_be_marker(pm[i]); i++)
		;
	if (i == n || mincore((void *)at, n * PAGE, mc))
		return NULL;
	for (i = 0; i < n; i++)
		mc[i] = may_be_marker(pm[i]) && !(mc[i] & 1);
	return mc;
}

void capture_defer_zero_pages(enum capture_zero mode)
{
	defer_zero = mode != CAPTURE_ZERO_AT_CUT;
	keep_zero_pages = mode == CAPTURE_ZERO_KEPT;
}

struct range { uint64_t start, end; };

struct written {
	const struct ck_region *r;
	struct vec ranges;          /* struct range */
};

/* A range of written pages of w->r, kept for after the scan. */
static int add_written(void *ctx, uint64_t start, uint64_t end)
{
	struct written *w = ctx;
	struct range *g;

	if (start < w->r->start)
		start = w->r->start;
	if (end > w->r->end)
		end = w->r->end;
	if (start >= end)
		return 0;
	if (!(g = vec_push(&w->ranges)))
		return -1;
	g->start = start;
	g->end = end;
	return 0;
}

/* The written pages as runs: zero pages too (the parent may hold other
 * bytes there), but as runs that store nothing (CK_RUN_ZEROS). */
static int written_runs(const struct written *w, struct vec *runs)
{
	const struct range *g = w->ranges.v;

	for (size_t i = 0; i < w->ranges.n; i++)
		for (uint64_t a = g[i].start; a < g[i].end; a += PAGE) {
			uint64_t off = !defer_zero && page_is_zero((const void *)a) ? CK_RUN_ZEROS : 0;
			struct ck_page_run *cur = runs->n > w->r->run_first ?
			                          (struct ck_page_run *)runs->v + runs->n - 1 : NULL;

			if (cur && cur->addr + cur->npages * PAGE == a && cur->data_offset == off) {
				cur->npages++;
				continue;
			}
			if (!(cur = vec_push(runs)))
				return -1;
			cur->addr = a;
			cur->npages = 1;
			cur->data_offset = off;
		}
	return 0;
}

/* Regions whose pages the write tracking covers: private memory. Not a
 * file's mapping the program cannot write (a library's code): what is
 * saved of it is its copied-on-write pages, none or a few; tracked, its
 * unpopulated pages would carry markers that a full generation cannot
 * tell from swapped pages, and would save (38 MiB of an MPI library's
 * code). Made writable later, it is untracked still: saved whole. */
static int trackable(const struct ck_region *r)
{
	return r->kind == CK_REGION_ANON ||
	       (r->kind == CK_REGION_FILE_PRIVATE && (r->prot & PROT_WRITE));
}

/* Append runs of pages of [start,end) that must be saved. */
static int scan_pages(int pm, struct ck_region *r, int all_pages, struct vec *runs)
{
	static uint64_t pmbuf[4096];
	static unsigned char mcbuf[4096];
	uint64_t addr = r->start;
	int made_readable = 0, track = 0;
	struct ck_page_run *cur = NULL;

	r->run_first = runs->n;
	r->inherit = 0;
	if (trackable(r)) {
		/* saved whole when every page is (deleted or unreachable files):
		 * the parent may have taken the same mapping for a file's, whose
		 * unsaved pages a restart would not find */
		int inc = incremental && !all_pages;
		struct written w = { r, { NULL, 0, 0, sizeof(struct range) } };
		int t = dirty_scan(r->start, r->end, inc ? add_written : NULL, &w);

		/* not tracked yet: tracked once its pages have been looked at,
		 * below, before tracking marks the unpopulated ones */
		track = t != 0;

		if (t == 0 && inc) {
			r->inherit = 1;
			if (w.ranges.n && !(r->prot & PROT_READ)) {
				/* the upper half is stopped: borrow read access */
				if (mprotect((void *)r->start, r->end - r->start, PROT_READ)) {
					log_error("mprotect %#llx: %s", (unsigned long long)r->start,
					          strerror(errno));
					free(w.ranges.v);
					return -1;
				}
				if (n_borrowed < MAX_BORROWED)
					borrowed[n_borrowed++] = *r;
			}
			t = written_runs(&w, runs);
			free(w.ranges.v);
			r->run_count = runs->n - r->run_first;
			return t;
		}
		free(w.ranges.v);
		/* new, moved or remapped since the parent: saved whole */
	}
	while (addr < r->end) {
		uint64_t n = (r->end - addr) / PAGE;
		const unsigned char *marker;

		if (n > 4096)
			n = 4096;
		if (pread(pm, pmbuf, n * 8, (off_t)(addr / PAGE * 8)) != (ssize_t)(n * 8)) {
			log_error("/proc/self/pagemap at %#llx: %s", (unsigned long long)addr,
			          strerror(errno));
			return -1;
		}
		/* not a file's mapping: an unpopulated page there reads zeros */
		marker = r->kind == CK_REGION_ANON && !all_pages ?
		         markers_in(addr, pmbuf, n, mcbuf) : NULL;
		for (uint64_t i = 0; i < n; i++, addr += PAGE) {
			uint64_t e = pmbuf[i];
			int save;

			if (marker && marker[i])
				save = 0;
			else if (r->kind == CK_REGION_FILE_PRIVATE)
				save = (e & PM_SWAPPED) || ((e & PM_PRESENT) && !(e & PM_FILE));
			else
				save = all_pages || (e & (PM_PRESENT | PM_SWAPPED));
			if (save && !(r->prot & PROT_READ) && !made_readable) {
				/* the upper half is stopped: borrow read access */
				if (mprotect((void *)r->start, r->end - r->start, PROT_READ)) {
					log_error("mprotect %#llx: %s", (unsigned long long)r->start,
					          strerror(errno));
					return -1;
				}
				made_readable = 1;
			}
			if (save && (!defer_zero || (keep_zero_pages && may_be_marker(e))) &&
			    r->kind != CK_REGION_FILE_PRIVATE && page_is_zero((void *)addr))
				save = 0;
			if (!save) {
				cur = NULL;
				continue;
			}
			if (cur && cur->addr + cur->npages * PAGE == addr) {
				cur->npages++;
			} else {
				cur = vec_push(runs);
				if (!cur)
					return -1;
				cur->addr = addr;
				cur->npages = 1;
				cur->data_offset = 0;
			}
		}
	}
	r->run_count = runs->n - r->run_first;
	if (track)
		(void)dirty_track(r->start, r->end); /* else saved whole next time too */
	/* keep read access until the image is written */
	if (made_readable && n_borrowed < MAX_BORROWED)
		borrowed[n_borrowed++] = *r;
	return 0;
}

static int find_tid_offset(const struct park_result *parked)
{
	/* glibc caches the kernel tid in struct pthread, which starts at the
	 * thread pointer; find the offset that holds every thread's tid */
	if (upper.tid_offset)
		return 0;
	for (uint64_t off = 0; off < 0x1000; off += 4) {
		int ok = 1;
		for (int i = 0; i < parked->n && ok; i++) {
			const int *p = (const int *)(parked->slot[i].fs_base + off);
			if (!parked->slot[i].fs_base || *p != (int)parked->slot[i].tid)
				ok = 0;
		}
		if (ok && parked->n) {
			upper.tid_offset = off;
			return 0;
		}
	}
	log_error("cannot find the cached thread id in the upper half's thread control block");
	return -1;
}

static struct {
	uint64_t start, end;
} excluded[CAPTURE_MAX_EXCLUDED];
static int n_excluded;

int capture_exclude(uint64_t start, uint64_t len)
{
	if (n_excluded == CAPTURE_MAX_EXCLUDED) {
		log_error("more than %d device ranges to leave out of the image", CAPTURE_MAX_EXCLUDED);
		return -1;
	}
	excluded[n_excluded].start = start & ~(uint64_t)(PAGE - 1);
	excluded[n_excluded].end = (start + len + PAGE - 1) & ~(uint64_t)(PAGE - 1);
	n_excluded++;
	return 0;
}

void capture_exclude_clear(void) { n_excluded = 0; }

int capture_image(const struct park_result *parked, struct ck_image *img)
{
	struct map_list maps = {0};
	struct interval_set lower = {0};
	struct vec regions = {NULL, 0, 0, sizeof(struct ck_region)};
	struct vec runs = {NULL, 0, 0, sizeof(struct ck_page_run)};
	int pm = -1, rc = -1;
	pid_t pid = getpid();

	memset(img, 0, sizeof *img);
	loader_read_rseq_facts();
	if (find_tid_offset(parked))
		return -1;

	img->threads = calloc((size_t)parked->n, sizeof *img->threads);
	if (!img->threads)
		return -1;
	for (int i = 0; i < parked->n; i++) {
		const struct park_slot *s = &parked->slot[i];
		struct ck_thread *t = &img->threads[i];
		const ucontext_t *uc = (const ucontext_t *)s->uc;
		t->tid = (uint64_t)s->tid;
		t->is_main = s->tid == pid;
		t->fs_base = s->fs_base;
		t->gs_base = s->gs_base;
		t->uc_addr = s->uc;
		t->robust_head = s->robust_head;
		t->robust_len = s->robust_len;
		for (int k = 0; k < CK_NGREGS; k++)
			t->gregs[k] = (uint64_t)uc->uc_mcontext.gregs[k];
	}
	img->nthreads = (size_t)parked->n;

	if (maps_read_self(&maps) || lowmem_intervals(&lower))
		goto out;
	/* a device's memory is left out like the lower half's */
	for (int i = 0; i < n_excluded; i++)
		if (intervals_add(&lower, excluded[i].start, excluded[i].end))
			goto out;
	/* before any fd of our own is open */
	if (procstate_capture(img))
		goto out;
	pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0) {
		log_error("/proc/self/pagemap: %s", strerror(errno));
		goto out;
	}
	markers_check_begin();
	for (size_t i = 0; i < maps.n; i++) {
		const struct map_entry *e = &maps.v[i];
		struct interval_set pieces = {0};

		if (!strcmp(e->path, "[vdso]")) {
			img->proc.vdso_start = e->start;
			img->proc.vdso_end = e->end;
			continue;
		}
		if (!strcmp(e->path, "[vvar]") || !strcmp(e->path, "[vsyscall]") ||
		    !strcmp(e->path, "[uprobes]"))
			continue;
		if (intervals_subtract(&lower, e->start, e->end, &pieces))
			goto out;
		for (size_t k = 0; k < pieces.n; k++) {
			struct ck_region *r = vec_push(&regions);
			int all_pages;
			struct stat st;

			if (!r) {
				intervals_free(&pieces);
				goto out;
			}
			memset(r, 0, sizeof *r);
			r->start = pieces.v[k].start;
			r->end = pieces.v[k].end;
			r->prot = e->prot;
			r->kind = (uint32_t)classify(e, &all_pages);
			if (r->kind == CK_REGION_FILE_PRIVATE || r->kind == CK_REGION_FILE_SHARED) {
				r->file_offset = e->offset + (r->start - e->start);
				r->path = strdup(e->path);
				if (stat(e->path, &st) == 0) {
					r->file_size = (uint64_t)st.st_size;
					r->file_mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull +
					                   (uint64_t)st.st_mtim.tv_nsec;
				} else {
					/* unreachable by path (other mount namespace...):
					 * save it like anonymous memory */
					free(r->path);
					r->path = NULL;
					r->kind = e->shared ? CK_REGION_SHARED_ANON : CK_REGION_ANON;
					all_pages = 1;
				}
			}
			img->proc.upper_size += r->end - r->start;
			if (r->kind != CK_REGION_FILE_SHARED && scan_pages(pm, r, all_pages, &runs)) {
				intervals_free(&pieces);
				goto out;
			}
		}
		intervals_free(&pieces);
	}
	if (markers_check_end())
		goto out;
	img->regions = regions.v;
	img->nregions = regions.n;
	img->runs = runs.v;
	img->nruns = runs.n;
	regions.v = runs.v = NULL;
	for (size_t i = 0; i < img->nruns; i++)
		img->memory_bytes += ck_run_bytes(&img->runs[i]);
	zero_deferred = defer_zero;

	img->proc.pid = (uint64_t)pid;
	img->proc.link_epoch = control_link_epoch();
	img->proc.tid_offset = upper.tid_offset;
	img->proc.rseq_offset = upper.rseq_offset;
	img->proc.rseq_size = upper.rseq_size;
	rc = 0;
out:
	if (pm >= 0)
		close(pm);
	free(regions.v);
	free(runs.v);
	maps_free(&maps);
	intervals_free(&lower);
	return rc;
}

void capture_unborrow(void)
{
	for (int i = 0; i < n_borrowed; i++)
		if (mprotect((void *)borrowed[i].start, borrowed[i].end - borrowed[i].start,
		             (int)borrowed[i].prot))
			log_error("mprotect %#llx: %s", (unsigned long long)borrowed[i].start,
			          strerror(errno));
	n_borrowed = 0;
}

/* What scan_pages and written_runs leave out or mark when they look at
 * zero pages themselves: in a region saved whole (not a private file's,
 * whose unsaved pages are the file's) a zero page is not stored; in an
 * inherited one it becomes a CK_RUN_ZEROS run (the parent may hold other
 * bytes there). */
int capture_settle_zero_pages(struct ck_image *img)
{
	struct vec runs = { NULL, 0, 0, sizeof(struct ck_page_run) };

	if (!zero_deferred)
		return 0;
	for (size_t i = 0; i < img->nregions; i++) {
		struct ck_region *r = &img->regions[i];
		uint64_t first = runs.n;
		int keep_zero = r->inherit, look = r->inherit || r->kind != CK_REGION_FILE_PRIVATE;

		for (uint64_t k = r->run_first; k < r->run_first + r->run_count; k++) {
			const struct ck_page_run *in = &img->runs[k];
			struct ck_page_run *cur = NULL;

			for (uint64_t p = 0; p < in->npages; p++) {
				uint64_t a = in->addr + p * PAGE, off = in->data_offset;

				if (off != CK_RUN_ZEROS && look && page_is_zero((const void *)a)) {
					if (!keep_zero) {
						cur = NULL;
						continue;
					}
					off = CK_RUN_ZEROS;
				}
				if (cur && cur->addr + cur->npages * PAGE == a && cur->data_offset == off) {
					cur->npages++;
					continue;
				}
				if (!(cur = vec_push(&runs))) {
					free(runs.v);
					return -1;
				}
				cur->addr = a;
				cur->npages = 1;
				cur->data_offset = off;
			}
		}
		r->run_first = first;
		r->run_count = runs.n - first;
	}
	free(img->runs);
	img->runs = runs.v;
	img->nruns = runs.n;
	img->memory_bytes = 0;
	for (size_t i = 0; i < img->nruns; i++)
		img->memory_bytes += ck_run_bytes(&img->runs[i]);
	zero_deferred = 0;
	return 0;
}
