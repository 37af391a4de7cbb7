/* ckptmpi debug / ckptmpi bisect: the program under GDB (Debian's gdb with
 * its Python API) and a search over a run's generations. The work in GDB
 * is done by tools/gdb/ckptmpi.py; this file finds GDB, the extension and
 * the runtime, describes the generations in a plan (JSON) and hands over.
 *
 *   ckptmpi debug [--dir DIR] [GDB-OPTIONS...] -- PROGRAM [ARGS...]
 *   ckptmpi debug --restart DIR [--rank R] [--generation N] [--in-place] [GDB-OPTIONS...]
 *   ckptmpi debug --rank R -np N [--mpi FLAVOUR] [--replay DIR] [--job-output FILE]
 *                 [--dir DIR] [GDB-OPTIONS...] -- PROGRAM [ARGS...]
 *   ckptmpi bisect DIR (--expr 'C EXPRESSION' | --run 'SHELL COMMAND')
 *                  [--rank R | --any-rank] [--for SECONDS] [--from N] [--to N]
 *                  [--no-reexecute] [--keep-scratch] [--timeout SECONDS]
 *
 * A generation of an MPI job is inspected one rank at a time: the rank's
 * slice restored in a process of its own under GDB, without mpirun, MPI
 * or the other ranks (CKPTMPI_INSPECT_RANK, core/restore.h); it is never
 * run on. A live job (-np N) is run by mpirun with rank R held for GDB to
 * attach (tools/gdb/ckptmpi_job.py relaunches it for every reverse
 * command, replaying the recorded MPI outcomes). */
#include "tools/debug.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "storage/container.h"
#include "storage/image_chain.h"
#include "tools/cli.h"

/* tools/gdb/ckptmpi.py as installed (BINDIR/../share/ckptmpi/gdb) or in the
 * build tree (the same layout); CKPTMPI_GDB_SCRIPT overrides. */
static int script_path(char *out, size_t len)
{
	const char *env = getenv("CKPTMPI_GDB_SCRIPT");
	char dir[PATH_MAX / 2];

	if (env && *env) {
		snprintf(out, len, "%s", env);
		return access(out, R_OK);
	}
	if (self_dir(dir, sizeof dir))
		return -1;
	snprintf(out, len, "%s/../share/ckptmpi/gdb/ckptmpi.py", dir);
	return access(out, R_OK);
}

/* GDB: CKPTMPI_GDB, else gdb on PATH. */
static const char *gdb_path(void)
{
	const char *env = getenv("CKPTMPI_GDB");
	return env && *env ? env : "gdb";
}

static int have_gdb(void)
{
	const char *g = gdb_path(), *path = getenv("PATH");
	char buf[PATH_MAX];

	if (strchr(g, '/'))
		return access(g, X_OK) == 0;
	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		const char *colon = strchr(path, ':');
		size_t n = colon ? (size_t)(colon - path) : strlen(path);
		snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, g);
		if (access(buf, X_OK) == 0)
			return 1;
		path += n + (colon ? 1 : 0);
	}
	return 0;
}

/* LIB (libckptmpi-verbs.so, libckptmpi-replay.so) into the program's
 * preload list: ENV_LIB names it, ENV_OFF=off leaves it out; else next to
 * the tool (BINDIR/../lib, the build tree's lib/). 0 if it was added. */
/* The path of one of ckptmpi's libraries (env_lib names another; env_off
 * "off" leaves it out). 0, or -1 when there is none. */
static int debug_lib_path(const char *name, const char *env_lib, const char *env_off, char *lib,
                          size_t len)
{
	const char *env = getenv(env_lib), *off = getenv(env_off);
	char dir[PATH_MAX / 2];

	if (off && (!strcmp(off, "off") || !strcmp(off, "0") || !strcmp(off, "no")))
		return -1;
	if (env && *env)
		snprintf(lib, len, "%s", env);
	else if (self_dir(dir, sizeof dir))
		return -1;
	else {
		snprintf(lib, len, "%s/../lib/%s", dir, name);
		if (access(lib, R_OK))
			snprintf(lib, len, "%s/%s/%s", dir, CKPTMPI_BIN_TO_LIBDIR, name);
	}
	return access(lib, R_OK) ? -1 : 0;
}

