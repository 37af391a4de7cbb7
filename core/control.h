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
	int trigger_signal;   /* CKPTMPI_SIGNAL, default SIGUSR1 */
	char **argv;          /* program argv (for the container) */
};

/* Read CKPTMPI_DIR, CKPTMPI_INTERVAL, CKPTMPI_KEEP, CKPTMPI_SIGNAL. */
int control_config_from_env(struct control_config *c, int create_dir);
/* Start the control thread; signals stay blocked in it. */
int control_start(const struct control_config *c);
/* The upper half runs from now on: checkpoints may park it. */
void control_upper_started(void);
/* Restart count, saved in each image for ckptmpi_checkpoint() waiters. */
uint64_t control_link_epoch(void);

#endif
