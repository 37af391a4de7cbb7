/* A job without MPI (docs/jobs.md): every process started with
 * `ckptmpi run --dir DIR --job-size N` (CKPTMPI_JOB_SIZE=N, optionally
 * CKPTMPI_JOB_MEMBER=K) is member K of job DIR. The members are
 * checkpointed together into one container, a slice each (storage/
 * container_write_group.c), through the job table of core/hooks.h.
 *
 * Membership: member K holds an exclusive flock on DIR/.member-K (this
 * user's own regular file, mode 0600) for as long as it lives, so a
 * member that died leaves its number free and a live one cannot be
 * joined twice. Without --member a process takes the lowest free number.
 *
 * Transport: member 0 listens on DIR/.job.sock (a Unix stream socket,
 * mode 0600, the peer's uid checked with SO_PEERCRED on both ends); every
 * other member connects to it and says who it is. Messages are a fixed
 * header and a payload. Member 0 coordinates every collective step: the
 * members send it their part (vote, counts, slice written) and it answers
 * every member. A member that is gone (its connection closed) or does not
 * answer within CKPTMPI_JOB_TIMEOUT seconds fails the step on all. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/control.h"
#include "core/held_output.h"
#include "core/hooks.h"
#include "core/job_sockets.h"
#include "core/link.h"
#include "core/log.h"
#include "core/park.h"
#include "core/procstate.h"
#include "core/sock_io.h"
#include "storage/container.h"

#define MAX_MEMBERS 256
#define JOB_SOCKET ".job.sock"

enum {
	M_HELLO = 1,  /* member → 0: gen = job size, val = pid */
	M_REQUEST,    /* member → 0: gen = last generation seen begin, val = why */
	M_BEGIN,      /* 0 → member: gen, val = why */
	M_VOTE,       /* member → 0: val = ok */
	M_RESULT,     /* 0 → member: val = all ok; payload: a message */
	M_COUNTS,     /* member → 0: val = ok, payload: struct container_counts or a message */
	M_TURN,       /* 0 → member: gen = inode, payload: counts of all, then the file name */
	M_DONE,       /* member → 0: val = ok, payload: a message */
	M_SOCKS,      /* member → 0: val = ok, payload: its sockets and queues, or a message */
	M_SOCKS_R,    /* 0 → member: val = all ok, payload: its matches, or a message */
	M_RSOCK,      /* member → 0 (restart): val = ok, payload: its listeners, or a message */
	M_RSOCK_R,    /* 0 → member: val = all ok, payload: every listener, or a message */
	M_XCHG,       /* member → 0: its part of an exchange (allgather) */
	M_XCHG_R,     /* 0 → member: val = all ok, payload: every member's part, or a message */
};

struct hdr {
	uint32_t type, member;
	uint64_t gen;
	int64_t val;
	uint32_t len, pad;
};

static int job_size = 1, my_member;
static char job_dir[PATH_MAX];
static int claim_fd = -1;
static unsigned timeout_s = 60;
/* member 0: the listening socket and every member's connection; a member:
 * conn[0], its connection to member 0 */
static int listen_fd = -1;
static int conn[MAX_MEMBERS];
/* member 0: the members taking part in the checkpoint under way */
static unsigned char part[MAX_MEMBERS];
/* member 0: a request that arrived while a step waited for something else */
static int pending_why;
static uint64_t pending_gen;
static int pending;
static double next_connect;
static int said_waiting;
static unsigned char said_size[MAX_MEMBERS];
/* member 0: why it refused the checkpoint under way, for the others */
static char refuse_msg[1024];
/* a restart re-connects the members (the restore hook, on the main
 * thread): the control thread leaves the transport alone meanwhile */
static volatile int restoring;
/* the program's sockets at the cut under way */
static struct jsock *socks;
static size_t nsocks;

static double now_s(void) { return sock_now(); }

static void restart_failed_at_exit(void);

/* How long a member waits for member 0's answer to a step: member 0 waits
 * for each member in turn, up to `factor` * CKPTMPI_JOB_TIMEOUT each (the
 * writes: 10), so as long as for all of them and a little more. */
static double member_wait(int factor)
{
	return (double)factor * timeout_s * (job_size + 1);
}

/* ---- membership ---- */

static int try_claim(int k, int *live)
{
	char p[PATH_MAX + 32];
	struct stat st;
	int fd;

	*live = 0;
	snprintf(p, sizeof p, "%s/.member-%d", job_dir, k);
	fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("%s: %s", p, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid()) {
		log_error("%s: not a file of yours: refusing to join job %.600s", p, job_dir);
		close(fd);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		if (errno == EWOULDBLOCK) {
			*live = 1;
			return -1;
		}
		log_error("%s: flock: %s", p, strerror(errno));
		return -1;
	}
	{
		char b[32];
		int n = snprintf(b, sizeof b, "%d\n", (int)getpid());
		if (ftruncate(fd, 0) < 0 || pwrite(fd, b, (size_t)n, 0) != n)
			log_debug("%s: cannot note the pid", p);
	}
	return fd;
}

/* Runs first thing in the runtime (the env hook, before its fds are
 * noted): the claim's descriptor is the runtime's own. Again after the
 * runtime re-executes itself (the lock went with the old image; the
 * number was kept in CKPTMPI_JOB_MEMBER). */
static int group_env(void)
{
	const char *n = getenv("CKPTMPI_JOB_SIZE"), *m = getenv("CKPTMPI_JOB_MEMBER");
	const char *d = getenv("CKPTMPI_DIR"), *t = getenv("CKPTMPI_JOB_TIMEOUT");
	char *end;
	int live = 0, k;

	if (!n || !*n)
		return 0;
	job_size = (int)strtol(n, &end, 10);
	if (*end || job_size < 1 || job_size > MAX_MEMBERS) {
		log_error("CKPTMPI_JOB_SIZE=%s: expected 1 to %d members", n, MAX_MEMBERS);
		exit(127);
	}
	if (t && *t)
		timeout_s = (unsigned)atoi(t) ? (unsigned)atoi(t) : 60;
	if (!d || !*d || !realpath(d, job_dir)) {
		log_error("a job of %d members needs its directory (--dir): %s", job_size,
		          d && *d ? strerror(errno) : "CKPTMPI_DIR is not set");
		exit(127);
	}
	for (int i = 0; i < MAX_MEMBERS; i++)
		conn[i] = -1;
	if (m && *m) {
		k = (int)strtol(m, &end, 10);
		if (*end || k < 0 || k >= job_size) {
			log_error("member %s: job %.600s has members 0 to %d", m, job_dir, job_size - 1);
			exit(127);
		}
		claim_fd = try_claim(k, &live);
		if (claim_fd < 0) {
			if (live)
				log_error("job %.600s: member %d is running already (a live process holds "
				          "%s/.member-%d)", job_dir, k, job_dir, k);
			exit(127);
		}
	} else {
		for (k = 0; k < job_size; k++) {
			claim_fd = try_claim(k, &live);
			if (claim_fd >= 0 || !live)
				break;
		}
		if (claim_fd < 0) {
			if (k == job_size)
				log_error("job %.600s of %d: all %d members are running already", job_dir,
				          job_size, job_size);
			exit(127);
		}
	}
	my_member = k;
	if (getenv("CKPTMPI_RESTART")) {
		restoring = 1;
		atexit(restart_failed_at_exit);
	}
	claim_fd = procstate_move_lower_fd(claim_fd);
	{
		char b[16];
		snprintf(b, sizeof b, "%d", k);
		setenv("CKPTMPI_JOB_MEMBER", b, 1);
	}
	log_init(k);
	log_info("member %d of job %.600s (%d members)", k, job_dir, job_size);
	return 0;
}

