/* `ckptmpi checkpoint DIR` and `ckptmpi status DIR`: requests on the
 * job's control socket ("checkpoint", "status"; core/control.c answers,
 * the status as "key value" lines, also while it writes a checkpoint). */
#include "tools/job_client.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/control_socket.h"
#include "storage/container.h"
#include "tools/cli.h"

/* Connect to the job's control socket DIR/NAME, if it is ours: this
 * user's own socket (not followed), served by a process of this user
 * (SO_PEERCRED; the name alone proves nothing in a shared directory).
 * Returns the connected fd, -1 if there is nothing to talk to there,
 * -2 if it must not be trusted (a message said why). */
static int connect_own(const char *dir, const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct ucred cred;
	socklen_t len = sizeof cred;
	struct stat st;
	int fd;

	if (snprintf(sa.sun_path, sizeof sa.sun_path, "%s/%s", dir, name) >= (int)sizeof sa.sun_path)
		return -1;
	if (lstat(sa.sun_path, &st) < 0)
		return -1;
	if (!S_ISSOCK(st.st_mode) || st.st_uid != getuid()) {
		die("%s: %s of uid %u, not your job's socket: not trusted", sa.sun_path,
		    S_ISSOCK(st.st_mode) ? "a socket" : S_ISLNK(st.st_mode) ? "a symbolic link"
		                                                            : "not a socket",
		    (unsigned)st.st_uid);
		return -2;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		die("socket: %s", strerror(errno));
		return -2;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		die("%s: SO_PEERCRED: %s", sa.sun_path, strerror(errno));
		close(fd);
		return -2;
	}
	if (cred.uid != getuid()) {
		die("%s: served by uid %u (pid %d), not by you: not trusted", sa.sun_path,
		    (unsigned)cred.uid, (int)cred.pid);
		close(fd);
		return -2;
	}
	return fd;
}

/* DIR/control.sock, or the name the job took when that one was not
 * usable (see core/control_socket.h); with `members`, a member's own
 * socket of a job without MPI too. */
static int connect_job(const char *dir, int members)
{
	struct dirent *de;
	DIR *d;
	int fd = connect_own(dir, CONTROL_SOCKET_NAME);
	size_t lp = strlen(CONTROL_SOCKET_ALT_PREFIX), ls = strlen(CONTROL_SOCKET_ALT_SUFFIX);

	if (fd >= 0)
		return fd;
	if (!(d = opendir(dir))) {
		die("%s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)))
		if (strlen(de->d_name) == lp + CONTROL_SOCKET_TOKEN + ls &&
		    !strncmp(de->d_name, CONTROL_SOCKET_ALT_PREFIX, lp) &&
		    !strcmp(de->d_name + lp + CONTROL_SOCKET_TOKEN, CONTROL_SOCKET_ALT_SUFFIX) &&
		    (fd = connect_own(dir, de->d_name)) >= 0)
			break;
	closedir(d);
	if (fd >= 0 || !members)
		return fd >= 0 ? fd : -1;
	/* a job without MPI whose member 0 is not reachable from here (another
	 * host): any member's own socket (core/job_group.c) passes it on */
	if (!(d = opendir(dir)))
		return -1;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, ".control-member-", 16) &&
		    strlen(de->d_name) > 21 && !strcmp(de->d_name + strlen(de->d_name) - 5, ".sock") &&
		    (fd = connect_own(dir, de->d_name)) >= 0)
			break;
	closedir(d);
	return fd >= 0 ? fd : -1;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---------------------------------------------------------------- status */

struct job_status {
	long long pid, ranks, started, interval, keep, generation, restored, since;
	unsigned long long done, total;
	char host[256], program[4096], flavour[32], checkpoint[32];
};

static void parse_status(char *text, struct job_status *s)
{
	memset(s, 0, sizeof *s);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *v = strchr(line, ' ');
		if (!v)
			continue;
		*v++ = 0;
#define NUM(k) else if (!strcmp(line, #k)) s->k = strtoll(v, NULL, 10);
#define UNUM(k) else if (!strcmp(line, #k)) s->k = strtoull(v, NULL, 10);
#define STR(k) else if (!strcmp(line, #k)) snprintf(s->k, sizeof s->k, "%s", v);
		if (0) {
		}
		NUM(pid) NUM(ranks) NUM(started) NUM(interval) NUM(keep) NUM(generation)
		NUM(restored) NUM(since) UNUM(done) UNUM(total) STR(host) STR(program)
		STR(flavour) STR(checkpoint)
#undef NUM
#undef UNUM
#undef STR
	}
}

