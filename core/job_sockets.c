/* Sockets between members of a job without MPI: see job_sockets.h and
 * docs/jobs.md ("Sockets between members"). */
#include "core/job_sockets.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/procstate.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int opt(int fd, int level, int name)
{
	int v = 0;
	socklen_t l = sizeof v;
	return getsockopt(fd, level, name, &v, &l) ? 0 : v;
}

static const char *addr_str(const struct sockaddr_storage *a, uint32_t len, char *b, size_t n)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)a;
		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
		snprintf(b, n, "%s:%u", ip, ntohs(s->sin_port));
	} else if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)a;
		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
		snprintf(b, n, "[%s]:%u", ip, ntohs(s->sin6_port));
	} else if (a->ss_family == AF_UNIX) {
		const struct sockaddr_un *s = (const void *)a;
		if (len <= sizeof(sa_family_t))
			snprintf(b, n, "unnamed");
		else if (!s->sun_path[0])
			snprintf(b, n, "@%.*s", (int)(len - sizeof(sa_family_t) - 1), s->sun_path + 1);
		else
			snprintf(b, n, "%s", s->sun_path);
	} else {
		snprintf(b, n, "?");
	}
	return b;
}

const char *jsock_name(const struct jsock_scan *s, char *buf, size_t len)
{
	char l[160], r[160];
	const char *kind = s->r.family == AF_UNIX ? "Unix stream socket" : "TCP";

	addr_str(&s->r.local, s->r.llen, l, sizeof l);
	if (s->r.listening)
		snprintf(buf, len, "fd %d (%s listening on %s)", s->r.fd, kind, l);
	else
		snprintf(buf, len, "fd %d (%s %s -> %s)", s->r.fd, kind, l,
		         addr_str(&s->r.remote, s->r.rlen, r, sizeof r));
	return buf;
}

int jsock_ends_match(const struct jsock_scan *a, const struct jsock_scan *b)
{
	if (a->r.family != b->r.family || a->r.listening || b->r.listening)
		return 0;
	if (a->r.family == AF_UNIX)
		return a->ino && a->ino == b->peer_ino && b->ino == a->peer_ino;
	return a->r.llen == b->r.rlen && a->r.rlen == b->r.llen &&
	       !memcmp(&a->r.local, &b->r.remote, a->r.llen) &&
	       !memcmp(&a->r.remote, &b->r.local, a->r.rlen);
}

/* The inode of the other end of Unix socket `ino` (sock_diag). 0: unknown. */
static uint64_t unix_peer(uint64_t ino)
{
	struct {
		struct nlmsghdr nh;
		struct unix_diag_req r;
	} req;
	char buf[8192];
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	uint64_t peer = 0;
	ssize_t n;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (fd < 0)
		return 0;
	memset(&req, 0, sizeof req);
	req.nh.nlmsg_len = sizeof req;
	req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = AF_UNIX;
	req.r.udiag_states = -1;
	req.r.udiag_ino = (uint32_t)ino;
	req.r.udiag_show = UDIAG_SHOW_PEER;
	req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u;
	if (sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return 0;
	}
	n = recv(fd, buf, sizeof buf, 0);
	for (struct nlmsghdr *h = (void *)buf; n > 0 && NLMSG_OK(h, (size_t)n);
	     h = NLMSG_NEXT(h, n)) {
		struct unix_diag_msg *m;
		struct rtattr *a;
		int alen;

		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			break;
		m = NLMSG_DATA(h);
		a = (struct rtattr *)(m + 1);
		alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *m));
		for (; RTA_OK(a, alen); a = RTA_NEXT(a, alen))
			if (a->rta_type == UNIX_DIAG_PEER)
				peer = *(uint32_t *)RTA_DATA(a);
	}
	close(fd);
	return peer;
}

