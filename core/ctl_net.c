/* The control network of a job across hosts (ctl_net.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "core/ctl_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sock_io.h"

#define BLOB_TAG "ckptmpi-ctl1"
#define SECRET 16              /* bytes each side proves */
#define MAX_PAYLOAD (512u << 20) /* above the writer's gather of rows (256 MiB) */
#define MAX_ADDRS 16
#define HELLO_WAIT 5.0         /* s for a connection's first message */
#define CONNECT_WAIT 3.0       /* s for one attempt to connect */
#define MAX_PENDING 64

enum {
	H_HELLO = 0x43544c01, /* payload: the secret's half of the sender's side */
	H_REQUEST,            /* member → 0: gen = last generation seen begin, val = why */
	H_BEGIN,              /* 0 → member: gen, val = why */
	H_UP,                 /* member → 0: its part of collective `seq`, val = ok */
	H_DOWN,               /* 0 → member: every part (lens, then data), val = all ok */
};

struct hdr {
	uint32_t type, member;
	uint64_t seq, gen;
	int64_t val;
	uint32_t len, pad;
};

/* The transport is one thread's at a time: a restart's collectives run on
 * the main thread while the control thread looks for messages (seen: both
 * reading one connection, each half a message). The look gives way. */
static pthread_mutex_t net_lock = PTHREAD_MUTEX_INITIALIZER;

static int me = -1, nmem;
static int *conn;          /* member 0: conn[k] per member; a member: conn[0] */
static struct pollfd *looks; /* the poll's entries: one per connection */
static int listen_fd = -1; /* member 0, from ctlnet_listen to the end of ctlnet_join */
static unsigned char secret[2 * SECRET];
static uint64_t seq;

/* requests (member 0) or begins (a member) that came while waiting for
 * something else, in order */
static struct {
	uint64_t gen;
	int32_t why;
} pend[MAX_PENDING];
static int npend;

static double timeout_s(void)
{
	const char *t = getenv("CKPTMPI_CTL_TIMEOUT");
	double v = t ? atof(t) : 60.0;
	return v > 0 ? v : 60.0;
}

/* ---- messages ---- */

static int send_msg(int fd, uint32_t type, uint64_t s, uint64_t gen, int64_t val,
                    const void *pay, uint32_t len)
{
	struct hdr h = {.type = type, .member = (uint32_t)me, .seq = s, .gen = gen, .val = val,
	                .len = len};
	if (fd < 0 || sock_send_all(fd, &h, sizeof h) || (len && sock_send_all(fd, pay, len)))
		return -1;
	return 0;
}

/* One message, its payload into a malloc'd *pay (NULL when empty). 0, -1
 * closed, failed or not a message of ours, -2 timed out. */
static int recv_msg(int fd, struct hdr *h, void **pay, double deadline)
{
	int r = sock_recv_all(fd, h, sizeof *h, deadline);
	*pay = NULL;
	if (r)
		return r;
	if (h->type < H_HELLO || h->type > H_DOWN || h->len > MAX_PAYLOAD)
		return -1;
	if (!h->len)
		return 0;
	if (!(*pay = malloc(h->len)))
		return -1;
	if ((r = sock_recv_all(fd, *pay, h->len, deadline))) {
		free(*pay);
		*pay = NULL;
	}
	return r;
}

static void stash(uint64_t gen, int64_t why)
{
	if (npend == MAX_PENDING) /* the oldest goes: a later one serves it */
		memmove(pend, pend + 1, sizeof pend[0] * (MAX_PENDING - 1)), npend--;
	pend[npend].gen = gen;
	pend[npend++].why = (int32_t)why;
}

static void drop(int k, const char *why)
{
	if (!conn || conn[k] < 0)
		return;
	close(conn[k]);
	conn[k] = -1;
	if (me == 0)
		log_debug("control network: member %d %s", k, why);
	else
		log_debug("control network: member 0 %s", why);
}

/* ---- setting up ---- */

