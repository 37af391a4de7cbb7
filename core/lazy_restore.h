/* A lazy restart: the program runs again before its memory is all in.
 *
 * Large private anonymous regions (the heap, big arrays) are left to a
 * loader thread that reads their chunks behind the running program
 * (storage/lazy_read.h), a touched page's chunk first; a thread touching
 * a page not yet in waits for it (userfaultfd, user-mode faults). The
 * kernel's own touches cannot wait that way (this kernel allows
 * userfaultfd only for user-mode faults), so until every chunk is in and
 * checked the program's threads are held at their first system call
 * (syscall user dispatch, core/restorer.c), and what the kernel touches
 * without one (stacks, thread areas, rseq, robust lists) is read first.
 * So nothing the program does is seen outside before its memory is known
 * good: a chunk that fails its checksum restarts the runtime, which reads
 * the generation whole and falls back as an ordinary restart does (a
 * job's member ends instead, as an ordinary restart of a job does).
 * The default for one process; CKPTMPI_RESTART_LAZY=0 turns it off. */
#ifndef CKPTMPI_CORE_LAZY_RESTORE_H
#define CKPTMPI_CORE_LAZY_RESTORE_H

#include "core/image.h"

/* runtime start: its argv, for the restart whole after a bad chunk */
void lazy_restore_save_argv(char **argv);
/* The regions of img (mapped, nothing read) to leave to the loader,
 * registered; 1 when some are (the page read then keeps their chunks),
 * 0 when the restart reads everything now, -1 on failure (logged).
 * allowed: the process may be restarted lazily (one process, no plugin
 * state in its memory, lazy asked for). */
int lazy_restore_prepare(const struct ck_image *img, int allowed);
/* Undo prepare (the generation is unmapped: a fallback). */
void lazy_restore_abandon(void);
/* 1 when a region was left to the loader (the restart goes lazily) */
int lazy_restore_active(void);
/* 1 if [start, end) is left to the loader (its tracking is set up) */
int lazy_restore_covers(uint64_t start, uint64_t end);
/* With dispositions restored, before the threads run: the hold's SIGSYS
 * handler, and the loader thread started; once the memory is in, it
 * writes `notice` (what the run continues, one line) to stderr. A chunk
 * that fails its check restarts the runtime read whole when `alone`,
 * else ends the process (a job's member cannot start again by itself).
 * 0, or -1. */
int lazy_restore_start(const char *path, uint64_t generation, const char *notice, int alone);
/* The threads run next: the loader reads on beyond what is touched, and
 * it is said (a restart's timeline, CKPTMPI_VERBOSE=1) */
void lazy_restore_running(void);
/* Control, before parking the program: wait until everything is in. */
void lazy_restore_wait(void);
/* Control, every program thread parked, before the capture: the
 * program's own SIGSYS disposition again. */
void lazy_restore_settle(void);

#endif
