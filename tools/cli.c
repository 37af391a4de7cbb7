/* What every subcommand of the ckptmpi tool shares (tools/cli.h). */
#include "tools/cli.h"

#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void vsay(const char *fmt, va_list ap)
{
	fputs("ckptmpi: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	return CLI_USAGE;
}

int fail(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsay(fmt, ap);
	va_end(ap);
	return status;
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

int check_dir(const char *dir)
{
	struct stat st;
	if (stat(dir, &st))
		return die("%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return die("%s: not a directory", dir);
	return 0;
}

int parse_uint(const char *s, const char *what, unsigned long long *out)
{
	char *end;

	errno = 0;
	if (!*s || strspn(s, "0123456789") != strlen(s) || (*out = strtoull(s, &end, 10), errno)) {
		die("%s %s: expected a whole number", what, s);
		return -1;
	}
	return 0;
}

int bad_option(const char *cmd, char *const argv[], int opt, int missing_value)
{
	/* getopt_long leaves the offending word at optind - 1 */
	const char *word = optind > 0 ? argv[optind - 1] : "?";
	char shortopt[3] = {'-', (char)opt, 0};

	if (opt && strncmp(word, "--", 2))
		word = shortopt;
	if (missing_value)
		return die("%s: option %s needs a value (ckptmpi %s --help)", cmd, word, cmd);
	return die("%s: unknown option %s (ckptmpi %s --help lists them)", cmd, word, cmd);
}

void format_time(char *out, size_t len, int64_t unix_time)
{
	time_t t = (time_t)unix_time;
	struct tm tm;

	if (!localtime_r(&t, &tm) || !strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(out, len, "%lld", (long long)unix_time);
}

void format_time_iso(char *out, size_t len, int64_t unix_time)
{
	time_t t = (time_t)unix_time;
	struct tm tm;
	char z[8];
	size_t n;

	if (!localtime_r(&t, &tm) || !(n = strftime(out, len, "%Y-%m-%dT%H:%M:%S", &tm)) ||
	    !strftime(z, sizeof z, "%z", &tm) || strlen(z) != 5) {
		snprintf(out, len, "%lld", (long long)unix_time);
		return;
	}
	/* +hhmm -> +hh:mm, as RFC 3339 and JSON readers want it */
	snprintf(out + n, len - n, "%.3s:%.2s", z, z + 3);
}

void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}