static int preload_lib(const char *name, const char *env_lib, const char *env_off)
{
	const char *old = getenv("CKPTMPI_PRELOAD");
	char lib[PATH_MAX], *v;

	if (debug_lib_path(name, env_lib, env_off, lib, sizeof lib))
		return -1;
	if (old && *old) {
		if (asprintf(&v, "%s:%s", lib, old) < 0)
			return -1;
		setenv("CKPTMPI_PRELOAD", v, 1);
		free(v);
	} else {
		setenv("CKPTMPI_PRELOAD", lib, 1);
	}
	return 0;
}

/* As `ckptmpi run` does: the verbs library for the program, so that a
 * verbs program sees the same device under the debugger. And the replay
 * library (replay/): what the program reads from terminals and pipes, the
 * clocks and getrandom are recorded in DIR/replay.log and given back when
 * a reverse command re-executes from a checkpoint (CKPTMPI_REPLAY=off
 * leaves it out). The session keeps every checkpoint it takes: it removes
 * the ones it no longer needs itself. */
static void preload_debug_libs(const char *dir)
{
	char log[PATH_MAX + 16];

	preload_lib("libckptmpi-verbs.so", "CKPTMPI_VERBS_LIB", "CKPTMPI_VERBS");
	if (preload_lib("libckptmpi-replay.so", "CKPTMPI_REPLAY_LIB", "CKPTMPI_REPLAY") == 0) {
		snprintf(log, sizeof log, "%s/replay.log", dir);
		setenv("CKPTMPI_REPLAY_LOG", log, 1);
	} else {
		unsetenv("CKPTMPI_REPLAY_LOG");
	}
	setenv("CKPTMPI_KEEP", "1000000", 1);
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

struct plan_opts {
	const char *dir;        /* absolute */
	uint64_t only;          /* debug --restart: this generation (0: the newest) */
	uint64_t from, to;      /* bisect: the range */
	const char *expr, *run;
	double for_seconds, timeout;
	int in_place, keep_scratch, no_reexecute, bisect;
	int rank, any_rank;     /* a job of several: its rank R (-1: none), or each rank */
	int inspect;            /* debug --restart --rank R --inspect: the rank's image alone */
	const char *job_output; /* debug --restart --rank R: the job's stdout (FILE, FILE.err) */
};

/* ckptmpi-debug-hold, installed next to ckptmpi: rank R's slot of a job
 * run under GDB. 0, or 2 with a message. */
static int holder_path(char *self, size_t len)
{
	ssize_t n;

	if ((n = readlink("/proc/self/exe", self, len - 20)) < 0)
		return die("/proc/self/exe: %s", strerror(errno));
	self[n] = 0;
	if (strrchr(self, '/'))
		strcpy(strrchr(self, '/') + 1, "ckptmpi-debug-hold");
	if (access(self, X_OK))
		return die("%s: not found (it is installed next to ckptmpi)", self);
	return 0;
}

/* How a job under GDB is launched: CKPTMPI_MPIRUN, else the flavour's
 * mpirun (OpenMPI's told that 2 cores may hold more ranks). */
static void job_launcher(const char *flavour, char *out, size_t len)
{
	const char *env = getenv("CKPTMPI_MPIRUN");
	if (env && *env)
		snprintf(out, len, "%s", env);
	else if (!strcmp(flavour, "openmpi"))
		snprintf(out, len, "mpirun.openmpi --oversubscribe");
	else
		snprintf(out, len, "mpirun.%s", flavour);
}

/* The working directory and the regular files open of one member's image:
 * a sandbox needs them. */
static void json_image_files(FILE *f, const struct ck_image *img)
{
	fprintf(f, "\"cwd\": ");
	json_str(f, img->proc.cwd);
	fprintf(f, ", \"files\": [");
	for (size_t k = 0, m = 0; k < img->nfds; k++)
		if (img->fds[k].kind == CK_FD_FILE && img->fds[k].path) {
			int acc = (int)(img->fds[k].flags & O_ACCMODE);
			fprintf(f, "%s{\"path\": ", m++ ? ", " : "");
			json_str(f, img->fds[k].path);
			fprintf(f, ", \"write\": %s}",
			        acc == O_WRONLY || acc == O_RDWR ? "true" : "false");
		}
	fprintf(f, "]");
}

/* The generations of DIR (this user's own; a job of several members only
 * with a rank or --any-rank) into a plan for the extension. Returns 0, or
 * 2 with a message. */
static int write_plan(const struct plan_opts *o, const char *scratch, char *plan, size_t len,
                      char *runtime, size_t rlen)
{
	struct generation_entry *g;
	size_t n, used = 0;
	uint64_t job_ranks = 0;
	char job_flavour[64] = "";
	FILE *f;

	if (generations_list(o->dir, &g, &n))
		return die("%s", container_error());
	snprintf(plan, len, "%s/plan.json", scratch);
	if (!(f = fopen(plan, "w")))
		return die("%s: %s", plan, strerror(errno));
	fprintf(f, "{\"dir\": ");
	json_str(f, o->dir);
	fprintf(f, ", \"scratch\": ");
	json_str(f, scratch);
	fprintf(f, ", \"in_place\": %s, \"keep_scratch\": %s, \"no_reexecute\": %s, \"exit\": %s",
	        o->in_place ? "true" : "false", o->keep_scratch ? "true" : "false",
	        o->no_reexecute ? "true" : "false", o->bisect ? "true" : "false");
	fprintf(f, ", \"for_seconds\": %g, \"timeout\": %g", o->for_seconds, o->timeout);
	if (o->rank >= 0)
		fprintf(f, ", \"rank\": %d", o->rank);
	fprintf(f, ", \"any_rank\": %s, \"inspect\": %s", o->any_rank ? "true" : "false",
	        o->inspect ? "true" : "false");
	if (o->job_output) {
		/* mpirun runs in the copy of the working directory */
		char cwd[PATH_MAX] = "", abs[2 * PATH_MAX + 2];
		if (o->job_output[0] != '/' && !getcwd(cwd, sizeof cwd))
			cwd[0] = 0;
		snprintf(abs, sizeof abs, "%s%s%s", cwd, cwd[0] ? "/" : "", o->job_output);
		fprintf(f, ", \"job_output\": ");
		json_str(f, abs);
	}
	if (o->expr) {
		fprintf(f, ", \"expr\": ");
		json_str(f, o->expr);
	}
	if (o->run) {
		fprintf(f, ", \"run\": ");
		json_str(f, o->run);
	}
	fprintf(f, ", \"generations\": [");
	/* debug --restart without --generation: the newest */
	uint64_t only = o->only;
	if (!o->bisect && !only)
		for (size_t i = 0; i < n; i++)
			if (!g[i].foreign && g[i].generation > only)
				only = g[i].generation;
	for (size_t i = 0; i < n; i++) {
		struct container_reader *r;
		struct ck_generation_info info;
		struct ck_image img;
		char when[32];
		time_t t;

		if (g[i].foreign || (only && g[i].generation != only) ||
		    (o->from && g[i].generation < o->from) || (o->to && g[i].generation > o->to))
			continue;
		if (!(r = container_open_own(g[i].path)) || container_info(r, &info)) {
			fprintf(stderr, "ckptmpi: %s: skipped\n", container_error());
			if (r)
				container_close(r);
			continue;
		}
		/* --run restarts a whole MPI job (under mpirun); a job of members
		 * without MPI is inspected one member at a time only */
		if ((info.nranks != 1 || strcmp(info.mpi_flavour, "none")) && o->rank < 0 &&
		    !o->any_rank && (!o->run || !strcmp(info.mpi_flavour, "job"))) {
			/* the message before g is freed: it names g[i] */
			int rc = die("%s: a %" PRIu64 "-rank %s job: give the rank to inspect (--rank R%s)",
			             g[i].path, info.nranks, info.mpi_flavour,
			             o->bisect ? ", or --any-rank" : "");
			container_close(r);
			fclose(f);
			free(g);
			return rc;
		}
		if (o->rank >= 0 && (uint64_t)o->rank >= info.nranks) {
			int rc = die("%s: --rank %d, but the job has %" PRIu64 " rank(s) (0..%" PRIu64 ")",
			             g[i].path, o->rank, info.nranks, info.nranks - 1);
			container_close(r);
			fclose(f);
			free(g);
			return rc;
		}
		if (job_ranks && (job_ranks != info.nranks || strcmp(job_flavour, info.mpi_flavour))) {
			fprintf(stderr, "ckptmpi: %s: a %" PRIu64 "-rank %s job, not the %" PRIu64
			        "-rank %s job of the generations before it: skipped\n", g[i].path,
			        info.nranks, info.mpi_flavour, job_ranks, job_flavour);
			container_close(r);
			continue;
		}
		if (container_read_image(r, o->rank > 0 ? (uint64_t)o->rank : 0, &img)) {
			fprintf(stderr, "ckptmpi: %s: skipped\n", container_error());
			container_close(r);
			continue;
		}
		job_ranks = info.nranks;
		snprintf(job_flavour, sizeof job_flavour, "%s", info.mpi_flavour);
		if (!runtime[0] && info.runtime[0] && access(info.runtime, X_OK) == 0)
			snprintf(runtime, rlen, "%s", info.runtime);
		t = (time_t)info.created_unix;
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
		fprintf(f, "%s\n  {\"generation\": %" PRIu64 ", \"path\": ", used ? "," : "",
		        info.generation);
		json_str(f, g[i].path);
		fprintf(f, ", \"reason\": ");
		json_str(f, info.reason);
		fprintf(f, ", \"created\": ");
		json_str(f, when);
		fprintf(f, ", \"created_unix\": %" PRIu64 ", ", info.created_unix);
		/* the program's (the selected rank's) files: a probe's sandbox */
		json_image_files(f, &img);
		ck_image_free(&img);
		/* an incremental generation's pages come from its parents too: a
		 * sandbox links them beside it */
		{
			uint64_t deps[64];
			size_t nd = 0;
			fprintf(f, ", \"parents\": [");
			if (chain_parents(o->dir, info.generation, deps, 64, &nd))
				nd = 0;
			for (size_t k = 0, m = 0; k < nd; k++)
				for (size_t q = 0; q < n; q++)
					if (g[q].generation == deps[k]) {
						fprintf(f, "%s", m++ ? ", " : "");
						json_str(f, g[q].path);
					}
			fprintf(f, "]");
		}
		fprintf(f, ", \"program\": ");
		json_str(f, info.program);
		fprintf(f, ", \"nranks\": %" PRIu64 ", \"flavour\": ", info.nranks);
		json_str(f, info.mpi_flavour);
		if (info.nranks > 1) {
			/* every rank's: --any-rank probes each, a re-execution of
			 * the whole job makes the sandbox of every rank's */
			fprintf(f, ", \"ranks\": [");
			for (uint64_t k = 0; k < info.nranks; k++) {
				fprintf(f, "%s{", k ? ", " : "");
				if (container_read_image(r, k, &img) == 0) {
					json_image_files(f, &img);
					ck_image_free(&img);
				} else {
					fprintf(f, "\"cwd\": \"\", \"files\": []");
				}
				fprintf(f, "}");
			}
			fprintf(f, "]");
		}
		container_close(r);
		fprintf(f, "}");
		used++;
	}
	fprintf(f, "\n], \"nranks\": %" PRIu64 ", \"flavour\": ", job_ranks);
	json_str(f, job_flavour);
	if (job_ranks && strcmp(job_flavour, "none") && strcmp(job_flavour, "job")) {
		/* an MPI job: what running it on from a generation takes (rank
		 * R under GDB, the others under mpirun: ckptmpi_job.py) */
		char holder[PATH_MAX], launcher[512], cwd[PATH_MAX];
		if (holder_path(holder, sizeof holder) == 0) {
			job_launcher(job_flavour, launcher, sizeof launcher);
			fprintf(f, ", \"holder\": ");
			json_str(f, holder);
			fprintf(f, ", \"mpirun\": ");
			json_str(f, launcher);
			fprintf(f, ", \"runtime\": ");
			json_str(f, runtime);
			fprintf(f, ", \"cwd\": ");
			json_str(f, getcwd(cwd, sizeof cwd) ? cwd : "/");
		}
	}
	fprintf(f, "}\n");
	free(g);
	if (fclose(f))
		return die("%s: %s", plan, strerror(errno));
	if (!used) {
		if (only)
			return die("%s: no generation %" PRIu64 " of yours", o->dir, only);
		return die("%s: no checkpoint generations of yours", o->dir);
	}
	return 0;
}

static int make_scratch(char *out, size_t len, const char *what)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(out, len, "%s/ckptmpi-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", what);
	if (!mkdtemp(out))
		return die("%s: %s", out, strerror(errno));
	return 0;
}