/* ---- messages ---- */

static int send_msg(int fd, uint32_t type, uint64_t gen, int64_t val, const void *pay,
                    uint32_t len)
{
	struct hdr h = {.type = type, .member = (uint32_t)my_member, .gen = gen, .val = val,
	                .len = len};
	if (fd < 0)
		return -1;
	if (sock_send_all(fd, &h, sizeof h) || (len && sock_send_all(fd, pay, len)))
		return -1;
	return 0;
}

/* One message; the payload (up to cap bytes kept, the rest dropped) into
 * a malloc'd *pay when pay is not NULL. */
static int recv_msg(int fd, struct hdr *h, void **pay, double deadline)
{
	int r = sock_recv_all(fd, h, sizeof *h, deadline);
	char *b;

	if (pay)
		*pay = NULL;
	if (r)
		return r;
	if (h->len > (64u << 20))
		return -1;
	b = malloc(h->len + 1);
	if (!b)
		return -1;
	if (h->len && (r = sock_recv_all(fd, b, h->len, deadline))) {
		free(b);
		return r;
	}
	b[h->len] = 0;
	if (pay)
		*pay = b;
	else
		free(b);
	return 0;
}

/* set while a checkpoint is under way: a member lost then is an error;
 * between checkpoints it has most likely ended */
static int in_checkpoint;

static void drop(int k, const char *why)
{
	if (conn[k] < 0)
		return;
	procstate_unregister_lower_fd(conn[k]);
	close(conn[k]);
	conn[k] = -1;
	if (!in_checkpoint)
		log_info("job %.600s: member %d left the job (it ended, or was killed)", job_dir, k);
	else if (my_member == 0)
		log_error("job %.600s: member %d %s", job_dir, k, why);
	else
		log_error("job %.600s: member 0 %s: no checkpoint until it is back", job_dir, why);
}

/* ---- member 0: the listening socket ---- */

static int sock_addr(struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (snprintf(sa->sun_path, sizeof sa->sun_path, "%s/%s", job_dir, JOB_SOCKET) >=
	    (int)sizeof sa->sun_path) {
		log_error("%s/%s: path too long for a Unix socket (%zu bytes at most): use a "
		          "shorter --dir", job_dir, JOB_SOCKET, sizeof sa->sun_path - 1);
		return -1;
	}
	return 0;
}

static int open_listener(void)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd;

	if (sock_addr(&sa))
		return -1;
	/* member 0 holds its claim: a socket there is a dead member 0's;
	 * anything else there is not ours to remove */
	if (lstat(sa.sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode) || st.st_uid != getuid()) {
			log_error("%s: not a socket of yours: refusing to start the job", sa.sun_path);
			return -1;
		}
		unlink(sa.sun_path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		log_error("socket: %s", strerror(errno));
		return -1;
	}
	{
		mode_t old = umask(077);
		int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
		umask(old);
		if (r < 0 || listen(fd, MAX_MEMBERS) < 0) {
			log_error("%s: %s", sa.sun_path, strerror(errno));
			close(fd);
			return -1;
		}
	}
	chmod(sa.sun_path, 0600);
	listen_fd = procstate_move_lower_fd(fd);
	return listen_fd < 0 ? -1 : 0;
}

static int peer_ok(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == getuid();
}

/* New members: each says who it is first. */
static void accept_members(void)
{
	for (;;) {
		struct hdr h;
		int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0)
			return;
		if (!peer_ok(c)) {
			log_error("job %.600s: a connection from another user refused", job_dir);
			close(c);
			continue;
		}
		if (recv_msg(c, &h, NULL, now_s() + 5) || h.type != M_HELLO) {
			log_error("job %.600s: a connection that did not say which member it is: closed",
			          job_dir);
			close(c);
			continue;
		}
		if (h.gen != (uint64_t)job_size || h.member == 0 || h.member >= (uint32_t)job_size) {
			char m[800];
			int n = snprintf(m, sizeof m, "job %.600s has %d members: member %u of a job "
			                 "of %llu cannot join it (--job-size)", job_dir, job_size,
			                 h.member, (unsigned long long)h.gen);
			if (!(said_size[h.member % MAX_MEMBERS]++))
				log_error("%s", m);
			send_msg(c, M_RESULT, 0, 0, m, (uint32_t)n);
			close(c);
			continue;
		}
		if (conn[h.member] >= 0)
			drop((int)h.member, "reconnected (its old connection is closed)");
		c = procstate_move_lower_fd(c);
		if (c < 0)
			continue;
		conn[h.member] = c;
		log_info("job %.600s: member %u joined (pid %lld)", job_dir, h.member, (long long)h.val);
	}
}

/* ---- a member: its connection to member 0 ---- */

static void connect_member0(void)
{
	struct sockaddr_un sa;
	int fd;

	if (conn[0] >= 0 || now_s() < next_connect)
		return;
	next_connect = now_s() + 0.1;
	if (sock_addr(&sa))
		return;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		if (!said_waiting++)
			log_info("job %.600s: waiting for member 0", job_dir);
		return;
	}
	if (!peer_ok(fd)) {
		log_error("%s: served by another user: not joining", sa.sun_path);
		close(fd);
		next_connect = now_s() + 5;
		return;
	}
	fd = procstate_move_lower_fd(fd);
	if (fd < 0)
		return;
	conn[0] = fd;
	if (send_msg(fd, M_HELLO, (uint64_t)job_size, getpid(), NULL, 0)) {
		drop(0, "closed the connection");
		return;
	}
	said_waiting = 0;
	log_info("job %.600s: joined member 0", job_dir);
}

/* ---- a member's own control socket (every member but 0) ----
 *
 * `ckptmpi checkpoint DIR` talks to member 0 on DIR/control.sock; where
 * that one cannot be reached (member 0 on another host: a Unix socket is
 * only reachable on the host that bound it), the command tries
 * DIR/.control-member-K.sock: member K passes the request on to member 0
 * and answers once the checkpoint it takes part in has ended. */
#define MAX_CLIENTS 16
#define WHY_COMMAND 'm' /* control.c's: "command" */
static int ctl_fd = -1;
static int clients[MAX_CLIENTS], nclients;
static uint64_t begun_gen, committed_gen;
static int ckpt_open;

static void open_member_control(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	mode_t old;
	int fd, b;

	if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s/.control-member-%d.sock", job_dir,
	             my_member) >= (int)sizeof sa.sun_path)
		return; /* member 0's control socket only */
	if (lstat(sa.sun_path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode) || st.st_uid != getuid()) {
			log_error("%s: not a socket of yours: `ckptmpi checkpoint` reaches member 0 only",
			          sa.sun_path);
			return;
		}
		unlink(sa.sun_path); /* ours, and this process is member K: stale */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	old = umask(077);
	b = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (b < 0 || chmod(sa.sun_path, 0600) < 0 || listen(fd, 8) < 0) {
		log_error("%s: %s", sa.sun_path, strerror(errno));
		close(fd);
		return;
	}
	ctl_fd = procstate_move_lower_fd(fd);
}

