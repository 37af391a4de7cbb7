/* ckptmpi.h: optional hooks for applications running under ckptmpi.
 * Nothing here is needed for checkpointing: an unmodified program is
 * checkpointed transparently. Link with `pkg-config --libs ckptmpi`. */
#ifndef CKPTMPI_H
#define CKPTMPI_H

#ifdef __cplusplus
extern "C" {
#endif

#define CKPTMPI_RESUMED 0    /* the checkpoint was taken, the run goes on */
#define CKPTMPI_RESTARTED 1  /* this process was restarted from that checkpoint */

/* Take a checkpoint now, at this exact point of the program, and wait for
 * it to be committed. Returns CKPTMPI_RESUMED or CKPTMPI_RESTARTED, or -1
 * (errno set) if the program is not running under ckptmpi or the
 * checkpoint failed. */
int ckptmpi_checkpoint(void);

/* Non-zero when running under the ckptmpi runtime. */
int ckptmpi_active(void);

#ifdef __cplusplus
}
#endif

#endif
