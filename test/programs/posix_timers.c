/* posix_timers: timer_create timers must keep running, with the same ids,
 * across a restart.
 *   a: SIGEV_SIGNAL (SIGRTMIN+1, sival 41), every 10 ms, CLOCK_MONOTONIC
 *   b: SIGEV_THREAD_ID to a worker thread waiting in sigwaitinfo (SIGRTMIN+2,
 *      sival 7), every 15 ms: the target thread gets a new tid at restart
 *   c: SIGEV_NONE, one shot an hour away: must still be armed, same id
 * Each step waits until a and b have fired (up to 2 s, else "LOST").
 *
 *   posix_timers [NSTEPS=30] [SLEEP_MS=40] */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <string.h>

#include "common.h"

static volatile sig_atomic_t a_ticks, a_badval;
static volatile int b_ticks;

static void on_a(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_value.sival_int != 41)
		a_badval = 1;
	a_ticks++;
}

static volatile pid_t worker_tid;

static void *worker(void *arg)
{
	sigset_t w;
	siginfo_t si;
	(void)arg;
	sigemptyset(&w);
	sigaddset(&w, SIGRTMIN + 2);
	pthread_sigmask(SIG_BLOCK, &w, NULL);
	worker_tid = gettid();
	for (;;)
		if (sigwaitinfo(&w, &si) > 0 && si.si_value.sival_int == 7)
			__atomic_fetch_add(&b_ticks, 1, __ATOMIC_RELAXED);
	return NULL;
}

static timer_t make(int notify, int signo, int val, pid_t tid, long period_ms, long first_s)
{
	struct sigevent sev;
	timer_t t;
	struct itimerspec its = {{period_ms / 1000, (period_ms % 1000) * 1000000L},
	                         {first_s ? first_s : period_ms / 1000, first_s ? 0 : (period_ms % 1000) * 1000000L}};
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = notify;
	sev.sigev_signo = signo;
	sev.sigev_value.sival_int = val;
	sev._sigev_un._tid = tid;
	if (timer_create(CLOCK_MONOTONIC, &sev, &t) || timer_settime(t, 0, &its, NULL)) {
		perror("timer");
		exit(1);
	}
	return t;
}

int main(int argc, char **argv)
{
	int nsteps = argc > 1 ? atoi(argv[1]) : 30;
	long ms = argc > 2 ? atol(argv[2]) : 40;
	struct sigaction sa;
	uint64_t h = 3;
	timer_t ta, tb, tc;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_a;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGRTMIN + 1, &sa, NULL);
	pthread_t th;
	sigset_t w;
	/* only the worker takes SIGRTMIN+2 */
	sigemptyset(&w);
	sigaddset(&w, SIGRTMIN + 2);
	pthread_sigmask(SIG_BLOCK, &w, NULL);
	pthread_create(&th, NULL, worker, NULL);
	while (!worker_tid)
		pace_ms(1);
	ta = make(SIGEV_SIGNAL, SIGRTMIN + 1, 41, 0, 10, 0);
	tb = make(SIGEV_SIGNAL | SIGEV_THREAD_ID, SIGRTMIN + 2, 7, worker_tid, 15, 0);
	tc = make(SIGEV_NONE, 0, 0, 0, 0, 3600);
	printf("0 start timers=3\n");
	for (int i = 1; i <= nsteps; i++) {
		int a0 = a_ticks, b0 = __atomic_load_n(&b_ticks, __ATOMIC_RELAXED), waited = 0;
		struct itimerspec c;
		pace_ms(ms);
		while ((a_ticks == a0 || __atomic_load_n(&b_ticks, __ATOMIC_RELAXED) == b0) && waited < 2000) {
			pace_ms(5);
			waited += 5;
		}
		int c_ok = timer_gettime(tc, &c) == 0 && c.it_value.tv_sec > 3000;
		int a_ok = a_ticks != a0 && !a_badval, b_ok = __atomic_load_n(&b_ticks, __ATOMIC_RELAXED) != b0;
		h = mix64(h, (uint64_t)(a_ok | b_ok << 1 | c_ok << 2));
		printf("%d a=%s b=%s c=%s\n", i, a_ok ? "ok" : "LOST", b_ok ? "ok" : "LOST",
		       c_ok ? "armed" : "LOST");
		fflush(stdout);
	}
	timer_delete(ta);
	timer_delete(tb);
	timer_delete(tc);
	hold_before_final();
	printf("%d final checksum=%016llx\n", nsteps + 1, (unsigned long long)h);
	return 0;
}
