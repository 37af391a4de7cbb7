#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core/background_write.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

/* One report of the child, written whole (smaller than PIPE_BUF: a
 * pipe write of it is atomic, so reports never interleave or split). */
enum { REPORT_PROGRESS = 1, REPORT_DONE, REPORT_FAILED };
struct report {
	uint32_t kind;
	uint64_t done, total;
	char text[4000];
};
_Static_assert(sizeof(struct report) <= PIPE_BUF, "a report must be one atomic pipe write");

static int report_fd = -1;

static void send_report(uint32_t kind, uint64_t done, uint64_t total, const char *text)
{
	struct report r;
	ssize_t n;

	memset(&r, 0, sizeof r);
	r.kind = kind;
	r.done = done;
	r.total = total;
	if (text)
		snprintf(r.text, sizeof r.text, "%s", text);
	do
		n = write(report_fd, &r, sizeof r);
	while (n < 0 && errno == EINTR);
	/* a parent gone: PR_SET_PDEATHSIG ends this process anyway */
}

static void child_progress(uint64_t done, uint64_t total)
{
	send_report(REPORT_PROGRESS, done, total, NULL);
}

/* The plan, read whole: its length, then its bytes. NULL when the parent
 * closed the channel without one (cancelled). */
static void *read_plan(int fd, size_t *len)
{
	uint64_t n = 0;
	uint8_t *buf = NULL;
	size_t have = 0;

	for (int part = 0; part < 2; part++) {
		uint8_t *dst = part ? buf : (uint8_t *)&n;
		size_t want = part ? (size_t)n : sizeof n;

		if (part && !(buf = dst = malloc(want ? want : 1)))
			return NULL;
		for (have = 0; have < want;) {
			ssize_t got = read(fd, dst + have, want - have);

			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				free(buf);
				return NULL;
			}
			have += (size_t)got;
		}
	}
	*len = (size_t)n;
	return buf;
}

static __attribute__((noreturn)) void child_main(int fd, int plan_fd, pid_t parent,
                                                  background_write_fn fn, void *ctx)
{
	char tmp[4096] = "", err[3900] = "";
	uint64_t stored = 0;
	void *plan = NULL;
	size_t planlen = 0;
	int rc;

	report_fd = fd;
	/* the writer lives no longer than the process whose image it holds:
	 * a job killed during the write commits nothing afterwards. Every
	 * signal stays blocked, as in the control thread that forked it (a
	 * SIGTERM to the process group is the parent's to handle) */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(1);
	if (plan_fd >= 0 && !(plan = read_plan(plan_fd, &planlen)))
		_exit(2); /* cancelled: nothing to say */
	rc = fn(ctx, plan, planlen, child_progress, tmp, sizeof tmp, &stored, err, sizeof err);
	send_report(rc ? REPORT_FAILED : REPORT_DONE, stored, 0, rc ? err : tmp);
	/* no atexit handlers: they are the parent's (HDF5's among them) */
	_exit(rc ? 1 : 0);
}

