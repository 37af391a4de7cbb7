/* The parallel loop of parallel.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>

#include "storage/parallel.h"

#define CK_MAX_WORKERS 8u

unsigned ck_workers(void)
{
	cpu_set_t set;
	int n;

	if (sched_getaffinity(0, sizeof set, &set) < 0 || (n = CPU_COUNT(&set)) < 1)
		n = 1;
	return (unsigned)n < CK_MAX_WORKERS ? (unsigned)n : CK_MAX_WORKERS;
}

struct job {
	int (*fn)(void *arg, unsigned w);
	void *arg;
	unsigned w;
	int rc;
};

static void *run(void *p)
{
	struct job *j = p;

	j->rc = j->fn(j->arg, j->w);
	return NULL;
}

int ck_parallel(unsigned n, int (*fn)(void *arg, unsigned w), void *arg)
{
	struct job jobs[CK_MAX_WORKERS];
	pthread_t tids[CK_MAX_WORKERS];
	unsigned started = 1;
	sigset_t all, old;
	int rc;

	if (n > CK_MAX_WORKERS)
		n = CK_MAX_WORKERS;
	/* the helpers take no signal: those are the program's and the
	 * runtime's business, on their own threads */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned w = 1; w < n; w++) {
		jobs[w] = (struct job){ fn, arg, w, 0 };
		if (pthread_create(&tids[w], NULL, run, &jobs[w]))
			break;      /* fewer helpers: the work is shared out anyway */
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	rc = fn(arg, 0);
	for (unsigned w = 1; w < started; w++) {
		pthread_join(tids[w], NULL);
		if (jobs[w].rc)
			rc = -1;
	}
	return rc ? -1 : 0;
}
