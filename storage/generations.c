/* The generations in a checkpoint directory: committed ckpt-NNNNNN.h5
 * files and temporaries .ckpt-NNNNNN.h5.tmp.HOST.PID of writers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/container.h"
#include "storage/container_internal.h"

/* Digits at *p (at least one), advancing p; 0 on overflow or none. */
static int parse_digits(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;

	if (*s < '0' || *s > '9')
		return 0;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return 0;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*v = x;
	return 1;
}

/* ckpt-<digits>.h5 exactly */
static int parse_committed(const char *name, uint64_t *gen)
{
	const char *p = name;

	if (strncmp(p, "ckpt-", 5))
		return 0;
	p += 5;
	return parse_digits(&p, gen) && !strcmp(p, ".h5");
}

/* .ckpt-<digits>.h5.tmp.<host>.<pid>; host is everything up to the last
 * dot, host names may contain dots themselves */
static int parse_temporary(const char *name, const char **host, size_t *host_len, pid_t *pid)
{
	const char *p = name, *dot;
	uint64_t gen, v;

	if (strncmp(p, ".ckpt-", 6))
		return 0;
	p += 6;
	if (!parse_digits(&p, &gen) || strncmp(p, ".h5.tmp.", 8))
		return 0;
	p += 8;
	if (!(dot = strrchr(p, '.')) || dot == p)
		return 0;
	*host = p;
	*host_len = (size_t)(dot - p);
	p = dot + 1;
	if (!parse_digits(&p, &v) || *p || v == 0 || v > INT_MAX)
		return 0;
	*pid = (pid_t)v;
	return 1;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct generation_entry *x = a, *y = b;

	if (x->generation != y->generation)
		return x->generation < y->generation ? -1 : 1;
	return strcmp(x->path, y->path);
}

static DIR *open_dir(const char *dir)
{
	DIR *d;

	if (!dir) {
		ck_set_error("generations: no directory");
		return NULL;
	}
	if (!(d = opendir(dir))) {
		if (errno == ENOENT)
			ck_set_error("%s: no such directory", dir);
		else if (errno == ENOTDIR)
			ck_set_error("%s: not a directory", dir);
		else
			ck_set_error("%s: cannot read directory: %s", dir, strerror(errno));
	}
	return d;
}

int generations_list(const char *dir, struct generation_entry **out, size_t *n)
{
	struct generation_entry *v = NULL, *nv;
	size_t len = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	if (!out || !n) {
		ck_set_error("generations_list: missing argument");
		return -1;
	}
	*out = NULL;
	*n = 0;
	if (!(d = open_dir(dir)))
		return -1;
	for (;;) {
		uint64_t gen;
		int w;

		/* readdir's NULL means both end and error; errno tells */
		errno = 0;
		if (!(de = readdir(d))) {
			if (errno) {
				ck_set_error("%s: cannot read directory: %s", dir, strerror(errno));
				goto fail;
			}
			break;
		}
		if (!parse_committed(de->d_name, &gen))
			continue;
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			if (!(nv = realloc(v, cap * sizeof *v))) {
				ck_set_error("%s: out of memory", dir);
				goto fail;
			}
			v = nv;
		}
		v[len].generation = gen;
		w = snprintf(v[len].path, sizeof v[len].path, "%s/%s", dir, de->d_name);
		if (w < 0 || (size_t)w >= sizeof v[len].path) {
			ck_set_error("%s: path too long", dir);
			goto fail;
		}
		len++;
	}
	if (closedir(d) < 0) {
		d = NULL;
		ck_set_error("%s: closedir: %s", dir, strerror(errno));
		goto fail;
	}
	if (len)
		qsort(v, len, sizeof *v, cmp_entry);
	*out = v;
	*n = len;
	return 0;

fail:
	if (d)
		closedir(d);
	free(v);
	return -1;
}

uint64_t generations_latest(const char *dir)
{
	struct generation_entry *v;
	size_t n;
	uint64_t g;

	if (generations_list(dir, &v, &n) < 0)
		return 0;
	g = n ? v[n - 1].generation : 0;
	free(v);
	return g;
}

/* Temporaries of writers on this host that no longer exist. */
static int remove_stale_temporaries(const char *dir)
{
	char host[HOST_NAME_MAX + 1];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if (gethostname(host, sizeof host) < 0) {
		ck_set_error("%s: gethostname: %s", dir, strerror(errno));
		return -1;
	}
	host[sizeof host - 1] = 0;
	if (!(d = open_dir(dir)))
		return -1;
	for (;;) {
		const char *h;
		size_t hl;
		pid_t pid;

		errno = 0;
		if (!(de = readdir(d))) {
			if (errno) {
				ck_set_error("%s: cannot read directory: %s", dir, strerror(errno));
				rc = -1;
			}
			break;
		}
		if (!parse_temporary(de->d_name, &h, &hl, &pid))
			continue;
		/* pids of other hosts say nothing here; EPERM means alive */
		if (hl != strlen(host) || memcmp(h, host, hl))
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && !rc) {
			ck_set_error("%s/%s: cannot remove: %s", dir, de->d_name, strerror(errno));
			rc = -1;
		}
	}
	if (closedir(d) < 0 && !rc) {
		ck_set_error("%s: closedir: %s", dir, strerror(errno));
		rc = -1;
	}
	return rc;
}

int generations_retain(const char *dir, unsigned keep)
{
	struct generation_entry *v;
	size_t n;
	int rc = 0;

	if (keep < 1) {
		/* removing every generation is never what anyone wants */
		ck_set_error("%s: must keep at least one generation", dir ? dir : "(null)");
		return -1;
	}
	if (generations_list(dir, &v, &n) < 0)
		return -1;
	for (size_t i = 0; n > keep && i < n - keep; i++) {
		/* ENOENT: a concurrent retain got there first */
		if (unlink(v[i].path) < 0 && errno != ENOENT && !rc) {
			ck_set_error("%s: cannot remove: %s", v[i].path, strerror(errno));
			rc = -1;
		}
	}
	free(v);
	if (remove_stale_temporaries(dir) < 0 && !rc)
		rc = -1;
	return rc;
}