static void hex(char *out, const unsigned char *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", in[i]);
}

static int unhex(unsigned char *out, const char *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(in + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (unsigned char)v;
	}
	return 0;
}

/* the addresses member 0 offers: CKPTMPI_CTL_ADDR (a comma-separated list
 * of IPv4 addresses), else each IPv4 address of an interface that is up,
 * the loopback last */
static size_t own_addresses(char *out, size_t len)
{
	const char *want = getenv("CKPTMPI_CTL_ADDR");
	struct ifaddrs *ifs = NULL;
	size_t n = 0, used = 0;

	out[0] = 0;
	if (want && *want) {
		char copy[512], *save = NULL;
		snprintf(copy, sizeof copy, "%s", want);
		for (char *a = strtok_r(copy, ",", &save); a && n < MAX_ADDRS;
		     a = strtok_r(NULL, ",", &save), n++)
			used += (size_t)snprintf(out + used, len - used, " %s", a);
		return n;
	}
	if (getifaddrs(&ifs) == 0) {
		for (struct ifaddrs *i = ifs; i && n < MAX_ADDRS - 1; i = i->ifa_next) {
			char a[INET_ADDRSTRLEN];
			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
			    !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
				continue;
			if (!inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a,
			               sizeof a))
				continue;
			if (used + strlen(a) + 2 >= len)
				break;
			used += (size_t)snprintf(out + used, len - used, " %s", a);
			n++;
		}
		freeifaddrs(ifs);
	} else {
		log_debug("control network: getifaddrs: %s", strerror(errno));
	}
	snprintf(out + used, len - used, " 127.0.0.1");
	return n + 1;
}

int ctlnet_listen(char *blob, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
	socklen_t sl = sizeof sa;
	char host[256] = "", tok[2 * sizeof secret + 1], addrs[MAX_ADDRS * 20];

	if (getrandom(secret, sizeof secret, 0) != (ssize_t)sizeof secret) {
		log_error("control network: getrandom: %s", strerror(errno));
		return -1;
	}
	listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) ||
	    listen(listen_fd, SOMAXCONN) || getsockname(listen_fd, (struct sockaddr *)&sa, &sl)) {
		log_error("control network: cannot listen on a TCP port: %s", strerror(errno));
		if (listen_fd >= 0)
			close(listen_fd);
		listen_fd = -1;
		return -1;
	}
	if (gethostname(host, sizeof host - 1))
		snprintf(host, sizeof host, "-");
	hex(tok, secret, sizeof secret);
	own_addresses(addrs, sizeof addrs);
	if ((size_t)snprintf(blob, len, "%s %u %s %s%s", BLOB_TAG, (unsigned)ntohs(sa.sin_port),
	                     tok, host, addrs) >= len) {
		log_error("control network: the addresses do not fit in %zu bytes", len);
		close(listen_fd);
		listen_fd = -1;
		return -1;
	}
	log_debug("control network: member 0 listens: %s %u%s", host, (unsigned)ntohs(sa.sin_port),
	          addrs);
	return 0;
}

static void tune(int fd)
{
	int one = 1, idle = 30, intvl = 10, cnt = 3;
	/* small messages, each waited for: no Nagle; a host that dies is
	 * noticed within a minute or two */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

static int keep(int fd, int (*adopt)(int fd))
{
	tune(fd);
	return adopt ? adopt(fd) : fd;
}

/* A connection to ip:port within CONNECT_WAIT, or -1 */
static int connect_to(const char *ip, unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd, err = 0;
	socklen_t el = sizeof err;
	struct pollfd p;

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) && errno != EINPROGRESS)
		goto fail;
	p = (struct pollfd){fd, POLLOUT, 0};
	if (poll(&p, 1, (int)(CONNECT_WAIT * 1000)) != 1 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) || err)
		goto fail;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK))
		goto fail;
	return fd;
fail:
	close(fd);
	return -1;
}

/* the sender's member number once it proved it knows its half of the
 * secret (want), or -1 */