static void reply(int c, const char *text)
{
	if (send(c, text, strlen(text), MSG_NOSIGNAL) < 0)
		log_debug("control reply: %s", strerror(errno));
	procstate_unregister_lower_fd(c);
	close(c);
}

/* The checkpoint this member took part in has ended: its waiting clients
 * hear how. */
static void reply_clients(const char *why)
{
	char text[1200];

	if (why)
		snprintf(text, sizeof text, "error: %s\n", why);
	else if (committed_gen && committed_gen == begun_gen)
		snprintf(text, sizeof text, "ok %llu\n", (unsigned long long)committed_gen);
	else
		snprintf(text, sizeof text, "error: %s\n",
		         log_last_error()[0] ? log_last_error() : "the checkpoint failed (see the job's stderr)");
	for (int i = 0; i < nclients; i++)
		reply(clients[i], text);
	nclients = 0;
}

static void serve_member_control(uint64_t last_gen)
{
	for (;;) {
		char buf[64];
		struct pollfd q;
		ssize_t n;
		int c = ctl_fd < 0 ? -1 : accept4(ctl_fd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0)
			return;
		c = procstate_move_lower_fd(c);
		if (c < 0)
			continue;
		if (!peer_ok(c)) {
			reply(c, "error: permission denied\n");
			continue;
		}
		q = (struct pollfd){c, POLLIN, 0};
		n = poll(&q, 1, 1000) == 1 ? read(c, buf, sizeof buf - 1) : -1;
		if (n <= 0 || strncmp(buf, "checkpoint", 10)) {
			reply(c, "error: unknown request\n");
			continue;
		}
		if (nclients == MAX_CLIENTS) {
			reply(c, "error: too many requests waiting\n");
			continue;
		}
		connect_member0();
		if (send_msg(conn[0], M_REQUEST, last_gen, WHY_COMMAND, NULL, 0)) {
			reply(c, "error: member 0 of the job is not reachable\n");
			continue;
		}
		clients[nclients++] = c;
	}
}

static int group_init(void)
{
	if (job_size <= 1)
		return 0;
	if (my_member == 0)
		return open_listener();
	open_member_control();
	connect_member0();
	return 0;
}

/* ---- the job's table ---- */

static int g_active(void) { return 1; }
static int g_rank(void) { return my_member; }
static int g_size(void) { return job_size; }
static const char *g_flavour(void) { return "job"; }
static int g_enter(void) { return !__atomic_load_n(&restoring, __ATOMIC_ACQUIRE); }
static void g_leave(void) {}

static void g_request(int why, uint64_t last_gen)
{
	connect_member0();
	if (send_msg(conn[0], M_REQUEST, last_gen, why, NULL, 0) == 0)
		return;
	drop(0, "is not reachable");
	log_error("job %.600s: the checkpoint request could not reach member 0", job_dir);
	if (why == CKPTMPI_REQ_TERM) {
		log_error("SIGTERM: member 0 is not reachable: exiting without a checkpoint "
		          "(status %d)", CKPTMPI_EXIT_TERM_NO_CHECKPOINT);
		held_output_release();
		_exit(CKPTMPI_EXIT_TERM_NO_CHECKPOINT);
	}
}

static void g_begin(uint64_t gen, int why)
{
	in_checkpoint = 1;
	refuse_msg[0] = 0;
	accept_members();
	for (int k = 1; k < job_size; k++) {
		part[k] = conn[k] >= 0;
		if (part[k] && send_msg(conn[k], M_BEGIN, gen, why, NULL, 0)) {
			drop(k, "is gone");
			part[k] = 0;
		}
	}
}

/* A message on member 0 that is not an answer to the step under way. */
static void aside(int k, const struct hdr *h)
{
	if (h->type == M_REQUEST) {
		if (!pending || h->gen > pending_gen)
			pending_gen = h->gen;
		pending_why = (int)h->val;
		pending = 1;
	} else {
		log_debug("job %.600s: member %d: message %u ignored", job_dir, k, h->type);
	}
}

static int g_poll(uint64_t last_gen, uint64_t *gen, int *why)
{
	struct hdr h;

	if (job_size <= 1)
		return 0;
	in_checkpoint = 0;
	if (my_member) {
		struct pollfd q;
		if (ckpt_open) {
			ckpt_open = 0;
			reply_clients(NULL);
		}
		serve_member_control(last_gen);
		connect_member0();
		if (conn[0] < 0) {
			if (nclients) /* no checkpoint comes */
				reply_clients("member 0 of the job is gone");
			return 0;
		}
		q = (struct pollfd){conn[0], POLLIN, 0};
		while (poll(&q, 1, 0) == 1) {
			void *pay = NULL;
			if (recv_msg(conn[0], &h, &pay, now_s() + timeout_s)) {
				drop(0, "is gone");
				return 0;
			}
			if (h.type == M_RESULT && !h.val) {
				/* refused by member 0 (another job size): said once, retried slowly */
				if (!said_size[0]++)
					log_error("%s", pay ? (char *)pay : "member 0 refused this member");
				free(pay);
				procstate_unregister_lower_fd(conn[0]);
				close(conn[0]);
				conn[0] = -1;
				next_connect = now_s() + 5;
				return 0;
			}
			free(pay);
			if (h.type == M_BEGIN) {
				in_checkpoint = 1;
				ckpt_open = 1;
				begun_gen = h.gen;
				*gen = h.gen;
				*why = (int)h.val;
				return 1;
			}
			log_debug("job %.600s: message %u from member 0 ignored", job_dir, h.type);
		}
		return 0;
	}
	accept_members();
	for (int k = 1; k < job_size; k++) {
		struct pollfd q = {conn[k], POLLIN, 0};
		while (conn[k] >= 0 && poll(&q, 1, 0) == 1) {
			if (recv_msg(conn[k], &h, NULL, now_s() + timeout_s)) {
				drop(k, "left the job (its connection closed)");
				break;
			}
			aside(k, &h);
		}
	}
	/* requests made before the latest checkpoint began are served by it */
	if (pending && pending_gen >= last_gen) {
		pending = 0;
		*why = pending_why;
		*gen = 0;
		return 1;
	}
	pending = 0;
	return 0;
}

/* Member 0: member k's answer of `type`, other messages put aside. 0, or
 * -1 (k is dropped, err says why). */
static int await(int k, uint32_t type, struct hdr *h, void **pay, double deadline, char *err,
                 size_t len)
{
	for (;;) {
		int r = conn[k] < 0 ? -1 : recv_msg(conn[k], h, pay, deadline);
		if (r == -2) {
			snprintf(err, len, "job %.600s: member %d did not answer within %u s "
			         "(CKPTMPI_JOB_TIMEOUT)", job_dir, k, timeout_s);
			drop(k, "did not answer in time: its connection is closed");
			return -1;
		}
		if (r) {
			snprintf(err, len, "job %.600s: member %d left the job during the checkpoint",
			         job_dir, k);
			drop(k, "left the job (its connection closed)");
			return -1;
		}
		if (h->type == type)
			return 0;
		aside(k, h);
		if (pay) {
			free(*pay);
			*pay = NULL;
		}
	}
}