/* Everything the peer sends until it closes, or until `timeout_ms`
 * passes without a word (then -1). */
static ssize_t read_reply(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t got = 0;

	while (got < len - 1) {
		struct pollfd p = {fd, POLLIN, 0};
		int r = poll(&p, 1, timeout_ms);
		ssize_t n;
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		n = read(fd, buf + got, len - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	buf[got] = 0;
	return (ssize_t)got;
}

/* Ask the job; 0 with *s filled, 1 when it is too busy to answer within
 * timeout_ms (a checkpoint that is stopping the program), -1 when no job
 * of ours runs there (or it ended meanwhile). */
static int query_status(const char *dir, struct job_status *s, int timeout_ms)
{
	char buf[8192];
	int fd = connect_job(dir, 0);
	ssize_t n;

	if (fd < 0)
		return -1;
	if (write(fd, "status\n", 7) != 7) {
		close(fd);
		return -1;
	}
	n = read_reply(fd, buf, sizeof buf, timeout_ms);
	close(fd);
	if (n < 0)
		return 1;
	if (!strstr(buf, "pid "))
		return -1;
	parse_status(buf, s);
	return 0;
}

/* "512 MiB" */
static void format_bytes(char *out, size_t len, unsigned long long b)
{
	if (b >= 10ull << 30)
		snprintf(out, len, "%.1f GiB", (double)b / (1ull << 30));
	else if (b >= 10ull << 20)
		snprintf(out, len, "%llu MiB", b >> 20);
	else if (b >= 10ull << 10)
		snprintf(out, len, "%llu KiB", b >> 10);
	else
		snprintf(out, len, "%llu bytes", b);
}

/* The newest generation of ours in DIR: its number, time and reason. */
static int newest_generation(const char *dir, struct ck_generation_info *info)
{
	struct generation_entry *g;
	size_t n;
	int rc = -1;

	if (generations_list(dir, &g, &n))
		return -1;
	for (size_t i = n; rc && i-- > 0;) {
		struct container_reader *r;
		if (g[i].foreign || !(r = container_open(g[i].path)))
			continue;
		rc = container_info(r, info);
		container_close(r);
	}
	free(g);
	return rc;
}

static void print_status_json(const char *dir, int running, int busy, const struct job_status *s,
                              const struct ck_generation_info *last, int have_last)
{
	char when[64];

	printf("{\"dir\": ");
	json_string(stdout, dir);
	printf(", \"running\": %s", running ? "true" : "false");
	if (running && !busy) {
		printf(", \"pid\": %lld, \"host\": ", s->pid);
		json_string(stdout, s->host);
		printf(", \"program\": ");
		json_string(stdout, s->program);
		printf(", \"mpi\": ");
		json_string(stdout, s->flavour);
		format_time_iso(when, sizeof when, s->started);
		printf(", \"ranks\": %lld, \"started\": \"%s\", \"interval\": %lld, "
		       "\"restored_from\": %lld, \"checkpoint\": ",
		       s->ranks, when, s->interval, s->restored);
		json_string(stdout, s->checkpoint);
		if (strcmp(s->checkpoint, "idle"))
			printf(", \"checkpoint_bytes_done\": %llu, \"checkpoint_bytes_total\": %llu",
			       s->done, s->total);
	} else if (busy) {
		printf(", \"checkpoint\": \"stopping\"");
	}
	if (have_last) {
		format_time_iso(when, sizeof when, (int64_t)last->created_unix);
		printf(", \"last_generation\": {\"generation\": %" PRIu64 ", \"created\": \"%s\", "
		       "\"reason\": ", last->generation, when);
		json_string(stdout, last->reason);
		printf("}");
	} else {
		printf(", \"last_generation\": null");
	}
	printf("}\n");
}

/* The line of a checkpoint under way: phase, bytes, rate, time left. */
static void describe_progress(char *out, size_t len, const struct job_status *s, double rate)
{
	char done[32], total[32];
	long long age = s->since ? (long long)time(NULL) - s->since : 0;

	if (!strcmp(s->checkpoint, "stopping") || !s->total) {
		snprintf(out, len, "stopping the program (%lld s)", age);
		return;
	}
	format_bytes(done, sizeof done, s->done);
	format_bytes(total, sizeof total, s->total);
	if (rate > 0 && s->done < s->total)
		snprintf(out, len, "writing: %s of %s (%d%%), %.0f MiB/s, about %.0f s left", done,
		         total, (int)(100.0 * (double)s->done / (double)s->total), rate / 1048576.0,
		         (double)(s->total - s->done) / rate);
	else
		snprintf(out, len, "writing: %s of %s (%d%%)", done, total,
		         (int)(100.0 * (double)s->done / (double)s->total));
}

static void status_help(FILE *f)
{
	fprintf(f,
	        "usage: ckptmpi status DIR [--json]\n"
	        "\n"
	        "Whether a job runs with DIR and what it is doing: its pid (rank 0's, or\n"
	        "member 0's) and host, the number of ranks, the program, the generation it\n"
	        "was restarted from, a checkpoint under way (how much is written, rate, time\n"
	        "left), and the newest generation in DIR.\n"
	        "\n"
	        "  --json        one JSON object, for scripts\n"
	        "  -h, --help    this help\n"
	        "\n"
	        "Exit status: 0 a job runs, 4 none runs (the newest generation is still\n"
	        "shown), 2 bad command line or DIR.\n");
}

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
	struct job_status s;
	struct ck_generation_info last;
	const char *dir;
	int json = 0, c, q, have_last;
	char when[64];

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'j')
			json = 1;
		else if (c == 'h')
			return status_help(stdout), CLI_OK;
		else
			return bad_option("status", argv, optopt, c == ':');
	}
	if (argc - optind != 1)
		return die("status: expected one DIR (ckptmpi status --help)");
	dir = argv[optind];
	if (check_dir(dir))
		return CLI_USAGE;
	q = query_status(dir, &s, 2000);
	have_last = newest_generation(dir, &last) == 0;
	if (json) {
		print_status_json(dir, q >= 0, q == 1, &s, &last, have_last);
		return q >= 0 ? CLI_OK : CLI_NOT_RUNNING;
	}
	if (q < 0) {
		printf("%s: no job running\n", dir);
	} else if (q == 1) {
		printf("%s: running, busy with a checkpoint (stopping the program: no answer yet)\n",
		       dir);
	} else {
		char line[256];
		format_time(when, sizeof when, s.started);
		printf("%s: running\n", dir);
		printf("  process:     pid %lld on %s", s.pid, s.host);
		if (strcmp(s.flavour, "none"))
			printf(", %s 0 of %lld (%s)", strcmp(s.flavour, "job") ? "rank" : "member", s.ranks,
			       strcmp(s.flavour, "job") ? s.flavour : "a job without MPI");
		printf("\n  program:     %s\n", s.program);
		printf("  since:       %s", when);
		if (s.restored)
			printf(", restarted from generation %lld", s.restored);
		printf("\n  checkpoints: ");
		if (s.interval)
			printf("every %lld s, ", s.interval);
		printf("%lld kept\n", s.keep);
		if (strcmp(s.checkpoint, "idle")) {
			describe_progress(line, sizeof line, &s,
			                  s.since && time(NULL) > s.since
			                      ? (double)s.done / (double)(time(NULL) - s.since)
			                      : 0);
			printf("  checkpoint:  under way, %s\n", line);
		} else {
			printf("  checkpoint:  none under way\n");
		}
	}
	if (have_last) {
		format_time(when, sizeof when, (int64_t)last.created_unix);
		printf("  last generation: %" PRIu64 " (%s, %s)\n", last.generation, when, last.reason);
	} else {
		printf("  last generation: none\n");
	}
	return q >= 0 ? CLI_OK : CLI_NOT_RUNNING;
}