static int peek_queue(struct jsock *j, char *err, size_t len)
{
	char name[400];
	int fd = j->s.r.fd, inq = 0;
	ssize_t got;

	if (ioctl(fd, SIOCINQ, &inq) < 0 || inq < 0) {
		snprintf(err, len, "%s: SIOCINQ: %s", jsock_name(&j->s, name, sizeof name),
		         strerror(errno));
		return -1;
	}
	j->s.inq_len = (uint32_t)inq;
	if (!inq)
		return 0;
	if (!(j->inq = malloc((size_t)inq))) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	got = recv(fd, j->inq, (size_t)inq, MSG_PEEK | MSG_DONTWAIT);
	if (got != inq) {
		snprintf(err, len, "%s: %d bytes queued, %zd read: cannot keep them",
		         jsock_name(&j->s, name, sizeof name), inq, got);
		return -1;
	}
	return 0;
}

int jsock_scan(struct jsock **out, size_t *n, char *err, size_t len)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	struct jsock *v = NULL;
	size_t cnt = 0, cap = 0;
	double until = now_s() + 5;

	*out = NULL;
	*n = 0;
	if (!d) {
		snprintf(err, len, "/proc/self/fd: %s", strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name), dom, type;
		struct stat st;
		struct jsock *j;
		socklen_t l;

		if (de->d_name[0] == '.' || fd == dirfd(d) || !procstate_program_fd(fd) ||
		    fstat(fd, &st) || !S_ISSOCK(st.st_mode))
			continue;
		dom = opt(fd, SOL_SOCKET, SO_DOMAIN);
		type = opt(fd, SOL_SOCKET, SO_TYPE);
		if (type != SOCK_STREAM || (dom != AF_INET && dom != AF_INET6 && dom != AF_UNIX))
			continue; /* procstate names what it does not support */
		if (cnt == cap) {
			struct jsock *nv = realloc(v, (cap = cap ? 2 * cap : 8) * sizeof *nv);
			if (!nv) {
				snprintf(err, len, "out of memory");
				goto fail;
			}
			v = nv;
		}
		j = &v[cnt++];
		memset(j, 0, sizeof *j);
		j->s.r.fd = fd;
		j->s.r.family = dom;
		j->s.r.listening = opt(fd, SOL_SOCKET, SO_ACCEPTCONN);
		j->s.r.peer_member = -1;
		j->s.r.keepalive = opt(fd, SOL_SOCKET, SO_KEEPALIVE);
		j->s.r.reuseaddr = opt(fd, SOL_SOCKET, SO_REUSEADDR);
		j->s.r.rcvbuf = opt(fd, SOL_SOCKET, SO_RCVBUF);
		j->s.r.sndbuf = opt(fd, SOL_SOCKET, SO_SNDBUF);
		if (dom != AF_UNIX)
			j->s.r.nodelay = opt(fd, IPPROTO_TCP, TCP_NODELAY);
		l = sizeof j->s.r.local;
		if (getsockname(fd, (struct sockaddr *)&j->s.r.local, &l) == 0)
			j->s.r.llen = l;
		l = sizeof j->s.r.remote;
		if (!j->s.r.listening && getpeername(fd, (struct sockaddr *)&j->s.r.remote, &l) == 0)
			j->s.r.rlen = l;
		if (dom == AF_UNIX) {
			j->s.ino = (uint64_t)st.st_ino;
			j->s.peer_ino = j->s.r.listening ? 0 : unix_peer(j->s.ino);
		}
		if (!j->s.r.listening && dom != AF_UNIX) {
			struct tcp_info ti;
			char name[400];
			l = sizeof ti;
			if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 &&
			    ti.tcpi_state != 1 /* TCP_ESTABLISHED */) {
				snprintf(err, len, "%s: a TCP connection in state %u (not established): "
				         "not supported", jsock_name(&j->s, name, sizeof name),
				         ti.tcpi_state);
				goto fail;
			}
		}
	}
	closedir(d);
	d = NULL;
	/* what this end sent must have reached the other end's queue: a TCP
	 * sender's unacknowledged bytes (none left on loopback or a quiet
	 * network within moments) */
	for (size_t i = 0; i < cnt; i++) {
		int outq = 0;
		if (v[i].s.r.family == AF_UNIX || v[i].s.r.listening)
			continue;
		while (ioctl(v[i].s.r.fd, SIOCOUTQ, &outq) == 0 && outq > 0 && now_s() < until) {
			struct timespec ms = {0, 1000000};
			nanosleep(&ms, NULL);
		}
		if (outq > 0) {
			char name[400];
			snprintf(err, len, "%s: %d bytes sent were not acknowledged within 5 s",
			         jsock_name(&v[i].s, name, sizeof name), outq);
			goto fail;
		}
	}
	*out = v;
	*n = cnt;
	return 0;