/* A scratch directory that will not be used after all (an error before
 * GDB runs): only the plan can be in it. */
static void drop_scratch(const char *scratch)
{
	char p[PATH_MAX + 16];
	snprintf(p, sizeof p, "%s/plan.json", scratch);
	unlink(p);
	rmdir(scratch);
}

static int parse_num(const char *s, const char *what, double *out)
{
	char *end;
	errno = 0;
	*out = strtod(s, &end);
	if (errno || *end || !*s || *out < 0)
		return die("%s: not a number: %s", what, s);
	return 0;
}

/* --rank R: a rank number */
static int parse_rank(const char *s, int *out)
{
	char *end;
	long v;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || !*s || v < 0 || v > (1 << 24))
		return die("--rank: not a rank number: %s", s);
	*out = (int)v;
	return 0;
}

/* ---- ckptmpi debug --rank R -np N -- PROGRAM: GDB on rank R of a live job */

struct job_opts {
	int rank, np;
	const char *flavour, *replay, *output, *dir;
};

/* The plan of a live job for ckptmpi_job.py. 0, or 2 with a message. */
static int write_job_plan(const struct job_opts *j, const char *dir, int dir_is_scratch,
                          char **prog, int nprog, char *plan, size_t len)
{
	char rt[PATH_MAX], self[PATH_MAX], cwd[PATH_MAX], launcher[512], replay[PATH_MAX] = "";
	char lib[PATH_MAX];
	FILE *f;

	rt[0] = 0;
	(void)find_runtime(rt, sizeof rt - 32);
	if (!rt[0])
		return die("cannot find ckptmpi-runtime next to ckptmpi (set CKPTMPI_RUNTIME)");
	strcat(rt, "-");
	strcat(rt, j->flavour);
	if (access(rt, X_OK))
		return die("%s: not found (debug --mpi %s: is that MPI built?)", rt, j->flavour);
	if (holder_path(self, sizeof self))
		return 2;
	if (!getcwd(cwd, sizeof cwd))
		return die("getcwd: %s", strerror(errno));
	if (j->replay) {
		char log[PATH_MAX + 64];
		struct stat st;
		if (!realpath(j->replay, replay) || stat(replay, &st) || !S_ISDIR(st.st_mode))
			return die("--replay %s: not a directory", j->replay);
		snprintf(log, sizeof log, "%s/replay/mpi.rank-%d.log", replay, j->rank);
		if (access(log, R_OK)) {
			snprintf(log, sizeof log, "%s/mpi.rank-%d.log", replay, j->rank);
			if (access(log, R_OK))
				return die("--replay %s: no MPI replay log of rank %d (a run recorded with "
				           "CKPTMPI_MPI_RECORD=1 and CKPTMPI_DIR=%s has "
				           "replay/mpi.rank-%d.log)", replay, j->rank, replay, j->rank);
		}
	}
	job_launcher(j->flavour, launcher, sizeof launcher);
	snprintf(plan, len, "%s/job-plan.json", dir);
	if (!(f = fopen(plan, "w")))
		return die("%s: %s", plan, strerror(errno));
	fprintf(f, "{\"job\": true, \"rank\": %d, \"np\": %d, \"flavour\": ", j->rank, j->np);
	json_str(f, j->flavour);
	fprintf(f, ", \"mpirun\": ");
	json_str(f, launcher);
	fprintf(f, ", \"runtime\": ");
	json_str(f, rt);
	fprintf(f, ", \"holder\": ");
	json_str(f, self);
	fprintf(f, ", \"dir\": ");
	json_str(f, dir);
	fprintf(f, ", \"scratch\": %s, \"replay\": ", dir_is_scratch ? "true" : "false");
	json_str(f, replay);
	fprintf(f, ", \"output\": ");
	json_str(f, j->output ? j->output : "");
	fprintf(f, ", \"cwd\": ");
	json_str(f, cwd);
	/* every rank records (and replays) its reads, clocks and random bytes */
	if (debug_lib_path("libckptmpi-replay.so", "CKPTMPI_REPLAY_LIB", "CKPTMPI_REPLAY", lib,
	                   sizeof lib) == 0) {
		fprintf(f, ", \"replay_lib\": ");
		json_str(f, lib);
	}
	fprintf(f, ", \"argv\": [");
	for (int k = 0; k < nprog; k++) {
		fprintf(f, "%s", k ? ", " : "");
		json_str(f, prog[k]);
	}
	fprintf(f, "]}\n");
	if (fclose(f))
		return die("%s: %s", plan, strerror(errno));
	return 0;
}

