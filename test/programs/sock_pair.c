/* sock_pair: two processes exchanging numbered, checksummed records over
 * one stream socket, both ways, for the tests of jobs without MPI (sockets
 * between members, test/e2e/job_sockets.sh). Each step a side sends 3
 * records and reads 2, so records pile up in the connection (bytes in
 * flight at any cut); at the end each reads the rest.
 *
 *   sock_pair server tcp PORTFILE NSTEPS SLEEP_MS   listen on 127.0.0.1, an
 *                                                   ephemeral port, written to PORTFILE
 *   sock_pair client tcp PORTFILE NSTEPS SLEEP_MS   connect to it
 *   sock_pair server|client unix PATH NSTEPS SLEEP_MS
 * SOCK_PAIR_BIND=IP: the server listens there; SOCK_PAIR_HOST=IP: the
 * client connects there (both 127.0.0.1 by default).
 * SOCK_PAIR_KEEP_LISTENER=1: the server keeps its listening socket open.
 *
 * A record: seq (u32), len (u32), len bytes from seq, checksum (u64) of
 * the bytes. A record out of order or damaged: "BAD", exit 1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"

#define PER_STEP_SEND 3
#define PER_STEP_READ 2

static int xfer(int fd, void *p, size_t n, int out)
{
	char *c = p;
	while (n) {
		ssize_t k = out ? write(fd, c, n) : read(fd, c, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		c += k;
		n -= (size_t)k;
	}
	return 0;
}

static uint32_t rec_len(uint32_t seq) { return 200 + (seq * 37) % 700; }

static void fill(uint32_t seq, unsigned char *b, uint32_t len)
{
	uint64_t s = 0x9e3779b97f4a7c15ull ^ seq;
	for (uint32_t i = 0; i < len; i++)
		b[i] = (unsigned char)(xorshift64(&s) >> 24);
}

static int send_rec(int fd, uint32_t seq)
{
	unsigned char b[1024];
	uint32_t hdr[2] = {seq, rec_len(seq)};
	uint64_t sum;

	fill(seq, b, hdr[1]);
	sum = hash_words(7, b, hdr[1]);
	return xfer(fd, hdr, sizeof hdr, 1) || xfer(fd, b, hdr[1], 1) || xfer(fd, &sum, 8, 1);
}

static int recv_rec(int fd, uint32_t want, uint64_t *h)
{
	unsigned char b[1024];
	uint32_t hdr[2];
	uint64_t sum;

	if (xfer(fd, hdr, sizeof hdr, 0) || hdr[1] > sizeof b || xfer(fd, b, hdr[1], 0) ||
	    xfer(fd, &sum, 8, 0))
		return -1;
	if (hdr[0] != want || hdr[1] != rec_len(want) || sum != hash_words(7, b, hdr[1])) {
		printf("BAD record: got seq %u len %u, expected seq %u\n", hdr[0], hdr[1], want);
		return -1;
	}
	*h = mix64(*h, sum ^ want);
	return 0;
}

int main(int argc, char **argv)
{
	int server, unixsock, fd = -1, nsteps, keep;
	long ms;
	uint32_t sent = 0, got = 0;
	uint64_t h = 1;

	if (argc != 6) {
		fprintf(stderr, "usage: sock_pair server|client tcp|unix PORTFILE|PATH NSTEPS SLEEP_MS\n");
		return 2;
	}
	/* SOCK_PAIR_KEEP_LISTENER=1: the server keeps listening (a listening
	 * socket at the checkpoint) */
	keep = getenv("SOCK_PAIR_KEEP_LISTENER") != NULL;
	server = !strcmp(argv[1], "server");
	unixsock = !strcmp(argv[2], "unix");
	nsteps = atoi(argv[4]);
	ms = atol(argv[5]);
	if (unixsock) {
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		snprintf(a.sun_path, sizeof a.sun_path, "%s", argv[3]);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (server) {
			int l = fd;
			unlink(a.sun_path);
			if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) ||
			    (fd = accept(l, NULL, NULL)) < 0)
				return perror("server"), 1;
			if (!keep) {
				close(l);
				unlink(a.sun_path);
			}
		} else {
			while (connect(fd, (struct sockaddr *)&a, sizeof a))
				pace_ms(20);
		}
	} else {
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t al = sizeof a;
		/* SOCK_PAIR_BIND (server), SOCK_PAIR_HOST (client): another address */
		const char *host = getenv(server ? "SOCK_PAIR_BIND" : "SOCK_PAIR_HOST");
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (host && inet_pton(AF_INET, host, &a.sin_addr) != 1)
			return fprintf(stderr, "%s: not an IPv4 address\n", host), 2;
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (server) {
			int l = fd;
			char tmp[4096];
			FILE *f;
			int one = 1;
			setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
			if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) ||
			    getsockname(l, (struct sockaddr *)&a, &al))
				return perror("server"), 1;
			snprintf(tmp, sizeof tmp, "%s.tmp", argv[3]);
			if (!(f = fopen(tmp, "w")))
				return perror(tmp), 1;
			fprintf(f, "%u\n", ntohs(a.sin_port));
			fclose(f);
			rename(tmp, argv[3]);
			if ((fd = accept(l, NULL, NULL)) < 0)
				return perror("accept"), 1;
			if (!keep)
				close(l);
		} else {
			FILE *f;
			unsigned port = 0;
			while (!(f = fopen(argv[3], "r")))
				pace_ms(20);
			if (fscanf(f, "%u", &port) != 1)
				return 1;
			fclose(f);
			a.sin_port = htons((uint16_t)port);
			while (connect(fd, (struct sockaddr *)&a, sizeof a)) {
				close(fd);
				fd = socket(AF_INET, SOCK_STREAM, 0);
				pace_ms(20);
			}
		}
	}
	for (int i = 1; i <= nsteps; i++) {
		for (int k = 0; k < PER_STEP_SEND; k++)
			if (send_rec(fd, sent++))
				return printf("%d send failed\n", i), 1;
		for (int k = 0; k < PER_STEP_READ; k++)
			if (recv_rec(fd, got++, &h))
				return printf("%d receive failed\n", i), 1;
		printf("%d sent=%u received=%u h=%016llx\n", i, sent, got, (unsigned long long)h);
		fflush(stdout);
		pace_ms(ms);
	}
	/* the peer sent as many as this side did */
	while (got < sent)
		if (recv_rec(fd, got++, &h))
			return printf("%d receive failed\n", nsteps + 1), 1;
	hold_before_final();
	printf("%d final checksum=%016llx received=%u\n", nsteps + 1, (unsigned long long)h, got);
	return 0;
}