/* A member: member 0's answer of `type`. */
static int await0(uint32_t type, struct hdr *h, void **pay, double deadline, char *err, size_t len)
{
	for (;;) {
		int r = conn[0] < 0 ? -1 : recv_msg(conn[0], h, pay, deadline);
		if (r) {
			snprintf(err, len, "job %.600s: member 0 %s during the checkpoint", job_dir,
			         r == -2 ? "did not answer" : "left the job");
			drop(0, r == -2 ? "did not answer in time" : "is gone");
			return -1;
		}
		if (h->type == type)
			return 0;
		if (pay) {
			free(*pay);
			*pay = NULL;
		}
	}
}

/* Every member's ok: the same answer on all. msg: why it failed, shown
 * by the members (member 0's own or the first failing member's). */
static int agree_msg(int ok, char *msg, size_t len)
{
	struct hdr h;
	void *pay = NULL;
	char err[1024] = "";

	if (job_size <= 1)
		return ok;
	/* a member that knows it lost member 0 agrees with itself: a step it
	 * then takes fails at the next exchange; its vote on ending the job
	 * (after a checkpoint) is its own SIGTERM alone */
	if (my_member && conn[0] < 0)
		return ok;
	if (my_member) {
		if (send_msg(conn[0], M_VOTE, 0, ok, msg && !ok ? msg : NULL,
		             msg && !ok ? (uint32_t)strlen(msg) : 0)) {
			drop(0, "is gone");
			if (msg)
				snprintf(msg, len, "job %.600s: member 0 is gone", job_dir);
			return 0;
		}
		if (await0(M_RESULT, &h, &pay, now_s() + member_wait(1), err, sizeof err)) {
			if (msg)
				snprintf(msg, len, "%s", err);
			return 0;
		}
		if (!h.val && msg && ok && pay && *(char *)pay)
			snprintf(msg, len, "%s", (char *)pay);
		else if (!h.val && !msg && ok && pay && *(char *)pay)
			log_error("%s", (char *)pay); /* the checkpoint's error here too */
		free(pay);
		return (int)h.val;
	}
	{
		int all = ok;
		char first[1024] = "";
		if (!ok && msg)
			snprintf(first, sizeof first, "%s", msg);
		else if (!ok && refuse_msg[0])
			snprintf(first, sizeof first, "%s", refuse_msg);
		for (int k = 1; k < job_size; k++) {
			if (!part[k])
				continue;
			if (await(k, M_VOTE, &h, &pay, now_s() + timeout_s, err, sizeof err)) {
				all = 0;
				part[k] = 0;
				if (!first[0])
					snprintf(first, sizeof first, "%s", err);
				continue;
			}
			if (!h.val) {
				all = 0;
				if (!first[0])
					snprintf(first, sizeof first, "member %d: %s", k,
					         pay && *(char *)pay ? (char *)pay : "cannot checkpoint");
			}
			free(pay);
			pay = NULL;
		}
		/* a participant that left means the job is not whole */
		for (int k = 1; k < job_size; k++)
			if (part[k] && conn[k] < 0)
				part[k] = 0, all = 0;
		for (int k = 1; k < job_size; k++)
			if (part[k] && send_msg(conn[k], M_RESULT, 0, all, first, (uint32_t)strlen(first))) {
				drop(k, "is gone");
				part[k] = 0;
			}
		if (!all && msg && ok && first[0])
			snprintf(msg, len, "%s", first);
		return all;
	}
}

static int g_agree(int ok) { return agree_msg(ok, NULL, 0); }

/* The job's allgather (core/hooks.h): through member 0, every participant
 * (at a restart: every member) its `len` bytes. */
static int g_exchange(const void *mine, size_t len, void *all)
{
	struct hdr h;
	void *pay = NULL;
	char err[1024] = "";
	double deadline = now_s() + member_wait(1);

	if (len > (64u << 20) / (size_t)job_size) {
		log_error("job %.600s: an exchange of %zu bytes per member is too large", job_dir, len);
		return -1;
	}
	memset(all, 0, len * (size_t)job_size);
	memcpy((char *)all + len * (size_t)my_member, mine, len);
	if (job_size <= 1)
		return 0;
	if (my_member) {
		if (send_msg(conn[0], M_XCHG, 0, 1, mine, (uint32_t)len)) {
			drop(0, "is gone");
			log_error("job %.600s: member 0 is gone (exchange of the members' tables)", job_dir);
			return -1;
		}
		if (await0(M_XCHG_R, &h, &pay, deadline, err, sizeof err)) {
			log_error("%s", err);
			return -1;
		}
		if (!h.val || h.len != len * (size_t)job_size) {
			log_error("%s", pay && *(char *)pay ? (char *)pay :
			          "the exchange of the members' tables failed at member 0");
			free(pay);
			return -1;
		}
		memcpy(all, pay, len * (size_t)job_size);
		free(pay);
		return 0;
	}
	{
		int ok = 1;
		char first[1024] = "";
		for (int k = 1; k < job_size; k++) {
			if (!part[k] || conn[k] < 0) {
				ok = 0;
				if (!first[0])
					snprintf(first, sizeof first, "job %.600s: member %d is not taking part "
					         "(exchange of the members' tables)", job_dir, k);
				continue;
			}
			if (await(k, M_XCHG, &h, &pay, now_s() + timeout_s, err, sizeof err)) {
				ok = 0;
				part[k] = 0;
				if (!first[0])
					snprintf(first, sizeof first, "%s", err);
				continue;
			}
			if (h.len != len) {
				ok = 0;
				if (!first[0])
					snprintf(first, sizeof first, "job %.600s: member %d sent %u bytes "
					         "for an exchange of %zu", job_dir, k, h.len, len);
			} else {
				memcpy((char *)all + len * (size_t)k, pay, len);
			}
			free(pay);
			pay = NULL;
		}
		for (int k = 1; k < job_size; k++) {
			if (!part[k] || conn[k] < 0)
				continue;
			if (ok ? send_msg(conn[k], M_XCHG_R, 0, 1, all, (uint32_t)(len * (size_t)job_size))
			       : send_msg(conn[k], M_XCHG_R, 0, 0, first, (uint32_t)strlen(first)))
				drop(k, "is gone");
		}
		if (!ok)
			log_error("%s", first);
		return ok ? 0 : -1;
	}
}

/* Member 0 refuses a checkpoint of a job that is not whole. */
static int g_check(char *err, size_t len)
{
	char who[512] = "";
	size_t at = 0;
	int joined = 1;

	if (job_size <= 1 || my_member)
		return 0;
	accept_members();
	at += (size_t)snprintf(who, sizeof who, "0");
	for (int k = 1; k < job_size; k++)
		if (conn[k] >= 0) {
			joined++;
			if (at < sizeof who)
				at += (size_t)snprintf(who + at, sizeof who - at, ", %d", k);
		}
	if (joined == job_size)
		return 0;
	snprintf(err, len, "job %.600s of %d: member%s %s joined: no checkpoint until all have",
	         job_dir, job_size, joined > 1 ? "s" : "", who);
	snprintf(refuse_msg, sizeof refuse_msg, "%s", err);
	return -1;
}

/* ---- sockets between members at the cut ---- */

struct jmatch {
	int32_t idx, peer_member, role;
	uint32_t resend_len;
	uint64_t pair;
};

/* Member 0: every member's sockets (scans, queues) matched end to end. */
struct member_socks {
	uint32_t n;
	struct jsock_scan *s;
	uint8_t **inq;
	struct jmatch *m;
	int32_t *peer_k, *peer_i;
	void *pay;
};

