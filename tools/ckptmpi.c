/* ckptmpi: the user's command. run/restart hand over to the runtime;
 * checkpoint talks to a running job; ls/verify read containers. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "core/control_socket.h"
#include "core/lowmem.h"
#include "storage/container.h"
#include "tools/cli.h"
#include "tools/debug.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: ckptmpi run --dir DIR [--interval SECONDS] [--job-size N [--member K]] -- PROGRAM [ARGS...]\n"
	        "       ckptmpi run --no-checkpoint -- PROGRAM [ARGS...]\n"
	        "       ckptmpi checkpoint DIR\n"
	        "       ckptmpi restart DIR [--generation N] [--interval SECONDS] [--member K]\n"
	        "       ckptmpi ls DIR\n"
	        "       ckptmpi verify DIR [--generation N]\n"
	        "       ckptmpi debug [--dir DIR] [GDB-OPTIONS...] -- PROGRAM [ARGS...]\n"
	        "       ckptmpi debug --restart DIR [--generation N] [--in-place] [GDB-OPTIONS...]\n"
	        "       ckptmpi bisect DIR (--expr 'C EXPRESSION' | --run 'SHELL COMMAND') [OPTIONS]\n");
}


/* The verbs library (libckptmpi-verbs.so) for the upper half: next to the
 * tool in the build tree (bin/../lib) or installed (BINDIR/../LIBDIR);
 * CKPTMPI_VERBS_LIB names it, CKPTMPI_VERBS=off leaves it out. */
static int find_verbs_lib(char *out, size_t len)
{
	const char *env = getenv("CKPTMPI_VERBS_LIB"), *off = getenv("CKPTMPI_VERBS");
	char dir[PATH_MAX / 2];

	if (off && (!strcmp(off, "off") || !strcmp(off, "0") || !strcmp(off, "no")))
		return -1;
	if (env && *env) {
		snprintf(out, len, "%s", env);
		return access(out, R_OK);
	}
	if (self_dir(dir, sizeof dir))
		return -1;
	snprintf(out, len, "%s/../lib/libckptmpi-verbs.so", dir);
	if (!access(out, R_OK))
		return 0;
	snprintf(out, len, "%s/%s/libckptmpi-verbs.so", dir, CKPTMPI_BIN_TO_LIBDIR);
	return access(out, R_OK);
}

/* VAR=lib[:VAR's value] */
static void preload_prepend(const char *var, const char *lib)
{
	const char *old = getenv(var);
	char *v;
	if (old && *old) {
		if (asprintf(&v, "%s:%s", lib, old) < 0)
			return;
		setenv(var, v, 1);
		free(v);
	} else {
		setenv(var, lib, 1);
	}
}

static int exec_runtime(char **args)
{
	char rt[PATH_MAX];
	int p;

	if (find_runtime(rt, sizeof rt))
		return die("cannot find ckptmpi-runtime next to ckptmpi (set CKPTMPI_RUNTIME)");
	/* the runtime's layout must be the same in every run */
	p = personality(0xffffffff);
	if (p >= 0)
		personality((unsigned long)p | ADDR_NO_RANDOMIZE);
	args[0] = rt;
	execv(rt, args);
	return die("%s: %s", rt, strerror(errno));
}

