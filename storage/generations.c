/* The generations in a checkpoint directory: committed ckpt-NNNNNN.h5
 * files and temporaries .ckpt-NNNNNN.h5.tmp.HOST.PID.RANDOM of writers.
 * In a shared directory other users may plant any of these names: only
 * this user's own regular files are restarted, counted or removed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/image_chain.h"
#include "storage/pid_alive.h"
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

/* .ckpt-<digits>.h5.tmp.<host>.<pid>[.<16 hex digits>]; host is everything
 * up to the pid, host names may contain dots themselves. Older writers
 * left no random part; a pid has at most 10 digits, so a 16-digit last
 * part is the random one. */
static int is_token(const char *p, size_t n)
{
	if (n != CK_TOKEN_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

static int parse_temporary(const char *name, const char **host, size_t *host_len, pid_t *pid)
{
	const char *p = name, *dot, *end;
	uint64_t gen, v;

	if (strncmp(p, ".ckpt-", 6))
		return 0;
	p += 6;
	if (!parse_digits(&p, &gen) || strncmp(p, ".h5.tmp.", 8))
		return 0;
	p += 8;
	end = p + strlen(p);
	/* Open MPI's MPI-IO leaves NAME.locktest.RANK beside a temporary
	 * when its writer is killed while it tests locking: the writer's too */
	{
		const char *lt = strstr(p, ".locktest.");
		if (lt && lt[10] && strspn(lt + 10, "0123456789") == strlen(lt + 10))
			end = lt;
	}
	for (dot = end; dot > p && dot[-1] != '.'; dot--)
		;
	if (dot > p && is_token(dot, (size_t)(end - dot)))
		end = dot - 1;
	/* the pid: the part after the last dot before `end` */
	for (dot = end; dot > p && dot[-1] != '.'; dot--)
		;
	if (dot <= p + 1)
		return 0;
	*host = p;
	*host_len = (size_t)(dot - 1 - p);
	p = dot;
	if (!parse_digits(&p, &v) || p != end || v == 0 || v > INT_MAX)
		return 0;
	*pid = (pid_t)v;
	return 1;
}

/* Is DIR/NAME (not followed) this user's own regular file? 0 yes, 1 no
 * (why says what it is), -1 gone or unreadable (why says why). */
static int own_file(int dfd, const char *name, struct stat *st, char *why, size_t len)
{
	if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) < 0) {
		snprintf(why, len, "%s", strerror(errno));
		return -1;
	}
	if (S_ISLNK(st->st_mode))
		snprintf(why, len, "a symbolic link");
	else if (!S_ISREG(st->st_mode))
		snprintf(why, len, "not a regular file");
	else if (st->st_uid != getuid())
		snprintf(why, len, "owned by uid %u, not by uid %u", (unsigned)st->st_uid,
		         (unsigned)getuid());
	else
		return 0;
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
		{
			struct stat st;
			int o = own_file(dirfd(d), de->d_name, &st, v[len].why, sizeof v[len].why);
			if (o < 0 && errno == ENOENT)
				continue; /* removed meanwhile */
			v[len].foreign = o != 0;
			if (!v[len].foreign)
				v[len].why[0] = 0;
		}
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
	size_t n, i;
	uint64_t g = 0;

	if (generations_list(dir, &v, &n) < 0)
		return 0;
	for (i = n; i-- > 0;)
		if (!v[i].foreign) {
			g = v[i].generation;
			break;
		}
	/* names planted just above ours would make the commit fail: the
	 * next generation goes past them (ascending order, duplicates none) */
	for (i = 0; i < n; i++)
		if (v[i].generation == g + 1 && g + 1 < UINT64_MAX - 1)
			g++;
	free(v);
	return g;
}

int generations_pick(const char *dir, uint64_t want, struct generation_entry *out,
                     void (*skipped)(const struct generation_entry *e))
{
	struct generation_entry *v;
	size_t n, i;
	int rc = -1;

	if (!out) {
		ck_set_error("generations_pick: missing argument");
		return -1;
	}
	if (generations_list(dir, &v, &n) < 0)
		return -1;
	for (i = n; i-- > 0;) {
		if (want && v[i].generation != want)
			continue;
		if (v[i].foreign) {
			if (want) {
				ck_set_error("%s: %s, not restarted", v[i].path, v[i].why);
				goto out;
			}
			if (skipped)
				skipped(&v[i]);
			continue;
		}
		*out = v[i];
		rc = 0;
		goto out;
	}
	if (want)
		ck_set_error("%s: no generation %llu", dir, (unsigned long long)want);
	else
		ck_set_error("%s: no checkpoint generations%s", dir,
		             n ? " of yours (only others' files)" : "");
out:
	free(v);
	return rc;
}