/* The first MPI flavour built next to ckptmpi. */
static const char *default_flavour(void)
{
	static const char *const fl[] = {"mpich", "openmpi"};
	char rt[PATH_MAX];
	for (size_t k = 0; k < sizeof fl / sizeof fl[0]; k++) {
		rt[0] = 0;
		(void)find_runtime(rt, sizeof rt - 32);
		strcat(rt, "-");
		strcat(rt, fl[k]);
		if (access(rt, X_OK) == 0)
			return fl[k];
	}
	return "mpich";
}

static void debug_usage(FILE *f)
{
	fprintf(f,
	        "usage: ckptmpi debug [--dir DIR] [GDB-OPTIONS...] -- PROGRAM [ARGS...]\n"
	        "       ckptmpi debug --restart DIR [--generation N] [--in-place] "
	        "[--keep-scratch] [GDB-OPTIONS...]\n"
	        "       ckptmpi debug --restart DIR --rank R [--inspect] [--job-output FILE] "
	        "[--generation N] [GDB-OPTIONS...]\n"
	        "       (--rank: the whole MPI job restarted from the generation, rank R under "
	        "GDB with reverse commands;\n"
	        "        --inspect: rank R's image alone, without MPI: it does not run on)\n"
	        "       ckptmpi debug --rank R -np N [--mpi mpich|openmpi] [--replay DIR] "
	        "[--job-output FILE] [--dir DIR] [GDB-OPTIONS...] -- PROGRAM [ARGS...]\n"
	        "       (rank R of a job run by mpirun, under GDB with reverse commands)\n");
}