fail:
	if (d)
		closedir(d);
	jsock_free(v, cnt);
	return -1;
}

int jsock_peek_all(struct jsock *v, size_t n, char *err, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (!v[i].s.r.listening && peek_queue(&v[i], err, len))
			return -1;
	return 0;
}

void jsock_free(struct jsock *s, size_t n)
{
	for (size_t i = 0; s && i < n; i++) {
		free(s[i].inq);
		free(s[i].resend);
	}
	free(s);
}

/* ---- the image ---- */

static struct jsock *table;
static size_t ntable;

static int describe(int fd, struct ck_fd *f)
{
	static const char hex[] = "0123456789abcdef";
	const struct jsock *j = NULL;
	const uint8_t *p;
	char *s;

	for (size_t i = 0; i < ntable; i++)
		if (table[i].s.r.fd == fd && table[i].matched)
			j = &table[i];
	if (!j)
		return 0;
	s = malloc(2 * sizeof j->s.r + 16);
	if (!s)
		return -1;
	strcpy(s, "job-socket:");
	p = (const uint8_t *)&j->s.r;
	for (size_t i = 0; i < sizeof j->s.r; i++) {
		s[11 + 2 * i] = hex[p[i] >> 4];
		s[11 + 2 * i + 1] = hex[p[i] & 15];
	}
	s[11 + 2 * sizeof j->s.r] = 0;
	f->kind = CK_FD_SOCKET;
	f->path = s;
	f->data_len = j->resend_len;
	if (j->resend_len) {
		if (!(f->data = malloc(j->resend_len)))
			return -1;
		memcpy(f->data, j->resend, j->resend_len);
	}
	return 1;
}

void jsock_set_table(struct jsock *s, size_t n)
{
	table = s;
	ntable = n;
	procstate_socket_hook = s ? describe : NULL;
}

int jsock_decode(const struct ck_fd *f, struct jsock_rec *r)
{
	const char *s = f->path;
	uint8_t *p = (uint8_t *)r;

	if (!s || strncmp(s, "job-socket:", 11) || strlen(s + 11) != 2 * sizeof *r)
		return -1;
	s += 11;
	for (size_t i = 0; i < sizeof *r; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		p[i] = (uint8_t)v;
	}
	return 0;
}

/* ---- restart ---- */