/* A temporary untouched this long is a dead writer's whatever its host:
 * a live one writes without pause. */
#define CK_STALE_SECONDS (24 * 3600)

/* Open MPI's MPI-IO (OMPIO, its shared file pointer) keeps a POSIX
 * semaphore named after the file while it is open, /dev/shm/sem.OMPIO_
 * followed by the file's name: a writer killed mid-write leaves it. */
static void remove_mpi_io_semaphore(const char *temporary)
{
	char path[PATH_MAX];
	struct stat st;

	if ((size_t)snprintf(path, sizeof path, "/dev/shm/sem.OMPIO_%s", temporary) >= sizeof path)
		return;
	/* best effort: the temporary's removal is what matters */
	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == getuid())
		(void)unlink(path);
}

/* This user's temporaries of writers that are gone: on this host with no
 * such process, or on any host and untouched for a day. Others' files
 * are never touched (and could not be removed in a sticky directory). */
int generations_remove_stale(const char *dir)
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
		char why[96];
		struct stat st;
		size_t hl;
		pid_t pid;
		int here;

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
		if (own_file(dirfd(d), de->d_name, &st, why, sizeof why))
			continue;
		/* pids of other hosts say nothing here */
		here = hl == strlen(host) && !memcmp(h, host, hl);
		if (!(here && !pid_alive(pid)) &&
		    time(NULL) - st.st_mtime < CK_STALE_SECONDS)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT && !rc) {
			ck_set_error("%s/%s: cannot remove: %s", dir, de->d_name, strerror(errno));
			rc = -1;
		}
		if (here)
			remove_mpi_io_semaphore(de->d_name);
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
	size_t n, own = 0;
	uint64_t needed_from;
	int rc = 0, dfd;

	if (keep < 1) {
		/* removing every generation is never what anyone wants */
		ck_set_error("%s: must keep at least one generation", dir ? dir : "(null)");
		return -1;
	}
	if (generations_list(dir, &v, &n) < 0)
		return -1;
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		ck_set_error("%s: cannot open directory: %s", dir, strerror(errno));
		free(v);
		return -1;
	}
	/* only this user's own generations count: names planted by others
	 * must not push ours out, and are never removed */
	for (size_t i = 0; i < n; i++)
		own += !v[i].foreign;
	/* what the kept ones' pages depend on stays (incremental
	 * generations): the oldest generation still needed */
	{
		uint64_t oldest_needed = UINT64_MAX;
		size_t kept = 0;

		for (size_t i = n; i-- > 0 && kept < keep;) {
			uint64_t deps[64];
			size_t nd = 0;

			if (v[i].foreign)
				continue;
			kept++;
			if (chain_parents(dir, v[i].generation, deps, 64, &nd)) {
				/* unreadable: nothing older is removed */
				oldest_needed = 0;
				break;
			}
			if (nd == 64) { /* a longer chain than listed: keep all */
				oldest_needed = 0;
				break;
			}
			for (size_t k = 0; k < nd; k++)
				if (deps[k] < oldest_needed)
					oldest_needed = deps[k];
		}
		needed_from = oldest_needed;
	}
	for (size_t i = 0; own > keep && i < n; i++) {
		const char *name = strrchr(v[i].path, '/') + 1;
		char why[96];
		struct stat st;

		if (v[i].foreign)
			continue;
		own--;
		/* a kept generation's pages depend on it, or on an older one
		 * (everything from the oldest needed on is kept: simple, and
		 * at most CKPTMPI_FULL_EVERY generations more) */
		if (v[i].generation >= needed_from)
			continue;
		/* still ours (a name is only ever replaced by its owner in a
		 * sticky directory; the check is for the others) */
		if (own_file(dfd, name, &st, why, sizeof why))
			continue;
		/* ENOENT: a concurrent retain got there first */
		if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT && !rc) {
			ck_set_error("%s: cannot remove: %s", v[i].path, strerror(errno));
			rc = -1;
		}
	}
	if (close(dfd) < 0 && !rc) {
		ck_set_error("%s: close: %s", dir, strerror(errno));
		rc = -1;
	}
	free(v);
	if (generations_remove_stale(dir) < 0 && !rc)
		rc = -1;
	return rc;
}