/* Restarts under the debugger read the image whole before the program
 * runs: GDB reads memory through the kernel, which cannot wait for a page
 * to come in, and holds the threads where they resume, not at a lazy
 * restart's first system call (core/lazy_restore.h). */
static void restart_whole(void) { setenv("CKPTMPI_RESTART_LAZY", "0", 1); }

int cmd_debug(int argc, char **argv)
{
	const char *dir = NULL, *restart = NULL;
	char rt[PATH_MAX] = "", script[PATH_MAX], plan[PATH_MAX + 16], scratch[PATH_MAX];
	char absdir[PATH_MAX], ex[PATH_MAX + 64];
	struct plan_opts o = {0};
	struct job_opts j = {0};
	char **gargs = calloc((size_t)argc + 16, sizeof *gargs);

	restart_whole();
	int ng = 0, i;
	double v;

	if (!gargs)
		return die("out of memory");
	o.rank = -1;
	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(argv[i], "--restart") && i + 1 < argc) {
			restart = argv[++i];
		} else if (!strcmp(argv[i], "--generation") && i + 1 < argc) {
			if (parse_num(argv[++i], "--generation", &v))
				return 2;
			o.only = (uint64_t)v;
		} else if (!strcmp(argv[i], "--rank") && i + 1 < argc) {
			if (parse_rank(argv[++i], &o.rank))
				return 2;
		} else if ((!strcmp(argv[i], "-np") || !strcmp(argv[i], "-n")) && i + 1 < argc) {
			if (parse_num(argv[++i], "-np", &v) || v < 1 || v > 4096 || v != (int)v)
				return die("-np: not a number of ranks: %s", argv[i]);
			j.np = (int)v;
		} else if (!strcmp(argv[i], "--mpi") && i + 1 < argc) {
			j.flavour = argv[++i];
			if (strcmp(j.flavour, "mpich") && strcmp(j.flavour, "openmpi"))
				return die("--mpi %s: mpich or openmpi", j.flavour);
		} else if (!strcmp(argv[i], "--replay") && i + 1 < argc) {
			j.replay = argv[++i];
		} else if (!strcmp(argv[i], "--job-output") && i + 1 < argc) {
			j.output = argv[++i];
		} else if (!strcmp(argv[i], "--in-place")) {
			o.in_place = 1;
		} else if (!strcmp(argv[i], "--inspect")) {
			o.inspect = 1;
		} else if (!strcmp(argv[i], "--keep-scratch")) {
			o.keep_scratch = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			debug_usage(stdout);
			return 0;
		} else {
			gargs[1 + 3 + ng++] = argv[i]; /* for GDB, in order */
		}
	}
	if ((j.np || j.flavour || j.replay) && (restart || o.rank < 0))
		return die("debug -np/--mpi/--replay are for a live MPI job: "
		           "ckptmpi debug --rank R -np N -- PROGRAM");
	if (j.output && o.rank < 0)
		return die("debug --job-output is for an MPI job: --rank R -np N, or --restart DIR "
		           "--rank R");
	if (o.inspect && (!restart || o.rank < 0))
		return die("debug --inspect: rank R of an MPI job's generation, read alone "
		           "(--restart DIR --rank R --inspect)");
	if (o.inspect && j.output)
		return die("debug --inspect: the rank does not run on, the job is not restarted: "
		           "--job-output has no use");
	o.job_output = j.output;
	if (o.rank >= 0 && !restart && !j.np)
		return die("debug --rank R: -np N (a live job run by mpirun), or --restart DIR (a "
		           "generation of an MPI job, inspected)");
	if (j.np && o.rank >= j.np)
		return die("--rank %d, but the job has %d rank(s) (0..%d)", o.rank, j.np, j.np - 1);
	if (o.rank >= 0 && o.in_place)
		return die("debug --rank R: the job runs on its files' copy (a sandbox): "
		           "--in-place is for a single process");
	if (!have_gdb())
		return die("gdb not found (install Debian's gdb, or set CKPTMPI_GDB)");
	if (script_path(script, sizeof script))
		return die("%s: the GDB extension is missing (set CKPTMPI_GDB_SCRIPT)", script);
	/* GDB runs the runtime without address randomisation anyway (its
	 * disable-randomization); the runtime then does not re-execute itself */
	{
		int p = personality(0xffffffff);
		if (p >= 0)
			personality((unsigned long)p | ADDR_NO_RANDOMIZE);
	}
	gargs[0] = (char *)gdb_path();
	gargs[1] = "-q";
	gargs[2] = "-x";
	gargs[3] = script;
	if (restart) {
		struct stat st;
		if (i < argc)
			return die("debug --restart takes no PROGRAM: the generation names it");
		if (!realpath(restart, absdir) || stat(absdir, &st) || !S_ISDIR(st.st_mode))
			return die("%s: not a directory", restart);
		o.dir = absdir;
		if (make_scratch(scratch, sizeof scratch, "debug"))
			return 2;
		if (write_plan(&o, scratch, plan, sizeof plan, rt, sizeof rt)) {
			drop_scratch(scratch);
			return 2;
		}
		if (!rt[0] && find_runtime(rt, sizeof rt)) {
			drop_scratch(scratch);
			return die("cannot find ckptmpi-runtime next to ckptmpi (set CKPTMPI_RUNTIME)");
		}
		/* ours first, then the user's options (-batch -ex ...) */
		memmove(gargs + 6, gargs + 4, (size_t)ng * sizeof *gargs);
		snprintf(ex, sizeof ex, "ckptmpi-restore %s", plan);
		gargs[4] = "-ex";
		gargs[5] = ex;
		ng += 2;
		gargs[4 + ng++] = rt;
		gargs[4 + ng] = NULL;
		unsetenv("CKPTMPI_RESTART");
		execvp(gargs[0], gargs);
		return die("%s: %s", gargs[0], strerror(errno));
	}
	if (i >= argc) {
		debug_usage(stderr);
		return die("debug: no PROGRAM given (ckptmpi debug -- PROGRAM ARGS)");
	}
	if (find_runtime(rt, sizeof rt))
		return die("cannot find ckptmpi-runtime next to ckptmpi (set CKPTMPI_RUNTIME)");
	if (!dir)
		dir = getenv("CKPTMPI_DIR");
	if (!dir) {
		/* checkpoints of a debugging session go to a directory of its own */
		if (make_scratch(scratch, sizeof scratch, "debug"))
			return 2;
		dir = scratch;
		/* a live job's session names its directory once the job is up */
		if (!j.np)
			fprintf(stderr, "ckptmpi: checkpoints of this session go to %s (--dir DIR to "
			        "choose)\n", dir);
	} else if (mkdir(dir, 0700) && errno != EEXIST) {
		return die("%s: cannot create: %s", dir, strerror(errno));
	}
	{
		char absd[PATH_MAX];
		if (!realpath(dir, absd))
			return die("%s: %s", dir, strerror(errno));
		setenv("CKPTMPI_DIR", absd, 1);
		if (j.np) {
			/* a live MPI job: ckptmpi_job.py launches it and attaches */
			j.rank = o.rank;
			if (!j.flavour)
				j.flavour = default_flavour();
			if (write_job_plan(&j, absd, dir == scratch, argv + i, argc - i, plan,
			                   sizeof plan)) {
				if (dir == scratch)
					rmdir(scratch);
				return 2;
			}
			memmove(gargs + 6, gargs + 4, (size_t)ng * sizeof *gargs);
			snprintf(ex, sizeof ex, "ckptmpi-job %s", plan);
			gargs[4] = "-ex";
			gargs[5] = ex;
			gargs[6 + ng] = NULL;
			execvp(gargs[0], gargs);
			return die("%s: %s", gargs[0], strerror(errno));
		}
		preload_debug_libs(absd);
	}
	unsetenv("CKPTMPI_RESTART");
	{
		char **a = calloc((size_t)(4 + ng + 3 + argc - i), sizeof *a);
		int k = 0;
		if (!a)
			return die("out of memory");
		for (int q = 0; q < 4 + ng; q++)
			a[k++] = gargs[q];
		a[k++] = "--args";
		a[k++] = rt;
		for (int q = i; q < argc; q++)
			a[k++] = argv[q];
		a[k] = NULL;
		execvp(a[0], a);
		return die("%s: %s", a[0], strerror(errno));
	}
}