static int parse_uint(const char *s, const char *what, unsigned long long *out)
{
	char *end;
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (errno || *end || !*s) {
		die("%s: not a number: %s", what, s);
		return -1;
	}
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	const char *dir = NULL, *interval = NULL, *job_size = NULL, *member = NULL;
	int i, no_ckpt = 0;
	unsigned long long v;
	char verbs[PATH_MAX];

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "--no-checkpoint")) {
			no_ckpt = 1;
		} else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(argv[i], "--interval") && i + 1 < argc) {
			interval = argv[++i];
			if (parse_uint(interval, "--interval", &v))
				return 2;
		} else if (!strcmp(argv[i], "--job-size") && i + 1 < argc) {
			job_size = argv[++i];
			if (parse_uint(job_size, "--job-size", &v))
				return 2;
			if (v < 1 || v > 256)
				return die("--job-size %s: a job has 1 to 256 members", job_size);
		} else if (!strcmp(argv[i], "--member") && i + 1 < argc) {
			member = argv[++i];
			if (parse_uint(member, "--member", &v))
				return 2;
		} else if (argv[i][0] == '-') {
			usage(stderr);
			return 2;
		} else {
			break;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return die("run: no PROGRAM given");
	}
	if (no_ckpt) {
		/* the program itself, no runtime: only the verbs device */
		if (find_verbs_lib(verbs, sizeof verbs) == 0)
			preload_prepend("LD_PRELOAD", verbs);
		else if (!getenv("CKPTMPI_VERBS"))
			fprintf(stderr, "ckptmpi: libckptmpi-verbs.so not found next to ckptmpi "
			                "(set CKPTMPI_VERBS_LIB): running without it\n");
		execvp(argv[i], argv + i);
		return die("%s: %s", argv[i], strerror(errno));
	}
	if (!dir)
		dir = getenv("CKPTMPI_DIR");
	if (!dir) {
		usage(stderr);
		return die("run: --dir DIR is required");
	}
	/* the verbs shadow for the upper half (the runtime hands it on) */
	if (find_verbs_lib(verbs, sizeof verbs) == 0)
		preload_prepend("CKPTMPI_PRELOAD", verbs);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return die("%s: cannot create: %s", dir, strerror(errno));
	setenv("CKPTMPI_DIR", dir, 1);
	if (interval)
		setenv("CKPTMPI_INTERVAL", interval, 1);
	unsetenv("CKPTMPI_RESTART");
	/* a member of job DIR (core/job_group.c), or a job of its own */
	if (member && !job_size)
		return die("run: --member needs --job-size");
	if (member && strtoull(member, NULL, 10) >= strtoull(job_size, NULL, 10))
		return die("run: --member %s: a job of %s has members 0 to %llu", member, job_size,
		           strtoull(job_size, NULL, 10) - 1);
	if (job_size)
		setenv("CKPTMPI_JOB_SIZE", job_size, 1);
	else
		unsetenv("CKPTMPI_JOB_SIZE");
	if (member)
		setenv("CKPTMPI_JOB_MEMBER", member, 1);
	else
		unsetenv("CKPTMPI_JOB_MEMBER");
	{
		char **args = calloc((size_t)(argc - i + 2), sizeof *args);
		if (!args)
			return die("out of memory");
		for (int k = i; k < argc; k++)
			args[1 + k - i] = argv[k];
		return exec_runtime(args);
	}
}

