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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <unistd.h>

#include "core/control.h"
#include "core/hooks.h"
#include "core/loader.h"
#include "core/log.h"
#include "core/lowmem.h"
#include "core/park.h"
#include "core/procstate.h"
#include "core/restore.h"
#include "storage/container.h"

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

/* Only a generation of this user's own (see generations_pick). */
static int pick_generation(const char *dir, const char *which, char *path, size_t len)
{
	struct generation_entry g;
	uint64_t want = 0;

	if (strcmp(which, "latest")) {
		char *end;
		want = strtoull(which, &end, 10);
		if (*end || !want) {
			log_error("CKPTMPI_RESTART=%s: expected latest or a generation number", which);
			return -1;
		}
	}
	if (generations_pick(dir, want, &g, skipped_generation)) {
		log_error("%s", container_error());
		return -1;
	}
	snprintf(path, len, "%s", g.path);
	return 0;
}

int main(int argc, char **argv)
{
	struct control_config cfg;
	const char *restart = getenv("CKPTMPI_RESTART");
	char program[4096], gen_path[4096];

	log_init(launcher_rank());
	ensure_fixed_layout(argv);
	procstate_note_inherited_fds();
	if (!restart && argc < 2) {
		fprintf(stderr, "usage: ckptmpi-runtime PROGRAM [ARGS...] (see `ckptmpi run`)\n");
		return 2;
	}
	/* a member of a job of several (an MPI rank) may run without a
	 * checkpoint directory */
	if (control_config_from_env(&cfg, !restart, hooks_job_plugin() && !restart))
		return 127;
	cfg.argv = restart ? NULL : argv + 1;
	if (restart && pick_generation(cfg.dir, restart, gen_path, sizeof gen_path))
		return 127;
	/* what writers killed in earlier runs left (this user's, dead ones') */
	if (cfg.dir[0] && launcher_rank() == 0 && generations_remove_stale(cfg.dir))
		log_error("%s", container_error());
	if (!restart && loader_resolve(argv[1], program, sizeof program))
		return 127;
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
	if (control_start(&cfg))
		return 127;
	/* the plugins' lower halves (the real MPI) before the program starts */
	if (hooks_init())
		return 127;
	procstate_register_open_fds();
	if (lowmem_mark_all_current())
		return 127;

	if (restart) {
		restore_from(gen_path);
		return 127;
	}
	loader_start_upper(program, argv + 1, environ);
	return 127;
}
