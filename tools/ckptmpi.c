/* ckptmpi: the user's command. run/restart hand over to the runtime;
 * checkpoint and status talk to a running job (tools/job_client.c);
 * ls/verify read containers; debug/bisect drive GDB (tools/debug.c).
 * Every subcommand takes --help; exit statuses: tools/cli.h. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>
#include <wordexp.h>

#include "core/image.h"
#include "core/lowmem.h"
#include "storage/container.h"
#include "storage/image_chain.h"
#include "tools/cli.h"
#include "tools/debug.h"
#include "tools/job_client.h"

#ifndef CKPTMPI_VERSION
#define CKPTMPI_VERSION "unknown"
#endif

static const char exit_statuses[] =
	"Exit statuses of ckptmpi itself:\n"
	"  0    success\n"
	"  1    the operation failed (a checkpoint refused or failed, damage found)\n"
	"  2    bad command line or setting (CKPTMPI_*): nothing was done\n"
	"  3    no generation to restart or verify (none in DIR, or no generation N)\n"
	"  4    no job of yours runs with DIR (checkpoint, status)\n"
	"  126  the program or the runtime cannot be executed\n"
	"  127  the program or the runtime was not found, or the runtime refused the\n"
	"       restart (its message says why)\n"
	"Once the program runs, `run` and `restart` exit with the program's status;\n"
	"after SIGTERM: 143 when the checkpoint was committed, 75 without one.\n";

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: ckptmpi COMMAND [OPTIONS] [ARGS]   (ckptmpi COMMAND --help for each)\n"
	        "\n"
	        "  run [--dir DIR] [--interval S] [--job-size N [--member K]] -- PROGRAM [ARGS...]\n"
	        "  run --no-checkpoint -- PROGRAM [ARGS...]\n"
	        "  checkpoint DIR [--progress]    checkpoint the job running with DIR now\n"
	        "  status DIR [--json]            is a job running with DIR, what is it doing\n"
	        "  restart DIR [--generation N] [--interval S] [--member K] [--no-verify]\n"
	        "  ls DIR [--json]                the generations in DIR\n"
	        "  verify DIR [--generation N]    completeness and every checksum\n"
	        "  debug [--dir DIR] [GDB-OPTIONS...] -- PROGRAM [ARGS...]\n"
	        "  debug --restart DIR [--generation N] [--in-place] [GDB-OPTIONS...]\n"
	        "  debug --rank R -np N [--mpi FL] [--replay DIR] -- PROGRAM [ARGS...]\n"
	        "  bisect DIR (--expr 'C EXPRESSION' | --run 'SHELL COMMAND') [OPTIONS]\n"
	        "  help [COMMAND], --help, --version\n"
	        "\n"
	        "Environment (README.md and ckptmpi(1) have them all): CKPTMPI_DIR,\n"
	        "CKPTMPI_INTERVAL, CKPTMPI_KEEP, CKPTMPI_SIGNAL, CKPTMPI_TERM,\n"
	        "CKPTMPI_TERM_TIMEOUT, CKPTMPI_COMPRESS, CKPTMPI_VERBOSE, CKPTMPI_RESTART,\n"
	        "CKPTMPI_MPIRUN.\n"
	        "\n%s",
	        exit_statuses);
}

/* The settings every job reads, for the help of run and restart. */
static const char job_environment[] =
	"Environment (checked before the program runs; a bad value is refused, exit 2):\n"
	"  CKPTMPI_DIR           where generations go (--dir sets it)\n"
	"  CKPTMPI_INTERVAL      seconds between checkpoints, 0 none (--interval sets it)\n"
	"  CKPTMPI_KEEP          newest generations kept, at least 1 (default 2)\n"
	"  CKPTMPI_SIGNAL        signal that asks for a checkpoint: USR1, USR2 or a number\n"
	"  CKPTMPI_TERM          checkpoint (default): SIGTERM checkpoints, then the job\n"
	"                        exits 143 (75 without a checkpoint); exit: SIGTERM ends\n"
	"                        the job at once\n"
	"  CKPTMPI_TERM_TIMEOUT  seconds after SIGTERM before giving up on its checkpoint\n"
	"  CKPTMPI_COMPRESS      none, deflate[:0-9], zstd[:LEVEL] or lz4[:ACCELERATION]\n"
	"  CKPTMPI_VERBOSE       0 to 3: what the runtime logs on stderr (errors: always)\n";

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

