/* Upper half: the per-thread section word (pmpi/call.h) and its link to
 * the park handler (core/park.c), plus the delay points of stress builds.
 *
 * A thread the park handler met inside a section has `pending` set; it
 * stops itself here, on leaving its outermost section, by sending itself
 * the park signal, so a checkpoint never waits for luck to catch a thread
 * that spends most of its time in short sections (a tight MPI_Test loop).
 * A thread the handler met inside MPI itself (on a lower context, where
 * its section word cannot be found) does the same when it sees the
 * runtime's `parking` word (core/link.h). */
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/link.h"
#include "pmpi/call.h"

__thread struct ckpt_section_word ckpt_section __attribute__((tls_model("initial-exec")));
static int park_signal;
static volatile int32_t not_parking;
volatile int32_t *ckpt_parking = &not_parking;

void ckpt_section_init(struct ckptmpi_link *link)
{
	/* the same offset for every thread: the shim's TLS is initial-exec */
	int64_t off = (int64_t)((uintptr_t)&ckpt_section - ckpt_get_fs());

#ifdef CKPTMPI_RACE_DELAYS
	/* stress builds only: the park handler ignores sections, to show
	 * that the stress tests catch the races sections close */
	if (getenv("CKPTMPI_RACE_NO_SECTIONS"))
		off = 0;
#endif
	park_signal = link->park_signal;
	ckpt_parking = &link->parking;
	ckpt_st->section_tls_off = off; /* a restarted runtime learns it here */
	__atomic_store_n(&link->section_tls_off, off, __ATOMIC_RELEASE);
}

void ckpt_section_park_now(void)
{
	ckpt_section.pending = 0;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (park_signal)
		syscall(SYS_tgkill, getpid(), gettid(), park_signal);
}

#ifdef CKPTMPI_RACE_DELAYS
/* CKPTMPI_RACE_DELAY_US=N: at every delay point, one time in eight, sleep
 * up to N microseconds (a preempted thread, a loaded machine) */
void ckpt_race_delay(void)
{
	static int max_us = -1;
	static __thread uint64_t rnd __attribute__((tls_model("initial-exec")));
	struct timespec ts;

	if (max_us < 0) {
		const char *v = getenv("CKPTMPI_RACE_DELAY_US");
		max_us = v ? atoi(v) : 0;
	}
	if (!max_us)
		return;
	if (!rnd)
		rnd = (uint64_t)gettid() * 0x9e3779b97f4a7c15ull + 1;
	rnd ^= rnd << 13;
	rnd ^= rnd >> 7;
	rnd ^= rnd << 17;
	if (rnd & 7)
		return;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)((rnd >> 8) % (uint64_t)max_us) * 1000;
	syscall(SYS_nanosleep, &ts, NULL);
}

/* CKPTMPI_RACE_CREATE_DELAY_US=N: a member of a new communicator other
 * than its rank 0 sleeps N microseconds, every time, before it learns the
 * communicator's name, so that rank 0 is in the communicator's first
 * collective while the others are still inside the creating call
 * (test/e2e/mpi_ckpt_create_window.sh) */
void ckpt_race_delay_creating(void)
{
	static long us = -1;
	struct timespec ts;

	if (us < 0) {
		const char *v = getenv("CKPTMPI_RACE_CREATE_DELAY_US");
		us = v ? atol(v) : 0;
	}
	if (us <= 0)
		return;
	ts.tv_sec = us / 1000000;
	ts.tv_nsec = us % 1000000 * 1000;
	syscall(SYS_nanosleep, &ts, NULL);
}
#endif
