#include "core/restore.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/control.h"
#include "core/dirty_pages.h"
#include "core/elf_file.h"
#include "core/image.h"
#include "core/intervals.h"
#include "core/lazy_restore.h"
#include "core/held_output.h"
#include "core/loader.h"
#include "core/log.h"
#include "core/lowmem.h"
#include "core/procstate.h"
#include "core/rawsys.h"
#include "core/restorer.h"
#include "core/runtime_info.h"
#include "core/hooks.h"
#include "core/timers.h"
#include "storage/container.h"
#include "storage/lazy_read.h"

#define PAGE 4096ull

static int map_region(const char *file, const struct ck_region *r)
{
	uint64_t len = r->end - r->start;
	int flags = MAP_FIXED_NOREPLACE, fd = -1;
	int prot = (int)r->prot | PROT_READ | PROT_WRITE;
	void *m;

	switch (r->kind) {
	case CK_REGION_ANON:
		flags |= MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
		break;
	case CK_REGION_SHARED_ANON:
		flags |= MAP_SHARED | MAP_ANONYMOUS;
		break;
	case CK_REGION_FILE_PRIVATE:
	case CK_REGION_FILE_SHARED: {
		struct stat st;
		int shared = r->kind == CK_REGION_FILE_SHARED;
		/* the path is the kernel's, symbolic links resolved: one there
		 * now was planted */
		fd = open(r->path, ((shared && (r->prot & PROT_WRITE)) ? O_RDWR : O_RDONLY) |
		                       O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			log_error("%s: mapped file %s: %s", file, r->path,
			          errno == ELOOP ? "now a symbolic link, not followed" : strerror(errno));
			return -1;
		}
		if (fstat(fd, &st) || (uint64_t)st.st_size != r->file_size ||
		    (!shared && (uint64_t)st.st_mtim.tv_sec * 1000000000ull +
		                    (uint64_t)st.st_mtim.tv_nsec != r->file_mtime_ns)) {
			log_error("%s: mapped file %s changed since the checkpoint", file, r->path);
			close(fd);
			return -1;
		}
		flags |= shared ? MAP_SHARED : MAP_PRIVATE;
		if (shared)
			prot = (int)r->prot;
		break;
	}
	default:
		log_error("%s: unknown region kind %u", file, r->kind);
		return -1;
	}
	m = raw_mmap((void *)r->start, len, prot, flags, fd, fd >= 0 ? (long)r->file_offset : 0);
	if (fd >= 0)
		close(fd);
	if (raw_is_err((long)m) || (uint64_t)m != r->start) {
		log_error("%s: cannot map %#llx-%#llx: %s", file, (unsigned long long)r->start,
		          (unsigned long long)r->end,
		          raw_is_err((long)m) ? strerror((int)-(long)m) : "placed elsewhere");
		return -1;
	}
	return 0;
}

/* The restored upper loader: the program's PT_INTERP, mapped from offset 0
 * at the lowest address among its regions. Published through the link
 * for debuggers (core/link.h); nothing in the runtime depends on it. */
static void publish_upper_loader(const char *program, const struct ck_image *img)
{
	char interp[4096], real[PATH_MAX], err[256];
	uint64_t base = 0, rd;

	if (elf_interpreter(program, interp, sizeof interp, err, sizeof err) ||
	    !realpath(interp, real))
		return;
	for (size_t i = 0; i < img->nregions; i++) {
		const struct ck_region *r = &img->regions[i];
		if (r->kind == CK_REGION_FILE_PRIVATE && r->file_offset == 0 && r->path &&
		    !strcmp(r->path, real) && (!base || r->start < base))
			base = r->start;
	}
	rd = base ? elf_dynamic_symbol(real, "_r_debug") : 0;
	if (base)
		control_set_upper_loader(base, rd ? base + rd : 0);
}

static void progress(uint64_t done, uint64_t total)
{
	log_info("restore: read %llu of %llu MiB", (unsigned long long)(done >> 20),
	         (unsigned long long)(total >> 20));
}

static char notice[1400];

void restore_set_notice(const char *line)
{
	snprintf(notice, sizeof notice, "%s\n", line);
}

int restore_inspect_rank(void)
{
	const char *v = getenv("CKPTMPI_INSPECT_RANK");
	char *end;
	unsigned long r;

	if (!v || !*v)
		return -1;
	errno = 0;
	r = strtoul(v, &end, 10);
	if (errno || *end || r > 1u << 24) {
		log_error("CKPTMPI_INSPECT_RANK=%s: expected a rank number", v);
		return -2;
	}
	return (int)r;
}