static int hello_answer(int fd, const unsigned char *want)
{
	struct hdr h;
	void *pay;
	int ok;
	if (recv_msg(fd, &h, &pay, sock_now() + HELLO_WAIT))
		return -1;
	ok = h.type == H_HELLO && h.len == SECRET && !memcmp(pay, want, SECRET);
	free(pay);
	return ok ? (int)h.member : -1;
}

static int join_member(const char *blob, int (*adopt)(int fd))
{
	char tag[32], tok[2 * sizeof secret + 1], host[256], mine[256] = "", cand[MAX_ADDRS + 1][48];
	unsigned port;
	int n = 0, off = 0;
	const char *p;
	double deadline = sock_now() + timeout_s();

	if (sscanf(blob, "%31s %u %64s %255s%n", tag, &port, tok, host, &off) != 4 ||
	    strcmp(tag, BLOB_TAG) || unhex(secret, tok, sizeof secret)) {
		log_error("control network: member 0's address is not understood: \"%.200s\"", blob);
		return -1;
	}
	/* on member 0's host the loopback first */
	if (!gethostname(mine, sizeof mine - 1) && !strcmp(mine, host))
		snprintf(cand[n++], sizeof cand[0], "127.0.0.1");
	for (p = blob + off; n < MAX_ADDRS + 1;) {
		int used = 0;
		if (sscanf(p, "%47s%n", cand[n], &used) != 1)
			break;
		p += used;
		n++;
	}
	while (sock_now() < deadline) {
		for (int i = 0; i < n; i++) {
			int fd = connect_to(cand[i], port), k;
			if (fd < 0)
				continue;
			if (send_msg(fd, H_HELLO, 0, 0, 0, secret, SECRET) ||
			    (k = hello_answer(fd, secret + SECRET)) != 0) {
				log_debug("control network: %s:%u is not member 0 of this job", cand[i],
				          port);
				close(fd);
				continue;
			}
			if ((conn[0] = keep(fd, adopt)) < 0)
				return -1;
			log_debug("control network: connected to member 0 at %s:%u", cand[i], port);
			return 0;
		}
		usleep(100000);
	}
	log_error("control network: member %d cannot reach member 0 (%s, port %u%s) within %.0f s "
	          "(CKPTMPI_CTL_TIMEOUT; CKPTMPI_CTL_ADDR names the address to use)",
	          me, host, port, blob + off, timeout_s());
	return -1;
}

/* member 0 keeps a descriptor per member, among the runtime's (900 up,
 * 64 of them for its own use): the soft limit raised only when that
 * leaves too few (a job of more than about 60 ranks under the usual
 * 1024); the program sees the raised limit */
static void room_for_members(int size)
{
	struct rlimit rl;
	rlim_t want = 900 + 64 + (rlim_t)size;
	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
		log_debug("control network: open files limit raised to %llu for %d members",
		          (unsigned long long)rl.rlim_cur, size);
}

static int join_zero(int size, int (*adopt)(int fd))
{
	double deadline = sock_now() + timeout_s();
	int got = 0;

	room_for_members(size);
	while (got < size - 1) {
		struct pollfd p = {listen_fd, POLLIN, 0};
		double left = deadline - sock_now();
		int fd, k, r;

		if (left <= 0) {
			for (k = 1; k < size; k++)
				if (conn[k] < 0) {
					log_error("control network: member %d did not connect to member 0 "
					          "within %.0f s (CKPTMPI_CTL_TIMEOUT), nor %d other(s)",
					          k, timeout_s(), size - 2 - got);
					break;
				}
			return -1;
		}
		r = poll(&p, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR) {
			log_error("control network: poll: %s", strerror(errno));
			return -1;
		}
		if (r <= 0)
			continue;
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		k = hello_answer(fd, secret);
		if (k <= 0 || k >= size || conn[k] >= 0 ||
		    send_msg(fd, H_HELLO, 0, 0, 0, secret + SECRET, SECRET)) {
			/* not a member of this job (or twice the same) */
			log_debug("control network: a connection that is not a member's closed");
			close(fd);
			continue;
		}
		if ((conn[k] = keep(fd, adopt)) < 0)
			return -1;
		got++;
	}
	return 0;
}