/* An exec that failed: 127 not found, 126 found but not executable. */
static int exec_failed(const char *what)
{
	int e = errno;
	return fail(e == ENOENT || e == ENOTDIR ? CLI_NOT_FOUND : CLI_CANNOT_EXECUTE, "%s: %s",
	            what, strerror(e));
}

static int exec_runtime(char **args)
{
	char rt[PATH_MAX];
	int p;

	if (find_runtime(rt, sizeof rt))
		return fail(CLI_NOT_FOUND,
		            "cannot find ckptmpi-runtime next to ckptmpi (set CKPTMPI_RUNTIME)");
	/* the runtime's layout must be the same in every run */
	p = personality(0xffffffff);
	if (p >= 0)
		personality((unsigned long)p | ADDR_NO_RANDOMIZE);
	args[0] = rt;
	execv(rt, args);
	return exec_failed(rt);
}

static void run_help(FILE *f)
{
	fprintf(f,
	        "usage: ckptmpi run [--dir DIR] [--interval SECONDS] [--job-size N [--member K]]\n"
	        "                   [--] PROGRAM [ARGS...]\n"
	        "       ckptmpi run --no-checkpoint [--] PROGRAM [ARGS...]\n"
	        "\n"
	        "Run PROGRAM (any dynamically linked x86-64 executable, unmodified) in the\n"
	        "foreground under the checkpoint runtime; checkpoints go to DIR.\n"
	        "\n"
	        "  -d, --dir DIR          the checkpoint directory (created; CKPTMPI_DIR)\n"
	        "  -i, --interval S       checkpoint every S seconds (CKPTMPI_INTERVAL)\n"
	        "      --job-size N       a member of a job of N processes without MPI\n"
	        "      --member K         ... as member K (default: in order of joining)\n"
	        "      --no-checkpoint    no runtime: only the software verbs device\n"
	        "  -h, --help             this help\n"
	        "\n%s"
	        "  CKPTMPI_RESTART       latest or N: resume from DIR instead (see restart);\n"
	        "                        with latest and no generation in DIR the program\n"
	        "                        starts fresh, saying so\n"
	        "  CKPTMPI_VERBS=off     do not preload the verbs library\n"
	        "\n%s",
	        job_environment, exit_statuses);
}

