/* A lazy restart (core/lazy_restore.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core/lazy_restore.h"
#include "core/held_output.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/dirty_pages.h"
#include "core/log.h"
#include "core/park.h"
#include "core/procstate.h"
#include "core/rawsys.h"
#include "core/restorer.h"
#include "core/traced.h"
#include "storage/container.h"
#include "storage/lazy_read.h"
#include "storage/parallel.h"

/* smaller regions come in with the rest: not worth a fault each */
#define LAZY_MIN (4ull << 20)

static char **saved_argv;
static char fallback_env[8];
static struct ck_lazy_range *ranges;
static size_t nranges;
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int done, settled;
static uint64_t generation;
static char gen_path[4096];
static const char *resume_notice;
static int restart_alone;

void lazy_restore_save_argv(char **argv) { saved_argv = argv; }

int lazy_restore_active(void) { return nranges != 0; }

/* addr lies in region r */
static int in(const struct ck_region *r, uint64_t addr)
{
	return addr && r->start <= addr && addr < r->end;
}

/* A region the kernel touches without a system call of the program's:
 * a thread's stack (its saved frame), thread area, rseq area, robust list */
static int touched_by_kernel(const struct ck_image *img, const struct ck_region *r)
{
	for (size_t i = 0; i < img->nthreads; i++) {
		const struct ck_thread *t = &img->threads[i];
		if (in(r, t->uc_addr) || in(r, t->fs_base) || in(r, t->robust_head) ||
		    (img->proc.rseq_size && t->fs_base &&
		     in(r, t->fs_base + (uint64_t)img->proc.rseq_offset)))
			return 1;
	}
	return 0;
}

/* Why img cannot restart lazily, or NULL */
static const char *why_not(const struct ck_image *img)
{
	/* (it reads memory through the kernel, which cannot wait for a page) */
	if (process_traced())
		return "a debugger is attached";
	if (img->proc.sig[SIGSYS].handler != 0)
		return "the program handles SIGSYS itself";
	for (size_t i = 0; i < img->nregions; i++)
		if (img->regions[i].kind == CK_REGION_FILE_SHARED && (img->regions[i].prot & PROT_WRITE))
			/* the program's stores there are seen outside at once */
			return "the program writes to a shared file mapping";
	if (!dirty_available())
		return "userfaultfd with asynchronous write protection is not available";
	return NULL;
}

int lazy_restore_prepare(const struct ck_image *img, int allowed)
{
	const char *why, *fb = getenv("CKPTMPI_RESTART_FALLBACK");
	uint64_t bytes = 0;

	lazy_restore_abandon();
	if (!allowed)
		return 0;
	if ((why = why_not(img))) {
		log_info("restart: read whole before the program runs: %s", why);
		return 0;
	}
	snprintf(fallback_env, sizeof fallback_env, "%s", fb ? fb : "");
	if (!(ranges = calloc(img->nregions ? img->nregions : 1, sizeof *ranges)))
		return -1;
	for (size_t i = 0; i < img->nregions; i++) {
		const struct ck_region *r = &img->regions[i];
		if (r->kind != CK_REGION_ANON || r->end - r->start < LAZY_MIN ||
		    touched_by_kernel(img, r))
			continue;
		if (dirty_track_missing(r->start, r->end))
			continue; /* read now, tracked later as the others */
		ranges[nranges++] = (struct ck_lazy_range){ r->start, r->end };
		bytes += r->end - r->start;
	}
	if (!nranges) {
		lazy_restore_abandon();
		return 0;
	}
	/* regions are in address order in an image; the reader wants them so */
	for (size_t i = 1; i < nranges; i++)
		for (size_t k = i; k > 0 && ranges[k - 1].start > ranges[k].start; k--) {
			struct ck_lazy_range t = ranges[k];
			ranges[k] = ranges[k - 1];
			ranges[k - 1] = t;
		}
	if (ck_lazy_begin(dirty_uffd(), 1, ranges, nranges, procstate_move_lower_fd)) {
		log_error("restart: out of memory");
		return -1;
	}
	log_debug("restart: %zu region(s), %llu MiB of address space, left to read behind the "
	          "program", nranges, (unsigned long long)(bytes >> 20));
	return 1;
}

void lazy_restore_abandon(void)
{
	ck_lazy_reset();
	free(ranges);
	ranges = NULL;
	nranges = 0;
}

