#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_rank;
static volatile int log_fd = 2;

void log_set_fd(int fd) { log_fd = fd; }
static __thread char last_error[512];

const char *log_last_error(void) { return last_error; }
void log_clear_error(void) { last_error[0] = 0; }
static int log_verbosity = -1;
/* the local time's offset from UTC, taken once: log_msg then needs no
 * localtime_r (which takes glibc's time-zone lock) on each line */
static long log_utc_offset;

void log_init(int rank)
{
	const char *v = getenv("CKPTMPI_VERBOSE");
	time_t now = time(NULL);
	struct tm tm;

	log_rank = rank;
	log_verbosity = v ? atoi(v) : 0;
	if (localtime_r(&now, &tm))
		log_utc_offset = tm.tm_gmtoff;
}

/* "HH:MM:SS.mmm " of the local time (DST changes during a run are not
 * followed) */
static int log_timestamp(char *buf, size_t len)
{
	struct timespec ts;
	long s;

	if (clock_gettime(CLOCK_REALTIME, &ts))
		return 0;
	s = (long)((ts.tv_sec + log_utc_offset) % 86400);
	return snprintf(buf, len, "%02ld:%02ld:%02ld.%03ld ", s / 3600, s / 60 % 60, s % 60,
	                ts.tv_nsec / 1000000);
}

int log_level(void)
{
	if (log_verbosity < 0)
		log_init(0);
	return log_verbosity;
}

void log_msg(int level, const char *fmt, ...)
{
	char line[1024];
	int n;
	va_list ap;

	if (level > log_level())
		return;
	n = snprintf(line, sizeof line, "ckptmpi[%d]: ", log_rank);
	/* verbose lines carry the time, so that events of several ranks and
	 * the launcher's can be put in order; errors and notices do not */
	if (level > 0)
		n += log_timestamp(line + n, sizeof line - (size_t)n);
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	if (level == 0) /* the message without the prefix */
		snprintf(last_error, sizeof last_error, "%s", strchr(line, ' ') + 1);
	line[n++] = '\n';
	/* one write per line so lines from ranks do not interleave */
	if (write(log_fd, line, (size_t)n) < 0)
		return;
}
