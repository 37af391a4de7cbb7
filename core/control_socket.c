/* The job's control socket in a directory others may write to: see
 * control_socket.h. */
#include "core/control_socket.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/procstate.h"

static char bound_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static dev_t bound_dev;
static ino_t bound_ino;

static void new_token(char *out)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[CONTROL_SOCKET_TOKEN / 2];
	ssize_t n;

	while ((n = getrandom(b, sizeof b, GRND_NONBLOCK)) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof b) {
		struct timespec ts;
		unsigned long long x;

		clock_gettime(CLOCK_REALTIME, &ts);
		x = (unsigned long long)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^
		    (unsigned long long)getpid() << 32 ^ (unsigned long long)ts.tv_sec;
		for (size_t i = 0; i < sizeof b; i++, x = x * 6364136223846793005ull + 1)
			b[i] = (unsigned char)(x >> 56);
	}
	for (size_t i = 0; i < sizeof b; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[CONTROL_SOCKET_TOKEN] = 0;
}

/* A directory anyone may write to without the sticky bit lets anyone
 * rename or remove the job's files: refused. Group-writable without the
 * sticky bit, or another user's: said, and the checks below still hold. */
static int check_dir(const char *dir)
{
	struct stat st;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		log_error("%s: cannot open the directory: %s", dir, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		log_error("%s: fstat: %s", dir, strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		log_error("%s: close: %s", dir, strerror(errno));
		return -1;
	}
	if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
		log_error("%s: writable by every user and not sticky (mode %04o): anyone could "
		          "replace the checkpoints; use a directory of your own (or chmod +t)",
		          dir, (unsigned)(st.st_mode & 07777));
		return -1;
	}
	if ((st.st_mode & S_IWGRP) && !(st.st_mode & S_ISVTX))
		log_info("%s: writable by group %u and not sticky: its members can remove or replace "
		         "the checkpoints", dir, (unsigned)st.st_gid);
	if (st.st_uid != getuid() && st.st_uid != 0)
		log_info("%s: owned by uid %u: that user can remove or replace the checkpoints", dir,
		         (unsigned)st.st_uid);
	return 0;
}

/* Is the socket at sa served by a process of ours? 1 yes, 0 no (nobody
 * listens), -1 someone else's. Never blocks: a full backlog is alive. */
static int served_by_us(const struct sockaddr_un *sa)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), rc;

	if (fd < 0)
		return 0;
	if (connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0)
		rc = errno == EAGAIN ? 1 : 0;
	else if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		rc = 0;
	else
		rc = cred.uid == getuid() ? 1 : -1;
	close(fd);
	return rc;
}

static int is_alt_name(const char *name)
{
	size_t lp = strlen(CONTROL_SOCKET_ALT_PREFIX), ls = strlen(CONTROL_SOCKET_ALT_SUFFIX);

	return strlen(name) == lp + CONTROL_SOCKET_TOKEN + ls &&
	       !strncmp(name, CONTROL_SOCKET_ALT_PREFIX, lp) &&
	       !strcmp(name + lp + CONTROL_SOCKET_TOKEN, CONTROL_SOCKET_ALT_SUFFIX);
}

/* DIR/name, if ours: a live socket of ours means another job of ours
 * serves DIR (1); a stale one, or a file or link of ours with the name, is
 * removed (0). Another user's name is left alone (0; `*foreign` set). */
static int look_at(int dfd, const char *dir, const char *name, int *foreign)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno != ENOENT)
			log_error("%s/%s: %s", dir, name, strerror(errno));
		return 0;
	}
	if (st.st_uid != getuid()) {
		const char *what = S_ISSOCK(st.st_mode)  ? "a socket"
		                   : S_ISLNK(st.st_mode) ? "a symbolic link"
		                   : S_ISREG(st.st_mode) ? "a file"
		                                         : "not a socket";
		if (foreign)
			*foreign = 1;
		log_error("%s/%s: %s of uid %u, not yours: not used (listening under another name)",
		          dir, name, what, (unsigned)st.st_uid);
		return 0;
	}
	if (S_ISSOCK(st.st_mode) &&
	    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", dir, name) < (int)sizeof sa.sun_path &&
	    served_by_us(&sa) == 1) {
		log_error("%s: another job is running with this directory (%s)", dir, sa.sun_path);
		return 1;
	}
	/* a stale one of ours: a killed job's */
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		log_error("%s/%s: cannot remove the stale socket: %s", dir, name, strerror(errno));
	else
		log_debug("%s/%s: stale, removed", dir, name);
	return 0;
}