int lazy_restore_covers(uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < nranges; i++)
		if (ranges[i].start <= start && end <= ranges[i].end)
			return 1;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void progress(uint64_t done_bytes, uint64_t total)
{
	log_info("restart: read %llu of %llu MiB behind the program",
	         (unsigned long long)(done_bytes >> 20), (unsigned long long)(total >> 20));
}

/* A chunk failed its check: nothing the program did was seen outside
 * (its threads are held at their first system call), so the runtime
 * starts again and reads the generation whole, falling back as an
 * ordinary restart does. */
static void __attribute__((noreturn)) restart_whole(void)
{
	if (!saved_argv) {
		log_error("restart: cannot restart whole (no command line kept)");
		_exit(127);
	}
	setenv("CKPTMPI_RESTART_LAZY", "0", 1);
	if (fallback_env[0])
		setenv("CKPTMPI_RESTART_FALLBACK", fallback_env, 1);
	/* the restored program's descriptors are not the runtime's */
	(void)syscall(SYS_close_range, 3u, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */);
	execv("/proc/self/exe", saved_argv);
	log_error("restart: re-executing the runtime: %s", strerror(errno));
	_exit(127);
}

static void *loader(void *arg)
{
	double t0 = now_s();
	uint64_t bytes = ck_lazy_pending();
	(void)arg;

	/* the runtime's, not the program's: never parked */
	park_register_lower_thread(raw_gettid());

	if (ck_lazy_load(ck_workers(), log_level() >= 1 ? progress : NULL)) {
		if (!restart_alone) {
			log_error("restart: %s (generation %llu, read behind the program): this member "
			          "stops, and its job with it", container_error(),
			          (unsigned long long)generation);
			_exit(127);
		}
		/* (what the whole read finds is said then, once) */
		log_info("restart: %s (generation %llu, read behind the program): restarting it "
		         "read whole", container_error(), (unsigned long long)generation);
		restart_whole();
	}
	{
		double dt = now_s() - t0;
		log_info("restart: %llu MiB read and checked behind the program in %.3f s (%.0f MB/s)",
		         (unsigned long long)(bytes >> 20), dt, dt > 0 ? (double)bytes / dt / 1e6 : 0);
	}
	/* (as an ordinary restart does: core/restore.c) */
	held_output_print();
	if (resume_notice && resume_notice[0] &&
	    write(2, resume_notice, strlen(resume_notice)) < 0)
		log_debug("stderr: %s", strerror(errno));
	restorer_hold_release();
	pthread_mutex_lock(&done_lock);
	done = 1;
	pthread_cond_broadcast(&done_cond);
	pthread_mutex_unlock(&done_lock);
	ck_lazy_serve();
}

int lazy_restore_start(const char *path, uint64_t gen, const char *notice, int alone)
{
	/* the kernel's struct sigaction */
	struct { uint64_t handler, flags, restorer, mask; } sa = {
		(uint64_t)(uintptr_t)restorer_hold_sigsys, SA_SIGINFO | 0x04000000 /* SA_RESTORER */,
		(uint64_t)(uintptr_t)restorer_hold_sigreturn, ~0ull
	};
	pthread_t t;
	long e;

	if (!nranges)
		return 0;
	generation = gen;
	resume_notice = notice;
	restart_alone = alone;
	snprintf(gen_path, sizeof gen_path, "%s", path);
	if ((e = raw_syscall4(SYS_rt_sigaction, SIGSYS, &sa, 0, 8))) {
		log_error("%s: restart: sigaction(SIGSYS): %s", path, strerror((int)-e));
		return -1;
	}
	if ((e = pthread_create(&t, NULL, loader, NULL))) {
		log_error("%s: restart: the loader thread: %s", path, strerror((int)e));
		return -1;
	}
	pthread_detach(t);
	return 0;
}

void lazy_restore_running(void)
{
	if (!nranges)
		return;
	ck_lazy_stream();
	log_info("restart: the program runs; %llu MiB come in behind it",
	         (unsigned long long)(ck_lazy_pending() >> 20));
}

void lazy_restore_wait(void)
{
	if (!nranges)
		return;
	pthread_mutex_lock(&done_lock);
	while (!done)
		pthread_cond_wait(&done_cond, &done_lock);
	pthread_mutex_unlock(&done_lock);
}

void lazy_restore_settle(void)
{
	struct { uint64_t handler, flags, restorer, mask; } dfl = { 0, 0, 0, 0 };

	/* no held thread is left: each woke, and new calls pass */
	if (!nranges || settled)
		return;
	settled = 1;
	(void)raw_syscall4(SYS_rt_sigaction, SIGSYS, &dfl, 0, 8);
}
