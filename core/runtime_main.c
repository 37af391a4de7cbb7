/* ckptmpi-runtime: the lower half. Started by `ckptmpi run`/`restart`
 * (later by mpirun), it fixes its own layout, routes its memory into the
 * lower window, starts the control thread, then either loads the program
 * as the upper half or rebuilds the upper half from a generation.
 *
 *   ckptmpi-runtime PROGRAM [ARGS...]        (CKPTMPI_DIR set)
 *   CKPTMPI_RESTART=latest|N ckptmpi-runtime (CKPTMPI_DIR set)
 *
 * The runtime cannot run under AddressSanitizer: ASan's shadow memory and
 * interceptors would fight the router and the foreign upper half. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/control.h"
#include "core/hooks.h"
#include "core/lazy_restore.h"
#include "core/loader.h"
#include "core/log.h"
#include "core/lowmem.h"
#include "core/park.h"
#include "core/procstate.h"
#include "core/restore.h"
#include "core/runtime_info.h"
#include "storage/container.h"
#include "storage/image_chain.h"
#include "storage/shm_ledger.h"

extern char **environ;


static void ensure_fixed_layout(char **argv)
{
	int p = personality(0xffffffff);
	int env_changed = hooks_env();

	if (p < 0 || ((p & ADDR_NO_RANDOMIZE) && !env_changed))
		return;
	if (!(p & ADDR_NO_RANDOMIZE) && personality((unsigned long)p | ADDR_NO_RANDOMIZE) < 0) {
		log_error("personality(ADDR_NO_RANDOMIZE): %s", strerror(errno));
		exit(127);
	}
	execv("/proc/self/exe", argv);
	log_error("re-exec without address randomisation: %s", strerror(errno));
	exit(127);
}

static void skipped_generation(const struct generation_entry *e)
{
	if (launcher_rank() == 0)
		log_error("%s: %s: skipped, not restarted", e->path, e->why);
}

/* Exit statuses of the runtime's own refusals (tools/cli.h has the table):
 * a bad setting, no generation to restart; the rest is 127. */
#define EXIT_BAD_SETTING 2
#define EXIT_NO_GENERATION 3

/* The generation's file and the tables of every rank read back (the page
 * data is read, and checked, by the restart itself). The same answer on
 * every rank of a job: each reads the same. */
static int tables_read(const char *path, struct ck_generation_info *info, char *why, size_t len)
{
	struct container_reader *r = container_open_own(path);
	int ok = r && container_info(r, info) == 0;

	for (uint64_t k = 0; ok && k < info->nranks; k++) {
		struct ck_image img;
		if (container_read_image(r, k, &img))
			ok = 0;
		else
			ck_image_free(&img);
	}
	/* and those of the generations its pages come from */
	if (ok && info->pages_parent && chain_check(path, info, 0))
		ok = 0;
	if (!ok)
		snprintf(why, len, "%s", container_error());
	if (r)
		container_close(r);
	return ok ? 0 : -1;
}

/* Only a generation of this user's own (see generations_pick); with
 * "latest", the newest whose tables read back (a damaged newer one is
 * named and passed over). 0, or an exit status after a message. */
static int pick_generation(const char *dir, const char *which, int quiet_if_none, char *path,
                           size_t len, struct ck_generation_info *info)
{
	struct generation_entry g, *v;
	uint64_t want = 0;
	size_t n;
	char why[1200], bad[1200] = "";
	int said = launcher_rank() != 0;

	if (strcmp(which, "latest")) {
		char *end;
		want = strtoull(which, &end, 10);
		if (*end || !want) {
			log_error("CKPTMPI_RESTART=%s: expected latest or a generation number", which);
			return EXIT_BAD_SETTING;
		}
	}
	if (generations_pick(dir, want, &g, skipped_generation)) {
		int none = strstr(container_error(), "no generation") ||
		           strstr(container_error(), "no checkpoint generations");
		if (!(none && quiet_if_none))
			log_error("%s", container_error());
		return none ? EXIT_NO_GENERATION : 127;
	}
	snprintf(path, len, "%s", g.path);
	if (want || tables_read(g.path, info, bad, sizeof bad) == 0 || generations_list(dir, &v, &n))
		return 0;
	for (size_t i = n; i-- > 0;) {
		if (v[i].foreign || v[i].generation >= g.generation)
			continue;
		if (tables_read(v[i].path, info, why, sizeof why)) {
			if (!said)
				log_error("%s", why);
			continue;
		}
		if (!said)
			log_error("%s: passed over: restarting %s, the newest generation that reads back",
			          bad, v[i].path);
		snprintf(path, len, "%s", v[i].path);
		break;
	}
	free(v);
	/* none reads back: the newest one's restart says what is wrong */
	return 0;
}