/* The message of a generation that does not read back (damaged,
 * truncated), for fall_back. Unmaps the first `mapped` regions of img,
 * frees it, closes rd: 1. */
static char unreadable[1400];

/* What load_generation made of a generation undone: the first `mapped`
 * regions of img unmapped, img freed, rd closed. */
static void drop_generation(struct container_reader *rd, struct ck_image *img, size_t mapped)
{
	if (img) {
		for (size_t i = 0; i < mapped; i++)
			munmap((void *)img->regions[i].start, img->regions[i].end - img->regions[i].start);
		ck_image_free(img);
	}
	if (rd)
		container_close(rd);
}

static int unreadable_now(struct container_reader *rd, struct ck_image *img, size_t mapped)
{
	snprintf(unreadable, sizeof unreadable, "%s", container_error());
	log_error("%s", unreadable);
	drop_generation(rd, img, mapped);
	return 1;
}

/* The newest of this user's generations older than the one at `path`,
 * in the same directory, into out: a restart from `ckptmpi restart DIR`
 * (CKPTMPI_RESTART_FALLBACK, set when it left the page data unread to the
 * runtime) passes over a generation whose data does not read back. NULL
 * when there is none (or fallback was not asked). */
static int fell_back;
static char first_fault[1400];

static const char *fall_back(const char *path, char *out, size_t len)
{
	const char *v = getenv("CKPTMPI_RESTART_FALLBACK"), *slash = strrchr(path, '/');
	struct generation_entry *g;
	uint64_t cur = 0;
	size_t n;
	char dir[4096];

	if (!v || strcmp(v, "1") || !slash || (size_t)(slash - path) >= sizeof dir)
		return NULL;
	snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	if (generations_list(dir, &g, &n)) {
		log_error("%s", container_error());
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(g[i].path, path))
			cur = g[i].generation;
	out[0] = 0;
	for (size_t i = n; i-- > 0;)
		if (!g[i].foreign && g[i].generation < cur) {
			snprintf(out, len, "%s", g[i].path);
			break;
		}
	free(g);
	if (!out[0])
		return NULL;
	if (!fell_back++)
		snprintf(first_fault, sizeof first_fault, "%s", unreadable);
	return out;
}

/* The generation at `path` opened, its tables read, its regions mapped
 * and its pages read into them (every chunk's checksum checked). 0; -1
 * (logged); 1 when its data does not read back, with nothing of it left
 * mapped. */

static int load_generation(const char *path, int inspect, uint64_t rank, uint64_t nranks,
                           const char *flavour, int lazy_allowed, struct container_reader **rdp,
                           struct ck_generation_info *infop, struct ck_image *imgp,
                           struct interval_set *lowerp)
{
	struct container_reader *rd;
	struct ck_generation_info info;
	struct ck_image img;
	struct interval_set lower = {0};
	size_t mapped = 0;
	int lazy;

