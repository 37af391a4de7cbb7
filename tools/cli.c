/* What every subcommand of the ckptmpi tool shares (tools/cli.h). */
#include "tools/cli.h"

#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int die(const char *fmt, ...)
{
	va_list ap;
	fputs("ckptmpi: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 2;
}

int self_dir(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0)
		return -1;
	self[n] = 0;
	snprintf(out, len, "%s", dirname(self));
	return 0;
}

int find_runtime(char *out, size_t len)
{
	const char *env = getenv("CKPTMPI_RUNTIME");
	char dir[PATH_MAX / 2];

	if (env && *env) {
		snprintf(out, len, "%s", env);
		return access(out, X_OK);
	}
	if (self_dir(dir, sizeof dir))
		return -1;
	snprintf(out, len, "%s/ckptmpi-runtime", dir);
	return access(out, X_OK);
}
