#include "core/procstate.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/park.h"
#include "core/rawsys.h"
#include "core/timers.h"

#define MAX_LOWER_FDS 1024
static int lower_fds[MAX_LOWER_FDS];
static int n_lower_fds;

void procstate_register_lower_fd(int fd)
{
	if (n_lower_fds < MAX_LOWER_FDS)
		lower_fds[n_lower_fds++] = fd;
}

void procstate_unregister_lower_fd(int fd)
{
	for (int i = 0; i < n_lower_fds; i++)
		if (lower_fds[i] == fd)
			lower_fds[i] = lower_fds[--n_lower_fds];
}

int procstate_move_lower_fd(int fd)
{
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 900);
	if (nfd < 0) {
		log_error("fcntl(F_DUPFD_CLOEXEC): %s", strerror(errno));
		return -1;
	}
	close(fd);
	procstate_register_lower_fd(nfd);
	return nfd;
}

/* fds ≥ 3 the launcher passed in (a pipe of a batch system, say): like 0-2
 * they belong to the environment, and a restart gets its own */
static int inherited_fds[256];
static int n_inherited;

/* call fn for every fd above 2 open now */
static void each_open_fd(void (*fn)(int fd))
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int self;

	if (!d)
		return;
	self = dirfd(d);
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		if (de->d_name[0] != '.' && fd > 2 && fd != self)
			fn(fd);
	}
	closedir(d);
}

static void note_inherited(int fd)
{
	if (n_inherited < 256)
		inherited_fds[n_inherited++] = fd;
}

void procstate_note_inherited_fds(void) { each_open_fd(note_inherited); }

static int is_inherited_fd(int fd)
{
	for (int i = 0; i < n_inherited; i++)
		if (inherited_fds[i] == fd)
			return 1;
	return 0;
}

static int is_lower_fd(int fd)
{
	for (int i = 0; i < n_lower_fds; i++)
		if (lower_fds[i] == fd)
			return 1;
	return 0;
}

/* What the runtime has open now is its own (MPI's connections to the
 * launcher, its shared memory, ...). */
static void register_if_new(int fd)
{
	if (!is_lower_fd(fd) && !is_inherited_fd(fd))
		procstate_register_lower_fd(fd);
}

void procstate_register_open_fds(void) { each_open_fd(register_if_new); }

struct ksigaction { uint64_t handler, flags, restorer, mask; };