static int parse_socks(struct member_socks *ms, void *pay, uint32_t len)
{
	uint8_t *p = pay, *end = p + len;
	memset(ms, 0, sizeof *ms);
	ms->pay = pay;
	if (len < 4)
		return -1;
	memcpy(&ms->n, p, 4);
	p += 4;
	if (ms->n > 65536 || (size_t)(end - p) < ms->n * sizeof *ms->s)
		return -1;
	ms->s = (struct jsock_scan *)p; /* the payload is malloc'd: aligned */
	p += ms->n * sizeof *ms->s;
	ms->inq = calloc(ms->n + 1, sizeof *ms->inq);
	ms->m = calloc(ms->n + 1, sizeof *ms->m);
	ms->peer_k = calloc(ms->n + 1, sizeof *ms->peer_k);
	ms->peer_i = calloc(ms->n + 1, sizeof *ms->peer_i);
	if (!ms->inq || !ms->m || !ms->peer_k || !ms->peer_i)
		return -1;
	for (uint32_t i = 0; i < ms->n; i++) {
		if ((size_t)(end - p) < ms->s[i].inq_len)
			return -1;
		ms->inq[i] = p;
		p += ms->s[i].inq_len;
		ms->peer_k[i] = -1;
	}
	return 0;
}

static void free_socks(struct member_socks *ms)
{
	free(ms->inq);
	free(ms->m);
	free(ms->peer_k);
	free(ms->peer_i);
	free(ms->pay);
}

static void *pack_socks(const struct jsock *v, size_t n, uint32_t *len)
{
	size_t total = 4 + n * sizeof(struct jsock_scan);
	uint8_t *b, *p;
	uint32_t nn = (uint32_t)n;

	for (size_t i = 0; i < n; i++)
		total += v[i].s.inq_len;
	if (total > (64u << 20) || !(b = malloc(total)))
		return NULL;
	memcpy(b, &nn, 4);
	p = b + 4;
	for (size_t i = 0; i < n; i++, p += sizeof(struct jsock_scan))
		memcpy(p, &v[i].s, sizeof v[i].s);
	for (size_t i = 0; i < n; i++, p += v[i - 1].s.inq_len)
		if (v[i].s.inq_len)
			memcpy(p, v[i].inq, v[i].s.inq_len);
	*len = (uint32_t)total;
	return b;
}

/* Member 0: pair the ends; a socket whose other end is no member's is
 * refused, named. Fills every member's matches. */
static int match_all(struct member_socks *all, char *err, size_t len)
{
	uint64_t pair = 0;
	char name[400];

	for (int k = 0; k < job_size; k++)
		for (uint32_t i = 0; i < all[k].n; i++) {
			struct jsock_scan *a = &all[k].s[i];
			if (a->r.listening || all[k].peer_k[i] >= 0)
				continue;
			for (int k2 = 0; k2 < job_size && all[k].peer_k[i] < 0; k2++)
				for (uint32_t i2 = 0; i2 < all[k2].n; i2++) {
					if ((k2 == k && i2 == i) || all[k2].peer_k[i2] >= 0 ||
					    !jsock_ends_match(a, &all[k2].s[i2]))
						continue;
					int first = k < k2 || (k == k2 && a->r.fd < all[k2].s[i2].r.fd);
					all[k].peer_k[i] = k2, all[k].peer_i[i] = (int32_t)i2;
					all[k2].peer_k[i2] = k, all[k2].peer_i[i2] = (int32_t)i;
					all[k].m[i] = (struct jmatch){(int32_t)i, k2, first ? 0 : 1,
					                              all[k2].s[i2].inq_len, pair};
					all[k2].m[i2] = (struct jmatch){(int32_t)i2, k, first ? 1 : 0,
					                                a->inq_len, pair};
					pair++;
					break;
				}
			if (all[k].peer_k[i] < 0) {
				snprintf(err, len, "member %d: %s: its other end is not a member of job %.600s "
				         "(only sockets between members are checkpointed); no checkpoint "
				         "taken", k, jsock_name(a, name, sizeof name), job_dir);
				return -1;
			}
		}
	return 0;
}

static void *pack_matches(struct member_socks *all, int k, uint32_t *len)
{
	size_t total = 4;
	uint8_t *b, *p;
	uint32_t n = all[k].n;

	for (uint32_t i = 0; i < n; i++)
		total += sizeof(struct jmatch) + all[k].m[i].resend_len;
	if (!(b = malloc(total)))
		return NULL;
	memcpy(b, &n, 4);
	p = b + 4;
	for (uint32_t i = 0; i < n; i++) {
		struct jmatch m = all[k].m[i];
		m.idx = (int32_t)i;
		if (all[k].s[i].r.listening)
			m.peer_member = -1, m.resend_len = 0;
		memcpy(p, &m, sizeof m);
		p += sizeof m;
		if (m.resend_len) {
			memcpy(p, all[m.peer_member].inq[all[k].peer_i[i]], m.resend_len);
			p += m.resend_len;
		}
	}
	*len = (uint32_t)total;
	return b;
}

static int apply_matches(const void *pay, uint32_t len)
{
	const uint8_t *p = pay, *end = p + len;
	uint32_t n;

	if (len < 4)
		return -1;
	memcpy(&n, p, 4);
	p += 4;
	if (n != nsocks)
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		struct jmatch m;
		struct jsock *j = &socks[i];
		if ((size_t)(end - p) < sizeof m)
			return -1;
		memcpy(&m, p, sizeof m);
		p += sizeof m;
		if ((size_t)(end - p) < m.resend_len)
			return -1;
		j->matched = 1;
		j->s.r.peer_member = m.peer_member;
		j->s.r.pair = m.pair;
		j->s.r.role = m.role;
		j->resend_len = m.resend_len;
		if (m.resend_len) {
			if (!(j->resend = malloc(m.resend_len)))
				return -1;
			memcpy(j->resend, p, m.resend_len);
			p += m.resend_len;
		}
	}
	return 0;
}

static void socks_done(void)
{
	jsock_set_table(NULL, 0);
	jsock_free(socks, nsocks);
	socks = NULL;
	nsocks = 0;
}

/* With every member parked: the sockets of the program, matched end to
 * end over the whole job, their queues kept. The same result on all. */
