#include "core/timers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#endif

int timers_capture(struct ck_image *img)
{
	FILE *f = fopen("/proc/self/timers", "re");
	char line[256];
	size_t cap = 0;
	struct ck_posix_timer *t = NULL;

	if (!f)
		return 0; /* kernel without CONFIG_CHECKPOINT_RESTORE: none seen */
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "ID:", 3)) {
			if (img->ntimers == cap) {
				struct ck_posix_timer *nv;
				cap = cap ? cap * 2 : 8;
				nv = realloc(img->timers, cap * sizeof *nv);
				if (!nv) {
					fclose(f);
					return -1;
				}
				img->timers = nv;
			}
			t = &img->timers[img->ntimers++];
			memset(t, 0, sizeof *t);
			t->id = strtoll(line + 3, NULL, 10);
		} else if (t && !strncmp(line, "signal:", 7)) {
			char *slash;
			t->signo = strtoll(line + 7, &slash, 10);
			if (*slash == '/')
				t->sigval = strtoull(slash + 1, NULL, 16);
		} else if (t && !strncmp(line, "notify:", 7)) {
			char kind[16] = "", who[8] = "";
			long long id = 0;
			if (sscanf(line + 7, " %15[a-z]/%7[a-z].%lld", kind, who, &id) >= 2) {
				t->notify = !strcmp(kind, "none") ? SIGEV_NONE :
				            !strcmp(kind, "thread") ? SIGEV_THREAD : SIGEV_SIGNAL;
				if (!strcmp(who, "tid")) {
					t->notify |= SIGEV_THREAD_ID;
					t->target_tid = id;
				}
			}
		} else if (t && !strncmp(line, "ClockID:", 8)) {
			t->clock = strtoll(line + 8, NULL, 10);
		}
	}
	fclose(f);
	for (size_t i = 0; i < img->ntimers; i++) {
		struct itimerspec its;
		struct ck_posix_timer *p = &img->timers[i];
		if (syscall(SYS_timer_gettime, (int)p->id, &its)) {
			log_error("timer_gettime(%lld): %s", (long long)p->id, strerror(errno));
			return -1;
		}
		p->interval_ns = (uint64_t)its.it_interval.tv_sec * 1000000000ull +
		                 (uint64_t)its.it_interval.tv_nsec;
		p->value_ns = (uint64_t)its.it_value.tv_sec * 1000000000ull +
		              (uint64_t)its.it_value.tv_nsec;
	}
	return 0;
}

static int64_t map_tid(int64_t old, const int64_t (*tid_map)[2], size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (tid_map[i][0] == old)
			return tid_map[i][1];
	return 0;
}

static int by_id(const void *a, const void *b)
{
	const struct ck_posix_timer *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

int timers_restore(const struct ck_image *img, const int64_t (*tid_map)[2], size_t n)
{
	struct ck_posix_timer *t;
	int exact, rc = -1;

	if (!img->ntimers)
		return 0;
	t = malloc(img->ntimers * sizeof *t);
	if (!t)
		return -1;
	memcpy(t, img->timers, img->ntimers * sizeof *t);
	qsort(t, img->ntimers, sizeof *t, by_id);
	exact = prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0, 0, 0) == 0;
	for (size_t i = 0; i < img->ntimers; i++) {
		struct sigevent sev;
		struct itimerspec its;
		int id = (int)t[i].id;

		memset(&sev, 0, sizeof sev);
		sev.sigev_notify = (int)t[i].notify;
		sev.sigev_signo = (int)t[i].signo;
		sev.sigev_value.sival_ptr = (void *)t[i].sigval;
		if (t[i].notify & SIGEV_THREAD_ID) {
			sev._sigev_un._tid = (pid_t)map_tid(t[i].target_tid, tid_map, n);
			if (!sev._sigev_un._tid) {
				log_error("POSIX timer %d targets thread %lld, which is not in the image", id,
				          (long long)t[i].target_tid);
				goto out;
			}
		}
		if (syscall(SYS_timer_create, (clockid_t)t[i].clock, &sev, &id)) {
			log_error("timer_create (id %lld): %s", (long long)t[i].id, strerror(errno));
			goto out;
		}
		if (id != (int)t[i].id) {
			log_error("POSIX timer %lld came back as %d: this kernel cannot restore timer ids",
			          (long long)t[i].id, id);
			goto out;
		}
		its.it_interval.tv_sec = (time_t)(t[i].interval_ns / 1000000000ull);
		its.it_interval.tv_nsec = (long)(t[i].interval_ns % 1000000000ull);
		its.it_value.tv_sec = (time_t)(t[i].value_ns / 1000000000ull);
		its.it_value.tv_nsec = (long)(t[i].value_ns % 1000000000ull);
		if (syscall(SYS_timer_settime, id, 0, &its, NULL)) {
			log_error("timer_settime(%d): %s", id, strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
	if (exact)
		prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0, 0, 0);
	free(t);
	return rc;
}
