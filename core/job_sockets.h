/* Sockets between members of a job without MPI (docs/jobs.md): found and
 * their receive queues read (peeked: the program keeps them) at the cut,
 * described in the image as CK_FD_SOCKET entries, connected again at a
 * restart. The exchanges between the members are core/job_group.c's. */
#ifndef CKPTMPI_CORE_JOB_SOCKETS_H
#define CKPTMPI_CORE_JOB_SOCKETS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/image.h"

/* What the image keeps of one socket (hex in ck_fd.path). */
struct jsock_rec {
	int32_t fd, family, listening, role; /* role: 0 listens at restart, 1 connects */
	int32_t peer_member, nodelay;
	uint64_t pair;                       /* the connection's number in the generation */
	int32_t keepalive, reuseaddr, rcvbuf, sndbuf;
	uint32_t llen, rlen;
	struct sockaddr_storage local, remote;
};

/* One socket of the program at the cut, as sent to member 0. */
struct jsock_scan {
	struct jsock_rec r;
	uint64_t ino, peer_ino;              /* Unix: the two ends' inodes */
	uint32_t inq_len, pad;               /* bytes in its receive queue */
};

struct jsock {
	struct jsock_scan s;
	uint8_t *inq;                        /* peeked receive queue */
	uint8_t *resend;                     /* the peer's queue: sent again at restart */
	uint32_t resend_len;
	int matched;
};

/* The program's stream sockets (TCP, Unix), their peers' sent bytes all
 * arrived (TCP: nothing left unacknowledged, within a bounded wait) and
 * their receive queues peeked. Other sockets are left to procstate. */
int jsock_scan(struct jsock **out, size_t *n, char *err, size_t len);
/* The receive queues, peeked: once every member's sends have arrived. */
int jsock_peek_all(struct jsock *v, size_t n, char *err, size_t len);
void jsock_free(struct jsock *s, size_t n);
/* "fd 5 (TCP 127.0.0.1:40000 -> 127.0.0.1:5555)" */
const char *jsock_name(const struct jsock_scan *s, char *buf, size_t len);
/* the two ends of one connection */
int jsock_ends_match(const struct jsock_scan *a, const struct jsock_scan *b);

/* The table procstate's socket hook describes from (NULL: none). */
void jsock_set_table(struct jsock *s, size_t n);

/* Restart: the socket an image entry describes. */
int jsock_decode(const struct ck_fd *f, struct jsock_rec *r);
/* The program's listening socket, on its port again, at its fd. */
int jsock_relisten(const struct ck_fd *f, const struct jsock_rec *r, char *err, size_t len);
/* A lower-half listener for connection r (listen side): the address the
 * peer connects to. Returns the fd. */
int jsock_listen_for(const struct jsock_rec *r, const char *dir, struct sockaddr_storage *a,
                     uint32_t *alen, char *err, size_t len);
int jsock_accept(int lfd, const uint8_t cookie[16], double deadline, char *err, size_t len);
int jsock_connect(const struct sockaddr_storage *a, uint32_t alen, const uint8_t cookie[16],
                  double deadline, char *err, size_t len);
/* Put connection `c` at the image's fd with its flags and options, and
 * send the bytes the peer had not read yet. */
int jsock_install(int c, const struct ck_fd *f, const struct jsock_rec *r, char *err, size_t len);

#endif