static int sockets_cut(char *err, size_t len)
{
	char msg[1024] = "";
	struct hdr h;
	void *pay = NULL, *out;
	uint32_t olen = 0;
	int ok;

	socks_done();
	ok = jsock_scan(&socks, &nsocks, msg, sizeof msg) == 0;
	/* every member's sent bytes are in their peers' queues now */
	if (!agree_msg(ok, msg, sizeof msg)) {
		snprintf(err, len, "%s", msg[0] ? msg : "a member's sockets cannot be checkpointed");
		socks_done();
		return -1;
	}
	ok = jsock_peek_all(socks, nsocks, msg, sizeof msg) == 0;
	out = ok ? pack_socks(socks, nsocks, &olen) : NULL;
	if (ok && !out) {
		ok = 0;
		snprintf(msg, sizeof msg, "out of memory for the sockets' queues");
	}
	if (my_member) {
		int r = send_msg(conn[0], M_SOCKS, 0, ok, ok ? out : msg,
		                 ok ? olen : (uint32_t)strlen(msg));
		free(out);
		if (r || await0(M_SOCKS_R, &h, &pay, now_s() + member_wait(1), msg, sizeof msg)) {
			snprintf(err, len, "%s", msg[0] ? msg : "member 0 is gone");
			socks_done();
			return -1;
		}
		if (!h.val || apply_matches(pay, h.len)) {
			snprintf(err, len, "%s", h.val ? "a malformed answer from member 0" :
			                     pay ? (char *)pay : "sockets refused");
			free(pay);
			socks_done();
			return -1;
		}
		free(pay);
		jsock_set_table(socks, nsocks);
		return 0;
	}
	{
		struct member_socks *all = calloc((size_t)job_size, sizeof *all);
		char first[1024] = "";
		if (!all) {
			free(out);
			snprintf(err, len, "out of memory");
			ok = 0;
		}
		if (!ok && !first[0])
			snprintf(first, sizeof first, "member 0: %s", msg[0] ? msg : "out of memory");
		if (all && ok && parse_socks(&all[0], out, olen)) {
			ok = 0;
			snprintf(first, sizeof first, "member 0: bad socket table");
		} else if (all && !ok) {
			free(out);
		}
		for (int k = 1; all && k < job_size; k++) {
			if (await(k, M_SOCKS, &h, &pay, now_s() + timeout_s, msg, sizeof msg)) {
				ok = 0;
				part[k] = 0;
				if (!first[0])
					snprintf(first, sizeof first, "%s", msg);
				continue;
			}
			if (!h.val) {
				ok = 0;
				if (!first[0])
					snprintf(first, sizeof first, "member %d: %s", k, pay ? (char *)pay : "?");
				free(pay);
			} else if (parse_socks(&all[k], pay, h.len)) {
				ok = 0;
				if (!first[0])
					snprintf(first, sizeof first, "member %d: a malformed socket table", k);
			}
		}
		if (ok && match_all(all, first, sizeof first))
			ok = 0;
		for (int k = 1; all && k < job_size; k++) {
			void *m = ok ? pack_matches(all, k, &olen) : NULL;
			if (!part[k] || conn[k] < 0) {
				free(m);
				continue;
			}
			if (ok && !m)
				ok = 0, snprintf(first, sizeof first, "out of memory");
			if (send_msg(conn[k], M_SOCKS_R, 0, ok && m, ok && m ? m : first,
			             ok && m ? olen : (uint32_t)strlen(first))) {
				drop(k, "is gone");
				part[k] = 0;
				ok = 0;
			}
			free(m);
		}
		if (ok) {
			void *m = pack_matches(all, 0, &olen);
			if (!m || apply_matches(m, olen))
				ok = 0, snprintf(first, sizeof first, "member 0: cannot keep its sockets");
			free(m);
		}
		for (int k = 0; all && k < job_size; k++)
			free_socks(&all[k]);
		free(all);
		if (!ok) {
			snprintf(err, len, "%s", first[0] ? first : "the sockets cannot be checkpointed");
			socks_done();
			return -1;
		}
		jsock_set_table(socks, nsocks);
		return 0;
	}
}

static int g_quiesce(struct park_result *parked, char *err, size_t len)
{
	int ok;
	char msg[1024] = "cannot stop its threads";

	if (job_size > 1 && my_member && conn[0] < 0) {
		snprintf(err, len, "job %.600s: member 0 is gone: no checkpoint", job_dir);
		return -1;
	}
	ok = park_all(parked) == 0;

	if (agree_msg(ok, msg, sizeof msg)) {
		if (!sockets_cut(err, len))
			return 0;
		park_release();
		return -1;
	}
	if (ok)
		park_release();
	snprintf(err, len, "job %.600s: a member could not stop its threads (%s)", job_dir, msg);
	return -1;
}

static void g_resume(void) { socks_done(); }

/* ---- a restart: the members meet again, their sockets re-connected ---- */

struct rrec {
	uint64_t pair;
	uint32_t alen, pad;
	struct sockaddr_storage addr;
	uint8_t cookie[16];
};

/* Member 0 waits for every member (the job's transport is up again). */
static int gather_members(double deadline, char *err, size_t len)
{
	for (;;) {
		char who[512] = "";
		size_t at = 0;
		int missing = 0;

		accept_members();
		for (int k = 1; k < job_size; k++)
			if (conn[k] < 0) {
				missing++;
				if (at < sizeof who)
					at += (size_t)snprintf(who + at, sizeof who - at, "%s%d", at ? ", " : "",
					                       k);
			}
		if (!missing) {
			for (int k = 1; k < job_size; k++)
				part[k] = 1;
			return 0;
		}
		if (now_s() > deadline) {
			snprintf(err, len, "job %.600s: member%s %s did not start within %u s "
			         "(CKPTMPI_JOB_TIMEOUT): restart every member of the job", job_dir,
			         missing > 1 ? "s" : "", who, timeout_s);
			return -1;
		}
		{
			struct timespec ms = {0, 20000000};
			nanosleep(&ms, NULL);
		}
	}
}