static int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dir", required_argument, NULL, 'd'},   {"interval", required_argument, NULL, 'i'},
		{"job-size", required_argument, NULL, 's'}, {"member", required_argument, NULL, 'm'},
		{"no-checkpoint", no_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	const char *dir = NULL, *interval = NULL, *job_size = NULL, *member = NULL;
	unsigned long long v, size = 0, k = 0;
	int c, no_ckpt = 0;
	char verbs[PATH_MAX];

	opterr = 0;
	/* '+': options end at PROGRAM, whose own options are its own */
	while ((c = getopt_long(argc, argv, "+:d:i:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'i':
			interval = optarg;
			if (parse_uint(interval, "--interval", &v))
				return CLI_USAGE;
			break;
		case 's':
			job_size = optarg;
			if (parse_uint(job_size, "--job-size", &size))
				return CLI_USAGE;
			if (size < 1 || size > 256)
				return die("--job-size %s: a job has 1 to 256 members", job_size);
			break;
		case 'm':
			member = optarg;
			if (parse_uint(member, "--member", &k))
				return CLI_USAGE;
			break;
		case 'n':
			no_ckpt = 1;
			break;
		case 'h':
			run_help(stdout);
			return CLI_OK;
		default:
			return bad_option("run", argv, optopt, c == ':');
		}
	}
	if (optind >= argc)
		return die("run: no PROGRAM given (ckptmpi run --help)");
	argv += optind;
	argc -= optind;
	if (no_ckpt) {
		/* the program itself, no runtime: only the verbs device */
		if (find_verbs_lib(verbs, sizeof verbs) == 0)
			preload_prepend("LD_PRELOAD", verbs);
		else if (!getenv("CKPTMPI_VERBS"))
			fprintf(stderr, "ckptmpi: libckptmpi-verbs.so not found next to ckptmpi "
			                "(set CKPTMPI_VERBS_LIB): running without it\n");
		execvp(argv[0], argv);
		return exec_failed(argv[0]);
	}
	if (!dir)
		dir = getenv("CKPTMPI_DIR");
	if (!dir || !*dir)
		return die("run: --dir DIR is required (or CKPTMPI_DIR; ckptmpi run --help)");
	/* a member of job DIR (core/job_group.c), or a job of its own */
	if (member && !job_size)
		return die("run: --member needs --job-size");
	if (member && k >= size)
		return die("run: --member %s: a job of %s has members 0 to %llu", member, job_size,
		           size - 1);
	/* the verbs shadow for the upper half (the runtime hands it on) */
	if (find_verbs_lib(verbs, sizeof verbs) == 0)
		preload_prepend("CKPTMPI_PRELOAD", verbs);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return fail(CLI_FAILED, "%s: cannot create: %s", dir, strerror(errno));
	setenv("CKPTMPI_DIR", dir, 1);
	if (interval)
		setenv("CKPTMPI_INTERVAL", interval, 1);
	if (job_size)
		setenv("CKPTMPI_JOB_SIZE", job_size, 1);
	else
		unsetenv("CKPTMPI_JOB_SIZE");
	if (member)
		setenv("CKPTMPI_JOB_MEMBER", member, 1);
	else
		unsetenv("CKPTMPI_JOB_MEMBER");
	{
		char **args = calloc((size_t)argc + 2, sizeof *args);
		if (!args)
			return fail(CLI_FAILED, "out of memory");
		for (int i = 0; i < argc; i++)
			args[1 + i] = argv[i];
		return exec_runtime(args);
	}
}

/* Every rank's tables and page data of the generation at `path` read and
 * checked (fletcher32), and no region in the runtime's own memory. 0 if
 * it verifies; else -1. Faults go to stderr one a line when `loud`, and
 * the first one to why[] always. Per-rank lines to stdout when `loud`
 * and there are several ranks. */
/* light: a single process's page data is left to the runtime, which
 * checks every chunk as it reads it and itself falls back to an older
 * generation when one fails (CKPTMPI_RESTART_FALLBACK): a restart reads
 * the image once. A job's members must agree on their generation before
 * any of them reads: theirs are read whole here. *pages_checked says
 * which was done. */
static int check_generation(const char *path, struct ck_generation_info *info, int loud,
                            uint64_t *bytes_out, char *why, size_t whylen, int light,
                            int *pages_checked)
{
	struct container_reader *r = container_open(path);
	const char *unit;
	uint64_t bytes = 0;
	int ok = 1, pages;

	why[0] = 0;
	if (!r || container_info(r, info)) {
		snprintf(why, whylen, "%s", container_error());
		if (loud)
			fprintf(stderr, "ckptmpi: %s\n", why);
		if (r)
			container_close(r);
		return -1;
	}
	unit = strcmp(info->mpi_flavour, "job") ? "rank" : "member";
	pages = !light || info->nranks != 1 || strcmp(info->mpi_flavour, "none");
	if (pages_checked)
		*pages_checked = pages;
	/* every rank, even after one failed: say which are damaged */
	for (uint64_t k = 0; k < info->nranks; k++) {
		struct ck_image img;
		char fault[1200] = "";
		int rank_ok = 1;

		if (container_read_image(r, k, &img)) {
			snprintf(fault, sizeof fault, "%s (%s %" PRIu64 ")", container_error(), unit, k);
			rank_ok = 0;
		} else {
			if (pages && container_read_pages(r, k, &img, 0, NULL)) {
				snprintf(fault, sizeof fault, "%s (%s %" PRIu64 ")", container_error(), unit,
				         k);
				rank_ok = 0;
			}
			/* the runtime's own memory must never be in an image */
			for (size_t q = 0; q < img.nregions; q++)
				if (img.regions[q].start < LOWMEM_WINDOW_BASE + LOWMEM_WINDOW_SIZE &&
				    img.regions[q].end > LOWMEM_WINDOW_BASE) {
					snprintf(fault, sizeof fault,
					         "%s: %s %" PRIu64 " region %#" PRIx64
					         " lies in the runtime's memory window",
					         path, unit, k, img.regions[q].start);
					rank_ok = 0;
				}
			if (rank_ok && loud && info->nranks > 1)
				printf("  %s %" PRIu64 ": ok, %" PRIu64 " bytes of data verified\n", unit, k,
				       img.memory_bytes + img.filedata_bytes);
			bytes += img.memory_bytes + img.filedata_bytes;
			ck_image_free(&img);
		}
		if (!rank_ok) {
			if (loud)
				fprintf(stderr, "ckptmpi: %s\n", fault);
			if (!why[0])
				snprintf(why, whylen, "%s", fault);
			ok = 0;
		}
	}
	container_close(r);
	/* an incremental generation needs every generation its pages come
	 * from, each verifying */
	if (ok && info->pages_parent && chain_check(path, info, pages)) {
		snprintf(why, whylen, "%s", container_error());
		if (loud)
			fprintf(stderr, "ckptmpi: %s\n", why);
		ok = 0;
	}
	if (bytes_out)
		*bytes_out = bytes;
	return ok ? 0 : -1;
}

/* The generation `ckptmpi restart` resumes: `want`, or the newest of this
 * user's own that verifies (a damaged newest one is said and passed
 * over; when none verifies, the newest, whose restart then says what is
 * wrong). 0 with *out set, or an exit status after a message. */
static int pick_generation(const char *dir, uint64_t want, int verify, uint64_t *out)
{
	struct generation_entry *g;
	size_t n, own = 0;
	uint64_t newest = 0;
	char first_fault[1400] = "";
	int rc = CLI_NO_GENERATION;

	if (generations_list(dir, &g, &n))
		return fail(CLI_FAILED, "%s", container_error());
	for (size_t i = n; i-- > 0;) {
		struct ck_generation_info info;
		char why[1200];
		int pages;

		if (want && g[i].generation != want)
			continue;
		if (g[i].foreign) {
			if (want) {
				rc = fail(CLI_FAILED, "%s: %s, not restarted", g[i].path, g[i].why);
				goto out;
			}
			fprintf(stderr, "ckptmpi: %s: %s: skipped, not restarted\n", g[i].path, g[i].why);
			continue;
		}
		if (!own++)
			newest = g[i].generation;
		if (want || !verify) {
			*out = g[i].generation;
			rc = CLI_OK;
			goto out;
		}
		if (check_generation(g[i].path, &info, 0, NULL, why, sizeof why, 1, &pages) == 0) {
			if (!pages)
				setenv("CKPTMPI_RESTART_FALLBACK", "1", 1);
			if (first_fault[0]) {
				char when[64];
				format_time(when, sizeof when, (int64_t)info.created_unix);
				fprintf(stderr,
				        "ckptmpi: %s: restarting generation %" PRIu64
				        " of %s instead, the newest that verifies\n",
				        first_fault, info.generation, when);
			}
			*out = g[i].generation;
			rc = CLI_OK;
			goto out;
		}
		if (!first_fault[0])
			snprintf(first_fault, sizeof first_fault, "%s", why);
	}
	if (own) {
		/* none verifies: the newest one's restart says why */
		*out = newest;
		rc = CLI_OK;
	} else if (want) {
		rc = fail(CLI_NO_GENERATION, "%s: no generation %llu", dir, (unsigned long long)want);
	} else {
		rc = fail(CLI_NO_GENERATION, "%s: no checkpoint generations%s", dir,
		          n ? " of yours (only others' files)" : "");
	}
out:
	free(g);
	return rc;
}

/* How launcher `prog` is told the number of tasks: srun -n N, mpiexec
 * -n N (the MPI standard's form), mpirun -np N (OpenMPI's and MPICH's). */
static const char *task_count_option(const char *prog)
{
	const char *base = strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog;
	return strncmp(base, "mpirun", 6) ? "-n" : "-np";
}

/* A generation of an MPI job is restarted by its MPI's launcher, one
 * ckptmpi-runtime-FLAVOUR per rank. CKPTMPI_MPIRUN replaces
 * "mpirun.FLAVOUR": a command line split as the shell would (quotes keep
 * an argument with spaces whole; no command substitution). Returns only
 * when the generation is not an MPI job's (0) or with an exit status. */
static int restart_mpi_job(const char *dir, const char *gen)
{
	struct generation_entry g;
	struct container_reader *r;
	struct ck_generation_info info;
	char rt[PATH_MAX], np[32], launcher[512], **args;
	const char *env = getenv("CKPTMPI_MPIRUN");
	wordexp_t we;
	size_t k = 0;
	int wr;

	/* the runtime says what is wrong, and which files it skips: only a
	 * generation of this user's own is looked at */
	if (generations_pick(dir, strtoull(gen, NULL, 10), &g, NULL) ||
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
		return fail(CLI_NOT_FOUND, "cannot find the runtime next to ckptmpi");
	strcat(rt, "-");
	strcat(rt, info.mpi_flavour);
	if (access(rt, X_OK))
		return fail(CLI_NOT_FOUND, "%s: not found (the generation is of an MPI job under %s)",
		            rt, info.mpi_flavour);
	if (env && *env)
		snprintf(launcher, sizeof launcher, "%s", env);
	else
		snprintf(launcher, sizeof launcher, "mpirun.%s", info.mpi_flavour);
	wr = wordexp(launcher, &we, WRDE_NOCMD | WRDE_UNDEF);
	if (wr) {
		if (!wr || wr == WRDE_NOSPACE)
			wordfree(&we);
		return die("CKPTMPI_MPIRUN=%s: %s", launcher,
		           wr == WRDE_BADCHAR  ? "a character the shell would treat specially "
		                                 "(| & ; < > ( ) { } newline): quote it"
		           : wr == WRDE_CMDSUB ? "no command substitution here"
		           : wr == WRDE_BADVAL ? "an undefined variable"
		           : wr == WRDE_SYNTAX ? "unbalanced quotes"
		                               : "cannot be split into words");
	}
	if (!we.we_wordc) {
		wordfree(&we);
		return die("CKPTMPI_MPIRUN is empty of words");
	}
	if (!(args = calloc(we.we_wordc + 4, sizeof *args)))
		return fail(CLI_FAILED, "out of memory");
	for (; k < we.we_wordc; k++)
		args[k] = we.we_wordv[k];
	snprintf(np, sizeof np, "%llu", (unsigned long long)info.nranks);
	args[k++] = (char *)task_count_option(args[0]);
	args[k++] = np;
	args[k++] = rt;
	args[k] = NULL;
	fprintf(stderr, "ckptmpi: restarting a %s-rank %s job:", np, info.mpi_flavour);
	for (size_t i = 0; i < k; i++)
		fprintf(stderr, strpbrk(args[i], " \t'\"") ? " '%s'" : " %s", args[i]);
	fprintf(stderr, " (with CKPTMPI_DIR and CKPTMPI_RESTART=%s)\n", gen);
	execvp(args[0], args);
	return exec_failed(args[0]);
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


static void restart_help(FILE *f)
{
	fprintf(f,
	        "usage: ckptmpi restart DIR [--generation N] [--interval SECONDS] [--member K]\n"
	        "                           [--no-verify]\n"
	        "\n"
	        "Resume the job checkpointed in DIR, in the foreground: the newest generation\n"
	        "that verifies (a damaged newer one is named and passed over), or generation\n"
	        "N. A generation of an MPI job is started with its MPI's launcher (one rank\n"
	        "per process it had); one of a job without MPI restarts every member, their\n"
	        "output in DIR/restart-G/.\n"
	        "\n"
	        "  -g, --generation N  restart generation N (not verified first)\n"
	        "  -i, --interval S    checkpoint every S seconds from now on\n"
	        "      --member K      restart member K alone (a job started with --job-size)\n"
	        "      --no-verify     restart the newest generation without checking it\n"
	        "                      first (a job's is otherwise read through; a single\n"
	        "                      process's page data is checked as it is restored)\n"
	        "  -h, --help          this help\n"
	        "\n%s"
	        "  CKPTMPI_RESTART_LAZY=0  read the whole image before the program runs (by\n"
	        "                        default it runs at once, its memory coming in behind\n"
	        "                        it; its first system call waits until all is in)\n"
	        "  CKPTMPI_MPIRUN        the launcher of an MPI job's restart, as a shell would\n"
	        "                        split it (default mpirun.FLAVOUR); the task count is\n"
	        "                        given its own way: srun -n N, mpiexec -n N,\n"
	        "                        mpirun -np N\n"
	        "\n%s",
	        job_environment, exit_statuses);
}

static int cmd_restart(int argc, char **argv)
{
	static const struct option opts[] = {
		{"generation", required_argument, NULL, 'g'},
		{"interval", required_argument, NULL, 'i'},
		{"member", required_argument, NULL, 'm'},
		{"no-verify", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0}};
	const char *dir, *member = NULL;
	unsigned long long want = 0, v;
	uint64_t gen;
	char *args[2] = {NULL, NULL}, gs[32];
	int rc, c, verify = 1;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":g:i:h", opts, NULL)) != -1) {
		switch (c) {
		case 'g':
			if (parse_uint(optarg, "--generation", &want))
				return CLI_USAGE;
			if (!want)
				return die("--generation 0: generations are numbered from 1");
			break;
		case 'i':
			if (parse_uint(optarg, "--interval", &v))
				return CLI_USAGE;
			setenv("CKPTMPI_INTERVAL", optarg, 1);
			break;
		case 'm':
			member = optarg;
			if (parse_uint(member, "--member", &v))
				return CLI_USAGE;
			break;
		case 'V':
			verify = 0;
			break;
		case 'h':
			restart_help(stdout);
			return CLI_OK;
		default:
			return bad_option("restart", argv, optopt, c == ':');
		}
	}
	if (argc - optind != 1)
		return die("restart: expected one DIR (ckptmpi restart --help)");
	dir = argv[optind];
	if (check_dir(dir))
		return CLI_USAGE;
	if ((rc = pick_generation(dir, want, verify, &gen)))
		return rc;
	snprintf(gs, sizeof gs, "%llu", (unsigned long long)gen);
	setenv("CKPTMPI_DIR", dir, 1);
	setenv("CKPTMPI_RESTART", gs, 1);
	unsetenv("CKPTMPI_JOB_SIZE");
	unsetenv("CKPTMPI_JOB_MEMBER");
	if ((rc = restart_group(dir, gs, member)) >= 0)
		return rc;
	if ((rc = restart_mpi_job(dir, gs)))
		return rc;
	return exec_runtime(args);
}

