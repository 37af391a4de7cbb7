#include "core/control.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/background_write.h"
#include "core/capture.h"
#include "core/control_socket.h"
#include "core/dirty_pages.h"
#include "core/held_output.h"
#include "core/hooks.h"
#include "core/lazy_restore.h"
#include "core/intervals.h"
#include "core/link.h"
#include "core/loader.h"
#include "core/log.h"
#include "core/lowmem.h"
#include "core/maps.h"
#include "core/park.h"
#include "core/procstate.h"
#include "core/rawsys.h"
#include "core/runtime_info.h"
#include "storage/container.h"

static struct control_config cfg;
static int trigger_pipe[2] = {-1, -1};
static int listen_fd = -1;
static uint64_t last_generation, parent_generation;
/* MPI jobs: the last generation this rank has seen begin */
static uint64_t last_begun;
static volatile int upper_started;

/* A restarted process is named after its program (ps, top, pgrep) by the
 * control thread once the program runs again: set from the restore path,
 * the name changed what the debugger saw of the threads it stops there. */
static volatile int name_after_restore;

void control_upper_started(void)
{
	__atomic_store_n(&upper_started, 1, __ATOMIC_RELEASE);
	if (name_after_restore) {
		char w = 'w'; /* WAKE_UP */
		raw_syscall3(SYS_write, trigger_pipe[1], &w, 1);
	}
}