static void bisect_usage(FILE *f)
{
	fprintf(f, "usage: ckptmpi bisect DIR --expr 'C EXPRESSION' [--no-reexecute]\n"
	           "       ckptmpi bisect DIR --expr 'C EXPRESSION' --rank R|--any-rank   "
	           "(an MPI job)\n"
	           "       ckptmpi bisect DIR --run 'SHELL COMMAND' [--for SECONDS]\n"
	           "       options: [--from N] [--to N] [--keep-scratch] [--timeout SECONDS]\n");
}

int cmd_bisect(int argc, char **argv)
{
	struct plan_opts o = {0};
	const char *dir = NULL;
	char rt[PATH_MAX] = "", script[PATH_MAX], plan[PATH_MAX + 16], scratch[PATH_MAX];
	char absdir[PATH_MAX], ex[PATH_MAX + 64];
	struct stat st;
	double v;

	restart_whole();

	o.bisect = 1;
	o.timeout = 600;
	o.rank = -1;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--expr") && i + 1 < argc) {
			o.expr = argv[++i];
		} else if (!strcmp(argv[i], "--run") && i + 1 < argc) {
			o.run = argv[++i];
		} else if (!strcmp(argv[i], "--for") && i + 1 < argc) {
			if (parse_num(argv[++i], "--for", &o.for_seconds))
				return 2;
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			if (parse_num(argv[++i], "--timeout", &o.timeout))
				return 2;
		} else if (!strcmp(argv[i], "--from") && i + 1 < argc) {
			if (parse_num(argv[++i], "--from", &v))
				return 2;
			o.from = (uint64_t)v;
		} else if (!strcmp(argv[i], "--to") && i + 1 < argc) {
			if (parse_num(argv[++i], "--to", &v))
				return 2;
			o.to = (uint64_t)v;
		} else if (!strcmp(argv[i], "--rank") && i + 1 < argc) {
			if (parse_rank(argv[++i], &o.rank))
				return 2;
		} else if (!strcmp(argv[i], "--any-rank")) {
			o.any_rank = 1;
		} else if (!strcmp(argv[i], "--keep-scratch")) {
			o.keep_scratch = 1;
		} else if (!strcmp(argv[i], "--no-reexecute")) {
			o.no_reexecute = 1;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			bisect_usage(stdout);
			return 0;
		} else if (!dir && argv[i][0] != '-') {
			dir = argv[i];
		} else {
			bisect_usage(stderr);
			return 2;
		}
	}
	if (!dir || (!o.expr == !o.run)) {
		bisect_usage(stderr);
		return die("bisect: DIR and one of --expr or --run are needed");
	}
	if (o.rank >= 0 && o.any_rank)
		return die("bisect: --rank R or --any-rank, not both");
	if ((o.rank >= 0 || o.any_rank) && o.run)
		return die("bisect --run: the command judges the whole job (each probe restarts every "
		           "rank): --rank and --any-rank are for --expr");
	if (!have_gdb())
		return die("gdb not found (install Debian's gdb, or set CKPTMPI_GDB)");
	if (script_path(script, sizeof script))
		return die("%s: the GDB extension is missing (set CKPTMPI_GDB_SCRIPT)", script);
	if (!realpath(dir, absdir) || stat(absdir, &st) || !S_ISDIR(st.st_mode))
		return die("%s: not a directory", dir);
	o.dir = absdir;
	if (make_scratch(scratch, sizeof scratch, "bisect"))
		return 2;
	if (write_plan(&o, scratch, plan, sizeof plan, rt, sizeof rt)) {
		drop_scratch(scratch);
		return 2;
	}
	if (!rt[0] && find_runtime(rt, sizeof rt)) {
		drop_scratch(scratch);
		return die("cannot find ckptmpi-runtime next to ckptmpi (set CKPTMPI_RUNTIME)");
	}
	{
		int p = personality(0xffffffff);
		if (p >= 0)
			personality((unsigned long)p | ADDR_NO_RANDOMIZE);
	}
	snprintf(ex, sizeof ex, "ckptmpi-bisect %s", plan);
	unsetenv("CKPTMPI_RESTART");
	char *args[] = {(char *)gdb_path(), "-q", "-nx", "-batch", "-x", script, "-ex", ex, rt, NULL};
	execvp(args[0], args);
	return die("%s: %s", args[0], strerror(errno));
}