/* A restart with a program named: it must be the generation's, with the
 * same arguments (else another program's state would be resumed). */
static int same_program(const char *gen_path, const struct ck_generation_info *info, char **argv)
{
	char want[4096], have[4096], resolved[4096];
	size_t off = 0;
	int k = 1, same;

	if (loader_resolve(argv[0], resolved, sizeof resolved))
		return 0;
	if (!realpath(resolved, have))
		snprintf(have, sizeof have, "%s", resolved);
	if (!realpath(info->program, want))
		snprintf(want, sizeof want, "%s", info->program);
	same = !strcmp(want, have);
	/* argv[0] as typed may differ; the arguments may not */
	if (info->argv_len)
		off = strnlen(info->argv, info->argv_len) + 1;
	for (; same && off < info->argv_len; off += strnlen(info->argv + off, info->argv_len - off) + 1)
		same = argv[k] && !strcmp(argv[k++], info->argv + off);
	same = same && !argv[k];
	if (!same)
		log_error("%s: a checkpoint of %s, not of the program given (%s%s): not restarted "
		          "(start it without CKPTMPI_RESTART, or with another CKPTMPI_DIR)",
		          gen_path, info->program, have,
		          strcmp(want, have) ? "" : " with other arguments");
	return same;
}

/* The program (its resolved path, or the restarted generation's): what
 * the plugins may read before it runs (pmpi/lower_mpi.c: its MPI_Init) */
static char the_program[4096];

const char *runtime_program(void) { return the_program; }

/* The generation this restart resumes, checked: pick_generation, and
 * same_program when a program is named. 0 with path set, or an exit
 * status after a message. Done in a child: reading a container (HDF5, its
 * memory, a deep stack) here, before the runtime routes its memory into
 * the lower window, would leave mappings where the restart must map the
 * generation's regions back ("cannot map ...: File exists"). */