/* Per rank of a generation: what each holds. */
struct rank_sizes {
	uint64_t saved, size, pid;
	char host[65];
};

static void ls_help(FILE *f)
{
	fprintf(f,
	        "usage: ckptmpi ls DIR [--json]\n"
	        "\n"
	        "The generations in DIR: number, when it was taken, why (command, signal,\n"
	        "sigterm, interval, api), the file's size, the memory saved and the size of\n"
	        "the process, the ranks (or members) and the program; a line per rank for\n"
	        "jobs of several. Names in DIR that are not your own files are said and\n"
	        "ignored.\n"
	        "\n"
	        "  --json      a JSON array, one object per generation, for scripts\n"
	        "              (created: ISO 8601 with the offset; created_unix: seconds)\n"
	        "  -h, --help  this help\n"
	        "\n"
	        "Exit status: 0, 1 when a generation cannot be read, 2 bad command line or DIR.\n");
}

static void ls_json_entry(const struct generation_entry *g, const struct ck_generation_info *info,
                          const char *error, off_t file_bytes, uint64_t saved, uint64_t size,
                          const struct rank_sizes *rs, uint64_t nrs, int first)
{
	char when[64];

	printf("%s\n  {\"generation\": %" PRIu64 ", \"file\": ", first ? "" : ",", g->generation);
	json_string(stdout, g->path);
	if (error) {
		printf(", \"ok\": false, \"error\": ");
		json_string(stdout, error);
		printf("}");
		return;
	}
	format_time_iso(when, sizeof when, (int64_t)info->created_unix);
	printf(", \"ok\": true, \"created\": \"%s\", \"created_unix\": %" PRIu64 ", \"reason\": ",
	       when, info->created_unix);
	json_string(stdout, info->reason);
	printf(", \"parent\": %" PRIu64 ", \"pages_parent\": %" PRIu64 ", \"chain_depth\": %" PRIu64
	       ", \"file_bytes\": %lld, \"memory_saved\": %" PRIu64
	       ", \"process_size\": %" PRIu64 ", \"mpi\": ",
	       info->parent, info->pages_parent, info->chain_depth, (long long)file_bytes, saved,
	       size);
	json_string(stdout, info->mpi_flavour);
	printf(", \"ranks\": %" PRIu64 ", \"program\": ", info->nranks);
	json_string(stdout, info->program);
	printf(", \"processes\": [");
	for (uint64_t q = 0; q < nrs; q++) {
		printf("%s{\"rank\": %" PRIu64 ", \"host\": ", q ? ", " : "", q);
		json_string(stdout, rs[q].host);
		printf(", \"pid\": %" PRIu64 ", \"memory_saved\": %" PRIu64 ", \"process_size\": %" PRIu64
		       "}",
		       rs[q].pid, rs[q].saved, rs[q].size);
	}
	printf("]}");
}