int background_write_start(struct background_write *bw, background_write_fn fn, void *ctx,
                           int wait_for_plan)
{
	int p[2], s[2] = {-1, -1};
	pid_t parent = getpid(), pid;
	struct timespec t0, t1;

	bw->pid = -1;
	bw->fd = bw->plan_fd = -1;
	if (pipe2(p, O_CLOEXEC)) {
		log_error("checkpoint writer: pipe: %s (written with the program stopped)",
		          strerror(errno));
		return -1;
	}
	/* a socket, not a pipe: sending to a writer that died must not raise
	 * SIGPIPE (MSG_NOSIGNAL) */
	if (wait_for_plan && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s)) {
		log_error("checkpoint writer: socketpair: %s (written with the program stopped)",
		          strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid = fork();
	if (pid < 0) {
		log_error("checkpoint writer: fork: %s (written with the program stopped)",
		          strerror(errno));
		close(p[0]);
		close(p[1]);
		if (wait_for_plan) {
			close(s[0]);
			close(s[1]);
		}
		return -1;
	}
	if (pid == 0) {
		close(p[0]);
		if (wait_for_plan)
			close(s[0]);
		child_main(p[1], s[1], parent, fn, ctx);
	}
	close(p[1]);
	if (wait_for_plan)
		close(s[1]);
	bw->pid = pid;
	bw->fd = p[0];
	bw->plan_fd = s[0];
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_debug("checkpoint writer: pid %d writes the image behind the program (fork %.3f s)",
	          (int)pid, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}

int background_write_send_plan(struct background_write *bw, const void *plan, size_t len)
{
	uint64_t n = len;
	struct iovec iov[2] = { { &n, sizeof n }, { (void *)plan, len } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	int rc = 0;

	while (m.msg_iovlen) {
		ssize_t sent = sendmsg(bw->plan_fd, &m, MSG_NOSIGNAL);

		if (sent < 0 && errno == EINTR)
			continue;
		if (sent < 0) {
			log_error("checkpoint writer (pid %d): cannot send it its plan: %s",
			          (int)bw->pid, strerror(errno));
			rc = -1;
			break;
		}
		while (m.msg_iovlen && (size_t)sent >= m.msg_iov->iov_len) {
			sent -= (ssize_t)m.msg_iov->iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (m.msg_iovlen) {
			m.msg_iov->iov_base = (uint8_t *)m.msg_iov->iov_base + sent;
			m.msg_iov->iov_len -= (size_t)sent;
		}
	}
	close(bw->plan_fd);
	bw->plan_fd = -1;
	return rc;
}

void background_write_cancel(struct background_write *bw)
{
	int status;

	if (bw->plan_fd >= 0)
		close(bw->plan_fd);
	close(bw->fd);
	bw->plan_fd = bw->fd = -1;
	while (waitpid(bw->pid, &status, 0) < 0 && errno == EINTR)
		;
	log_info("checkpoint writer: pid %d told there is nothing to write", (int)bw->pid);
}

static void describe_end(int status, pid_t pid, char *err, size_t errlen)
{
	if (WIFSIGNALED(status))
		snprintf(err, errlen, "the checkpoint writer (pid %d) was killed by signal %d (%s)",
		         (int)pid, WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(err, errlen, "the checkpoint writer (pid %d) ended with status %d without "
		         "saying why", (int)pid, WEXITSTATUS(status));
}

int background_write_wait(struct background_write *bw, container_progress_fn progress,
                          void (*idle)(void), char *tmp, size_t tmplen, uint64_t *stored,
                          char *err, size_t errlen)
{
	struct report r;
	size_t have = 0;
	int outcome = 0, status = 0; /* outcome: 0 none yet, REPORT_DONE or REPORT_FAILED */

	for (;;) {
		struct pollfd p = {bw->fd, POLLIN, 0};
		int n = poll(&p, 1, 100);
		ssize_t got;

		if (n < 0 && errno != EINTR) {
			snprintf(err, errlen, "checkpoint writer: poll: %s", strerror(errno));
			break;
		}
		if (idle)
			idle();
		if (n <= 0)
			continue;
		got = read(bw->fd, (char *)&r + have, sizeof r - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break; /* the child closed its end: it has ended */
		if ((have += (size_t)got) < sizeof r)
			continue;
		have = 0;
		if (r.kind == REPORT_PROGRESS && progress)
			progress(r.done, r.total);
		else if (r.kind == REPORT_DONE) {
			outcome = REPORT_DONE;
			*stored = r.done;
			snprintf(tmp, tmplen, "%s", r.text);
		} else if (r.kind == REPORT_FAILED) {
			outcome = REPORT_FAILED;
			snprintf(err, errlen, "%s", r.text);
		}
	}
	close(bw->fd);
	bw->fd = -1;
	if (bw->plan_fd >= 0) {
		close(bw->plan_fd);
		bw->plan_fd = -1;
	}
	while (waitpid(bw->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			/* someone reaped it (SIGCHLD ignored): its reports decide */
			status = 0;
			break;
		}
	}
	if (outcome == REPORT_DONE && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (outcome != REPORT_FAILED)
		describe_end(status, bw->pid, err, errlen);
	return -1;
}