	/* only a generation of this user's own: a file another user wrote
	 * would run as this user */
	rd = container_open_own(path);
	if (!rd || container_info(rd, &info))
		return unreadable_now(rd, NULL, 0);
	if (inspect >= 0) {
		if (rank >= info.nranks) {
			log_error("%s: CKPTMPI_INSPECT_RANK=%llu, but the job has %llu rank(s)", path,
			          (unsigned long long)rank, (unsigned long long)info.nranks);
			return -1;
		}
		nranks = info.nranks;
	}
	if (info.nranks != nranks) {
		log_error("%s: a %llu-rank job cannot restart as %llu rank(s) (restart with mpirun -np "
		          "%llu)", path, (unsigned long long)info.nranks, (unsigned long long)nranks,
		          (unsigned long long)info.nranks);
		return -1;
	}
	if (strcmp(info.mpi_flavour, flavour)) {
		log_error("%s: written under MPI '%s', this runtime is for '%s'", path,
		          info.mpi_flavour, flavour);
		return -1;
	}
	if (container_read_image(rd, rank, &img))
		return unreadable_now(rd, NULL, 0);
	if (info.runtime_id != runtime_identity()) {
		log_error("%s: written by another ckptmpi runtime binary (%s); restart with that one",
		          path, info.runtime);
		return -1;
	}
	{
		uint64_t vdso = getauxval_vdso();
		if (img.proc.vdso_start && vdso != img.proc.vdso_start) {
			log_error("%s: the vDSO moved (%#llx, now %#llx): restart on the same kernel",
			          path, (unsigned long long)img.proc.vdso_start,
			          (unsigned long long)vdso);
			return -1;
		}
	}
	if (lowmem_intervals(&lower))
		return -1;
	for (size_t i = 0; i < img.nregions; i++) {
		const struct ck_region *r = &img.regions[i];
		struct interval_set free_part = {0};
		if (intervals_subtract(&lower, r->start, r->end, &free_part))
			return -1;
		if (free_part.n != 1 || free_part.v[0].start != r->start ||
		    free_part.v[0].end != r->end) {
			log_error("%s: region %#llx-%#llx is taken by the runtime here "
			          "(different libraries or environment?)",
			          path, (unsigned long long)r->start, (unsigned long long)r->end);
			return -1;
		}
		intervals_free(&free_part);
		if (map_region(path, r))
			return -1;
		mapped++;
	}
	lazy = lazy_restore_prepare(&img, lazy_allowed && hooks_lazy_ok(&img));
	if (lazy < 0)
		return -1;
	if (container_read_pages(rd, rank, &img, 1, log_level() >= 1 ? progress : NULL)) {
		intervals_free(&lower);
		if (lazy && ck_lazy_refused()) {
			/* not a file to read behind the program: read it whole */
			log_info("restart: %s; read whole instead", container_error());
			drop_generation(rd, &img, mapped);
			lazy_restore_abandon();
			return 2;
		}
		lazy_restore_abandon();
		return unreadable_now(rd, &img, mapped);
	}
	ck_lazy_stop_keeping();
	*rdp = rd;
	*infop = info;
	*imgp = img;
	*lowerp = lower;
	return 0;
}