static void close_conns(void)
{
	if (conn)
		for (int k = 0; k < nmem; k++)
			if (conn[k] >= 0)
				close(conn[k]);
	free(conn);
	conn = NULL;
	free(looks);
	looks = NULL;
	npend = 0;
}

int ctlnet_join(int member, int size, const char *blob, int (*adopt)(int fd))
{
	int r;

	close_conns();
	me = member;
	nmem = size;
	conn = malloc((size_t)(size > 0 ? size : 1) * sizeof *conn);
	looks = malloc((size_t)(size > 0 ? size : 1) * sizeof *looks);
	if (!conn || !looks || size < 1 || member < 0 || member >= size) {
		log_error("control network: member %d of %d: cannot join", member, size);
		ctlnet_close();
		return -1;
	}
	for (int k = 0; k < size; k++)
		conn[k] = -1;
	r = member == 0 ? join_zero(size, adopt) : join_member(blob, adopt);
	if (listen_fd >= 0) {
		close(listen_fd);
		listen_fd = -1;
	}
	if (r) {
		close_conns();
		return -1;
	}
	seq = 0;
	npend = 0;
	log_debug("control network: up, member %d of %d", member, size);
	return 0;
}

int ctlnet_up(void) { return conn != NULL; }

void ctlnet_close(void)
{
	close_conns();
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
}

/* ---- starting a checkpoint ---- */

static int ctlnet_request_locked(int why, uint64_t last_gen)
{
	if (!conn || me == 0)
		return -1;
	if (send_msg(conn[0], H_REQUEST, 0, last_gen, why, NULL, 0)) {
		drop(0, "is gone");
		log_error("control network: cannot pass the checkpoint request on to member 0");
		return -1;
	}
	return 0;
}

static int ctlnet_begin_locked(uint64_t gen, int why)
{
	int r = 0;
	if (!conn || me != 0)
		return -1;
	for (int k = 1; k < nmem; k++)
		if (conn[k] >= 0 && send_msg(conn[k], H_BEGIN, 0, gen, why, NULL, 0)) {
			drop(k, "is gone");
			r = -1;
		}
	return r;
}

/* A message that came outside a collective step: stashed, or the
 * connection dropped (closed, or not what may come now). A member's part
 * of the next step (it may be there before member 0 takes the step) stays
 * where it is, for the step. 1: look again at this connection. */
static int take_unasked(int k)
{
	struct hdr h;
	void *pay;
	ssize_t n = recv(conn[k], &h, sizeof h, MSG_PEEK | MSG_DONTWAIT);
	int r;

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		drop(k, "closed its connection");
		return 0;
	}
	if (n < (ssize_t)sizeof h || h.type == H_UP || h.type == H_DOWN)
		return 0; /* for the step (or the rest of the header later) */
	if ((r = recv_msg(conn[k], &h, &pay, sock_now() + timeout_s()))) {
		drop(k, r == -2 ? "sent half a message" : "closed its connection");
		return 0;
	}
	free(pay);
	if ((me == 0 && h.type == H_REQUEST) || (me != 0 && h.type == H_BEGIN)) {
		stash(h.gen, h.val);
		return 1;
	}
	drop(k, "sent a message out of turn");
	return 0;
}