/* The main thread's name (the process's in ps) from this thread. */
static void name_main_thread(const char *program)
{
	const char *base = strrchr(program, '/') ? strrchr(program, '/') + 1 : program;
	char path[64];
	int fd;

	snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)getpid());
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0 ||
	    write(fd, base, strnlen(base, 15)) < 0)
		log_debug("%s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

enum {
	WHY_SIGNAL = CKPTMPI_REQ_SIGNAL,
	WHY_TERM = CKPTMPI_REQ_TERM,
	WHY_API = CKPTMPI_REQ_API,
	WANT_CONTEXT = CKPTMPI_REQ_CONTEXT,
	WHY_COMMAND = 'm',
	WAKE_UP = 'w',
	WHY_INTERVAL = 'i',
};

static const char *why_name(int why)
{
	switch (why) {
	case WHY_TERM:
		return "sigterm";
	case WHY_API:
		return "api";
	case WHY_COMMAND:
		return "command";
	case WHY_INTERVAL:
		return "interval";
	default:
		return "signal";
	}
}

static struct ckptmpi_link link_area = {.magic = CKPTMPI_LINK_MAGIC};

static void link_outcome(volatile int32_t *counter)
{
	__atomic_fetch_add(counter, 1, __ATOMIC_ACQ_REL);
	__atomic_fetch_add(&link_area.seq, 1, __ATOMIC_ACQ_REL);
	syscall(SYS_futex, &link_area.seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void control_set_mpi_predefined(const uint64_t *addrs, uint64_t n)
{
	link_area.mpi_predef = (uint64_t)addrs;
	link_area.mpi_npredef = n;
}

void control_set_mpi(void **table, uint64_t nfuncs, int provided, int flavour, uint64_t main_fs)
{
	link_area.mpi_table = (uint64_t)table;
	link_area.mpi_nfuncs = nfuncs;
	link_area.mpi_provided = provided;
	link_area.mpi_flavour = flavour;
	link_area.main_lower_fs = main_fs;
	park_register_lower_context(main_fs);
	procstate_mpi_job = 1;
	{
		/* the control thread may sleep in poll without a timeout: from
		 * now on it must look for the other ranks' messages */
		char w = WAKE_UP;
		if (write(trigger_pipe[1], &w, 1) != 1)
			log_debug("waking the control thread: %s", strerror(errno));
	}
}

void control_set_upper_loader(uint64_t interp_base, uint64_t r_debug)
{
	link_area.upper_interp_base = interp_base;
	link_area.upper_r_debug = r_debug;
}

uint64_t control_link_mpi_state(void) { return link_area.mpi_state; }
const struct ckptmpi_link *control_link(void) { return &link_area; }
void control_link_set_mpi_state(uint64_t st) { link_area.mpi_state = st; }
void control_link_set_section(int64_t off) { link_area.section_tls_off = off; }


/* A lower-half thread whose only job is to lend its thread control block
 * to an upper thread for its MPI calls; it sleeps forever. */
static void *context_thread(void *arg)
{
	static volatile int never;
	(void)arg;
	park_register_lower_thread(raw_gettid());
	park_register_lower_context((uint64_t)__builtin_thread_pointer());
	link_area.ctx_fs = (uint64_t)__builtin_thread_pointer();
	__atomic_fetch_add(&link_area.ctx_seq, 1, __ATOMIC_ACQ_REL);
	raw_syscall6(SYS_futex, (long)&link_area.ctx_seq, FUTEX_WAKE, INT_MAX, 0, 0, 0);
	for (;;)
		raw_futex(&never, RAW_FUTEX_WAIT, 0);
	return NULL;
}

static void make_context(void)
{
	pthread_t th;
	pthread_attr_t a;
	sigset_t all, old;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&th, &a, context_thread, NULL)) {
		log_error("cannot create a lower-half thread context");
		link_area.ctx_fs = 0;
		__atomic_fetch_add(&link_area.ctx_seq, 1, __ATOMIC_ACQ_REL);
		syscall(SYS_futex, &link_area.ctx_seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&a);
}
uint64_t control_link_epoch(void) { return (uint64_t)link_area.epoch; }

uint64_t runtime_identity(void)
{
	struct stat st;
	if (stat("/proc/self/exe", &st))
		return 0;
	return (uint64_t)st.st_size * 1000003ull ^ (uint64_t)st.st_mtim.tv_sec * 1000000000ull ^
	       (uint64_t)st.st_mtim.tv_nsec ^ (uint64_t)st.st_ino << 20;
}

uint64_t getauxval_vdso(void) { return getauxval(AT_SYSINFO_EHDR); }

void runtime_set_restored(const struct ck_generation_info *info, const struct ck_image *img)
{
	static char argbuf[sizeof info->argv];
	static char *args[256];
	size_t n = 0;

	/* later generations describe the same program */
	memcpy(argbuf, info->argv, info->argv_len);
	for (size_t off = 0; off < info->argv_len && n < 255; off += strlen(argbuf + off) + 1)
		args[n++] = argbuf + off;
	args[n] = NULL;
	cfg.argv = args;
	snprintf(upper.program, sizeof upper.program, "%s", info->program);
	name_after_restore = 1;
	parent_generation = info->generation;
	link_area.epoch = (int32_t)img->proc.link_epoch + 1;
	link_area.seq = 0x40000000 | link_area.epoch; /* differs from any waiter's */
	last_generation = info->generation;
	if (!cfg.interval && info->interval && !getenv("CKPTMPI_INTERVAL"))
		cfg.interval = (unsigned)info->interval;
}

/* SIGTERM: set once, never cleared; the job ends after the checkpoint it
 * asked for (or one under way), whatever more SIGTERMs arrive meanwhile
 * (schedulers and launchers send several). A futex word: it wakes the
 * watchdog. */
static volatile int term_requested;

/* Runs on whatever upper thread takes the signal: raw syscalls only. */
static void trigger_handler(int sig)
{
	char why = sig == SIGTERM ? WHY_TERM : WHY_SIGNAL;
	if (sig == SIGTERM && !__atomic_exchange_n(&term_requested, 1, __ATOMIC_ACQ_REL)) {
		held_output_begin();
		raw_futex(&term_requested, RAW_FUTEX_WAKE, 1);
	}
	raw_syscall3(SYS_write, trigger_pipe[1], &why, 1);
}

/* A lower thread that ends the process if a SIGTERM's checkpoint does not
 * end it within CKPTMPI_TERM_TIMEOUT seconds (a peer lost for good, say). */
static void *term_watchdog(void *arg)
{
	struct timespec until;
	(void)arg;
	park_register_lower_thread(raw_gettid());
	while (!__atomic_load_n(&term_requested, __ATOMIC_ACQUIRE))
		raw_futex(&term_requested, RAW_FUTEX_WAIT, 0);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += cfg.term_timeout;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
		;
	log_error("SIGTERM: no checkpoint within %u s (CKPTMPI_TERM_TIMEOUT): exiting without one "
	          "(status %d)", cfg.term_timeout, CKPTMPI_EXIT_TERM_NO_CHECKPOINT);
	held_output_release();
	_exit(CKPTMPI_EXIT_TERM_NO_CHECKPOINT);
	return NULL;
}

/* A whole number in [lo, hi] made of digits only: 0 and *out, else -1. */
static int setting_uint(const char *v, unsigned long lo, unsigned long hi, unsigned *out)
{
	char *end;
	unsigned long x;

	if (!v || !*v || strspn(v, "0123456789") != strlen(v))
		return -1;
	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || x < lo || x > hi)
		return -1;
	*out = (unsigned)x;
	return 0;
}

int control_config_from_env(struct control_config *c, int create_dir, int dir_optional)
{
	const char *d = getenv("CKPTMPI_DIR"), *v;
	/* the longest name the control socket may take (control_socket.h) */
	size_t sock_name = 1 + strlen(CONTROL_SOCKET_ALT_PREFIX) + CONTROL_SOCKET_TOKEN +
	                   strlen(CONTROL_SOCKET_ALT_SUFFIX),
	       sun_path = sizeof(((struct sockaddr_un *)0)->sun_path);
	unsigned level;

	memset(c, 0, sizeof *c);
	/* checked before anything runs: a typo must not surface hours later
	 * as a checkpoint that fails or never comes */
	v = getenv("CKPTMPI_VERBOSE");
	if (v && *v && setting_uint(v, 0, 3, &level)) {
		log_error("CKPTMPI_VERBOSE=%s: expected 0, 1, 2 or 3", v);
		return -1;
	}
	if (container_compress_setting_check()) { /* (the writer's own parser) */
		log_error("%s", container_error());
		return -1;
	}
	v = getenv("CKPTMPI_INTERVAL");
	if (v && *v && setting_uint(v, 0, 86400 * 365, &c->interval)) {
		log_error("CKPTMPI_INTERVAL=%s: expected whole seconds between checkpoints (0: none)", v);
		return -1;
	}
	v = getenv("CKPTMPI_KEEP");
	c->keep = 2;
	if (v && *v && setting_uint(v, 1, 1000000, &c->keep)) {
		log_error("CKPTMPI_KEEP=%s: expected how many generations to keep, at least 1", v);
		return -1;
	}
	v = getenv("CKPTMPI_FULL_EVERY");
	c->full_every = 8;
	if (v && *v && setting_uint(v, 1, 1000000, &c->full_every)) {
		log_error("CKPTMPI_FULL_EVERY=%s: expected every how many generations one is full "
		          "(1: every one; the others store only the pages written since their parent)",
		          v);
		return -1;
	}
	dirty_enable(c->full_every > 1);
	v = getenv("CKPTMPI_BACKGROUND");
	c->background = 1;
	if (v && *v) {
		unsigned b;
		if (setting_uint(v, 0, 1, &b)) {
			log_error("CKPTMPI_BACKGROUND=%s: expected 1 (write images behind the running "
			          "program, the default) or 0 (with the program stopped)", v);
			return -1;
		}
		c->background = (int)b;
	}
	v = getenv("CKPTMPI_RESTART_LAZY");
	c->restart_lazy = 1;
	if (v && *v) {
		unsigned b;
		if (setting_uint(v, 0, 1, &b)) {
			log_error("CKPTMPI_RESTART_LAZY=%s: expected 1 (a restart runs the program while "
			          "its memory comes in, the default) or 0 (read it whole first)", v);
			return -1;
		}
		c->restart_lazy = (int)b;
	}
	if ((!d || !*d) && dir_optional) {
		log_info("CKPTMPI_DIR is not set: running without checkpoints");
		return 0;
	}
	if (!d || !*d) {
		log_error("CKPTMPI_DIR is not set: where should checkpoints go?");
		return -1;
	}
	if (create_dir && mkdir(d, 0700) && errno != EEXIST) {
		log_error("%s: cannot create: %s", d, strerror(errno));
		return -1;
	}
	if (!realpath(d, c->dir)) {
		log_error("%s: %s", d, strerror(errno));
		return -1;
	}
	if (strlen(c->dir) + sock_name >= sun_path) {
		log_error("%s: path too long for the job's control socket (%zu bytes, at most %zu): "
		          "use a shorter CKPTMPI_DIR", c->dir, strlen(c->dir), sun_path - sock_name - 1);
		return -1;
	}
	v = getenv("CKPTMPI_TERM");
	c->term_checkpoints = 1;
	if (v && *v) {
		if (!strcmp(v, "exit"))
			c->term_checkpoints = 0;
		else if (strcmp(v, "checkpoint")) {
			log_error("CKPTMPI_TERM=%s: expected checkpoint or exit", v);
			return -1;
		}
	}
	v = getenv("CKPTMPI_TERM_TIMEOUT");
	c->term_timeout = 300;
	if (v && *v) {
		char *end;
		unsigned long t = strtoul(v, &end, 10);
		if (*end || t > 86400 * 7) {
			log_error("CKPTMPI_TERM_TIMEOUT=%s: expected seconds (0: wait for ever)", v);
			return -1;
		}
		c->term_timeout = (unsigned)t;
	}
	v = getenv("CKPTMPI_SIGNAL");
	c->trigger_signal = SIGUSR1;
	if (v && *v) {
		if (!strcmp(v, "SIGUSR2") || !strcmp(v, "USR2"))
			c->trigger_signal = SIGUSR2;
		else if (!strcmp(v, "SIGUSR1") || !strcmp(v, "USR1"))
			c->trigger_signal = SIGUSR1;
		else if (atoi(v) > 0 && atoi(v) < 65)
			c->trigger_signal = atoi(v);
		else {
			log_error("CKPTMPI_SIGNAL=%s: not a signal", v);
			return -1;
		}
	}
	return 0;
}

/* What `ckptmpi status DIR` is told; rank 0 (member 0) answers. Written
 * by the control thread only. */
enum { PHASE_IDLE, PHASE_STOPPING, PHASE_WRITING };
static struct {
	int phase;
	time_t started, since; /* this process; the checkpoint under way */
	uint64_t done, total;  /* bytes of this rank's page data written */
} status;
/* `ckptmpi checkpoint` requests accepted during a write: answered with
 * its outcome (the write serves them) */
static int held_fd[8], nheld;

static void serve_requests_during_write(void);

/* for the tests of the progress shown (and of kills during a write)
 * only: a write made slow, CKPTMPI_TEST_FAULT=slowwrite:MS pauses MS at
 * each step, in whichever process writes */
static void test_slow_write(uint64_t done, uint64_t total)
{
	const char *f = getenv("CKPTMPI_TEST_FAULT");
	if (f && !strncmp(f, "slowwrite:", 10) && done < total) {
		long ms = atol(f + 10);
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}

/* The write's progress as `ckptmpi status` shows it (and the log) */
static void note_progress(uint64_t done, uint64_t total)
{
	status.phase = PHASE_WRITING;
	status.done = done;
	status.total = total;
	if (log_level() >= 1)
		log_info("checkpoint: wrote %llu of %llu MiB", (unsigned long long)(done >> 20),
		         (unsigned long long)(total >> 20));
}

/* A write with the program stopped: the control thread serves requests
 * between its steps */
static void write_progress(uint64_t done, uint64_t total)
{
	note_progress(done, total);
	serve_requests_during_write();
	test_slow_write(done, total);
}

/* A write behind the program (core/background_write.h): what the forked
 * writer runs */
struct behind_ctx {
	const struct ckpt_job_ops *job;
	const struct ck_generation_info *info;
	struct ck_image *img;
	container_progress_fn report;
};
static struct behind_ctx behind;
/* how long a job's write_begin (the container's layout, beside the
 * running program) took */
static double layout_s;

static void behind_progress(uint64_t done, uint64_t total)
{
	behind.report(done, total);
	test_slow_write(done, total);
}

static int write_behind(void *ctx, const void *plan, size_t planlen, container_progress_fn report,
                        char *tmp, size_t tmplen, uint64_t *stored, char *err, size_t errlen)
{
	struct behind_ctx *b = ctx;

	(void)plan, (void)planlen;
	b->report = report;
	if (capture_settle_zero_pages(b->img)) {
		snprintf(err, errlen, "checkpoint writer: out of memory for the page index");
		return -1;
	}
	if (b->job->write(cfg.dir, b->info, b->img, behind_progress, tmp, tmplen)) {
		snprintf(err, errlen, "%s", container_error());
		return -1;
	}
	*stored = b->img->memory_bytes;
	return 0;
}

/* Written behind the program, or with it stopped: behind when the
 * program is to run on (not before an exit: what it did after the cut
 * would run again after a restart), the image holds no shared memory
 * (another process could change it before the writer reads it: the
 * forked writer sees private memory as it was, shared memory as it is)
 * and CKPTMPI_BACKGROUND is not 0. */
static int write_behind_wanted(const struct ck_image *img, int then_exit)
{
	if (then_exit || !cfg.background)
		return 0;
	for (size_t i = 0; i < img->nregions; i++)
		if (img->regions[i].kind == CK_REGION_SHARED_ANON)
			return 0;
	return 1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Requests that came while the program was stopped are served by this
 * checkpoint: one signal forwarded to every rank (or sent twice), an
 * interval tick, a ckptmpi_checkpoint() call, make one generation. Called
 * before the threads run again, so a signal still pending (every upper
 * thread blocks signals while parked) is taken here, not by the handler
 * the release would run. SIGTERM is only remembered. */
static void absorb_requests(void)
{
	struct timespec zero = {0, 0};
	struct pollfd p = {trigger_pipe[0], POLLIN, 0};
	sigset_t set;
	siginfo_t si;
	int n = 0, sig;

	sigemptyset(&set);
	sigaddset(&set, cfg.trigger_signal);
	if (cfg.term_checkpoints)
		sigaddset(&set, SIGTERM);
	while ((sig = sigtimedwait(&set, &si, &zero)) > 0) {
		if (sig == SIGTERM) {
			__atomic_store_n(&term_requested, 1, __ATOMIC_RELEASE);
			held_output_begin();
		}
		n++;
	}
	while (poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
		char why;
		if (read(trigger_pipe[0], &why, 1) != 1)
			break;
		if (why == WANT_CONTEXT)
			make_context(); /* its thread waits, parked, for the answer */
		else if (why != WAKE_UP)
			n++;
	}
	if (n)
		log_info("%d checkpoint request(s) made during the checkpoint: served by it", n);
}

/* This member's slice of generation GEN, still the temporary PATH, read
 * back (checksums), with the program running on. */
static int slice_reads_back(const char *path, uint64_t gen, uint64_t member)
{
	struct container_reader *r;
	struct ck_image img;
	int ok;

	{
		/* for the tests of this rule only: CKPTMPI_TEST_FAULT=readback:GEN
		 * (fails), readback_slow:GEN (takes 10 s more) */
		const char *f = getenv("CKPTMPI_TEST_FAULT");
		if (f && !strncmp(f, "readback:", 9) && strtoull(f + 9, NULL, 10) == gen) {
			log_error("%s: read back failed (CKPTMPI_TEST_FAULT)", path);
			return 0;
		}
		if (f && !strncmp(f, "readback_slow:", 14) && strtoull(f + 14, NULL, 10) == gen)
			sleep(10);
	}
	if (!(r = container_open_own(path))) {
		log_error("%s", container_error());
		return 0;
	}
	ok = container_read_image(r, member, &img) == 0;
	if (ok) {
		ok = container_read_pages(r, member, &img, 0, NULL) == 0;
		ck_image_free(&img);
	}
	if (!ok)
		log_error("%s", container_error());
	container_close(r);
	return ok;
}

/* Retention never removes the last generation that verifies: every member
 * reads its own slice of the new generation back first (from the page
 * cache as a rule: cheap next to the write), and only then are older
 * generations pruned beyond CKPTMPI_KEEP. The slices are read from the
 * temporary, before the commit, and the pruning follows the commit at
 * once: read back after it, a program that ended meanwhile (its exit
 * ends the process, the control thread with it) left KEEP + 1
 * generations (seen in CI, e2e_interval). 1: prune after the commit. */
static int retention_verified(const struct ckpt_job_ops *job, uint64_t gen, const char *tmp)
{
	struct generation_entry *list;
	size_t n = 0;
	int prune = 0;

	/* everyone asks the same directory: the same answer (the number of
	 * generations can only grow meanwhile, by a later checkpoint of
	 * this same control thread); the new one comes on top */
	if (generations_list(cfg.dir, &list, &n) == 0) {
		prune = n + 1 > cfg.keep;
		free(list);
	}
	if (!job->agree(!prune))
		prune = 1;
	if (!prune)
		return 0;
	if (!job->agree(slice_reads_back(tmp, gen, (uint64_t)job->rank()))) {
		log_error("generation %llu does not read back on every member: the older generations "
		          "are kept (CKPTMPI_KEEP=%u not applied)",
		          (unsigned long long)gen, cfg.keep);
		return 0;
	}
	return 1;
}

static void retain(const struct ckpt_job_ops *job)
{
	if (job->rank() == 0 && generations_retain(cfg.dir, cfg.keep))
		log_error("%s", container_error());
}

/* The program runs again: the capture's borrowed protections restored,
 * what the lower half mapped since `before` (the first look, NULL when
 * there was none) accounted as its own, requests that came meanwhile
 * absorbed, the plugins resumed, the threads released. */
static double released_at; /* when release_program let the threads go */

static void release_program(const struct interval_set *before)
{
	struct map_list m1 = {0};
	struct interval_set after = {0};

	capture_unborrow();
	/* without the first look everything would pass for the lower half's */
	if (before && maps_read_self(&m1) == 0 && maps_to_intervals(&m1, &after) == 0)
		lowmem_account_change(before, &after);
	maps_free(&m1);
	intervals_free(&after);
	absorb_requests();
	hooks_resume();
	/* the pause ends here: on cores shared with other ranks' running
	 * programs, this thread may wait a while for its next turn (seen:
	 * 0.13 s), which the program does not */
	released_at = now_s();
	park_release();
}

/* Behind the program: the forked writer (core/background_write.h) holds
 * the image as it was, the program runs again, the control thread waits
 * for the writer's outcome serving requests. 1: written. */
static int write_behind_wait(background_write_fn fn, const struct interval_set *before,
                             struct ck_image *img, char *tmp, size_t tmplen, int *released,
                             double *t_resumed, char *err, size_t errlen)
{
	struct background_write bw;

	if (background_write_start(&bw, fn, &behind, 0))
		return -1; /* not started: the caller writes with the program stopped */
	release_program(before);
	*released = 1;
	*t_resumed = released_at;
	if (background_write_wait(&bw, note_progress, serve_requests_during_write, tmp, tmplen,
	                          &img->memory_bytes, err, errlen)) {
		log_error("%s", err);
		return 0;
	}
	return 1;
}

/* A job's member: its page data, as the plan its parent worked out with
 * the program running says, written by the writer forked at the cut */
static int write_pages_behind(void *ctx, const void *plan, size_t planlen,
                              container_progress_fn report, char *tmp, size_t tmplen,
                              uint64_t *stored, char *err, size_t errlen)
{
	struct behind_ctx *b = ctx;

	(void)tmp, (void)tmplen;
	b->report = report;
	if (b->job->write_pages(plan, planlen, b->img, behind_progress)) {
		snprintf(err, errlen, "%s", container_error());
		return -1;
	}
	*stored = b->img->memory_bytes;
	return 0;
}

/* A job whose members write their page data behind the program: each
 * forks its writer at the cut (the pause ends there), then the members
 * lay the container out together beside the running program, each
 * sends its writer the places of its chunks, and they agree on the
 * outcome. possible: this member's page data can go behind. 1 written;
 * 0 not (err); -1 not started on every member (the caller writes with
 * the program stopped). */
static int write_job_behind(const struct ckpt_job_ops *job, const struct ck_generation_info *info,
                            struct ck_image *img, int possible, const struct interval_set *before,
                            char *tmp, size_t tmplen, int *released, double *t_resumed,
                            char *err, size_t errlen)
{
	struct background_write bw;
	const void *plan = NULL;
	size_t planlen = 0;
	char ignored[8];
	int started, r, ok;
	double t_begin;

	/* forked before the members agree, so that one collective round
	 * decides: a member that cannot go behind votes no, and the others'
	 * writers are told there is nothing to write */
	started = possible && background_write_start(&bw, write_pages_behind, &behind, 1) == 0;
	if (!job->agree(started)) {
		if (started)
			background_write_cancel(&bw);
		return -1;
	}
	release_program(before);
	*released = 1;
	*t_resumed = released_at;
	t_begin = now_s();
	r = job->write_begin(cfg.dir, info, img, write_progress, tmp, tmplen, &plan, &planlen);
	layout_s = now_s() - t_begin;
	if (r) {
		/* failed on every member together; member 0 removed tmp */
		background_write_cancel(&bw);
		job->write_end();
		snprintf(err, errlen, "%s", container_error());
		log_error("%s", err);
		return 0;
	}
	r = background_write_send_plan(&bw, plan, planlen);
	job->write_end();
	/* the writer names no temporary: tmp is the layout's */
	if (background_write_wait(&bw, note_progress, serve_requests_during_write, ignored,
	                          sizeof ignored, &img->memory_bytes, err, errlen) || r) {
		log_error("%s", err);
		r = -1;
	}
	ok = job->agree(r == 0);
	if (!ok) {
		if (r == 0)
			snprintf(err, errlen, "another rank could not write its page data of the "
			         "generation (see its message)");
		if (job->rank() == 0)
			unlink(tmp);
	}
	return ok;
}

/* The image into a temporary of DIR (its name in tmp): 1 written, 0 not
 * (err says why). Behind the program where it can be (*released: the
 * program runs again, at *t_resumed); else with it stopped. */
static int write_image(const struct ckpt_job_ops *job, const struct ck_generation_info *info,
                       struct ck_image *img, int then_exit, const struct interval_set *before,
                       char *tmp, size_t tmplen, int *released, double *t_resumed, char *err,
                       size_t errlen)
{
	int r;

	*released = 0;
	layout_s = 0;
	behind = (struct behind_ctx){job, info, img, NULL};
	/* a job's members go behind together or not at all */
	if (job->write_begin &&
	    (r = write_job_behind(job, info, img,
	                          write_behind_wanted(img, then_exit) &&
	                          job->write_behind_possible(cfg.dir, img),
	                          before, tmp, tmplen, released, t_resumed, err, errlen)) >= 0)
		return r;
	/* a job without write_begin: its collective writer needs every
	 * member's transport */
	if (!hooks_job_shared(job) && write_behind_wanted(img, then_exit)) {
		r = write_behind_wait(write_behind, before, img, tmp, tmplen, released, t_resumed,
		                      err, errlen);
		if (r >= 0)
			return r;
	}
	if (capture_settle_zero_pages(img) ||
	    job->write(cfg.dir, info, img, write_progress, tmp, tmplen)) {
		snprintf(err, errlen, "%s", container_error());
		log_error("%s", container_error());
		return 0;
	}
	return 1;
}

/* Returns the committed generation, or 0 with *err set. In an MPI job
 * every rank runs this together for generation `gen` (chosen by rank 0);
 * each collective step gives the same answer on every rank. then_exit:
 * the process ends after it (the program must not run on meanwhile);
 * *ran_on: it did (the image was written behind it). */
static uint64_t checkpoint(const char *reason, uint64_t gen, int then_exit, int *ran_on,
                           char *err, size_t errlen)
{
	struct map_list m0 = {0};
	struct interval_set before = {0};
	struct park_result parked;
	struct ck_image img;
	struct ck_generation_info *info = NULL;
	char tmp[4096];
	uint64_t latest;
	double t0 = now_s(), t_parked, t_captured, t_resumed = 0, t_written;
	/* the job this process belongs to (core/hooks.h) */
	const struct ckpt_job_ops *job = hooks_job();
	int written = 0, released = 0, ok, prune = 0;
	/* incremental over the last generation, or full (every
	 * CKPTMPI_FULL_EVERY-th; or when nothing is tracked). The same on
	 * every rank of a job: each has committed the same generations */
	uint64_t pages_parent = dirty_next_parent(cfg.full_every), dirty_depth_before = dirty_depth();

	if (pages_parent && job->size() == 1 && !dirty_available())
		pages_parent = 0;
	memset(&img, 0, sizeof img);
	*ran_on = 0;
	snprintf(err, errlen, "checkpoint failed (see the job's stderr)");
	log_clear_error();
	ok = 1;
	if (!cfg.dir[0]) {
		snprintf(err, errlen, "checkpointing is off: CKPTMPI_DIR is not set");
		ok = 0;
	} else if (!__atomic_load_n(&upper_started, __ATOMIC_ACQUIRE)) {
		snprintf(err, errlen, "the program has not started yet");
		ok = 0;
	} else if (hooks_check(err, errlen)) {
		ok = 0;
	}
	if (!job->agree(ok)) {
		/* the job may have said why (a member of a job without MPI gone) */
		if (ok)
			snprintf(err, errlen, "%s", log_last_error()[0] ? log_last_error() :
			         "another rank cannot checkpoint now (see its message)");
		log_error("%s", err);
		return 0;
	}
	/* a lazy restart's memory all in first: the program is held at its
	 * system calls until then, where it could not be parked */
	lazy_restore_wait();
	{
		char why[1024] = "";
		if (job->quiesce(&parked, why, sizeof why)) {
			/* else the job logged its reason itself (park_all does) */
			if (why[0])
				log_error("%s", why);
			gen = 0;
			goto out;
		}
	}
	{
		/* the plugins' own cut (the verbs device), with every member
		 * parked: what it records is upper-half memory made before the
		 * first look below, so it is in the image. Agreed with the
		 * capture below: nothing of the job's transport runs between
		 * here and that first look (its memory would count as the
		 * program's) */
		char why[1024] = "";
		lazy_restore_settle();
		ok = hooks_quiesce(job, &parked, why, sizeof why) == 0;
		if (!ok)
			log_error("%s", why[0] ? why : "a plugin could not reach a consistent cut");
	}
	t_parked = now_s();
	/* from here the write tracking is reset: until this generation is
	 * committed, the next one cannot depend on anything */
	dirty_set_base(0, 0);
	capture_set_incremental(pages_parent != 0);
	/* reading every page at the cut to find the zero ones is most of a
	 * pause: a writer behind the program looks at its copy instead; a job
	 * member's layout is fixed in the pause, so its zero pages are stored
	 * (its writer leaves a chunk of zeros a hole in the file) */
	capture_defer_zero_pages(then_exit || !cfg.background ? CAPTURE_ZERO_AT_CUT :
	                         job->write_begin ? CAPTURE_ZERO_KEPT : CAPTURE_ZERO_BY_WRITER);
	/* the first look at the address space comes only now: whatever
	 * changes from here to the second is the lower half's (the program
	 * ran on during an MPI job's cut, and mapped memory of its own) */
	ok = ok && maps_read_self(&m0) == 0 && maps_to_intervals(&m0, &before) == 0 &&
	     capture_image(&parked, &img) == 0 && hooks_capture(&img) == 0 &&
	     held_output_capture(&img) == 0;
	if (!job->agree(ok)) {
		/* the first look may not have been taken: nothing accounted */
		release_program(NULL);
		gen = 0;
		goto out;
	}
	info = calloc(1, sizeof *info);
	if (!info) /* ranks that fail here fail in the collective write too */
		goto release;
	if (!hooks_job_shared(job)) {
		latest = generations_latest(cfg.dir);
		gen = (latest > last_generation ? latest : last_generation) + 1;
	}
	info->generation = gen;
	info->parent = parent_generation;
	info->nranks = (uint64_t)job->size();
	info->created_unix = (uint64_t)time(NULL);
	snprintf(info->reason, sizeof info->reason, "%s", reason);
	snprintf(info->mpi_flavour, sizeof info->mpi_flavour, "%s",
	         job->flavour());
	snprintf(info->program, sizeof info->program, "%s", upper.program);
	if (readlink("/proc/self/exe", info->runtime, sizeof info->runtime - 1) < 0)
		info->runtime[0] = 0;
	info->runtime_id = runtime_identity();
	info->interval = cfg.interval;
	info->pages_parent = pages_parent;
	info->chain_depth = pages_parent ? dirty_depth_before + 1 : 0;
	for (char **a = cfg.argv; a && *a; a++) {
		size_t l = strlen(*a) + 1;
		if (info->argv_len + l > sizeof info->argv)
			break;
		memcpy(info->argv + info->argv_len, *a, l);
		info->argv_len += l;
	}
	t_captured = now_s();
	written = write_image(job, info, &img, then_exit, &before, tmp, sizeof tmp, &released,
	                      &t_resumed, err, errlen);
	*ran_on = released;
	if (!written)
		gen = 0;
release:
	t_written = now_s();
	/* the new slices read back (seconds for a large one) before the
	 * commit, so that the pruning can follow the commit at once */
	prune = written && retention_verified(job, gen, tmp);
	/* `ckptmpi checkpoint` commands that came up to the commit are served
	 * by it; one that comes after must get a generation of its own */
	if (written)
		serve_requests_during_write();
	/* commit and prune before the program runs on (when it was stopped
	 * for the write): when it resumes (or exits), the directory already
	 * holds exactly what it should */
	if (written) {
		if (job->commit(cfg.dir, gen, tmp)) {
			snprintf(err, errlen, "%s", container_error());
			log_error("%s", container_error());
			if (!hooks_job_shared(job))
				unlink(tmp);
			gen = 0;
		} else {
			if (prune)
				retain(job);
			last_generation = gen;
			dirty_set_base(gen, info->chain_depth);
			if (pages_parent)
				log_info("generation %llu is incremental: %llu KiB of pages written since "
				         "generation %llu (chain depth %llu)", (unsigned long long)gen,
				         (unsigned long long)(img.memory_bytes >> 10),
				         (unsigned long long)pages_parent,
				         (unsigned long long)info->chain_depth);
			if (released) {
				/* the pause counts from the threads' stop: before it a
				 * job's members agree on a cut with the program running */
				double t_stop = park_started() > t0 ? park_started() : t0;
				log_info("generation %llu committed (%s): %llu MiB of %llu MiB saved, "
				         "paused %.3f s (stopping threads %.3f s, looking %.3f s, starting "
				         "the writer %.3f s) after %.3f s reaching the cut, written behind "
				         "the program in %.3f s (of which laying out the file %.3f s)",
				         (unsigned long long)gen, reason,
				         (unsigned long long)(img.memory_bytes >> 20),
				         (unsigned long long)(img.proc.upper_size >> 20),
				         t_resumed - t_stop, t_parked - t_stop, t_captured - t_parked,
				         t_resumed - t_captured, t_stop - t0, t_written - t_resumed,
				         layout_s);
			} else
				log_info("generation %llu committed (%s): %llu MiB of %llu MiB saved, "
				         "paused %.3f s (stopping threads %.3f s, writing %.3f s)",
				         (unsigned long long)gen, reason,
				         (unsigned long long)(img.memory_bytes >> 20),
				         (unsigned long long)(img.proc.upper_size >> 20), now_s() - t0,
				         t_parked - t0, t_written - t_parked);
		}
	} else {
		gen = 0;
	}
	if (!released)
		release_program(&before);
	ck_image_free(&img);
out:
	if (!gen && log_last_error()[0])
		snprintf(err, errlen, "%s", log_last_error());
	free(info);
	maps_free(&m0);
	intervals_free(&before);
	return gen;
}

/* A checkpoint of the whole job. In an MPI job only rank 0 starts one:
 * it picks the generation and tells every rank. */
static void reply_outcome(int fd, uint64_t gen, const char *err)
{
	char reply[1200];
	int n = gen ? snprintf(reply, sizeof reply, "ok %llu\n", (unsigned long long)gen)
	            : snprintf(reply, sizeof reply, "error: %.1000s\n", err);
	if (write(fd, reply, (size_t)n) < 0)
		log_debug("control reply: %s", strerror(errno));
}

/* The commands held during the checkpoint (collected up to its commit);
 * those still queued are served after it, by a checkpoint of their own */
static void reply_waiting_clients(uint64_t gen, const char *err)
{
	for (; nheld > 0; nheld--) {
		reply_outcome(held_fd[nheld - 1], gen, err);
		procstate_unregister_lower_fd(held_fd[nheld - 1]);
		close(held_fd[nheld - 1]);
	}
}

static __attribute__((noreturn)) void term_exit(uint64_t gen)
{
	if (gen)
		log_info("SIGTERM: generation %llu committed, exiting (status %d)",
		         (unsigned long long)gen, CKPTMPI_EXIT_TERM_CHECKPOINTED);
	else
		log_error("SIGTERM: no checkpoint could be taken, exiting without one (status %d)",
		          CKPTMPI_EXIT_TERM_NO_CHECKPOINT);
	if (!gen)
		held_output_release();
	_exit(gen ? CKPTMPI_EXIT_TERM_CHECKPOINTED : CKPTMPI_EXIT_TERM_NO_CHECKPOINT);
}

static uint64_t job_checkpoint(int why, uint64_t gen, char *err, size_t errlen)
{
	const struct ckpt_job_ops *job = hooks_job();
	int term, ran_on = 0;

	if (hooks_job_shared(job)) {
		if (job->rank() == 0) {
			uint64_t latest = cfg.dir[0] ? generations_latest(cfg.dir) : 0;
			gen = (latest > last_generation ? latest : last_generation) + 1;
			if (gen <= last_begun)
				gen = last_begun + 1;
			job->begin(gen, why);
		}
		last_begun = gen;
	}
	status.phase = PHASE_STOPPING;
	status.since = time(NULL);
	status.done = status.total = 0;
	term = why == WHY_TERM || __atomic_load_n(&term_requested, __ATOMIC_ACQUIRE);
	gen = checkpoint(why_name(why), gen, term, &ran_on, err, errlen);
	status.phase = PHASE_IDLE;
	link_outcome(gen ? &link_area.committed : &link_area.failed);
	/* `ckptmpi checkpoint` commands that came meanwhile get this outcome */
	reply_waiting_clients(gen, err);
	/* a SIGTERM on any rank, before or during this checkpoint, ends the
	 * whole job after it */
	term = why == WHY_TERM || __atomic_load_n(&term_requested, __ATOMIC_ACQUIRE);
	term = !job->agree(!term);
	if (term && ran_on) {
		/* SIGTERM came while the image was written behind the program,
		 * which ran on past the cut: what it did since would run again
		 * after a restart. The last generation is taken with it stopped */
		log_info("SIGTERM during a checkpoint written behind the program: one more, "
		         "with the program stopped");
		status.phase = PHASE_STOPPING;
		status.since = time(NULL);
		/* every member is here (the term was agreed on, and they went
		 * behind together): the next generation, without a begin */
		if (hooks_job_shared(job))
			last_begun++;
		gen = checkpoint(why_name(WHY_TERM), last_begun, 1, &ran_on, err, errlen);
		status.phase = PHASE_IDLE;
		link_outcome(gen ? &link_area.committed : &link_area.failed);
	}
	if (term)
		term_exit(gen);
	return gen;
}

/* A request on this member of the job: carried out here, or passed on
 * to member 0. */
static void local_request(int why)
{
	const struct ckpt_job_ops *job = hooks_job();
	char err[1024];
	int entered = job->enter();

	if (!entered || !job->may_begin()) {
		/* said at every verbosity: someone asked, and gets nothing */
		log_error("no checkpoint: the program %s (%s)",
		          entered ? "is finalizing" : "is being restored, or has finalized",
		          job->flavour());
		link_outcome(&link_area.failed);
		if (entered)
			job->leave();
		if (why == WHY_TERM)
			term_exit(0);
		return;
	}
	if (job->rank() != 0)
		job->request(why, last_begun);
	else
		job_checkpoint(why, 0, err, sizeof err);
	job->leave();
}

/* The request on a client's connection ("checkpoint", "status"): 0, or
 * -1 when there is none (a peer that is not this user is told so). A
 * client that connects and says nothing must not hold the control
 * thread. */
static int read_request(int fd, char *buf, size_t len)
{
	static const char denied[] = "error: permission denied\n";
	struct timeval tv = {2, 0};
	struct ucred cred;
	socklen_t clen = sizeof cred;
	ssize_t n;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) || cred.uid != getuid()) {
		if (write(fd, denied, sizeof denied - 1) < 0)
			log_debug("control reply: %s", strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv))
		log_debug("control: SO_RCVTIMEO: %s", strerror(errno));
	n = read(fd, buf, len - 1);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return 0;
}

static void reply_text(int fd, const char *text)
{
	if (write(fd, text, strlen(text)) < 0)
		log_debug("control reply: %s", strerror(errno));
}

/* "key value" lines; tools/ckptmpi.c (status, checkpoint --progress)
 * reads them */
static void reply_status(int fd)
{
	static const char *const phase[] = {"idle", "stopping", "writing"};
	const struct ckpt_job_ops *job = hooks_job();
	char reply[6000], host[256] = "?";

	if (gethostname(host, sizeof host))
		snprintf(host, sizeof host, "?");
	host[sizeof host - 1] = 0;
	snprintf(reply, sizeof reply,
	         "pid %d\nhost %s\nprogram %s\nflavour %s\nranks %d\nstarted %lld\n"
	         "interval %u\nkeep %u\ngeneration %llu\nrestored %llu\ncheckpoint %s\n"
	         "since %lld\ndone %llu\ntotal %llu\n",
	         (int)getpid(), host, upper.program, job->flavour(), job->size(),
	         (long long)status.started, cfg.interval, cfg.keep,
	         (unsigned long long)last_generation, (unsigned long long)parent_generation,
	         phase[status.phase], (long long)status.since, (unsigned long long)status.done,
	         (unsigned long long)status.total);
	reply_text(fd, reply);
}

/* A client's request; a `ckptmpi checkpoint` gets a checkpoint of its own */
static void serve_client(int fd)
{
	const struct ckpt_job_ops *job = hooks_job();
	char buf[64], err[1024];
	uint64_t gen = 0;
	int entered;

	if (read_request(fd, buf, sizeof buf))
		return;
	if (!strncmp(buf, "status", 6)) {
		reply_status(fd);
		return;
	}
	if (strncmp(buf, "checkpoint", 10)) {
		reply_text(fd, "error: unknown request\n");
		return;
	}
	entered = job->enter();
	if (!entered || !job->may_begin())
		snprintf(err, sizeof err, "the program is finalizing (%s)", job->flavour());
	else
		gen = job_checkpoint(WHY_COMMAND, 0, err, sizeof err);
	if (entered)
		job->leave();
	reply_outcome(fd, gen, err);
}

/* From the write's progress: `ckptmpi status` is answered at once, a
 * `ckptmpi checkpoint` held for this checkpoint's outcome. */
static void serve_requests_during_write(void)
{
	struct pollfd p = {listen_fd, POLLIN, 0};
	char buf[64];

	while (listen_fd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
		int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC), moved;
		if (c < 0 || (moved = procstate_move_lower_fd(c)) < 0)
			return;
		if (!read_request(moved, buf, sizeof buf)) {
			if (!strncmp(buf, "status", 6)) {
				reply_status(moved);
			} else if (!strncmp(buf, "checkpoint", 10) &&
			           nheld < (int)(sizeof held_fd / sizeof *held_fd)) {
				held_fd[nheld++] = moved;
				continue;
			} else {
				reply_text(moved, "error: busy with a checkpoint, try again\n");
			}
		}
		procstate_unregister_lower_fd(moved);
		close(moved);
	}
}