static int restore_sockets(const struct ck_image *img, char *err, size_t len)
{
	struct rrec *mine = NULL, *table = NULL;
	int *lfd = NULL;
	size_t nmine = 0, ntable = 0;
	double deadline = now_s() + timeout_s;
	struct hdr h;
	void *pay = NULL;
	char msg[1024] = "";
	int ok = 1;

	mine = calloc(img->nfds + 1, sizeof *mine);
	lfd = calloc(img->nfds + 1, sizeof *lfd);
	if (!mine || !lfd) {
		snprintf(msg, sizeof msg, "out of memory");
		ok = 0;
	}
	/* the program's listeners on their ports; a lower-half listener for
	 * every connection this member accepts */
	for (size_t i = 0; ok && i < img->nfds; i++) {
		const struct ck_fd *f = &img->fds[i];
		struct jsock_rec r;
		lfd[i] = -1;
		if (f->kind != CK_FD_SOCKET)
			continue;
		if (jsock_decode(f, &r)) {
			snprintf(msg, sizeof msg, "fd %lld: a socket the image does not describe",
			         (long long)f->fd);
			ok = 0;
		} else if (r.listening) {
			ok = jsock_relisten(f, &r, msg, sizeof msg) == 0;
		} else if (r.role == 0) {
			struct rrec *q = &mine[nmine++];
			q->pair = r.pair;
			if (getrandom(q->cookie, sizeof q->cookie, 0) != (ssize_t)sizeof q->cookie)
				memset(q->cookie, 0x5a, sizeof q->cookie);
			lfd[i] = jsock_listen_for(&r, job_dir, &q->addr, &q->alen, msg, sizeof msg);
			ok = lfd[i] >= 0;
		}
	}
	/* every member's listeners, through member 0 */
	if (job_size > 1 && my_member) {
		while (conn[0] < 0 && now_s() < deadline) {
			struct timespec ms = {0, 20000000};
			connect_member0();
			if (conn[0] < 0)
				nanosleep(&ms, NULL);
		}
		if (conn[0] < 0) {
			snprintf(err, len, "job %.600s: member 0 cannot be reached within %u s "
			         "(CKPTMPI_JOB_TIMEOUT): restart every member of the job", job_dir,
			         timeout_s);
			goto fail;
		}
		if (send_msg(conn[0], M_RSOCK, control_restored_generation(), ok,
		             ok ? (void *)mine : (void *)msg,
		             ok ? (uint32_t)(nmine * sizeof *mine) : (uint32_t)strlen(msg)) ||
		    await0(M_RSOCK_R, &h, &pay, now_s() + member_wait(1), msg, sizeof msg)) {
			snprintf(err, len, "%s", msg[0] ? msg : "member 0 is gone");
			goto fail;
		}
		if (!h.val) {
			snprintf(err, len, "%s", pay ? (char *)pay : "a member cannot restart");
			goto fail;
		}
		table = pay;
		pay = NULL;
		ntable = h.len / sizeof *table;
	} else {
		char first[1024] = "";
		size_t cap = nmine + 1;
		if (!ok)
			snprintf(first, sizeof first, "member 0: %s", msg);
		if (job_size > 1 && gather_members(deadline, first[0] ? msg : first,
		                                   first[0] ? sizeof msg : sizeof first))
			ok = 0;
		table = malloc(cap * sizeof *table);
		if (table && ok) {
			memcpy(table, mine, nmine * sizeof *mine);
			ntable = nmine;
		}
		for (int k = 1; k < job_size; k++) {
			if (conn[k] < 0)
				continue;
			if (await(k, M_RSOCK, &h, &pay, deadline + timeout_s, msg, sizeof msg)) {
				ok = 0;
				if (!first[0])
					snprintf(first, sizeof first, "%s", msg);
				continue;
			}
			if (!h.val) {
				ok = 0;
				if (!first[0])
					snprintf(first, sizeof first, "member %d: %s", k, pay ? (char *)pay : "?");
			} else if (h.gen != control_restored_generation()) {
				/* two cuts of the job cannot be paired (their sockets'
				 * bytes in flight, their verbs) */
				ok = 0;
				if (!first[0])
					snprintf(first, sizeof first, "job %.600s: member %d restarts generation "
					         "%llu, member 0 generation %llu: restart every member from the "
					         "same generation", job_dir, k, (unsigned long long)h.gen,
					         (unsigned long long)control_restored_generation());
			} else if (ok && table) {
				size_t n = h.len / sizeof *table;
				struct rrec *nt = realloc(table, (ntable + n + 1) * sizeof *table);
				if (!nt) {
					ok = 0;
				} else {
					table = nt;
					memcpy(table + ntable, pay, n * sizeof *table);
					ntable += n;
				}
			}
			free(pay);
			pay = NULL;
		}
		if (!table)
			ok = 0;
		for (int k = 1; k < job_size; k++)
			if (conn[k] >= 0 &&
			    send_msg(conn[k], M_RSOCK_R, 0, ok, ok ? (void *)table : (void *)first,
			             ok ? (uint32_t)(ntable * sizeof *table) : (uint32_t)strlen(first)))
				drop(k, "is gone");
		if (!ok) {
			snprintf(err, len, "%s", first[0] ? first : "the job cannot restart");
			goto fail;
		}
	}
	/* connect first (the peers' listeners queue the connections), then
	 * accept: a member may be both ends */
	for (int pass = 1; ok && pass >= 0; pass--)
		for (size_t i = 0; ok && i < img->nfds; i++) {
			const struct ck_fd *f = &img->fds[i];
			struct jsock_rec r;
			int c = -1;
			if (f->kind != CK_FD_SOCKET || jsock_decode(f, &r) || r.listening || r.role != pass)
				continue;
			if (pass == 1) {
				size_t t;
				for (t = 0; t < ntable && table[t].pair != r.pair; t++)
					;
				if (t == ntable) {
					snprintf(msg, sizeof msg, "fd %d: member %d did not offer connection %llu",
					         r.fd, r.peer_member, (unsigned long long)r.pair);
					ok = 0;
					break;
				}
				c = jsock_connect(&table[t].addr, table[t].alen, table[t].cookie,
				                  now_s() + timeout_s, msg, sizeof msg);
			} else {
				size_t t;
				for (t = 0; t < nmine && mine[t].pair != r.pair; t++)
					;
				c = t < nmine ? jsock_accept(lfd[i], mine[t].cookie, now_s() + timeout_s, msg,
				                             sizeof msg)
				              : -1;
				procstate_unregister_lower_fd(lfd[i]);
				close(lfd[i]);
				lfd[i] = -1;
				if (r.family == AF_UNIX && t < nmine)
					unlink(((struct sockaddr_un *)&mine[t].addr)->sun_path);
			}
			if (c < 0) {
				char m2[1100];
				snprintf(m2, sizeof m2, "fd %d: the connection to member %d cannot be made "
				         "again: %s", r.fd, r.peer_member, msg);
				snprintf(msg, sizeof msg, "%.1000s", m2);
				ok = 0;
			} else if (jsock_install(c, f, &r, msg, sizeof msg)) {
				ok = 0;
			}
		}
	if (!agree_msg(ok, msg, sizeof msg)) {
		snprintf(err, len, "%s", msg[0] ? msg : "another member cannot restart its sockets");
		goto fail;
	}
	free(mine);
	free(lfd);
	free(table);
	return 0;
fail:
	for (size_t i = 0; lfd && i < img->nfds; i++)
		if (lfd[i] >= 0)
			close(lfd[i]);
	free(mine);
	free(lfd);
	free(table);
	free(pay);
	return -1;
}

/* A member whose restart fails before the members met (its slice cannot
 * be read, its memory cannot be mapped): the others hear it from it, not
 * after CKPTMPI_JOB_TIMEOUT. Member 0 tells the members that come within
 * a few seconds. */
static void restart_failed_at_exit(void)
{
	char m[700];
	double deadline = now_s() + 5;
	struct timespec ms = {0, 20000000};

	if (!__atomic_load_n(&restoring, __ATOMIC_ACQUIRE) || job_size <= 1)
		return;
	snprintf(m, sizeof m, "could not restart: %s",
	         log_last_error()[0] ? log_last_error() : "see its stderr");
	if (my_member) {
		/* member 0 may still be reading its own slice: it listens only
		 * then; tried as long as member 0 tells the others (a member 0
		 * that is not restarted at all costs these seconds) */
		while (conn[0] < 0 && now_s() < deadline) {
			next_connect = 0;
			connect_member0();
			if (conn[0] < 0)
				nanosleep(&ms, NULL);
		}
		if (conn[0] >= 0)
			send_msg(conn[0], M_RSOCK, 0, 0, m, (uint32_t)strlen(m));
		return;
	}
	{
		char m0[800];
		unsigned char told[MAX_MEMBERS] = {0};
		int left = job_size - 1;
		int n = snprintf(m0, sizeof m0, "member 0 %s", m);
		while (left > 0 && now_s() < deadline) {
			accept_members();
			for (int k = 1; k < job_size; k++)
				if (conn[k] >= 0 && !told[k]) {
					send_msg(conn[k], M_RSOCK_R, 0, 0, m0, (uint32_t)n);
					told[k] = 1;
					left--;
				}
			if (left > 0)
				nanosleep(&ms, NULL);
		}
	}
}

static int g_restore(const struct ck_image *img)
{
	char err[1200] = "";
	int rc = restore_sockets(img, err, sizeof err);

	if (rc)
		log_error("restart: %s", err);
	/* still restoring: the other plugins (the verbs shadow) talk to the
	 * members before the control thread may use the transport again */
	return rc;
}

static void g_restored(void) { __atomic_store_n(&restoring, 0, __ATOMIC_RELEASE); }

static void write_progress_none(uint64_t a, uint64_t b) { (void)a, (void)b; }