static int choose_generation(const char *dir, const char *which, int quiet_if_none,
                             char **program_argv, char *path, size_t len)
{
	int p[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		log_error("pipe: %s", strerror(errno));
		return 127;
	}
	if ((pid = fork()) < 0) {
		log_error("fork: %s", strerror(errno));
		return 127;
	}
	if (pid == 0) {
		struct ck_generation_info info;
		char why[1200];
		int rc = pick_generation(dir, which, quiet_if_none, path, len, &info);

		char msg[16384];
		size_t m = 0;

		close(p[0]);
		/* the generation's own facts: for the comparison, and the line a
		 * successful restart says (restore.c) */
		if (!rc && tables_read(path, &info, why, sizeof why) == 0) {
			char when[32];
			time_t t = (time_t)info.created_unix;
			struct tm tm;

			if (program_argv && !same_program(path, &info, program_argv))
				rc = EXIT_BAD_SETTING;
			if (!localtime_r(&t, &tm) || !strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm))
				snprintf(when, sizeof when, "%llu", (unsigned long long)info.created_unix);
			m = (size_t)snprintf(msg, sizeof msg, "%s%cckptmpi[%d]: resumed generation %llu of "
			                     "%s (%s) from %s%c%s", path, 0, launcher_rank(),
			                     (unsigned long long)info.generation, when, info.reason, path,
			                     0, info.program);
		} else if (!rc) {
			m = (size_t)snprintf(msg, sizeof msg, "%s%c", path, 0);
		}
		if (m >= sizeof msg)
			m = sizeof msg - 1;
		if (!rc && write(p[1], msg, m) != (ssize_t)m)
			rc = 127;
		_exit(rc);
	}
	close(p[1]);
	{
		char msg[16384];

		while ((size_t)got < sizeof msg - 1 &&
		       ((n = read(p[0], msg + got, sizeof msg - 1 - (size_t)got)) > 0 ||
		        (n < 0 && errno == EINTR)))
			got += n > 0 ? n : 0;
		msg[got] = 0;
		if (strlen(msg) >= len) {
			log_error("%.200s...: path too long", msg);
			return 127;
		}
		memcpy(path, msg, strlen(msg) + 1);
		if ((size_t)got > strlen(msg) + 1) {
			const char *notice = msg + strlen(msg) + 1;
			restore_set_notice(notice);
			if ((size_t)(notice - msg) + strlen(notice) + 1 < (size_t)got)
				snprintf(the_program, sizeof the_program, "%s",
				         notice + strlen(notice) + 1);
		}
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR) {
			log_error("waitpid: %s", strerror(errno));
			return 127;
		}
	if (!WIFEXITED(status))
		return 127;
	if (!WEXITSTATUS(status) && !got)
		return 127;
	return WEXITSTATUS(status);
}

/* Does this process start together with other members (an MPI job)? */
static int starts_together(void)
{
	const struct ckpt_job_ops *job = hooks_job_registered();
	return job && job->start_agree;
}

/* The members of a job that start together wait for each other in init
 * (MPI_Init): a member that could not start (rank 0 finding another job
 * of this user's on DIR, above all: an orphan of a previous run) would
 * leave the others waiting for it for ever. So every member says how its
 * start went, once init is done, and if one failed every member stops,
 * saying why. 0: all started. */
static int start_agreed(int mine, const char *dir)
{
	const struct ckpt_job_ops *job = hooks_job_registered();
	int n = job->size(), me = job->rank(), *all;

	if (n <= 1)
		return mine != 0;
	if (!(all = calloc((size_t)n, sizeof *all))) {
		log_error("out of memory");
		return -1;
	}
	if (job->start_agree(mine, all)) {
		free(all);
		return -1;
	}
	for (int k = 0; k < n; k++) {
		if (!all[k])
			continue;
		if (k == me)
			; /* said already */
		else if (all[k] == CONTROL_START_BUSY)
			log_error("%s: another job is running with this directory (rank %d found its "
			          "control socket answering): not started", dir, k);
		else
			log_error("rank %d could not start (its message says why): not started", k);
		/* every member has said so before any exits: a launcher ends the
		 * others at the first exit, before they could */
		(void)job->start_agree(mine, all);
		free(all);
		return -1;
	}
	free(all);
	return 0;
}