static int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
	struct generation_entry *g;
	const char *dir;
	size_t n;
	int bad = 0, json = 0, c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'j')
			json = 1;
		else if (c == 'h')
			return ls_help(stdout), CLI_OK;
		else
			return bad_option("ls", argv, optopt, c == ':');
	}
	if (argc - optind != 1)
		return die("ls: expected one DIR (ckptmpi ls --help)");
	dir = argv[optind];
	if (check_dir(dir))
		return CLI_USAGE;
	if (generations_list(dir, &g, &n))
		return fail(CLI_FAILED, "%s", container_error());
	if (json)
		printf("[");
	else
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

		if (g[i].foreign) {
			fprintf(stderr, "ckptmpi: %s: %s: restart and retention ignore it\n", g[i].path,
			        g[i].why);
			if (json) {
				char why[200];
				snprintf(why, sizeof why, "%s: not yours, ignored", g[i].why);
				ls_json_entry(&g[i], NULL, why, 0, 0, 0, NULL, 0, i == 0);
			}
		}
		r = container_open(g[i].path);
		if (!r || container_info(r, &info)) {
			fprintf(stderr, "ckptmpi: %s\n", container_error());
			if (json && !g[i].foreign)
				ls_json_entry(&g[i], NULL, container_error(), 0, 0, 0, NULL, 0, i == 0);
			if (r)
				container_close(r);
			bad |= !g[i].foreign; /* others' files are not the job's fault */
			continue;
		}
		if (g[i].foreign) {
			container_close(r);
			continue;
		}
		if (!(rs = calloc(info.nranks, sizeof *rs))) {
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
			rs[k].saved = img.memory_bytes;
			rs[k].size = img.proc.upper_size;
			rs[k].pid = img.proc.pid;
			snprintf(rs[k].host, sizeof rs[k].host, "%s", img.proc.host ? img.proc.host : "?");
			ck_image_free(&img);
		}
		container_close(r);
		if (stat(g[i].path, &st) < 0)
			st.st_size = -1;
		if (json) {
			ls_json_entry(&g[i], &info, NULL, st.st_size, saved, size, rs, k, i == 0);
			free(rs);
			continue;
		}
		format_time(when, sizeof when, (int64_t)info.created_unix);
		printf("%-10" PRIu64 " %-20s %-9s %14lld %14" PRIu64 " %14" PRIu64 " %6" PRIu64 " %s\n",
		       info.generation, when, info.reason, (long long)st.st_size, saved, size,
		       info.nranks, info.program);
		/* the ranks read before a failure */
		for (uint64_t q = 0; info.nranks > 1 && q < k; q++)
			printf("  %s %-*" PRIu64 " %14s %14" PRIu64 " %14" PRIu64 "  host %s pid %" PRIu64
			       "\n", unit, 38 - (int)strlen(unit), q, "", rs[q].saved, rs[q].size, rs[q].host, rs[q].pid);
		free(rs);
	}
	if (json)
		printf("%s]\n", n ? "\n" : "");
	free(g);
	return bad ? CLI_FAILED : CLI_OK;
}