static int check_dir(const char *dir)
{
	struct stat st;
	if (stat(dir, &st))
		return die("%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return die("%s: not a directory", dir);
	return 0;
}

/* A generation of an MPI job is restarted by its MPI's launcher, one
 * ckptmpi-runtime-FLAVOUR per rank (CKPTMPI_MPIRUN replaces
 * "mpirun.FLAVOUR", e.g. with a batch system's launcher and its options).
 * Returns only when the generation is not an MPI job's (0) or on error. */
static int restart_mpi_job(const char *dir, const char *gen)
{
	struct generation_entry g;
	struct container_reader *r;
	struct ck_generation_info info;
	char rt[PATH_MAX], np[32], launcher[512], *args[64];
	int k = 0;

	/* the runtime says what is wrong, and which files it skips: only a
	 * generation of this user's own is looked at */
	if (generations_pick(dir, strcmp(gen, "latest") ? strtoull(gen, NULL, 10) : 0, &g, NULL) ||
	    !(r = container_open_own(g.path)))
		return 0;
	if (container_info(r, &info) || !strcmp(info.mpi_flavour, "none")) {
		container_close(r);
		return 0;
	}
	container_close(r);
	rt[0] = 0;
	(void)find_runtime(rt, sizeof rt - 32); /* fills the path of the plain one */
	if (!rt[0])
		return die("cannot find the runtime next to ckptmpi");
	strcat(rt, "-");
	strcat(rt, info.mpi_flavour);
	if (access(rt, X_OK))
		return die("%s: not found (the generation is of an MPI job under %s)", rt,
		           info.mpi_flavour);
	snprintf(launcher, sizeof launcher, "%s",
	         getenv("CKPTMPI_MPIRUN") ? getenv("CKPTMPI_MPIRUN") : "");
	if (!launcher[0])
		snprintf(launcher, sizeof launcher, "mpirun.%s", info.mpi_flavour);
	for (char *t = strtok(launcher, " "); t && k < 56; t = strtok(NULL, " "))
		args[k++] = t;
	snprintf(np, sizeof np, "%llu", (unsigned long long)info.nranks);
	args[k++] = "-np";
	args[k++] = np;
	args[k++] = rt;
	args[k] = NULL;
	fprintf(stderr, "ckptmpi: restarting a %s-rank %s job:", np, info.mpi_flavour);
	for (int i = 0; i < k; i++)
		fprintf(stderr, " %s", args[i]);
	fprintf(stderr, " (with CKPTMPI_DIR and CKPTMPI_RESTART=%s)\n", gen);
	execvp(args[0], args);
	return die("%s: %s", args[0], strerror(errno));
}

static pid_t *group_pids;
static int group_n;

static void group_forward(int sig)
{
	/* a signal to one member is a checkpoint (SIGTERM: and exit) of all:
	 * member 0 gets it; SIGINT goes to every member */
	for (int k = 0; k < group_n; k++)
		if (group_pids[k] > 0 && (k == 0 || sig == SIGINT))
			kill(group_pids[k], sig);
}

/* A generation of a job without MPI: every member restarted here (member
 * K alone with --member K), each with its output in DIR/restart-G/.
 * Returns the worst exit status of the members, or 2 with a message. */
static int restart_group(const char *dir, const char *gen, const char *member)
{
	struct generation_entry g;
	struct container_reader *r;
	struct ck_generation_info info;
	char n[32], gs[32], out[PATH_MAX + 64], sub[PATH_MAX];
	int worst = 0;

	if (generations_pick(dir, strcmp(gen, "latest") ? strtoull(gen, NULL, 10) : 0, &g, NULL))
		return -1;
	if (!(r = container_open_own(g.path)))
		return -1;
	if (container_info(r, &info) || strcmp(info.mpi_flavour, "job")) {
		container_close(r);
		if (member)
			return die("%s: not a generation of a job started with --job-size: --member "
			           "does not apply", g.path);
		return -1;
	}
	/* every member's slice must be there: say which is not */
	for (uint64_t k = 0; k < info.nranks; k++) {
		struct ck_image img;
		if (container_read_image(r, k, &img)) {
			fprintf(stderr, "ckptmpi: %s\n", container_error());
			container_close(r);
			return die("%s: member %llu of the job cannot be restarted from it: nothing "
			           "restarted", g.path, (unsigned long long)k);
		}
		ck_image_free(&img);
	}
	container_close(r);
	snprintf(n, sizeof n, "%llu", (unsigned long long)info.nranks);
	snprintf(gs, sizeof gs, "%llu", (unsigned long long)info.generation);
	setenv("CKPTMPI_JOB_SIZE", n, 1);
	setenv("CKPTMPI_RESTART", gs, 1);
	if (member) {
		unsigned long long k;
		char *args[2] = {NULL, NULL};
		if (parse_uint(member, "--member", &k))
			return 2;
		if (k >= info.nranks)
			return die("%s: --member %s: the job of this generation has %llu members (0 to "
			           "%llu)", g.path, member, (unsigned long long)info.nranks,
			           (unsigned long long)info.nranks - 1);
		setenv("CKPTMPI_JOB_MEMBER", member, 1);
		fprintf(stderr, "ckptmpi: restarting member %s of the %s-member job %s from "
		        "generation %s\n", member, n, dir, gs);
		return exec_runtime(args);
	}
	/* a directory of its own for this restart's outputs: none overwritten */
	snprintf(sub, sizeof sub, "%s/restart-%s", dir, gs);
	for (int i = 1; mkdir(sub, 0700) < 0; i++) {
		if (errno != EEXIST)
			return die("%s: %s", sub, strerror(errno));
		snprintf(sub, sizeof sub, "%s/restart-%s.%d", dir, gs, i);
	}
	group_n = (int)info.nranks;
	group_pids = calloc(info.nranks, sizeof *group_pids);
	if (!group_pids)
		return die("out of memory");
	fprintf(stderr, "ckptmpi: restarting the %s members of job %s from generation %s; their "
	        "output:\n", n, dir, gs);
	for (int k = 0; k < group_n; k++) {
		char ks[16];
		int fo, fe, fi;
		pid_t p;

		snprintf(ks, sizeof ks, "%d", k);
		snprintf(out, sizeof out, "%s/member-%d.out", sub, k);
		fo = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		fprintf(stderr, "  member %d: %s", k, out);
		snprintf(out, sizeof out, "%s/member-%d.err", sub, k);
		fe = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		fprintf(stderr, ", %s\n", out);
		fi = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fo < 0 || fe < 0 || fi < 0)
			return die("%s: %s", out, strerror(errno));
		p = fork();
		if (p < 0)
			return die("fork: %s", strerror(errno));
		if (p == 0) {
			char *args[2] = {NULL, NULL};
			dup2(fi, 0);
			dup2(fo, 1);
			dup2(fe, 2);
			setenv("CKPTMPI_JOB_MEMBER", ks, 1);
			_exit(exec_runtime(args));
		}
		close(fo);
		close(fe);
		close(fi);
		group_pids[k] = p;
	}
	{
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = group_forward;
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGUSR1, &sa, NULL);
		sigaction(SIGUSR2, &sa, NULL);
	}
	for (int left = group_n; left > 0;) {
		int st, code;
		pid_t p = wait(&st);
		if (p < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int k = 0; k < group_n; k++)
			if (group_pids[k] == p) {
				code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
				fprintf(stderr, "ckptmpi: member %d (pid %d) %s %d\n", k, (int)p,
				        WIFEXITED(st) ? "exited with status" : "was killed by signal",
				        WIFEXITED(st) ? code : WTERMSIG(st));
				if (code > worst)
					worst = code;
				group_pids[k] = 0;
				left--;
			}
	}
	return worst;
}