int main(int argc, char **argv)
{
	struct control_config cfg;
	const char *restart = getenv("CKPTMPI_RESTART");
	char program[4096], gen_path[4096];
	int fresh_if_none, started;

	log_init(launcher_rank());
	ensure_fixed_layout(argv);
	lazy_restore_save_argv(argv);
	procstate_note_inherited_fds();
	if (!restart && argc < 2) {
		fprintf(stderr, "usage: ckptmpi-runtime PROGRAM [ARGS...] (see `ckptmpi run`)\n");
		return 2;
	}
	/* a member of a job of several (an MPI rank) may run without a
	 * checkpoint directory; with a program named, CKPTMPI_RESTART=latest
	 * resumes it if DIR holds a generation, else starts it fresh */
	fresh_if_none = restart && argc >= 2 && !strcmp(restart, "latest");
	if (control_config_from_env(&cfg, !restart || fresh_if_none, hooks_job_plugin() && !restart))
		return EXIT_BAD_SETTING;
	if (restart) {
		int rc = choose_generation(cfg.dir, restart, fresh_if_none, argc >= 2 ? argv + 1 : NULL,
		                           gen_path, sizeof gen_path);
		if (rc == EXIT_NO_GENERATION && fresh_if_none) {
			if (launcher_rank() == 0)
				log_notice("no generation in %s: %s starts fresh", cfg.dir, argv[1]);
			unsetenv("CKPTMPI_RESTART");
			restart = NULL;
		} else if (rc) {
			return rc;
		}
	}
	cfg.argv = restart ? NULL : argv + 1;
	/* what writers killed in earlier runs left (this user's, dead ones') */
	if (cfg.dir[0] && launcher_rank() == 0 && generations_remove_stale(cfg.dir))
		log_error("%s", container_error());
	/* and the shared memory of their lower halves (an MPI's segments) */
	if (cfg.dir[0]) {
		unsigned removed = 0;
		if (shm_ledger_clean(cfg.dir, &removed))
			log_error("%s", container_error());
		else if (removed)
			log_info("removed %u shared-memory file(s) that processes killed earlier left in "
			         "/dev/shm", removed);
	}
	if (!restart && loader_resolve(argv[1], program, sizeof program))
		return 127;
	if (!restart)
		snprintf(the_program, sizeof the_program, "%s", program);
	if (!restart)
		hooks_upper_preload();
	if (!restart && getenv("CKPTMPI_PRELOAD")) {
		/* preloads meant for the application (the MPI shim) */
		setenv("LD_PRELOAD", getenv("CKPTMPI_PRELOAD"), 1);
		unsetenv("CKPTMPI_PRELOAD");
	}
	if (!restart && getenv("CKPTMPI_ARGV0")) {
		/* re-executed by the MPI shim: keep the rank's own argv[0] */
		argv[1] = strdup(getenv("CKPTMPI_ARGV0"));
		unsetenv("CKPTMPI_ARGV0");
	}

	if (lowmem_init() || lowmem_block_brk() || park_install())
		return 127;
	/* HDF5's set-up before the snapshot: it is lower memory */
	if (storage_init()) {
		log_error("%s", container_error());
		return 127;
	}
	started = control_start(&cfg);
	if (started && !starts_together())
		return 127;
	/* the plugins' lower halves (the real MPI) before the program starts;
	 * not for an inspection (restore.h), which must run without mpirun */
	if (restore_inspect_rank() == -2)
		return EXIT_BAD_SETTING;
	if (restore_inspect_rank() >= 0 && !restart) {
		log_error("CKPTMPI_INSPECT_RANK is for a restart (CKPTMPI_RESTART) to inspect");
		return EXIT_BAD_SETTING;
	}
	if (restore_inspect_rank() < 0) {
		/* the shared memory the plugins' lower halves make for the job,
		 * listed for the next run on DIR should this process be killed */
		static struct shm_set before;
		shm_ledger_snapshot(&before);
		if (hooks_init())
			return 127;
		if (shm_ledger_record(cfg.dir, &before))
			log_error("%s", container_error());
	}
	/* a restart as a fresh start: the restored program is the same job
	 * (an inspection runs one rank without mpirun: nobody to agree with) */
	if (starts_together() && restore_inspect_rank() < 0 && start_agreed(started, cfg.dir))
		return 127;
	procstate_register_open_fds();
	if (lowmem_mark_all_current())
		return 127;

	if (restart) {
		restore_from(gen_path, cfg.restart_lazy);
		return 127;
	}
	/* ps, top and pgrep show the program, not the runtime (the lower
	 * half's threads, started already, keep the runtime's name) */
	if (prctl(PR_SET_NAME, strrchr(program, '/') ? strrchr(program, '/') + 1 : program, 0, 0, 0))
		log_debug("prctl(PR_SET_NAME): %s", strerror(errno));
	loader_start_upper(program, argv + 1, environ);
	return 127;
}