static int ctlnet_poll_locked(uint64_t last_gen, uint64_t *gen, int *why)
{
	/* member 0 looks at every member's connection, a member at member 0's:
	 * one poll for all of them every look (the control thread's, every
	 * 20 ms), a connection looked at again only while it has more */
	int first = me == 0 ? 1 : 0, n = me == 0 ? nmem - 1 : 1;

	if (!conn)
		return 0;
	for (int i = 0; i < n; i++)
		looks[i] = (struct pollfd){conn[first + i], POLLIN, 0}; /* (-1: ignored) */
	if (n > 0 && poll(looks, (nfds_t)n, 0) > 0)
		for (int i = 0; i < n; i++) {
			int k = first + i;
			struct pollfd p = {conn[k], POLLIN, 0};
			if (!(looks[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			/* every message there now (a signal to mpirun makes each
			 * rank ask) */
			while (take_unasked(k) && poll(&p, 1, 0) == 1 &&
			       (p.revents & (POLLIN | POLLHUP | POLLERR)))
				;
		}
	while (npend) {
		uint64_t g = pend[0].gen;
		int w = pend[0].why;
		memmove(pend, pend + 1, sizeof pend[0] * (size_t)--npend);
		if (me != 0) {
			*gen = g;
			*why = w;
			return 1;
		}
		/* requests made before the latest checkpoint began are served
		 * by it already */
		if (g >= last_gen) {
			*gen = 0;
			*why = w;
			return 1;
		}
	}
	return 0;
}

/* ---- collectives ---- */

/* member 0: every member's part of collective s into parts/lens (parts[0]
 * is its own); returns 1 when all are there and ok */
static int gather_parts(uint64_t s, void **parts, uint32_t *lens, int ok)
{
	char *wait = calloc((size_t)nmem, 1);
	struct pollfd *p = calloc((size_t)nmem, sizeof *p);
	int left = 0;

	if (!wait || !p) {
		free(wait);
		free(p);
		return 0;
	}
	for (int k = 1; k < nmem; k++)
		if (conn[k] >= 0)
			wait[k] = 1, left++;
		else
			ok = 0;
	while (left) {
		int n = 0, r;
		for (int k = 1; k < nmem; k++)
			if (wait[k])
				p[n++] = (struct pollfd){conn[k], POLLIN, 0};
		r = poll(p, (nfds_t)n, -1);
		if (r < 0 && errno != EINTR) {
			log_error("control network: poll: %s", strerror(errno));
			ok = 0;
			break;
		}
		for (int i = 0, k = 1; r > 0 && i < n; k++) {
			struct hdr h;
			void *pay;
			int e;
			if (!wait[k])
				continue;
			if (!(p[i++].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			e = recv_msg(conn[k], &h, &pay, sock_now() + timeout_s());
			if (!e && h.type == H_REQUEST) {
				free(pay);
				stash(h.gen, h.val);
				continue;
			}
			wait[k] = 0;
			left--;
			if (e || h.type != H_UP || h.seq != s) {
				free(pay);
				drop(k, e ? "is gone" : "sent a message out of turn");
				log_error("control network: member %d %s during a collective step", k,
				          e ? "was lost" : "is out of step");
				ok = 0;
				continue;
			}
			if (!h.val)
				ok = 0;
			parts[k] = pay;
			if (lens)
				lens[k] = h.len;
		}
	}
	free(wait);
	free(p);
	return ok;
}

enum { STEP_ALLGATHER, STEP_GATHER, STEP_SCATTER };

/* A member's side of a step: its part up, member 0's answer back (in *pay,
 * *paylen). 0, or -1 (the step failed: said, or lost). */
static int step_member(uint64_t s, const void *mine, uint32_t len, int ok, void **pay,
                       uint32_t *paylen)
{
	struct hdr h;

	if (send_msg(conn[0], H_UP, s, 0, ok, mine, len)) {
		drop(0, "is gone");
		return -1;
	}
	for (;;) {
		if (recv_msg(conn[0], &h, pay, 0)) {
			drop(0, "is gone");
			log_error("control network: member 0 was lost during a collective step");
			return -1;
		}
		if (h.type != H_BEGIN)
			break;
		free(*pay); /* (a checkpoint to begin after this one: kept for the poll) */
		stash(h.gen, h.val);
	}
	if (h.type != H_DOWN || h.seq != s) {
		free(*pay);
		*pay = NULL;
		drop(0, "is out of step");
		log_error("control network: member 0 is out of step in a collective step");
		return -1;
	}
	*paylen = h.len;
	if (!h.val) {
		free(*pay);
		*pay = NULL;
		return -1;
	}
	return 0;
}

/* One step: every member's part (mine, len) up to member 0, which answers
 * each member: STEP_ALLGATHER every part (their lengths, then the data),
 * STEP_GATHER nothing, STEP_SCATTER down[k]. What this member keeps, in
 * *got (malloc'd): every part's data (ALLGATHER; GATHER at member 0), or
 * its own down part (SCATTER, *got_len bytes); lens: each part's length
 * (ALLGATHER everywhere, GATHER at member 0; NULL for SCATTER). 0 on
 * every member alike, or -1 on every member alike. */
static int step(int kind, const void *mine, uint32_t len, int ok, const void *const *down,
                const uint32_t *down_lens, void **got, uint32_t *got_len, uint32_t *lens)
{
	uint64_t s = ++seq;
	size_t total = 0, head = (size_t)nmem * sizeof(uint32_t);
	char *all = NULL;
	void **parts;
	int all_ok;

	*got = NULL;
	if (!conn)
		return -1;
	if (me != 0) {
		void *pay = NULL;
		uint32_t paylen = 0;
		if (step_member(s, mine, len, ok, &pay, &paylen))
			return -1;
		if (kind == STEP_GATHER) {
			free(pay);
			return 0;
		}
		if (kind == STEP_SCATTER) {
			*got = pay ? pay : malloc(1);
			*got_len = paylen;
			return *got ? 0 : -1;
		}
		if (paylen < head) {
			free(pay);
			return -1;
		}
		memcpy(lens, pay, head);
		for (int k = 0; k < nmem; k++)
			total += lens[k];
		if (total != paylen - head || !(*got = malloc(total ? total : 1))) {
			free(pay);
			return -1;
		}
		memcpy(*got, (char *)pay + head, total);
		free(pay);
		return 0;
	}

	parts = calloc((size_t)nmem, sizeof *parts);
	all_ok = parts && gather_parts(s, parts, lens, ok);
	if (parts) {
		parts[0] = (void *)mine;
		if (lens)
			lens[0] = len;
	}
	if (kind != STEP_SCATTER) {
		for (int k = 0; all_ok && k < nmem; k++)
			total += lens[k];
		if (all_ok && total + head > MAX_PAYLOAD) {
			log_error("control network: a collective step of %zu bytes is too large", total);
			all_ok = 0;
		}
		/* lens then data: ALLGATHER's answer, and what member 0 keeps */
		if (all_ok && !(all = malloc(head + total + 1)))
			all_ok = 0;
		if (all_ok) {
			size_t off = head;
			memcpy(all, lens, head);
			for (int k = 0; k < nmem; off += lens[k], k++)
				memcpy(all + off, parts[k], lens[k]);
		}
	}
	for (int k = 1; k < nmem; k++) {
		const void *ans = NULL;
		uint32_t anslen = 0;
		if (all_ok && kind == STEP_ALLGATHER)
			ans = all, anslen = (uint32_t)(head + total);
		else if (all_ok && kind == STEP_SCATTER)
			ans = down[k], anslen = down_lens[k];
		/* a member lost now fails the later steps; this one's answer
		 * stands for the others, and for member 0 */
		if (conn[k] >= 0 && send_msg(conn[k], H_DOWN, s, 0, all_ok, ans, anslen))
			drop(k, "is gone");
	}
	for (int k = 1; parts && k < nmem; k++)
		free(parts[k]);
	free(parts);
	if (!all_ok) {
		free(all);
		return -1;
	}
	if (kind == STEP_SCATTER) {
		free(all);
		if (!(*got = malloc(down_lens[0] ? down_lens[0] : 1)))
			return -1;
		memcpy(*got, down[0], down_lens[0]);
		*got_len = down_lens[0];
		return 0;
	}
	memmove(all, all + head, total);
	*got = all;
	return 0;
}

int ctlnet_allgather(const void *mine, uint32_t len, void *all)
{
	uint32_t *lens = malloc((size_t)(nmem > 0 ? nmem : 1) * sizeof *lens);
	void *got = NULL;
	int r = lens ? ctlnet_allgatherv(mine, len, 1, &got, lens) : -1;

	for (int k = 0; r == 0 && k < nmem; k++)
		if (lens[k] != len)
			r = -1;
	if (r == 0)
		memcpy(all, got, (size_t)len * (size_t)nmem);
	free(got);
	free(lens);
	return r;
}

int ctlnet_allreduce(int32_t *v, int n, int op)
{
	int32_t *all = malloc((size_t)n * sizeof *v * (size_t)(nmem > 0 ? nmem : 1));
	int r = all ? ctlnet_allgather(v, (uint32_t)((size_t)n * sizeof *v), all) : -1;

	for (int k = 0; r == 0 && k < nmem; k++)
		for (int i = 0; i < n; i++) {
			int32_t x = all[(size_t)k * (size_t)n + (size_t)i];
			if (k == 0 || (op == CTLNET_MIN ? x < v[i] : x > v[i]))
				v[i] = x;
		}
	free(all);
	return r;
}

/* ---- one thread at a time ---- */

int ctlnet_request(int why, uint64_t last_gen)
{
	int r;
	pthread_mutex_lock(&net_lock);
	r = ctlnet_request_locked(why, last_gen);
	pthread_mutex_unlock(&net_lock);
	return r;
}

int ctlnet_begin(uint64_t gen, int why)
{
	int r;
	pthread_mutex_lock(&net_lock);
	r = ctlnet_begin_locked(gen, why);
	pthread_mutex_unlock(&net_lock);
	return r;
}

int ctlnet_poll(uint64_t last_gen, uint64_t *gen, int *why)
{
	int r;
	if (pthread_mutex_trylock(&net_lock))
		return 0;
	r = ctlnet_poll_locked(last_gen, gen, why);
	pthread_mutex_unlock(&net_lock);
	return r;
}

static int locked_step(int kind, const void *mine, uint32_t len, int ok,
                       const void *const *down, const uint32_t *down_lens, void **got,
                       uint32_t *got_len, uint32_t *lens)
{
	int r;
	pthread_mutex_lock(&net_lock);
	r = step(kind, mine, len, ok, down, down_lens, got, got_len, lens);
	pthread_mutex_unlock(&net_lock);
	return r;
}

int ctlnet_allgatherv(const void *mine, uint32_t len, int ok, void **all, uint32_t *lens)
{
	uint32_t unused;
	return locked_step(STEP_ALLGATHER, mine, len, ok, NULL, NULL, all, &unused, lens);
}

int ctlnet_gatherv(const void *mine, uint32_t len, int ok, void **all, uint32_t *lens)
{
	uint32_t unused;
	return locked_step(STEP_GATHER, mine, len, ok, NULL, NULL, all, &unused, lens);
}

int ctlnet_scatterv(const void *const *parts, const uint32_t *lens, int ok, void **mine,
                    uint32_t *len)
{
	return locked_step(STEP_SCATTER, NULL, 0, ok, parts, lens, mine, len, NULL);
}

int ctlnet_bcast(void *buf, uint32_t len, int ok)
{
	const void **parts = NULL;
	uint32_t *lens = NULL, got_len = 0;
	void *got = NULL;
	int r = -1;

	if (me == 0 && nmem > 0) {
		parts = malloc((size_t)nmem * sizeof *parts);
		lens = malloc((size_t)nmem * sizeof *lens);
		ok = ok && parts && lens;
		for (int k = 0; ok && k < nmem; k++)
			parts[k] = buf, lens[k] = len;
	}
	if (ctlnet_scatterv(parts, lens, ok, &got, &got_len) == 0 && got_len == len) {
		memcpy(buf, got, len);
		r = 0;
	}
	free(got);
	free(parts);
	free(lens);
	return r;
}