static int g_write(const char *dir, const struct ck_generation_info *info, struct ck_image *img,
                   container_progress_fn progress, char *tmp, size_t tmplen)
{
	struct container_counts mine, *all = NULL;
	struct hdr h;
	void *pay = NULL;
	char err[1024] = "";
	int ok;

	if (job_size <= 1)
		return container_write(dir, info, img, progress, tmp, tmplen);
	if (!progress)
		progress = write_progress_none;
	ok = container_group_measure(dir, (uint64_t)my_member, img, &mine) == 0;
	if (!ok)
		snprintf(err, sizeof err, "%s", container_error());
	if (my_member) {
		uint64_t ino;
		const char *name;
		int r;

		if (send_msg(conn[0], M_COUNTS, 0, ok, ok ? (void *)&mine : (void *)err,
		             ok ? (uint32_t)sizeof mine : (uint32_t)strlen(err))) {
			drop(0, "is gone");
			container_set_error("job: member 0 is gone");
			return -1;
		}
		/* my turn, or the outcome (someone failed before) */
		for (;;) {
			if (recv_msg(conn[0], &h, &pay, now_s() + member_wait(10))) {
				drop(0, "is gone");
				container_set_error("job: member 0 left the job during the write");
				return -1;
			}
			if (h.type == M_TURN || h.type == M_RESULT)
				break;
			free(pay);
		}
		if (h.type == M_RESULT) {
			container_set_error(pay && *(char *)pay ? pay : "job: the write failed");
			free(pay);
			return -1;
		}
		all = pay;
		ino = h.gen;
		name = (const char *)(all + job_size);
		if (h.len <= job_size * sizeof *all) {
			free(pay);
			container_set_error("job: a malformed turn from member 0");
			return -1;
		}
		snprintf(tmp, tmplen, "%s/%s", dir, name);
		r = container_group_write_slice(tmp, ino, (uint64_t)job_size, (uint64_t)my_member, all,
		                                img, progress);
		if (r)
			snprintf(err, sizeof err, "member %d: %s", my_member, container_error());
		free(pay);
		if (send_msg(conn[0], M_DONE, 0, r == 0, err, r ? (uint32_t)strlen(err) : 0)) {
			drop(0, "is gone");
			return -1;
		}
		if (await0(M_RESULT, &h, &pay, now_s() + member_wait(10), err, sizeof err)) {
			container_set_error(err);
			return -1;
		}
		if (!h.val)
			container_set_error(pay && *(char *)pay ? pay : "job: the write failed");
		free(pay);
		return h.val ? 0 : -1;
	}
	/* member 0 */
	{
		uint64_t ino = 0;
		char first[1024] = "";
		size_t namelen;
		const char *base;
		char *turn = NULL;

		all = calloc((size_t)job_size, sizeof *all);
		if (!all) {
			ok = 0;
			snprintf(err, sizeof err, "out of memory");
		} else {
			all[0] = mine;
		}
		if (!ok)
			snprintf(first, sizeof first, "member 0: %s", err);
		for (int k = 1; k < job_size; k++) {
			if (await(k, M_COUNTS, &h, &pay, now_s() + timeout_s, err, sizeof err)) {
				part[k] = 0;
				ok = 0;
				if (!first[0])
					snprintf(first, sizeof first, "%s", err);
				continue;
			}
			if (!h.val || h.len != sizeof *all) {
				ok = 0;
				if (!first[0])
					snprintf(first, sizeof first, "member %d: %s", k,
					         pay ? (char *)pay : "?");
			} else if (all) {
				memcpy(&all[k], pay, sizeof *all);
			}
			free(pay);
			pay = NULL;
		}
		if (ok && container_group_create(dir, info, all, tmp, tmplen, &ino)) {
			ok = 0;
			snprintf(first, sizeof first, "%s", container_error());
		}
		/* the slices in turn: nobody else has the file open meanwhile */
		if (ok && container_group_write_slice(tmp, ino, (uint64_t)job_size, 0, all, img,
		                                      progress)) {
			ok = 0;
			snprintf(first, sizeof first, "member 0: %s", container_error());
		}
		base = strrchr(tmp, '/');
		base = base ? base + 1 : tmp;
		namelen = strlen(base) + 1;
		if (ok && !(turn = malloc(job_size * sizeof *all + namelen))) {
			ok = 0;
			snprintf(first, sizeof first, "out of memory");
		}
		if (turn) {
			memcpy(turn, all, job_size * sizeof *all);
			memcpy(turn + job_size * sizeof *all, base, namelen);
		}
		for (int k = 1; ok && k < job_size; k++) {
			snprintf(err, sizeof err, "job %.600s: member %d left the job during the "
			         "checkpoint", job_dir, k);
			if (send_msg(conn[k], M_TURN, ino, 0, turn,
			             (uint32_t)(job_size * sizeof *all + namelen)) ||
			    await(k, M_DONE, &h, &pay, now_s() + 10.0 * timeout_s, err, sizeof err)) {
				if (conn[k] >= 0)
					drop(k, "is gone");
				part[k] = 0;
				ok = 0;
				snprintf(first, sizeof first, "%s", err[0] ? err : "a member is gone");
			} else if (!h.val) {
				ok = 0;
				snprintf(first, sizeof first, "%s", pay ? (char *)pay : "a member failed");
			}
			free(pay);
			pay = NULL;
		}
		free(turn);
		if (ok && container_group_finish(tmp, ino)) {
			ok = 0;
			snprintf(first, sizeof first, "%s", container_error());
		}
		if (!ok && ino)
			unlink(tmp); /* a failed generation leaves nothing behind */
		for (int k = 1; k < job_size; k++)
			if (part[k] && conn[k] >= 0 &&
			    send_msg(conn[k], M_RESULT, 0, ok, first, (uint32_t)strlen(first))) {
				drop(k, "is gone");
				part[k] = 0;
			}
		free(all);
		if (!ok)
			container_set_error(first);
		return ok ? 0 : -1;
	}
}

static int g_commit(const char *dir, uint64_t gen, const char *tmp)
{
	char msg[1024] = "";
	int ok = 1;

	if (job_size <= 1)
		return container_commit(dir, gen, tmp);
	if (my_member == 0) {
		ok = container_commit(dir, gen, tmp) == 0;
		if (!ok) {
			snprintf(msg, sizeof msg, "%s", container_error());
			unlink(tmp);
		}
	}
	ok = agree_msg(ok, msg, sizeof msg);
	if (!ok)
		container_set_error(msg[0] ? msg : "job: the commit failed on member 0");
	else
		committed_gen = gen;
	return ok ? 0 : -1;
}

static const struct ckpt_job_ops group_job = {
	.active = g_active,
	.rank = g_rank,
	.size = g_size,
	.flavour = g_flavour,
	.enter = g_enter,
	.leave = g_leave,
	.may_begin = g_enter,
	.request = g_request,
	.begin = g_begin,
	.poll = g_poll,
	.agree = g_agree,
	.quiesce = g_quiesce,
	.write = g_write,
	.commit = g_commit,
	.exchange = g_exchange,
};

static const struct ckpt_hooks group_hooks = {
	.name = "job",
	.env = group_env,
	.init = group_init,
	.job = &group_job,
	.check = g_check,
	.resume = g_resume,
	.restore = g_restore,
	.restored = g_restored,
};

/* Only a process started as a member of a job provides the job. */
static __attribute__((constructor)) void group_hooks_register(void)
{
	const char *n = getenv("CKPTMPI_JOB_SIZE");
	if (n && *n)
		hooks_register(&group_hooks);
}