static int cmd_restart(int argc, char **argv)
{
	const char *dir = NULL, *gen = "latest", *member = NULL;
	unsigned long long v;
	char *args[2] = {NULL, NULL};
	int rc;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--generation") && i + 1 < argc) {
			gen = argv[++i];
			if (parse_uint(gen, "--generation", &v))
				return 2;
		} else if (!strcmp(argv[i], "--interval") && i + 1 < argc) {
			if (parse_uint(argv[i + 1], "--interval", &v))
				return 2;
			setenv("CKPTMPI_INTERVAL", argv[++i], 1);
		} else if (!strcmp(argv[i], "--member") && i + 1 < argc) {
			member = argv[++i];
			if (parse_uint(member, "--member", &v))
				return 2;
		} else if (!dir && argv[i][0] != '-') {
			dir = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!dir) {
		usage(stderr);
		return 2;
	}
	if (check_dir(dir))
		return 2;
	setenv("CKPTMPI_DIR", dir, 1);
	setenv("CKPTMPI_RESTART", gen, 1);
	unsetenv("CKPTMPI_JOB_SIZE");
	unsetenv("CKPTMPI_JOB_MEMBER");
	if ((rc = restart_group(dir, gen, member)) >= 0)
		return rc;
	if (restart_mpi_job(dir, gen))
		return 1;
	return exec_runtime(args);
}

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
 * usable (see core/control_socket.h). */
static int connect_job(const char *dir)
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
	if (fd >= 0)
		return fd;
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

