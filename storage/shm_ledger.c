/* The shared-memory ledger (shm_ledger.h): DIR/.shm.HOST.PID, one path a
 * line. Written once the lower half has started (after a restart too),
 * dropped when it has finished (MPI_Finalize removed its files); what a
 * killed process leaves is cleaned by the next run's start on DIR. */
#include "storage/shm_ledger.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/container_internal.h"
#include "storage/pid_alive.h"

#define LEDGER_PREFIX ".shm."

static char own_ledger[PATH_MAX];

static int set_has(const struct shm_set *s, const char *p)
{
	for (unsigned i = 0; s && i < s->n; i++)
		if (!strcmp(s->path[i], p))
			return 1;
	return 0;
}

void shm_ledger_snapshot(struct shm_set *s)
{
	char line[PATH_MAX + 128];
	FILE *f = fopen("/proc/self/maps", "re");

	s->n = 0;
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		char *p = strstr(line, " /dev/shm/"), *nl;
		if (!p)
			continue;
		p++;
		if ((nl = strchr(p, '\n')))
			*nl = 0;
		/* unlinked already: nothing to leave behind */
		if (strstr(p, " (deleted)") || strlen(p) >= sizeof s->path[0] || set_has(s, p))
			continue;
		if (s->n < SHM_LEDGER_MAX)
			snprintf(s->path[s->n++], sizeof s->path[0], "%s", p);
	}
	fclose(f);
}

static int host_name(char *host, size_t len)
{
	if (gethostname(host, len) < 0) {
		ck_set_error("gethostname: %s", strerror(errno));
		return -1;
	}
	host[len - 1] = 0;
	return 0;
}

int shm_ledger_record(const char *dir, const struct shm_set *before)
{
	char host[HOST_NAME_MAX + 1], tmp[PATH_MAX + 16];
	struct shm_set *now;
	unsigned fresh = 0;
	FILE *f;
	int fd;

	if (!dir || !dir[0])
		return 0;
	if (host_name(host, sizeof host))
		return -1;
	if (!(now = malloc(sizeof *now))) {
		ck_set_error("%s: shared-memory ledger: out of memory", dir);
		return -1;
	}
	shm_ledger_snapshot(now);
	if ((size_t)snprintf(own_ledger, sizeof own_ledger, "%s/" LEDGER_PREFIX "%s.%d", dir, host,
	                     (int)getpid()) >= sizeof own_ledger) {
		own_ledger[0] = 0;
		free(now);
		ck_set_error("%s: path too long for the shared-memory ledger", dir);
		return -1;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", own_ledger);
	for (unsigned i = 0; i < now->n; i++)
		fresh += !set_has(before, now->path[i]);
	if (!fresh) {
		free(now);
		shm_ledger_drop();
		return 0;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		ck_set_error("%s: %s", tmp, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(now);
		own_ledger[0] = 0;
		return -1;
	}
	for (unsigned i = 0; i < now->n; i++)
		if (!set_has(before, now->path[i]))
			fprintf(f, "%s\n", now->path[i]);
	free(now);
	if (fclose(f) != 0 || rename(tmp, own_ledger) < 0) {
		ck_set_error("%s: %s", own_ledger, strerror(errno));
		unlink(tmp);
		own_ledger[0] = 0;
		return -1;
	}
	return 0;
}

void shm_ledger_drop(void)
{
	if (own_ledger[0])
		(void)unlink(own_ledger);
	own_ledger[0] = 0;
}

/* NAME (.shm.HOST.PID) of this host: its pid, else 0 */
static pid_t ledger_pid(const char *name, const char *host)
{
	size_t hl = strlen(host), pl = strlen(LEDGER_PREFIX);
	char *end;
	long pid;

	if (strncmp(name, LEDGER_PREFIX, pl) || strncmp(name + pl, host, hl) || name[pl + hl] != '.')
		return 0;
	pid = strtol(name + pl + hl + 1, &end, 10);
	return *end || pid <= 0 ? 0 : (pid_t)pid;
}

/* Remove the files LEDGER lists (this user's regular files in /dev/shm). */
static unsigned remove_listed(int fd)
{
	char line[PATH_MAX];
	unsigned n = 0;
	FILE *f = fdopen(fd, "r");

	if (!f) {
		close(fd);
		return 0;
	}
	while (fgets(line, sizeof line, f)) {
		struct stat st;
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (strncmp(line, "/dev/shm/", 9) || strstr(line, "/.."))
			continue;
		if (lstat(line, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == getuid() &&
		    unlink(line) == 0)
			n++;
	}
	fclose(f);
	return n;
}

int shm_ledger_clean(const char *dir, unsigned *removed)
{
	char host[HOST_NAME_MAX + 1];
	struct dirent *de;
	DIR *d;

	*removed = 0;
	if (!dir || !dir[0])
		return 0;
	if (host_name(host, sizeof host))
		return -1;
	if (!(d = opendir(dir))) {
		ck_set_error("%s: cannot read directory: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		char claimed[NAME_MAX + 32];
		pid_t pid = ledger_pid(de->d_name, host);
		struct stat st;
		int fd;

		if (!pid || pid == getpid() || pid_alive(pid))
			continue;
		/* others' ledgers (a directory shared by several users) stay */
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_uid != getuid())
			continue;
		/* several ranks of this host clean at once: the one whose
		 * rename wins does it */
		snprintf(claimed, sizeof claimed, "%s.clean.%d", de->d_name, (int)getpid());
		if (renameat(dirfd(d), de->d_name, dirfd(d), claimed) < 0)
			continue;
		fd = openat(dirfd(d), claimed, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0)
			*removed += remove_listed(fd);
		(void)unlinkat(dirfd(d), claimed, 0);
	}
	closedir(d);
	return 0;
}