static void set_opts(int fd, const struct jsock_rec *r)
{
	int one = 1;
	if (r->reuseaddr)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (r->keepalive)
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	if (r->family != AF_UNIX && r->nodelay)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* fd at the image's number, with its file status flags and close-on-exec */
static int put_at(int c, const struct ck_fd *f, char *err, size_t len)
{
	int target = (int)f->fd, fl = (int)f->flags;

	if (dup3(c, target, (fl & O_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		snprintf(err, len, "fd %d: dup3: %s", target, strerror(errno));
		return -1;
	}
	if (fcntl(target, F_SETFL, fl & (O_NONBLOCK | O_APPEND | O_ASYNC)) < 0) {
		snprintf(err, len, "fd %d: F_SETFL: %s", target, strerror(errno));
		return -1;
	}
	procstate_unregister_lower_fd(c);
	close(c);
	return 0;
}

int jsock_relisten(const struct ck_fd *f, const struct jsock_rec *r, char *err, size_t len)
{
	int fd = socket(r->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char a[160];

	if (fd < 0) {
		snprintf(err, len, "fd %d: socket: %s", r->fd, strerror(errno));
		return -1;
	}
	set_opts(fd, r);
	if (r->family == AF_UNIX) {
		const struct sockaddr_un *u = (const void *)&r->local;
		struct stat st;
		/* a stale socket file of the program's own is replaced */
		if (r->llen > sizeof(sa_family_t) && u->sun_path[0] && lstat(u->sun_path, &st) == 0 &&
		    S_ISSOCK(st.st_mode) && st.st_uid == getuid())
			unlink(u->sun_path);
	}
	if (bind(fd, (const struct sockaddr *)&r->local, r->llen) < 0 || listen(fd, SOMAXCONN) < 0) {
		snprintf(err, len, "fd %d: the program's listening socket cannot be re-created on %s: "
		         "%s", r->fd, addr_str(&r->local, r->llen, a, sizeof a), strerror(errno));
		close(fd);
		return -1;
	}
	fd = procstate_move_lower_fd(fd);
	return fd < 0 ? -1 : put_at(fd, f, err, len);
}

static int any_address(const struct sockaddr_storage *a)
{
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
	return a->ss_family == AF_INET6 &&
	       IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

/* Bound to any address (the old one is not here: another host or network
 * namespace): the peer is told this host's first address of the family
 * that is up and not loopback (loopback if there is none). */
static void publish_host_address(struct sockaddr_storage *a)
{
	struct ifaddrs *ifs, *i;
	int found = 0;

	if (getifaddrs(&ifs) == 0) {
		for (i = ifs; i && !found; i = i->ifa_next) {
			if (!i->ifa_addr || i->ifa_addr->sa_family != a->ss_family ||
			    !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
				continue;
			if (a->ss_family == AF_INET) {
				((struct sockaddr_in *)a)->sin_addr =
				    ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
				found = 1;
			} else if (!IN6_IS_ADDR_LINKLOCAL(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr)) {
				((struct sockaddr_in6 *)a)->sin6_addr =
				    ((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
				found = 1;
			}
		}
		freeifaddrs(ifs);
	}
	if (!found && a->ss_family == AF_INET)
		((struct sockaddr_in *)a)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else if (!found)
		((struct sockaddr_in6 *)a)->sin6_addr = in6addr_loopback;
}

int jsock_listen_for(const struct jsock_rec *r, const char *dir, struct sockaddr_storage *a,
                     uint32_t *alen, char *err, size_t len)
{
	int fd = socket(r->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	socklen_t l;

	if (fd < 0) {
		snprintf(err, len, "socket: %s", strerror(errno));
		return -1;
	}
	if (r->rcvbuf)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &r->rcvbuf, sizeof r->rcvbuf);
	memset(a, 0, sizeof *a);
	if (r->family == AF_UNIX) {
		struct sockaddr_un *u = (void *)a;
		mode_t old;
		int b;
		u->sun_family = AF_UNIX;
		if (snprintf(u->sun_path, sizeof u->sun_path, "%s/.pair-%llu.sock", dir,
		             (unsigned long long)r->pair) >= (int)sizeof u->sun_path) {
			snprintf(err, len, "%s: path too long for a Unix socket", dir);
			close(fd);
			return -1;
		}
		unlink(u->sun_path);
		old = umask(077);
		b = bind(fd, (struct sockaddr *)u, sizeof *u);
		umask(old);
		if (b < 0) {
			snprintf(err, len, "%s: bind: %s", u->sun_path, strerror(errno));
			close(fd);
			return -1;
		}
		*alen = sizeof *u;
	} else {
		/* where this member was reached before, on a new port; else any
		 * address of this host (another host or network namespace) */
		memcpy(a, &r->local, r->llen);
		if (r->family == AF_INET)
			((struct sockaddr_in *)a)->sin_port = 0;
		else
			((struct sockaddr_in6 *)a)->sin6_port = 0;
		if (bind(fd, (struct sockaddr *)a, r->llen) < 0) {
			memset(a, 0, sizeof *a);
			a->ss_family = (sa_family_t)r->family;
			if (bind(fd, (struct sockaddr *)a, r->llen) < 0) {
				snprintf(err, len, "bind: %s", strerror(errno));
				close(fd);
				return -1;
			}
		}
		l = sizeof *a;
		getsockname(fd, (struct sockaddr *)a, &l);
		*alen = l;
		if (any_address(a))
			publish_host_address(a);
	}
	if (listen(fd, 4) < 0) {
		snprintf(err, len, "listen: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return procstate_move_lower_fd(fd);
}

static int io_all(int fd, void *p, size_t n, int out, double deadline)
{
	char *c = p;
	while (n) {
		struct pollfd q = {fd, out ? POLLOUT : POLLIN, 0};
		double left = deadline - now_s();
		ssize_t k;
		if (left <= 0)
			return -2;
		if (poll(&q, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		k = out ? send(fd, c, n, MSG_NOSIGNAL | MSG_DONTWAIT) : recv(fd, c, n, MSG_DONTWAIT);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

int jsock_accept(int lfd, const uint8_t cookie[16], double deadline, char *err, size_t len)
{
	for (;;) {
		struct pollfd q = {lfd, POLLIN, 0};
		double left = deadline - now_s();
		uint8_t got[16];
		int c;

		if (left <= 0) {
			snprintf(err, len, "the peer did not connect in time");
			return -1;
		}
		if (poll(&q, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		/* the peer proves it is the member told where to connect */
		if (io_all(c, got, sizeof got, 0, deadline) || memcmp(got, cookie, sizeof got)) {
			close(c);
			continue;
		}
		return procstate_move_lower_fd(c);
	}
}

int jsock_connect(const struct sockaddr_storage *a, uint32_t alen, const uint8_t cookie[16],
                  double deadline, char *err, size_t len)
{
	char s[160];
	for (;;) {
		int c = socket(a->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c < 0) {
			snprintf(err, len, "socket: %s", strerror(errno));
			return -1;
		}
		if (connect(c, (const struct sockaddr *)a, alen) == 0) {
			if (io_all(c, (void *)cookie, 16, 1, deadline)) {
				close(c);
				snprintf(err, len, "%s: the peer closed the connection",
				         addr_str(a, alen, s, sizeof s));
				return -1;
			}
			return procstate_move_lower_fd(c);
		}
		close(c);
		if (now_s() > deadline) {
			snprintf(err, len, "cannot reach the peer at %s: %s",
			         addr_str(a, alen, s, sizeof s), strerror(errno));
			return -1;
		}
		{
			struct timespec ms = {0, 20000000};
			nanosleep(&ms, NULL);
		}
	}
}

int jsock_install(int c, const struct ck_fd *f, const struct jsock_rec *r, char *err, size_t len)
{
	set_opts(c, r);
	if (r->sndbuf)
		setsockopt(c, SOL_SOCKET, SO_SNDBUF, &r->sndbuf, sizeof r->sndbuf);
	if (r->rcvbuf)
		setsockopt(c, SOL_SOCKET, SO_RCVBUF, &r->rcvbuf, sizeof r->rcvbuf);
	/* what the peer had received but not read yet: first, in order (the
	 * program runs only later) */
	if (f->data_len && io_all(c, f->data, f->data_len, 1, now_s() + 30)) {
		snprintf(err, len, "fd %d: cannot send again the %llu bytes in flight at the "
		         "checkpoint", r->fd, (unsigned long long)f->data_len);
		return -1;
	}
	return put_at(c, f, err, len);
}
