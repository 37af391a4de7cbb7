#include "core/park.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <asm/prctl.h>
#include <unistd.h>

#include "core/log.h"
#include "core/lowmem.h"
#include "core/rawsys.h"

static struct {
	volatile int active;
	volatile int gen;
	volatile int parked;
	volatile int nslot;
	struct park_slot slot[PARK_MAX];
} park;

static int64_t lower_tids[PARK_MAX];
static volatile int n_lower;

void park_register_lower_thread(int64_t tid)
{
	int i = __atomic_fetch_add(&n_lower, 1, __ATOMIC_ACQ_REL);
	if (i < PARK_MAX)
		lower_tids[i] = tid;
}

/* Thread pointers that upper threads borrow for MPI calls: a thread
 * interrupted with one of these is inside the lower half. */
static uint64_t contexts[PARK_MAX];
static volatile int n_contexts;
/* lower threads the handler met (MPI's own): never signalled again */
static int64_t met_lower[PARK_MAX];
static volatile int n_met_lower;

void park_register_lower_context(uint64_t fs)
{
	int i = __atomic_fetch_add(&n_contexts, 1, __ATOMIC_ACQ_REL);
	if (i < PARK_MAX)
		contexts[i] = fs;
}

static int is_context(uint64_t fs)
{
	int n = __atomic_load_n(&n_contexts, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n && i < PARK_MAX; i++)
		if (contexts[i] == fs)
			return 1;
	return 0;
}

/* [0]: pmpi's (park_set_section_word), then the other layers' */
static volatile int64_t *volatile section_off[PARK_MAX_LAYERS];

void park_set_section_word(volatile int64_t *off) { section_off[0] = off; }

static volatile int32_t no_parking_word;
static volatile int32_t *parking_word = &no_parking_word;

void park_set_parking_word(volatile int32_t *w) { parking_word = w; }

void park_add_section_word(volatile int64_t *off)
{
	for (int i = 1; i < PARK_MAX_LAYERS; i++) {
		if (section_off[i] == off)
			return;
		if (!section_off[i]) {
			section_off[i] = off;
			return;
		}
	}
	log_error("more than %d interposition layers: one's sections are not honoured",
	          PARK_MAX_LAYERS);
}

/* Why a thread last declined to stop (for the message when one never
 * does): 1 inside a call into the lower half, 2 + L inside a section of
 * interposition layer L. */
static struct {
	volatile int64_t tid;
	volatile int why;
} declined[PARK_MAX];

static void note_declined(int why)
{
	int64_t tid = raw_gettid();
	for (int i = 0; i < PARK_MAX; i++) {
		int64_t t = __atomic_load_n(&declined[i].tid, __ATOMIC_ACQUIRE);
		if (t == tid || (t == 0 && __atomic_compare_exchange_n(&declined[i].tid, &t, tid, 0,
		                                                       __ATOMIC_ACQ_REL,
		                                                       __ATOMIC_ACQUIRE))) {
			declined[i].why = why;
			return;
		}
	}
}

static int declined_why(int64_t tid)
{
	for (int i = 0; i < PARK_MAX; i++)
		if (declined[i].tid == tid)
			return declined[i].why;
	return 0;
}

/* Runs on an upper thread: raw syscalls, no libc, no TLS, no stack
 * protector (see CMake flags for this file). */
static void park_handler(int sig, siginfo_t *si, void *uc)
{
	int my_gen, idx;
	(void)sig;
	(void)si;

	/* gen before active: park_release clears active before bumping gen */
	my_gen = __atomic_load_n(&park.gen, __ATOMIC_ACQUIRE);
	if (!__atomic_load_n(&park.active, __ATOMIC_ACQUIRE))
		return;
	{
		uint64_t fs = 0;
		raw_syscall2(SYS_arch_prctl, ARCH_GET_FS, &fs);
		/* an upper thread inside an MPI call: not now (park_all asks
		 * again; the lower half is never saved mid-call) */
		if (is_context(fs)) {
			note_declined(1);
			return;
		}
		/* a thread of the lower half itself (MPI's progress threads) */
		if (fs >= LOWMEM_WINDOW_BASE && fs < LOWMEM_WINDOW_BASE + LOWMEM_WINDOW_SIZE) {
			int i = __atomic_fetch_add(&n_met_lower, 1, __ATOMIC_ACQ_REL);
			if (i < PARK_MAX)
				met_lower[i] = raw_gettid();
			raw_futex(&park.parked, RAW_FUTEX_WAKE, INT_MAX);
			return;
		}
		/* inside a section of one of the upper half's interposition
		 * layers: it stops itself when it leaves (the word's second
		 * half; each layer parks its threads on leaving its outermost
		 * section) */
		{
			int inside = 0;
			for (int i = 0; i < PARK_MAX_LAYERS; i++) {
				volatile int64_t *o = section_off[i];
				if (o && *o) {
					volatile int32_t *w =
					    (volatile int32_t *)(uintptr_t)(fs + (uint64_t)*o);
					if (w[0] > 0) {
						w[1] = 1;
						inside = 1;
						note_declined(2 + i);
					}
				}
			}
			if (inside)
				return;
		}
	}
	idx = __atomic_fetch_add(&park.nslot, 1, __ATOMIC_ACQ_REL);
	if (idx < PARK_MAX) {
		struct park_slot *s = &park.slot[idx];
		long len = 0;
		s->tid = raw_gettid();
		s->uc = (uint64_t)uc;
		raw_syscall2(SYS_arch_prctl, ARCH_GET_FS, &s->fs_base);
		raw_syscall2(SYS_arch_prctl, ARCH_GET_GS, &s->gs_base);
		s->robust_head = 0;
		raw_syscall3(SYS_get_robust_list, 0, &s->robust_head, &len);
		s->robust_len = (uint64_t)len;
	}
	__atomic_fetch_add(&park.parked, 1, __ATOMIC_ACQ_REL);
	raw_futex(&park.parked, RAW_FUTEX_WAKE, INT_MAX);
	while (__atomic_load_n(&park.gen, __ATOMIC_ACQUIRE) == my_gen)
		raw_futex(&park.gen, RAW_FUTEX_WAIT, my_gen);
}