static void serve_connection(void)
{
	int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c >= 0) {
		int moved = procstate_move_lower_fd(c);
		if (moved >= 0) {
			serve_client(moved);
			procstate_unregister_lower_fd(moved);
			close(moved);
		}
	}
}

static void *control_main(void *arg)
{
	double next = cfg.interval ? now_s() + cfg.interval : 0;
	(void)arg;

	park_register_lower_thread(raw_gettid());
	for (;;) {
		struct pollfd p[2] = {{trigger_pipe[0], POLLIN, 0}, {listen_fd, POLLIN, 0}};
		const struct ckpt_job_ops *job = hooks_job();
		int timeout = -1, r, shared = hooks_job_shared(job);

		/* in a job of several members the interval is member 0's */
		if (cfg.interval && !next && job->rank() == 0)
			next = now_s() + cfg.interval;
		if (job->rank() != 0)
			next = 0;
		if (next) {
			double left = next - now_s();
			timeout = left > 0 ? (int)(left * 1000) + 1 : 0;
		}
		/* look for the other members' messages now and then */
		if (shared && cfg.dir[0] && (timeout < 0 || timeout > 20))
			timeout = 20;
		r = poll(p, listen_fd >= 0 ? 2 : 1, timeout);
		if (r < 0 && errno != EINTR) {
			log_error("control: poll: %s", strerror(errno));
			sleep(1);
			continue;
		}
		if (shared && cfg.dir[0] && job->enter()) {
			uint64_t gen = 0;
			int why = 0, begin = job->poll(last_begun, &gen, &why);
			if (begin) {
				char err[1024];
				job_checkpoint(why, gen, err, sizeof err);
				if (cfg.interval)
					next = now_s() + cfg.interval;
			}
			job->leave();
			if (begin)
				continue;
		}
		if (next && now_s() >= next) {
			local_request(WHY_INTERVAL);
			next = now_s() + cfg.interval;
			continue;
		}
		if (p[0].revents & POLLIN) {
			char why = 0;
			if (read(trigger_pipe[0], &why, 1) != 1) {
				/* spurious wake-up */
			} else if (why == WANT_CONTEXT) {
				make_context();
			} else if (why == WAKE_UP) {
				/* look again at the configuration */
				if (name_after_restore && __atomic_load_n(&upper_started, __ATOMIC_ACQUIRE)) {
					name_main_thread(upper.program);
					name_after_restore = 0;
				}
			} else {
				local_request(why);
				if (cfg.interval)
					next = now_s() + cfg.interval;
			}
		}
		if (listen_fd >= 0 && (p[1].revents & POLLIN)) {
			serve_connection();
			if (cfg.interval)
				next = now_s() + cfg.interval;
		}
	}
	return NULL;
}

