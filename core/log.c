#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int log_rank;
static __thread char last_error[512];

const char *log_last_error(void) { return last_error; }
void log_clear_error(void) { last_error[0] = 0; }
static int log_verbosity = -1;

void log_init(int rank)
{
	const char *v = getenv("CKPTMPI_VERBOSE");
	log_rank = rank;
	log_verbosity = v ? atoi(v) : 0;
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
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	if (level == 0) /* the message without the prefix */
		snprintf(last_error, sizeof last_error, "%s", strchr(line, ' ') + 1);
	line[n++] = '\n';
	/* one write per line so lines from ranks do not interleave */
	if (write(2, line, (size_t)n) < 0)
		return;
}