/* Another job of ours on DIR? Stale sockets of ours go. */
static int another_job(const char *dir, int *foreign)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int busy = 0;

	if (!d) {
		log_error("%s: cannot read the directory: %s", dir, strerror(errno));
		return -1;
	}
	busy = look_at(dirfd(d), dir, CONTROL_SOCKET_NAME, foreign);
	for (errno = 0; !busy && (de = readdir(d)); errno = 0)
		if (is_alt_name(de->d_name))
			busy = look_at(dirfd(d), dir, de->d_name, NULL);
	if (!busy && errno) {
		log_error("%s: cannot read the directory: %s", dir, strerror(errno));
		busy = -1;
	}
	if (closedir(d) < 0) {
		log_error("%s: closedir: %s", dir, strerror(errno));
		busy = -1;
	}
	return busy;
}

/* Detached grandchild: waits for the end of the runtime (EOF on the pipe:
 * every holder of its write end is gone) and removes the socket if it is
 * still ours. Async-signal-safe calls only: the parent may have threads. */
static void watcher(int rfd)
{
	struct stat st;
	sigset_t all;
	char c;
	int null;

	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);
	setsid();
	prctl(PR_SET_NAME, "ckptmpi-sockrm", 0, 0, 0);
	if ((null = open("/dev/null", O_RDWR | O_CLOEXEC)) >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	/* nothing else of the runtime's stays open here (one call each side
	 * of rfd, not one a descriptor: 4096 of them were most of the
	 * system calls of `ckptmpi run -- /bin/true`) */
	if (rfd > 3)
		close_range(3, (unsigned)rfd - 1, 0);
	close_range((unsigned)rfd + 1, ~0u, 0);
	while (read(rfd, &c, 1) < 0 && errno == EINTR)
		;
	if (lstat(bound_path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == bound_dev &&
	    st.st_ino == bound_ino)
		unlink(bound_path);
	_exit(0);
}

static int start_watcher(void)
{
	int p[2], status;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		log_error("pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_error("fork (the control socket's watcher): %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		/* the grandchild is nobody's child: the program's wait() must
		 * not see it */
		pid_t g = fork();
		if (g == 0) {
			close(p[1]);
			watcher(p[0]);
		}
		_exit(g < 0 ? 1 : 0);
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			log_error("waitpid (the control socket's watcher): %s", strerror(errno));
			close(p[1]);
			return -1;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		log_error("fork (the control socket's watcher) failed");
		close(p[1]);
		return -1;
	}
	/* held until the process ends; not the program's */
	return procstate_move_lower_fd(p[1]) < 0 ? -1 : 0;
}

int control_socket_open(const char *dir)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, foreign = 0, tries;

	if (check_dir(dir))
		return -1;
	/* the longest name must fit: the fallback one */
	if (strlen(dir) + 1 + strlen(CONTROL_SOCKET_ALT_PREFIX) + CONTROL_SOCKET_TOKEN +
	        strlen(CONTROL_SOCKET_ALT_SUFFIX) >= sizeof sa.sun_path) {
		log_info("%s: path too long for the control socket; `ckptmpi checkpoint` unavailable",
		         dir);
		return -2;
	}
	switch (another_job(dir, &foreign)) {
	case 0:
		break;
	case 1:
		return -3;
	default:
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_error("socket: %s", strerror(errno));
		return -1;
	}
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", dir, CONTROL_SOCKET_NAME);
	/* control.sock taken by someone else (or just now): a random name
	 * nobody could have planted */
	for (tries = 0; bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0; tries++) {
		char token[CONTROL_SOCKET_TOKEN + 1];

		if (errno != EADDRINUSE || tries == 8) {
			log_error("%s: bind: %s", sa.sun_path, strerror(errno));
			close(fd);
			return -1;
		}
		new_token(token);
		snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s%s%s", dir, CONTROL_SOCKET_ALT_PREFIX,
		         token, CONTROL_SOCKET_ALT_SUFFIX);
	}
	if (tries)
		log_info("control socket: %s (%s is not usable)", sa.sun_path, CONTROL_SOCKET_NAME);
	/* others may reach it for a moment: the server checks the peer's uid */
	if (chmod(sa.sun_path, 0600) < 0 || lstat(sa.sun_path, &st) < 0) {
		log_error("%s: %s", sa.sun_path, strerror(errno));
		unlink(sa.sun_path);
		close(fd);
		return -1;
	}
	snprintf(bound_path, sizeof bound_path, "%s", sa.sun_path);
	bound_dev = st.st_dev;
	bound_ino = st.st_ino;
	if (listen(fd, 8) < 0) {
		log_error("%s: listen: %s", sa.sun_path, strerror(errno));
		control_socket_remove();
		close(fd);
		return -1;
	}
	if (start_watcher()) {
		control_socket_remove();
		close(fd);
		return -1;
	}
	return fd;
}

void control_socket_remove(void)
{
	struct stat st;

	if (!bound_path[0])
		return;
	if (lstat(bound_path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == bound_dev &&
	    st.st_ino == bound_ino && unlink(bound_path) < 0)
		log_debug("%s: cannot remove: %s", bound_path, strerror(errno));
	bound_path[0] = 0;
}