uint64_t control_restored_generation(void) { return parent_generation; }

int launcher_rank(void)
{
	/* set by mpirun (OpenMPI, PMIx, MPICH's hydra) before MPI_Init */
	const char *v = getenv("OMPI_COMM_WORLD_RANK");
	if (!v)
		v = getenv("PMIX_RANK");
	if (!v)
		v = getenv("PMI_RANK");
	/* a member of a job without MPI (core/job_group.c) */
	if (!v)
		v = getenv("CKPTMPI_JOB_MEMBER");
	return v ? atoi(v) : 0;
}

static int open_control_socket(void)
{
	/* in a directory others share: see core/control_socket.h */
	int fd = control_socket_open(cfg.dir);

	if (fd == -2)
		return 0;
	if (fd < 0)
		return fd == -3 ? CONTROL_START_BUSY : -1;
	listen_fd = procstate_move_lower_fd(fd);
	return listen_fd < 0 ? -1 : 0;
}

int control_start(const struct control_config *c)
{
	pthread_t th;
	sigset_t all, old;
	struct sigaction sa;

	cfg = *c;
	status.started = time(NULL);
	link_area.pid = getpid();
	link_area.park_signal = PARK_SIGNAL;
	park_set_section_word(&link_area.section_tls_off);
	park_set_parking_word(&link_area.parking);
	if (pipe2(trigger_pipe, O_CLOEXEC | O_NONBLOCK)) {
		log_error("pipe: %s", strerror(errno));
		return -1;
	}
	trigger_pipe[0] = procstate_move_lower_fd(trigger_pipe[0]);
	trigger_pipe[1] = procstate_move_lower_fd(trigger_pipe[1]);
	if (trigger_pipe[0] < 0 || trigger_pipe[1] < 0)
		return -1;
	if (cfg.dir[0] && launcher_rank() == 0) {
		int rc = open_control_socket();
		if (rc)
			return rc;
	}
	/* the read side blocks in poll only */
	fcntl(trigger_pipe[0], F_SETFL, 0);
	link_area.trigger_fd = trigger_pipe[1];
	{
		char a[32];
		snprintf(a, sizeof a, "%llx", (unsigned long long)&link_area);
		setenv("CKPTMPI_LINK", a, 1);
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = trigger_handler;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	/* what the program writes after a SIGTERM is held for the restart
	 * (without it, it goes out as before) */
	if (cfg.dir[0] && cfg.term_checkpoints && held_output_init())
		log_info("the program's output after a SIGTERM will not be held");
	/* CKPTMPI_TERM=exit: SIGTERM keeps its default action, the job ends at once */
	if (cfg.dir[0] && (sigaction(cfg.trigger_signal, &sa, NULL) ||
	                   (cfg.term_checkpoints && sigaction(SIGTERM, &sa, NULL)))) {
		log_error("sigaction: %s", strerror(errno));
		return -1;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	if (pthread_create(&th, NULL, control_main, NULL)) {
		log_error("cannot start the control thread");
		return -1;
	}
	if (cfg.dir[0] && cfg.term_checkpoints && cfg.term_timeout) {
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		pthread_attr_setstacksize(&a, 64 << 10);
		if (pthread_create(&th, &a, term_watchdog, NULL)) {
			log_error("cannot start the SIGTERM watchdog thread");
			return -1;
		}
		pthread_attr_destroy(&a);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return 0;
}