static int cmd_checkpoint(int argc, char **argv)
{
	char reply[1200];
	size_t got = 0;
	int fd;

	if (argc != 1) {
		usage(stderr);
		return 2;
	}
	if (check_dir(argv[0]))
		return 2;
	if ((fd = connect_job(argv[0])) < 0)
		return die("%s: no job of yours is running with this directory", argv[0]);
	if (write(fd, "checkpoint\n", 11) != 11)
		return die("%s: cannot talk to the job: %s", argv[0], strerror(errno));
	while (got < sizeof reply - 1) {
		ssize_t n = read(fd, reply + got, sizeof reply - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	reply[got] = 0;
	close(fd);
	if (!strncmp(reply, "ok ", 3)) {
		printf("generation %s", reply + 3);
		return 0;
	}
	if (!got)
		return die("%s: the job ended before the checkpoint was committed", argv[0]), 1;
	reply[strcspn(reply, "\n")] = 0;
	die("%s: %s", argv[0], reply);
	return 1;
}

/* Per rank of a multi-rank generation: what each holds. */
struct rank_sizes {
	uint64_t saved, size, pid;
	char host[65];
};

static int cmd_ls(int argc, char **argv)
{
	struct generation_entry *g;
	size_t n;
	int bad = 0;

	if (argc != 1) {
		usage(stderr);
		return 2;
	}
	if (check_dir(argv[0]))
		return 2;
	if (generations_list(argv[0], &g, &n))
		return die("%s", container_error());
	printf("%-10s %-20s %-9s %14s %14s %14s %6s %s\n", "generation", "created", "reason",
	       "file bytes", "memory saved", "process size", "ranks", "program");
	for (size_t i = 0; i < n; i++) {
		struct container_reader *r;
		struct ck_generation_info info;
		struct rank_sizes *rs = NULL;
		const char *unit;
		struct stat st;
		uint64_t saved = 0, size = 0, k;
		char when[32];

		if (g[i].foreign)
			fprintf(stderr, "ckptmpi: %s: %s: restart and retention ignore it\n", g[i].path,
			        g[i].why);
		r = container_open(g[i].path);
		if (!r || container_info(r, &info)) {
			fprintf(stderr, "ckptmpi: %s\n", container_error());
			if (r)
				container_close(r);
			bad |= !g[i].foreign; /* others' files are not the job's fault */
			continue;
		}
		if (info.nranks > 1 && !(rs = calloc(info.nranks, sizeof *rs))) {
			fprintf(stderr, "ckptmpi: %s: out of memory for %" PRIu64 " ranks\n", g[i].path,
			        info.nranks);
			container_close(r);
			bad = 1;
			continue;
		}
		/* a job without MPI has members, an MPI job ranks */
		unit = strcmp(info.mpi_flavour, "job") ? "rank" : "member";
		for (k = 0; k < info.nranks; k++) {
			struct ck_image img;
			if (container_read_image(r, k, &img)) {
				fprintf(stderr, "ckptmpi: %s (%s %" PRIu64 ")\n", container_error(), unit, k);
				bad = 1;
				break;
			}
			saved += img.memory_bytes;
			size += img.proc.upper_size;
			if (rs) {
				rs[k].saved = img.memory_bytes;
				rs[k].size = img.proc.upper_size;
				rs[k].pid = img.proc.pid;
				snprintf(rs[k].host, sizeof rs[k].host, "%s", img.proc.host ? img.proc.host : "?");
			}
			ck_image_free(&img);
		}
		container_close(r);
		time_t t = (time_t)info.created_unix;
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
		if (stat(g[i].path, &st) < 0)
			st.st_size = -1;
		printf("%-10" PRIu64 " %-20s %-9s %14lld %14" PRIu64 " %14" PRIu64 " %6" PRIu64 " %s\n",
		       info.generation, when, info.reason, (long long)st.st_size, saved, size,
		       info.nranks, info.program);
		/* the ranks read before a failure */
		for (uint64_t q = 0; rs && q < k; q++)
			printf("  %s %-*" PRIu64 " %14s %14" PRIu64 " %14" PRIu64 "  host %s pid %" PRIu64
			       "\n", unit, 38 - (int)strlen(unit), q, "", rs[q].saved, rs[q].size, rs[q].host, rs[q].pid);
		free(rs);
	}
	free(g);
	return bad;
}

static int cmd_verify(int argc, char **argv)
{
	const char *dir = NULL;
	unsigned long long want = 0;
	struct generation_entry *g;
	size_t n, checked = 0;
	int bad = 0;

	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--generation") && i + 1 < argc) {
			if (parse_uint(argv[++i], "--generation", &want))
				return 2;
		} else if (!dir) {
			dir = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!dir) {
		usage(stderr);
		return 2;
	}
	if (check_dir(dir))
		return 2;
	if (generations_list(dir, &g, &n))
		return die("%s", container_error());
	for (size_t i = 0; i < n; i++) {
		struct container_reader *r;
		struct ck_generation_info info;
		uint64_t bytes = 0;
		const char *unit;
		int ok = 1;

		if (want && g[i].generation != want)
			continue;
		checked++;
		if (g[i].foreign)
			fprintf(stderr, "ckptmpi: %s: %s: restart and retention ignore it\n", g[i].path,
			        g[i].why);
		r = container_open(g[i].path);
		if (!r || container_info(r, &info)) {
			fprintf(stderr, "ckptmpi: %s\n", container_error());
			if (r)
				container_close(r);
			bad |= !g[i].foreign; /* others' files are not the job's fault */
			continue;
		}
		unit = strcmp(info.mpi_flavour, "job") ? "rank" : "member";
		/* every rank, even after one failed: say which are damaged */
		for (uint64_t k = 0; k < info.nranks; k++) {
			struct ck_image img;
			int rank_ok = 1;

			if (container_read_image(r, k, &img)) {
				fprintf(stderr, "ckptmpi: %s (%s %" PRIu64 ")\n", container_error(), unit, k);
				ok = 0;
				continue;
			}
			if (container_read_pages(r, k, &img, 0, NULL)) {
				fprintf(stderr, "ckptmpi: %s (%s %" PRIu64 ")\n", container_error(), unit, k);
				rank_ok = 0;
			}
			/* the runtime's own memory must never be in an image */
			for (size_t q = 0; q < img.nregions; q++)
				if (img.regions[q].start < LOWMEM_WINDOW_BASE + LOWMEM_WINDOW_SIZE &&
				    img.regions[q].end > LOWMEM_WINDOW_BASE) {
					fprintf(stderr, "ckptmpi: %s: rank %" PRIu64 " region %#" PRIx64
					        " lies in the runtime's memory window\n",
					        g[i].path, k, img.regions[q].start);
					rank_ok = 0;
				}
			if (rank_ok && info.nranks > 1)
				printf("  %s %" PRIu64 ": ok, %" PRIu64 " bytes of data verified\n", unit, k,
				       img.memory_bytes + img.filedata_bytes);
			bytes += img.memory_bytes + img.filedata_bytes;
			ok &= rank_ok;
			ck_image_free(&img);
		}
		container_close(r);
		if (ok)
			printf("generation %" PRIu64 ": ok, %" PRIu64 " %s(s), %" PRIu64
			       " bytes of data verified\n",
			       info.generation, info.nranks, unit, bytes);
		else
			bad = 1;
	}
	free(g);
	if (want && !checked)
		return die("%s: no generation %llu", dir, want);
	if (!checked)
		return die("%s: no checkpoint generations", dir);
	return bad;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 2, argv + 2);
	if (!strcmp(argv[1], "restart"))
		return cmd_restart(argc - 2, argv + 2);
	if (!strcmp(argv[1], "checkpoint"))
		return cmd_checkpoint(argc - 2, argv + 2);
	if (!strcmp(argv[1], "ls"))
		return cmd_ls(argc - 2, argv + 2);
	if (!strcmp(argv[1], "verify"))
		return cmd_verify(argc - 2, argv + 2);
	if (!strcmp(argv[1], "debug"))
		return cmd_debug(argc - 2, argv + 2);
	if (!strcmp(argv[1], "bisect"))
		return cmd_bisect(argc - 2, argv + 2);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
