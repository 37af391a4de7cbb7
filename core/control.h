/* The control thread: a lower-half thread that waits for checkpoint
 * requests (signal, interval, `ckptmpi checkpoint DIR`) and carries them
 * out: park the upper half, capture, write, commit, release. */
#ifndef CKPTMPI_CORE_CONTROL_H
#define CKPTMPI_CORE_CONTROL_H

#include <stdint.h>

struct control_config {
	char dir[4096];       /* absolute */
	unsigned interval;    /* seconds, 0 = none */
	unsigned keep;        /* generations kept */
	unsigned full_every;  /* CKPTMPI_FULL_EVERY: a full generation every K (1: all full) */
	int trigger_signal;   /* CKPTMPI_SIGNAL, default SIGUSR1 */
	char **argv;          /* program argv (for the container) */
	int term_checkpoints; /* CKPTMPI_TERM=checkpoint (default): SIGTERM checkpoints, then exits */
	unsigned term_timeout;/* CKPTMPI_TERM_TIMEOUT: seconds before a SIGTERM ends the job anyway */
	int background;       /* CKPTMPI_BACKGROUND (default 1): images written behind the program */
	int restart_lazy;     /* CKPTMPI_RESTART_LAZY (default 1): a restart reads memory behind the program */
};

/* Exit statuses after SIGTERM: the checkpoint was committed, then the
 * process stopped (as a process killed by SIGTERM reports it), or it
 * stopped without one (the checkpoint failed or never came). */
#define CKPTMPI_EXIT_TERM_CHECKPOINTED 143
#define CKPTMPI_EXIT_TERM_NO_CHECKPOINT 75

/* This process's rank as the MPI launcher set it (0 when not launched by one). */
int launcher_rank(void);
/* The generation this process was restarted from (0: not restarted). */
uint64_t control_restored_generation(void);
/* Read and check CKPTMPI_DIR (its control socket must fit), CKPTMPI_INTERVAL,
 * CKPTMPI_KEEP, CKPTMPI_FULL_EVERY, CKPTMPI_VERBOSE, CKPTMPI_COMPRESS, CKPTMPI_SIGNAL,
 * CKPTMPI_TERM, CKPTMPI_TERM_TIMEOUT, CKPTMPI_BACKGROUND. */
int control_config_from_env(struct control_config *c, int create_dir, int dir_optional);
/* MPI builds: publish the real MPI's function table to the upper half. */
void control_set_mpi_predefined(const uint64_t *addrs, uint64_t n);
void control_set_mpi(void **table, uint64_t nfuncs, int provided, int flavour, uint64_t main_fs);
/* Start the control thread; signals stay blocked in it. 0, or -1 (said
 * why), or CONTROL_START_BUSY: another job of this user's runs with the
 * directory (rank 0 found its control socket answering; said). */
#define CONTROL_START_BUSY (-2)
int control_start(const struct control_config *c);
/* The upper half runs from now on: checkpoints may park it. */
void control_upper_started(void);
/* Restart count, saved in each image for ckptmpi_checkpoint() waiters. */
uint64_t control_link_epoch(void);
/* Publish where the upper loader is and its r_debug (see core/link.h). */
void control_set_upper_loader(uint64_t interp_base, uint64_t r_debug);
/* the link the upper half's libraries publish their state through */
const struct ckptmpi_link *control_link(void);

#endif