static void verify_help(FILE *f)
{
	fprintf(f,
	        "usage: ckptmpi verify DIR [--generation N]\n"
	        "\n"
	        "Read every generation in DIR (or generation N) completely: the tables and\n"
	        "page data of every rank against their checksums. Prints a line per\n"
	        "generation that verifies; names the file, rank and fault of one that does\n"
	        "not.\n"
	        "\n"
	        "  -g, --generation N  only generation N\n"
	        "  -h, --help          this help\n"
	        "\n"
	        "Exit status: 0 all verify, 1 damage found, 3 no generation (N), 2 bad\n"
	        "command line or DIR.\n");
}

static int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {{"generation", required_argument, NULL, 'g'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {0, 0, 0, 0}};
	const char *dir;
	unsigned long long want = 0;
	struct generation_entry *g;
	size_t n, checked = 0;
	int bad = 0, c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":g:h", opts, NULL)) != -1) {
		if (c == 'g') {
			if (parse_uint(optarg, "--generation", &want))
				return CLI_USAGE;
		} else if (c == 'h') {
			return verify_help(stdout), CLI_OK;
		} else {
			return bad_option("verify", argv, optopt, c == ':');
		}
	}
	if (argc - optind != 1)
		return die("verify: expected one DIR (ckptmpi verify --help)");
	dir = argv[optind];
	if (check_dir(dir))
		return CLI_USAGE;
	if (generations_list(dir, &g, &n))
		return fail(CLI_FAILED, "%s", container_error());
	for (size_t i = 0; i < n; i++) {
		struct ck_generation_info info;
		uint64_t bytes = 0;
		char why[1200];

		if (want && g[i].generation != want)
			continue;
		checked++;
		if (g[i].foreign)
			fprintf(stderr, "ckptmpi: %s: %s: restart and retention ignore it\n", g[i].path,
			        g[i].why);
		if (check_generation(g[i].path, &info, 1, &bytes, why, sizeof why, 0, NULL)) {
			bad |= !g[i].foreign; /* others' files are not the job's fault */
			continue;
		}
		printf("generation %" PRIu64 ": ok, %" PRIu64 " %s(s), %" PRIu64
		       " bytes of data verified\n",
		       info.generation, info.nranks, strcmp(info.mpi_flavour, "job") ? "rank" : "member",
		       bytes);
	}
	free(g);
	if (want && !checked)
		return fail(CLI_NO_GENERATION, "%s: no generation %llu", dir, want);
	if (!checked)
		return fail(CLI_NO_GENERATION, "%s: no checkpoint generations", dir);
	return bad ? CLI_FAILED : CLI_OK;
}

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv); /* argv[0]: the command's name */
} commands[] = {
	{"run", cmd_run},       {"restart", cmd_restart}, {"checkpoint", cmd_checkpoint},
	{"status", cmd_status}, {"ls", cmd_ls},           {"verify", cmd_verify},
};

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	if (!cmd) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("ckptmpi %s (container format %u)\n", CKPTMPI_VERSION, CK_FORMAT_VERSION);
		return CLI_OK;
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		if (argc > 2 && strcmp(cmd, "help") == 0) {
			/* help COMMAND: COMMAND --help */
			char *hargv[3] = {argv[2], "--help", NULL};
			for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
				if (!strcmp(argv[2], commands[i].name))
					return commands[i].fn(2, hargv);
			if (!strcmp(argv[2], "debug"))
				return cmd_debug(1, hargv + 1);
			if (!strcmp(argv[2], "bisect"))
				return cmd_bisect(1, hargv + 1);
			return die("help: no command '%s' (ckptmpi --help lists them)", argv[2]);
		}
		usage(stdout);
		return CLI_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	if (!strcmp(cmd, "debug"))
		return cmd_debug(argc - 2, argv + 2);
	if (!strcmp(cmd, "bisect"))
		return cmd_bisect(argc - 2, argv + 2);
	if (cmd[0] == '-')
		return die("unknown option %s (ckptmpi --help lists the commands and options)", cmd);
	return die("unknown command '%s' (ckptmpi --help lists them)", cmd);
}