/* ------------------------------------------------------------ checkpoint */

static void checkpoint_help(FILE *f)
{
	fprintf(f,
	        "usage: ckptmpi checkpoint DIR [--progress | --no-progress]\n"
	        "\n"
	        "Checkpoint the job running with DIR now; returns once the generation is\n"
	        "committed and prints `generation N`. Requests that arrive during a\n"
	        "checkpoint are served by it. The job runs on.\n"
	        "\n"
	        "  --progress     show how far the write has got (bytes, rate, time left)\n"
	        "                 on stderr; the default when stderr is a terminal\n"
	        "  --no-progress  never show it\n"
	        "  -h, --help     this help\n"
	        "\n"
	        "The same by signal: kill -USR1 PID (CKPTMPI_SIGNAL); kill -TERM PID checkpoints\n"
	        "and then ends the job (CKPTMPI_TERM=exit: ends it at once).\n"
	        "\n"
	        "Exit status: 0 committed, 1 the checkpoint failed or was refused (the job\n"
	        "runs on, the previous generations stay), 4 no job of yours runs with DIR,\n"
	        "2 bad command line.\n");
}

/* While the checkpoint on `fd` runs: its progress from status requests
 * on other connections, on one line (a terminal) or a line per change. */
static ssize_t wait_with_progress(const char *dir, int fd, char *reply, size_t len, int tty)
{
	double next = now_s() + 0.2, t0 = 0;
	unsigned long long d0 = 0, last_done = ~0ull;
	int shown = 0;
	ssize_t n;

	for (;;) {
		struct pollfd p = {fd, POLLIN, 0};
		struct job_status s;
		int wait_ms = (int)((next - now_s()) * 1000), r;

		r = poll(&p, 1, wait_ms > 0 ? wait_ms : 0);
		if (r < 0 && errno != EINTR)
			break;
		if (r > 0)
			break;
		if (now_s() < next)
			continue;
		/* the job answers between two steps of its write */
		if (query_status(dir, &s, 1000) == 0 && strcmp(s.checkpoint, "idle") &&
		    (s.done != last_done || tty)) {
			char line[256];
			double rate = 0;
			if (s.total && !t0) {
				t0 = now_s();
				d0 = s.done;
			} else if (t0 && now_s() > t0 + 0.2) {
				rate = (double)(s.done - d0) / (now_s() - t0);
			}
			describe_progress(line, sizeof line, &s, rate);
			if (tty)
				fprintf(stderr, "\r\033[Kckptmpi: %s: %s", dir, line);
			else
				fprintf(stderr, "ckptmpi: %s: %s\n", dir, line);
			shown = 1;
			last_done = s.done;
		}
		next = now_s() + 0.5;
	}
	if (shown && tty)
		fputs("\r\033[K", stderr);
	n = read_reply(fd, reply, len, -1);
	return n < 0 ? 0 : n;
}