int restore_from(const char *path, int lazy)
{
	struct container_reader *rd;
	struct ck_generation_info info;
	struct ck_image img;
	struct interval_set lower = {0};
	struct thread_restore_args *args;
	int64_t (*tid_map)[2];
	sigset_t all;
	size_t main_idx = (size_t)-1;
	/* a job of several members: this member's slice of the shared container */
	const struct ckpt_job_ops *job = hooks_job_registered();
	/* or, for a debugger, member R's slice in this process alone */
	int inspect = restore_inspect_rank();
	uint64_t rank = inspect >= 0 ? (uint64_t)inspect : (uint64_t)job->rank();
	uint64_t nranks = (uint64_t)job->size();
	const char *flavour = job->flavour();

	/* the program runs before its memory is all in (core/lazy_restore.h),
	 * unless CKPTMPI_RESTART_LAZY=0 or only inspected */
	int lazy_allowed = lazy && inspect < 0;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		static char older[4200];
		int rc = load_generation(path, inspect, rank, nranks, flavour, lazy_allowed, &rd, &info,
		                         &img, &lower);
		if (!rc)
			break;
		if (rc == 2) {
			lazy_allowed = 0;
			continue;
		}
		/* a job's members would each fall back on their own */
		if (rc < 0 || inspect >= 0 || nranks != 1 ||
		    !(path = fall_back(path, older, sizeof older)))
			return -1;
	}
	unsetenv("CKPTMPI_RESTART_FALLBACK");
	if (fell_back) {
		/* said as `ckptmpi restart` says it when its own check fails */
		char when[64] = "?", line[4400];
		time_t t = (time_t)info.created_unix;
		struct tm tm;
		if (localtime_r(&t, &tm))
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(stderr, "ckptmpi: %s: restarting generation %llu of %s instead, the newest "
		        "that verifies\n", first_fault, (unsigned long long)info.generation, when);
		snprintf(line, sizeof line, "ckptmpi[0]: resumed generation %llu of %s (%s) from %s",
		         (unsigned long long)info.generation, when, info.reason, path);
		restore_set_notice(line);
	}
	container_close(rd);
	for (size_t i = 0; i < img.nregions; i++) {
		const struct ck_region *r = &img.regions[i];
		if (r->kind != CK_REGION_FILE_SHARED &&
		    raw_syscall3(SYS_mprotect, r->start, r->end - r->start, r->prot)) {
			log_error("%s: mprotect %#llx failed", path, (unsigned long long)r->start);
			return -1;
		}
	}
	if (procstate_restore(&img, &lower) || (inspect < 0 && held_output_restored(&img)))
		return -1;
	/* the memory is the generation's now: what is written from here on
	 * is what the next (incremental) generation stores */
	if (inspect < 0) {
		/* a region that cannot be tracked is saved whole next time */
		for (size_t i = 0; i < img.nregions; i++)
			if ((img.regions[i].kind == CK_REGION_ANON ||
			     img.regions[i].kind == CK_REGION_FILE_PRIVATE) &&
			    /* (tracked since it was mapped) */
			    !lazy_restore_covers(img.regions[i].start, img.regions[i].end))
				(void)dirty_track(img.regions[i].start, img.regions[i].end);
		dirty_set_base(info.generation, info.chain_depth);
	}

	upper.tid_offset = img.proc.tid_offset;
	upper.rseq_offset = img.proc.rseq_offset;
	upper.rseq_size = img.proc.rseq_size;
	upper.interp_base = 0;
	runtime_set_restored(&info, &img);
	publish_upper_loader(info.program, &img);
	/* the members of a job that starts together (MPI ranks) read behind
	 * their programs once every member has its eager part in: the
	 * loaders of the first would take the disk from one still reading
	 * (4 ranks of 512 MiB: the last one's eager part in 0.21 s instead of
	 * 0.02 s, and every rank waited for it). (The members of a job
	 * without MPI restart whole: no lazy_ok hook.) */
	if (nranks > 1 && inspect < 0 && job->start_agree && !job->agree(1))
		return -1;
	/* the loader from here (the plugins' restore below reads the
	 * program's memory too); the threads hold at their first system call.
	 * A job's member cannot start again alone: a bad chunk ends it */
	if (lazy_restore_start(path, info.generation, rank == 0 ? notice : NULL,
	                       nranks == 1 && !hooks_job_plugin()))
		return -1;
	/* the plugins' objects (MPI, verbs) are re-created before any thread
	 * of the program runs */
	if (inspect < 0 && hooks_restore(&img))
		return -1;

	args = calloc(img.nthreads, sizeof *args);
	tid_map = calloc(img.nthreads, sizeof *tid_map);
	if (!args || !tid_map)
		return -1;
	for (size_t i = 0; i < img.nthreads; i++) {
		const struct ck_thread *t = &img.threads[i];
		struct thread_restore_args *a = &args[i];
		a->fs_base = t->fs_base;
		a->gs_base = t->gs_base;
		a->uc = t->uc_addr;
		a->tid_addr = t->fs_base && img.proc.tid_offset ? t->fs_base + img.proc.tid_offset : 0;
		a->robust_head = t->robust_head;
		a->robust_len = t->robust_len;
		if (img.proc.rseq_size && t->fs_base) {
			a->rseq_addr = t->fs_base + (uint64_t)img.proc.rseq_offset;
			a->rseq_len = img.proc.rseq_size < 32 ? 32 : img.proc.rseq_size;
		}
		a->is_main = t->is_main;
		a->hold = (uint64_t)lazy_restore_active();
		tid_map[i][0] = (int64_t)t->tid;
		if (t->is_main) {
			main_idx = i;
			tid_map[i][1] = getpid();
			continue;
		}
		void *stack = malloc(64 * 1024);
		if (!stack)
			return -1;
		long tid = restorer_clone_thread(a, (char *)stack + 64 * 1024);
		if (tid < 0) {
			log_error("%s: clone: %s", path, strerror((int)-tid));
			return -1;
		}
		tid_map[i][1] = tid;
		log_debug("thread %llu resumes as %ld", (unsigned long long)t->tid, tid);
	}
	if (main_idx == (size_t)-1) {
		log_error("%s: image has no main thread", path);
		return -1;
	}
	if (timers_restore(&img, (const int64_t(*)[2])tid_map, img.nthreads))
		_exit(127); /* threads already run: do not return into the caller */
	/* one line, whatever the verbosity: what this run continues (made
	 * before the runtime's memory was fixed: formatting here would grow
	 * its stack into pages the next checkpoint takes for the program's) */
	/* (a lazy restart's, once its memory is in and checked: until then
	 * it may still restart whole and fall back) */
	if (!lazy_restore_active()) {
		/* the program's last words before this generation first */
		held_output_print();
		if (rank == 0 && notice[0] && write(2, notice, strlen(notice)) < 0)
			log_debug("stderr: %s", strerror(errno));
	}
	log_info("restored generation %llu from %s", (unsigned long long)info.generation, path);
	lazy_restore_running();
	control_upper_started();
	restorer_finish_thread(&args[main_idx]);
}