static int read_fdinfo(int fd, int64_t *flags, int64_t *pos)
{
	char p[64], buf[512];
	int f;
	ssize_t n;
	char *s;

	snprintf(p, sizeof p, "/proc/self/fdinfo/%d", fd);
	f = open(p, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -1;
	n = read(f, buf, sizeof buf - 1);
	close(f);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	s = strstr(buf, "pos:");
	*pos = s ? strtoll(s + 4, NULL, 10) : 0;
	s = strstr(buf, "flags:");
	*flags = s ? strtoll(s + 6, NULL, 8) : 0;
	return 0;
}

static int read_whole(int fd, size_t size, void **out)
{
	char *buf = malloc(size ? size : 1);
	size_t done = 0;
	if (!buf)
		return -1;
	while (done < size) {
		ssize_t r = pread(fd, buf + done, size - done, (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	*out = buf;
	return done == size ? 0 : -1;
}

/* /proc/PID/... of this very process (a program reading its own maps,
 * status, ...) is recorded as /proc/self/...: a restart reopens the
 * restarted process's own, where /proc/PID of the old one is gone.
 * Returns 1 when the path was rewritten. */
static int proc_self_path(char *link, size_t len)
{
	char mine[32];
	int l = snprintf(mine, sizeof mine, "/proc/%d/", (int)getpid());
	size_t rest;

	if (strncmp(link, mine, (size_t)l))
		return 0;
	rest = strlen(link + l);
	if (sizeof "/proc/self/" - 1 + rest + 1 > len)
		return 0;
	memmove(link + sizeof "/proc/self/" - 1, link + l, rest + 1);
	memcpy(link, "/proc/self/", sizeof "/proc/self/" - 1);
	return 1;
}

static int capture_fds(struct ck_image *img)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	size_t cap = 16;
	int dfd, rc = 0;

	if (!d) {
		log_error("/proc/self/fd: %s", strerror(errno));
		return -1;
	}
	dfd = dirfd(d);
	img->fds = calloc(cap, sizeof *img->fds);
	if (!img->fds) {
		closedir(d);
		return -1;
	}
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		char link[PATH_MAX + 1], p[64];
		int own_proc;
		struct stat st;
		struct ck_fd *f;
		ssize_t n;
		int h;

		/* inherited ones belong to the environment, as 0-2 do: a restart
		 * gets its own from its launcher */
		if (de->d_name[0] == '.' || fd <= 2 || fd == dfd || is_lower_fd(fd) ||
		    is_inherited_fd(fd))
			continue;
		snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
		n = readlink(p, link, PATH_MAX);
		if (n < 0 || fstat(fd, &st))
			continue; /* closed meanwhile */
		link[n] = 0;
		own_proc = proc_self_path(link, sizeof link);
		if (img->nfds == cap) {
			struct ck_fd *nv = realloc(img->fds, 2 * cap * sizeof *nv);
			if (!nv) {
				rc = -1;
				break;
			}
			img->fds = nv;
			cap *= 2;
		}
		f = &img->fds[img->nfds];
		memset(f, 0, sizeof *f);
		f->fd = fd;
		if (read_fdinfo(fd, &f->flags, &f->offset)) {
			log_error("cannot read /proc/self/fdinfo/%d", fd);
			rc = -1;
			break;
		}
		if (procstate_mpi_job && !strncmp(link, "/dev/shm/", 9)) {
			log_debug("fd %d (%s): MPI shared memory, not saved", fd, link);
			continue;
		}
		if (S_ISREG(st.st_mode)) {
			if (st.st_nlink == 0) {
				f->kind = CK_FD_DELETED;
				f->data_len = (uint64_t)st.st_size;
				if (read_whole(fd, (size_t)st.st_size, &f->data)) {
					log_error("fd %d (%s): cannot read the deleted file's contents", fd, link);
					free(f->data);
					rc = -1;
					break;
				}
			} else {
				f->kind = CK_FD_FILE;
				f->data_len = (uint64_t)st.st_size;
			}
		} else if (S_ISCHR(st.st_mode)) {
			f->kind = CK_FD_DEVICE;
		} else if (S_ISDIR(st.st_mode)) {
			f->kind = CK_FD_DIR;
		} else if (S_ISSOCK(st.st_mode) && procstate_socket_hook &&
		           (h = procstate_socket_hook(fd, f)) != 0) {
			if (h < 0) {
				rc = -1;
				break;
			}
			img->nfds++;
			continue;
		} else if (procstate_mpi_job) {
			/* MPI opens its connections and event queues lazily, from
			 * the lower half: they are its own, re-made on restart */
			log_debug("fd %d (%s): the MPI library's, not saved", fd, link);
			continue;
		} else {
			const char *what = S_ISSOCK(st.st_mode) ? "a socket" :
			                   S_ISFIFO(st.st_mode) ? "a pipe" : "not a regular file";
			log_error("fd %d (%s) is %s: not supported yet; no checkpoint taken", fd, link, what);
			rc = -1;
			break;
		}
		/* a file is reopened by path on restart: it must be this one (the
		 * process's own /proc files are the restarted process's: no
		 * identity to compare) */
		f->dev = own_proc ? 0 : (uint64_t)st.st_dev;
		f->ino = own_proc ? 0 : (uint64_t)st.st_ino;
		f->uid = (uint64_t)st.st_uid;
		f->path = strdup(link);
		img->nfds++;
	}
	closedir(d);
	return rc;
}

int procstate_mpi_job;
int (*procstate_socket_hook)(int fd, struct ck_fd *f);

int procstate_program_fd(int fd) { return fd > 2 && !is_lower_fd(fd) && !is_inherited_fd(fd); }

int procstate_capture(struct ck_image *img)
{
	struct ck_proc *p = &img->proc;
	char host[256], cwd[PATH_MAX];
	mode_t m;

	for (int sig = 1; sig < CK_NSIG; sig++) {
		struct ksigaction ka;
		memset(&ka, 0, sizeof ka);
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (raw_syscall4(SYS_rt_sigaction, sig, 0, &ka, 8) == 0) {
			p->sig[sig].handler = ka.handler;
			p->sig[sig].flags = ka.flags;
			p->sig[sig].restorer = ka.restorer;
			p->sig[sig].mask = ka.mask;
		}
	}
	for (int r = 0; r < CK_NRLIMITS && r < RLIM_NLIMITS; r++) {
		struct rlimit rl;
		if (getrlimit((__rlimit_resource_t)r, &rl) == 0) {
			p->rlim[r].cur = rl.rlim_cur;
			p->rlim[r].max = rl.rlim_max;
		}
	}
	for (int w = 0; w < 3; w++) {
		struct itimerval it;
		if (getitimer(w, &it) == 0) {
			p->itimer[w].interval_us = (uint64_t)it.it_interval.tv_sec * 1000000 +
			                           (uint64_t)it.it_interval.tv_usec;
			p->itimer[w].value_us = (uint64_t)it.it_value.tv_sec * 1000000 +
			                        (uint64_t)it.it_value.tv_usec;
			/* an interval timer that expired while the threads were
			 * parked: the kernel re-arms ITIMER_REAL only when its
			 * SIGALRM is delivered, so it reads as stopped (value 0)
			 * with the signal pending. It is armed again to expire at
			 * once: the tick that was due, then the interval. */
			if (p->itimer[w].interval_us && !p->itimer[w].value_us)
				p->itimer[w].value_us = 1;
		}
	}
	if (timers_capture(img))
		return -1;
	m = umask(0);
	umask(m);
	p->umask = m;
	if (!getcwd(cwd, sizeof cwd)) {
		log_error("getcwd: %s", strerror(errno));
		return -1;
	}
	p->cwd = strdup(cwd);
	if (gethostname(host, sizeof host))
		strcpy(host, "?");
	host[sizeof host - 1] = 0;
	p->host = strdup(host);
	return capture_fds(img);
}

/* The file now at f->path, just opened as fd: is it the one the program
 * had open? A path is reopened without following a symbolic link (the
 * recorded path is the kernel's, symbolic links resolved), so what is
 * planted there cannot redirect a write (or a truncation) elsewhere. */
static int same_file_as_before(int fd, const struct ck_fd *f, const char *host, int copied)
{
	int acc = (int)(f->flags & O_ACCMODE), writes = acc == O_WRONLY || acc == O_RDWR;
	char here[256];
	struct stat st;

	if (fstat(fd, &st) < 0) {
		log_error("fd %lld: %s: fstat: %s", (long long)f->fd, f->path, strerror(errno));
		return -1;
	}
	if ((f->kind == CK_FD_FILE && !S_ISREG(st.st_mode)) ||
	    (f->kind == CK_FD_DIR && !S_ISDIR(st.st_mode)) ||
	    (f->kind == CK_FD_DEVICE && !S_ISCHR(st.st_mode))) {
		log_error("fd %lld: %s: not the kind of file it was at the checkpoint; not reopened",
		          (long long)f->fd, f->path);
		return -1;
	}
	if (!f->ino || copied) /* an older image: nothing recorded; a copy (restore map) */
		return 0;
	if ((uint64_t)st.st_uid != f->uid) {
		log_error("fd %lld: %s: now owned by uid %u, at the checkpoint by uid %llu: another "
		          "file; not reopened", (long long)f->fd, f->path, (unsigned)st.st_uid,
		          (unsigned long long)f->uid);
		return -1;
	}
	/* device numbers differ between hosts for the same network file */
	if (gethostname(here, sizeof here) < 0)
		here[0] = 0;
	here[sizeof here - 1] = 0;
	if ((uint64_t)st.st_ino != f->ino ||
	    (host && !strcmp(host, here) && (uint64_t)st.st_dev != f->dev)) {
		if (writes) {
			log_error("fd %lld: %s: not the file the program had open for writing at the "
			          "checkpoint (replaced since); not reopened", (long long)f->fd, f->path);
			return -1;
		}
		log_info("fd %lld: %s: replaced since the checkpoint; reading the new file",
		         (long long)f->fd, f->path);
	}
	return 0;
}

/* CKPTMPI_RESTORE_MAP=FROM=TO: a restart that must not touch the job's own
 * files (a debugger's, a bisection's probe) takes every file under the
 * directory FROM, and the working directory if it is under FROM, from a
 * copy of that directory at TO, prepared by the caller. Files under TO
 * are copies: their identity (inode) is not compared with the
 * checkpoint's, their kind still is. Returns path, or buf holding the
 * mapped path; *copied tells which. */
static const char *restore_map(const char *path, char *buf, size_t len, int *copied)
{
	const char *m = getenv("CKPTMPI_RESTORE_MAP"), *eq;
	size_t n;

	*copied = 0;
	if (!m || !path || m[0] != '/' || !(eq = strchr(m, '=')) || eq[1] != '/')
		return path;
	n = (size_t)(eq - m);
	while (n > 1 && m[n - 1] == '/')
		n--;
	if (strncmp(path, m, n) || (path[n] != '/' && path[n] != 0))
		return path;
	if ((size_t)snprintf(buf, len, "%s%s", eq + 1, path + n) >= len)
		return path;
	*copied = 1;
	return buf;
}

static int restore_fd(const struct ck_fd *f, const char *host)
{
	char mapped[PATH_MAX];
	int copied;
	const char *path = restore_map(f->path, mapped, sizeof mapped, &copied);
	int acc = (int)(f->flags & O_ACCMODE);
	int flags = (int)(f->flags & ~(O_CREAT | O_TRUNC | O_EXCL | O_NOCTTY));
	int fd = -1;

	if (f->kind == CK_FD_DELETED) {
		char tmpl[] = "/tmp/ckptmpi-deleted-XXXXXX";
		size_t done = 0;
		fd = mkostemp(tmpl, O_CLOEXEC);
		if (fd < 0 || unlink(tmpl)) {
			log_error("fd %lld (%s): cannot recreate the deleted file: %s", (long long)f->fd,
			          f->path, strerror(errno));
			return -1;
		}
		while (done < f->data_len) {
			ssize_t w = write(fd, (char *)f->data + done, f->data_len - done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				log_error("fd %lld: writing the deleted file's contents: %s",
				          (long long)f->fd, strerror(errno));
				close(fd);
				return -1;
			}
			done += (size_t)w;
		}
	} else {
		/* O_NONBLOCK: a FIFO planted at the path must not hang the
		 * restart (the program's own flag comes back below) */
		fd = open(path, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ELOOP)
				log_error("fd %lld: %s: now a symbolic link; not followed, not reopened",
				          (long long)f->fd, path);
			else
				log_error("fd %lld: cannot reopen %s: %s", (long long)f->fd, path,
				          strerror(errno));
			return -1;
		}
		if (copied)
			log_info("fd %lld: %s reopened as %s (CKPTMPI_RESTORE_MAP)", (long long)f->fd,
			         f->path, path);
		if (same_file_as_before(fd, f, host, copied)) {
			close(fd);
			return -1;
		}
		if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
			log_error("fd %lld: %s: fcntl: %s", (long long)f->fd, f->path, strerror(errno));
			close(fd);
			return -1;
		}
		if (f->kind == CK_FD_FILE && (acc == O_WRONLY || acc == O_RDWR)) {
			/* what the program wrote after the checkpoint is undone: the
			 * re-execution writes it again */
			const char *rb = getenv("CKPTMPI_FILE_ROLLBACK");
			struct stat st;
			if ((!rb || strcmp(rb, "0")) && fstat(fd, &st) == 0 &&
			    (uint64_t)st.st_size > f->data_len && ftruncate(fd, (off_t)f->data_len)) {
				log_error("%s: cannot roll back to %llu bytes: %s", f->path,
				          (unsigned long long)f->data_len, strerror(errno));
				close(fd);
				return -1;
			}
		}
	}
	if (fd != f->fd && fcntl((int)f->fd, F_GETFD) != -1) {
		/* open already, before the program's files: the runtime's (MPI's) */
		log_error("fd %lld (%s) is taken by the runtime here (the MPI library opened it)",
		          (long long)f->fd, f->path);
		close(fd);
		return -1;
	}
	if (fd != f->fd) {
		if (dup3(fd, (int)f->fd, (f->flags & O_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
			log_error("fd %lld (%s): dup: %s", (long long)f->fd, f->path, strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
	} else if (!(f->flags & O_CLOEXEC)) {
		fcntl(fd, F_SETFD, 0);
	}
	if (f->kind != CK_FD_DEVICE && lseek((int)f->fd, f->offset, SEEK_SET) < 0 &&
	    f->kind != CK_FD_DIR) {
		log_error("fd %lld (%s): seek to %lld: %s", (long long)f->fd, f->path,
		          (long long)f->offset, strerror(errno));
		return -1;
	}
	return 0;
}

int procstate_restore(const struct ck_image *img, const struct interval_set *lower)
{
	const struct ck_proc *p = &img->proc;

	for (size_t i = 0; i < img->nfds; i++) {
		if (is_lower_fd((int)img->fds[i].fd)) {
			log_error("fd %lld is taken by the runtime", (long long)img->fds[i].fd);
			return -1;
		}
		/* re-connected by the job (core/job_sockets.c); written out
		 * again (core/held_output.c) */
		if (img->fds[i].kind == CK_FD_SOCKET || img->fds[i].kind == CK_FD_HELD)
			continue;
		if (restore_fd(&img->fds[i], p->host))
			return -1;
	}
	{
		char mapped[PATH_MAX];
		int copied;
		const char *cwd = restore_map(p->cwd, mapped, sizeof mapped, &copied);
		if (cwd && chdir(cwd)) {
			log_error("cannot return to the working directory %s: %s", cwd, strerror(errno));
			return -1;
		}
	}
	umask((mode_t)p->umask);
	for (int r = 0; r < CK_NRLIMITS && r < RLIM_NLIMITS; r++) {
		struct rlimit rl = {p->rlim[r].cur, p->rlim[r].max};
		if (setrlimit((__rlimit_resource_t)r, &rl))
			log_info("rlimit %d not restored: %s", r, strerror(errno));
	}
	for (int sig = 1; sig < CK_NSIG; sig++) {
		struct ksigaction ka;
		if (sig == SIGKILL || sig == SIGSTOP || sig == PARK_SIGNAL)
			continue;
		/* the runtime's own handlers are installed afresh */
		if (p->sig[sig].handler > 1 && intervals_contains(lower, p->sig[sig].handler))
			continue;
		ka.handler = p->sig[sig].handler;
		ka.flags = p->sig[sig].flags;
		ka.restorer = p->sig[sig].restorer;
		ka.mask = p->sig[sig].mask;
		long r = raw_syscall4(SYS_rt_sigaction, sig, &ka, 0, 8);
		if (r)
			log_debug("signal %d disposition not restored: %ld", sig, r);
	}
	for (int w = 0; w < 3; w++) {
		struct itimerval it;
		it.it_interval.tv_sec = (time_t)(p->itimer[w].interval_us / 1000000);
		it.it_interval.tv_usec = (suseconds_t)(p->itimer[w].interval_us % 1000000);
		it.it_value.tv_sec = (time_t)(p->itimer[w].value_us / 1000000);
		it.it_value.tv_usec = (suseconds_t)(p->itimer[w].value_us % 1000000);
		if ((it.it_value.tv_sec || it.it_value.tv_usec) && setitimer(w, &it, NULL)) {
			log_error("setitimer: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}