int cmd_checkpoint(int argc, char **argv)
{
	static const struct option opts[] = {{"progress", no_argument, NULL, 'p'},
	                                     {"no-progress", no_argument, NULL, 'n'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	char reply[1200];
	const char *dir;
	ssize_t got;
	int fd, c, progress = isatty(2);

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'p')
			progress = 1;
		else if (c == 'n')
			progress = 0;
		else if (c == 'h')
			return checkpoint_help(stdout), CLI_OK;
		else
			return bad_option("checkpoint", argv, optopt, c == ':');
	}
	if (argc - optind != 1)
		return die("checkpoint: expected one DIR (ckptmpi checkpoint --help)");
	dir = argv[optind];
	if (check_dir(dir))
		return CLI_USAGE;
	if ((fd = connect_job(dir, 1)) < 0)
		return fail(CLI_NOT_RUNNING, "%s: no job of yours is running with this directory", dir);
	if (write(fd, "checkpoint\n", 11) != 11)
		return fail(CLI_FAILED, "%s: cannot talk to the job: %s", dir, strerror(errno));
	if (progress)
		got = wait_with_progress(dir, fd, reply, sizeof reply, isatty(2));
	else
		got = read_reply(fd, reply, sizeof reply, -1);
	close(fd);
	if (got > 0 && !strncmp(reply, "ok ", 3)) {
		printf("generation %s", reply + 3);
		return CLI_OK;
	}
	if (got <= 0)
		return fail(CLI_FAILED, "%s: the job ended before the checkpoint was committed", dir);
	reply[strcspn(reply, "\n")] = 0;
	return fail(CLI_FAILED, "%s: %s", dir, !strncmp(reply, "error: ", 7) ? reply + 7 : reply);
}