int park_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = park_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigfillset(&sa.sa_mask);
	if (sigaction(PARK_SIGNAL, &sa, NULL)) {
		log_error("sigaction(park signal): %s", strerror(errno));
		return -1;
	}
	return 0;
}

static int is_lower(int64_t tid)
{
	int n = __atomic_load_n(&n_lower, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n && i < PARK_MAX; i++)
		if (lower_tids[i] == tid)
			return 1;
	n = __atomic_load_n(&n_met_lower, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n && i < PARK_MAX; i++)
		if (met_lower[i] == tid)
			return 1;
	return 0;
}

static int already_signalled(const int64_t *sent, int n, int64_t tid)
{
	for (int i = 0; i < n; i++)
		if (sent[i] == tid)
			return 1;
	return 0;
}

static int task_alive(int64_t tid)
{
	char p[64];
	snprintf(p, sizeof p, "/proc/self/task/%lld", (long long)tid);
	return access(p, F_OK) == 0;
}

/* Signal every upper thread not signalled yet; returns how many new. */
static int signal_new_threads(int64_t *sent, int *nsent)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int added = 0;
	pid_t pid = getpid();

	if (!d) {
		log_error("/proc/self/task: %s", strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		int64_t tid = atoll(de->d_name);
		if (tid <= 0 || is_lower(tid) || already_signalled(sent, *nsent, tid))
			continue;
		if (*nsent == PARK_MAX) {
			closedir(d);
			log_error("more than %d threads: not supported", PARK_MAX);
			return -1;
		}
		if (raw_syscall3(SYS_tgkill, pid, tid, PARK_SIGNAL) == 0) {
			sent[(*nsent)++] = tid;
			added++;
		}
	}
	closedir(d);
	return added;
}

static int is_parked(int64_t tid)
{
	for (int k = 0; k < park.nslot && k < PARK_MAX; k++)
		if (park.slot[k].tid == tid)
			return 1;
	return 0;
}

/* For the message of a thread that does not stop: its name, state,
 * whether the signal is blocked or pending, the system call it is in. */
static void describe_thread(int64_t tid, char *out, size_t len)
{
	char p[64], line[256], name[64] = "?", sys[64] = "?";
	unsigned long long blk = 0, pnd = 0;
	char state = '?';
	FILE *f;

	snprintf(p, sizeof p, "/proc/self/task/%lld/status", (long long)tid);
	if ((f = fopen(p, "re"))) {
		while (fgets(line, sizeof line, f)) {
			if (!strncmp(line, "Name:", 5))
				sscanf(line + 5, " %63[^\n]", name);
			else if (!strncmp(line, "State:", 6))
				sscanf(line + 6, " %c", &state);
			else if (!strncmp(line, "SigBlk:", 7))
				blk = strtoull(line + 7, NULL, 16);
			else if (!strncmp(line, "SigPnd:", 7))
				pnd = strtoull(line + 7, NULL, 16);
		}
		fclose(f);
	}
	snprintf(p, sizeof p, "/proc/self/task/%lld/syscall", (long long)tid);
	if ((f = fopen(p, "re"))) {
		if (fgets(line, sizeof line, f))
			sscanf(line, "%63s", sys);
		fclose(f);
	}
	int why = declined_why(tid);
	char where[64] = "";
	if (why == 1)
		snprintf(where, sizeof where, "; last seen inside a call into the lower half");
	else if (why >= 2)
		snprintf(where, sizeof where, "; last seen inside a section of layer %d", why - 2);
	snprintf(out, len, "'%s', state %c, signal %d %s%s, system call %s%s", name, state,
	         PARK_SIGNAL, blk & (1ull << (PARK_SIGNAL - 1)) ? "blocked" : "not blocked",
	         pnd & (1ull << (PARK_SIGNAL - 1)) ? " and pending" : "", sys, where);
}

