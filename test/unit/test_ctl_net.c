/* The control network (core/ctl_net.c) between real processes on this
 * host: each test forks the members, each checks what it gets and says
 * so by its exit status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/ctl_net.h"

#define N 5

typedef int (*member_fn)(int me);

/* a failed check in a member: its exit status names the line */
#define CHECK(c)                                                                      \
	do {                                                                          \
		if (!(c)) {                                                           \
			fprintf(stderr, "member %d: %s:%d: %s\n", me, __FILE__, __LINE__, #c); \
			return 1;                                                     \
		}                                                                     \
	} while (0)

static char blob[CTLNET_BLOB];
static int strangers, on_other_hosts;
static void connect_strangers(unsigned port, int *fd);

/* N members, each running fn after joining; their exit statuses */
static void run_members(member_fn fn, int *status)
{
	pid_t pid[N];

	int sfd[3] = {-1, -1, -1};

	assert_int_equal(ctlnet_listen(blob, sizeof blob), 0);
	if (on_other_hosts) {
		/* the host name is the fourth word: another host's */
		char tag[32], tok[80], host[256], rest[CTLNET_BLOB];
		unsigned port;
		assert_int_equal(sscanf(blob, "%31s %u %79s %255s %[^\n]", tag, &port, tok, host, rest),
		                 5);
		char nb[4 * CTLNET_BLOB];
		snprintf(nb, sizeof nb, "%s %u %s elsewhere %s", tag, port, tok, rest);
		assert_true(strlen(nb) < sizeof blob);
		memcpy(blob, nb, strlen(nb) + 1);
	}
	if (strangers) {
		unsigned port = 0;
		char tag[32];
		assert_int_equal(sscanf(blob, "%31s %u", tag, &port), 2);
		connect_strangers(port, sfd);
	}
	for (int k = 0; k < N; k++) {
		pid[k] = fork();
		assert_true(pid[k] >= 0);
		if (pid[k] == 0) {
			alarm(30); /* a hang is a failure, not a stuck suite */
			if (ctlnet_join(k, N, blob, NULL))
				_exit(100);
			_exit(fn(k));
		}
	}
	ctlnet_close(); /* the parent's copy of the listener */
	for (int k = 0; k < N; k++) {
		int st = 0;
		assert_int_equal(waitpid(pid[k], &st, 0), pid[k]);
		status[k] = WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
	}
	for (int i = 0; i < 3; i++)
		if (sfd[i] >= 0)
			close(sfd[i]);
}

static void expect_all(member_fn fn, int want)
{
	int st[N];
	run_members(fn, st);
	for (int k = 0; k < N; k++) {
		if (st[k] != want)
			fprintf(stderr, "member %d exited %d, expected %d\n", k, st[k], want);
		assert_int_equal(st[k], want);
	}
}

static int collective_steps(int me);

/* the control thread looks for messages while the main thread takes
 * collective steps (a restart's): each must get whole messages */
static volatile int stop_looking;

static void *look(void *arg)
{
	uint64_t gen;
	int why;
	(void)arg;
	while (!stop_looking)
		if (ctlnet_poll(0, &gen, &why))
			abort(); /* nobody asked */
	return NULL;
}

static int collectives(int me)
{
	pthread_t looker;
	int r;

	CHECK(pthread_create(&looker, NULL, look, NULL) == 0);
	r = collective_steps(me);
	stop_looking = 1;
	pthread_join(looker, NULL);
	return r;
}

static int collective_steps(int me)
{
	char mine[64];
	uint32_t lens[N], len = (uint32_t)(me * 7); /* member 0 sends nothing */
	void *all = NULL;
	int32_t v[2] = {me * 10 - 3, -me};
	uint64_t g[N], one = 1000 + (uint64_t)me;
	size_t off = 0;

	memset(mine, 'a' + me, sizeof mine);
	for (int round = 0; round < 50; round++) {
		CHECK(ctlnet_allgatherv(mine, len, 1, &all, lens) == 0);
		for (int k = 0; k < N; k++) {
			CHECK(lens[k] == (uint32_t)(k * 7));
			for (uint32_t i = 0; i < lens[k]; i++)
				CHECK(((char *)all)[off + i] == 'a' + k);
			off += lens[k];
		}
		free(all);
		off = 0;
	}
	CHECK(ctlnet_allreduce(v, 2, CTLNET_MAX) == 0);
	CHECK(v[0] == (N - 1) * 10 - 3 && v[1] == 0);
	v[0] = me * 10 - 3;
	v[1] = -me;
	CHECK(ctlnet_allreduce(v, 2, CTLNET_MIN) == 0);
	CHECK(v[0] == -3 && v[1] == -(N - 1));
	CHECK(ctlnet_allgather(&one, sizeof one, g) == 0);
	for (int k = 0; k < N; k++)
		CHECK(g[k] == 1000 + (uint64_t)k);
	/* gather to member 0 only */
	CHECK(ctlnet_gatherv(mine, len, 1, &all, lens) == 0);
	if (me == 0) {
		for (int k = 0; k < N; off += lens[k], k++) {
			CHECK(lens[k] == (uint32_t)(k * 7));
			for (uint32_t i = 0; i < lens[k]; i++)
				CHECK(((char *)all)[off + i] == 'a' + k);
		}
	}
	free(all);
	/* member 0 gives each member its own part, then one part to all */
	{
		char part[N][16];
		const void *parts[N];
		uint32_t plen[N], got_len = 0;
		void *got = NULL;
		char b[16] = "";
		for (int k = 0; k < N; k++) {
			snprintf(part[k], sizeof part[k], "to %d", k);
			parts[k] = part[k];
			plen[k] = (uint32_t)strlen(part[k]) + 1;
		}
		CHECK(ctlnet_scatterv(me ? NULL : parts, me ? NULL : plen, 1, &got, &got_len) == 0);
		snprintf(b, sizeof b, "to %d", me);
		CHECK(got_len == strlen(b) + 1 && !strcmp(got, b));
		free(got);
		if (me == 0)
			snprintf(b, sizeof b, "from zero");
		else
			memset(b, 0, sizeof b);
		CHECK(ctlnet_bcast(b, sizeof b, 1) == 0);
		CHECK(!strcmp(b, "from zero"));
		/* member 0 says no: nobody gets it */
		CHECK(ctlnet_bcast(b, sizeof b, me != 0) == -1);
	}
	return 0;
}

static void collectives_answer_every_member(void **state)
{
	(void)state;
	expect_all(collectives, 0);
}

/* requests reach member 0 (also one sent just before a collective, and
 * one older than the latest begin, which is dropped), begins reach every
 * member */
static int request_and_begin(int me)
{
	uint64_t gen = 0;
	int why = 0, ok = 1;

	if (me == 1)
		CHECK(ctlnet_request(7, 3) == 0);
	if (me == 2)
		CHECK(ctlnet_request(8, 1) == 0); /* before generation 3 began: stale */
	if (me == 3)
		CHECK(ctlnet_request(9, 3) == 0);
	/* member 0 meets the requests inside the collective first */
	CHECK(ctlnet_allreduce((int32_t *)&ok, 1, CTLNET_MIN) == 0 && ok == 1);
	if (me == 0) {
		int got7 = 0, got9 = 0;
		while (ctlnet_poll(3, &gen, &why)) {
			CHECK(gen == 0);
			CHECK(why == 7 || why == 9);
			got7 += why == 7;
			got9 += why == 9;
		}
		CHECK(got7 == 1 && got9 == 1);
		CHECK(ctlnet_begin(4, 5) == 0);
	} else {
		for (int i = 0; i < 2000 && !ctlnet_poll(0, &gen, &why); i++)
			usleep(1000);
		CHECK(gen == 4 && why == 5);
		CHECK(!ctlnet_poll(0, &gen, &why));
	}
	CHECK(ctlnet_allreduce((int32_t *)&ok, 1, CTLNET_MIN) == 0 && ok == 1);
	return 0;
}

static void requests_and_begins_arrive(void **state)
{
	(void)state;
	expect_all(request_and_begin, 0);
}

/* one member says no: the step fails on every member, and the next works */
static int one_says_no(int me)
{
	uint32_t lens[N];
	void *all = NULL;
	char c = 'x';
	CHECK(ctlnet_allgatherv(&c, 1, me != 3, &all, lens) == -1);
	CHECK(ctlnet_allgatherv(&c, 1, 1, &all, lens) == 0);
	free(all);
	return 0;
}

static void a_failed_part_fails_the_step_everywhere(void **state)
{
	(void)state;
	expect_all(one_says_no, 0);
}

/* a member that dies: every later step fails on the others, none waits */
static int one_dies(int me)
{
	int32_t v = 1;
	CHECK(ctlnet_allreduce(&v, 1, CTLNET_MIN) == 0);
	if (me == 2)
		_exit(0);
	CHECK(ctlnet_allreduce(&v, 1, CTLNET_MIN) == -1);
	CHECK(ctlnet_allreduce(&v, 1, CTLNET_MIN) == -1);
	return 0;
}

static void a_lost_member_fails_the_steps_after(void **state)
{
	(void)state;
	expect_all(one_dies, 0);
}

/* member 0 dies: the others fail their step rather than wait */
static int zero_dies(int me)
{
	int32_t v = 1;
	if (me == 0)
		_exit(0);
	CHECK(ctlnet_allreduce(&v, 1, CTLNET_MIN) == -1);
	return 0;
}

static void a_lost_member_zero_fails_the_step(void **state)
{
	(void)state;
	expect_all(zero_dies, 0);
}

/* Strangers that connect before the members (one claims member 1's place
 * with a wrong secret, one sends junk, one closes at once) do not take a
 * member's place: run_members connects them to the listener first. */
static void connect_strangers(unsigned port, int *fd)
{
	struct {
		uint32_t type, member;
		uint64_t seq, gen;
		int64_t val;
		uint32_t len, pad;
		unsigned char secret[16];
	} hello = {.type = 0x43544c01, .member = 1, .len = 16};
	static const char junk[64] = "GET / HTTP/1.0\r\n\r\n";

	for (int i = 0; i < 3; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
		fd[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_int_equal(connect(fd[i], (struct sockaddr *)&sa, sizeof sa), 0);
	}
	assert_int_equal(write(fd[0], &hello, sizeof hello), (ssize_t)sizeof hello);
	assert_int_equal(write(fd[1], junk, sizeof junk), (ssize_t)sizeof junk);
	close(fd[2]);
	fd[2] = -1;
}

static void strangers_are_refused(void **state)
{
	(void)state;
	strangers = 1;
	expect_all(collectives, 0);
	strangers = 0;
}

/* Members on other hosts reach member 0 by the addresses it offers
 * (CKPTMPI_CTL_ADDR: here 127.0.0.2, the blob's sole entry), not the
 * loopback they try first on its host. */
static void members_elsewhere_use_the_offered_address(void **state)
{
	(void)state;
	setenv("CKPTMPI_CTL_ADDR", "127.0.0.2", 1);
	on_other_hosts = 1;
	expect_all(collectives, 0);
	on_other_hosts = 0;
	unsetenv("CKPTMPI_CTL_ADDR");
	assert_non_null(strstr(blob, " elsewhere 127.0.0.2"));
	assert_null(strstr(blob, "127.0.0.1"));
}

/* A member that cannot reach member 0 says so within the time limit. */
static void an_unreachable_member_zero_is_said(void **state)
{
	char bad[3 * CTLNET_BLOB];
	unsigned port = 0;
	char tag[32], rest[CTLNET_BLOB];
	(void)state;

	assert_int_equal(ctlnet_listen(blob, sizeof blob), 0);
	assert_int_equal(sscanf(blob, "%31s %u %[^\n]", tag, &port, rest), 3);
	ctlnet_close(); /* nobody listens there any more */
	snprintf(bad, sizeof bad, "%s %u %s", tag, port, rest);
	setenv("CKPTMPI_CTL_TIMEOUT", "1", 1);
	assert_int_equal(ctlnet_join(1, 2, bad, NULL), -1);
	assert_int_equal(ctlnet_join(1, 2, "not a blob", NULL), -1);
	unsetenv("CKPTMPI_CTL_TIMEOUT");
	assert_false(ctlnet_up());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(collectives_answer_every_member),
		cmocka_unit_test(requests_and_begins_arrive),
		cmocka_unit_test(a_failed_part_fails_the_step_everywhere),
		cmocka_unit_test(a_lost_member_fails_the_steps_after),
		cmocka_unit_test(a_lost_member_zero_fails_the_step),
		cmocka_unit_test(strangers_are_refused),
		cmocka_unit_test(members_elsewhere_use_the_offered_address),
		cmocka_unit_test(an_unreachable_member_zero_is_said),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