/* After a grace period (the signal may be blocked only briefly, as around
 * pthread_create), name a thread that sleeps with the signal blocked. */
static int blocked_for_good(const int64_t *sent, int nsent, const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9 < 2.0)
		return 0;
	for (int i = 0; i < nsent; i++) {
		char p[64], line[256];
		unsigned long long blk = 0;
		char state = 0;
		FILE *f;

		if (is_parked(sent[i]))
			continue;
		snprintf(p, sizeof p, "/proc/self/task/%lld/status", (long long)sent[i]);
		f = fopen(p, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof line, f)) {
			if (!strncmp(line, "State:", 6))
				sscanf(line + 6, " %c", &state);
			else if (!strncmp(line, "SigBlk:", 7))
				blk = strtoull(line + 7, NULL, 16);
		}
		fclose(f);
		if ((state == 'S' || state == 'D') && (blk & (1ull << (PARK_SIGNAL - 1)))) {
			log_error("thread %lld waits with every signal blocked (glibc's SIGEV_THREAD timer "
			          "helper does): not supported yet; no checkpoint taken",
			          (long long)sent[i]);
			return 1;
		}
	}
	return 0;
}

static struct timespec last_park_start;

double park_started(void)
{
	return (double)last_park_start.tv_sec + (double)last_park_start.tv_nsec / 1e9;
}

int park_all(struct park_result *res)
{
	static int64_t sent[PARK_MAX];
	int nsent = 0, expected;
	const char *t = getenv("CKPTMPI_PARK_TIMEOUT");
	double timeout = t ? atof(t) : 30.0;
	struct timespec t0, now;

	park.nslot = 0;
	park.parked = 0;
	memset((void *)declined, 0, sizeof declined);
	__atomic_store_n(&park.active, 1, __ATOMIC_RELEASE);
	/* after active: a thread that sees the word and signals itself is
	 * parked by the handler */
	__atomic_store_n(parking_word, 1, __ATOMIC_RELEASE);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (signal_new_threads(sent, &nsent) < 0)
		goto fail;
	for (;;) {
		int p = __atomic_load_n(&park.parked, __ATOMIC_ACQUIRE), lower_sent = 0;
		for (int i = 0; i < nsent; i++)
			lower_sent += is_lower(sent[i]);
		expected = nsent - lower_sent;
		if (p >= expected) {
			/* threads created meanwhile must be stopped too */
			int added = signal_new_threads(sent, &nsent);
			if (added < 0)
				goto fail;
			if (added == 0)
				break;
			continue;
		}
		/* a thread that blocks the signal while waiting in the kernel
		 * (glibc's SIGEV_THREAD timer helper does) will not come */
		if (nsent && blocked_for_good(sent, nsent, &t0))
			goto fail;
		struct timespec ts = {0, 2 * 1000 * 1000};
		syscall(SYS_futex, &park.parked, FUTEX_WAIT_PRIVATE, p, &ts, NULL, 0);
		/* threads that were inside the lower half are asked again */
		for (int i = 0; i < nsent; i++)
			if (!is_parked(sent[i]) && !is_lower(sent[i]))
				raw_syscall3(SYS_tgkill, getpid(), sent[i], PARK_SIGNAL);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9 > timeout) {
			/* a thread that exited never parks; anything else is stuck
			 * with the signal blocked */
			int stuck = 0;
			for (int i = 0; i < nsent; i++) {
				/* (the lower half's own threads never stop: not
				 * them) */
				if (!is_parked(sent[i]) && !is_lower(sent[i]) && task_alive(sent[i])) {
					char what[256];
					describe_thread(sent[i], what, sizeof what);
					log_error("thread %lld did not stop within %.0f s (%s)",
					          (long long)sent[i], timeout, what);
					stuck = 1;
				}
			}
			if (stuck)
				goto fail;
			break;
		}
	}
	res->n = park.nslot < PARK_MAX ? park.nslot : PARK_MAX;
	res->slot = park.slot;
	last_park_start = t0;
	log_debug("parked %d upper thread(s)", res->n);
	return 0;
fail:
	park_release();
	return -1;
}

void park_release(void)
{
	__atomic_store_n(parking_word, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&park.active, 0, __ATOMIC_RELEASE);
	__atomic_fetch_add(&park.gen, 1, __ATOMIC_ACQ_REL);
	syscall(SYS_futex, &park.gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
