/* Building the upper half: a second copy of the program's dynamic loader
 * is mapped into this process and started in "program" mode on a stack of
 * its own, so it loads the application and its libraries next to the
 * runtime, with their own libc and TLS. */
#ifndef CKPTMPI_CORE_LOADER_H
#define CKPTMPI_CORE_LOADER_H

#include <stddef.h>
#include <stdint.h>

struct upper_facts {
	char program[4096];     /* absolute path of the application */
	char interp[4096];      /* its PT_INTERP */
	uint64_t interp_base;   /* where the upper loader was mapped, 0 after restart */
	int64_t rseq_offset;    /* upper glibc's rseq area offset from the TCB */
	uint64_t rseq_size;     /* 0: the upper half does not use rseq */
	uint64_t tid_offset;    /* offset of glibc's cached tid in struct pthread */
};

extern struct upper_facts upper;

/* Resolve PROGRAM like execvp would. Returns 0 or -1 with a message. */
int loader_resolve(const char *program, char *out, size_t len);
/* Map the upper loader, build its stack and jump to it on this thread.
 * Returns only on failure (with a message printed). */
int loader_start_upper(const char *path, char *const argv[], char *const envp[]);
/* Read the upper glibc's rseq facts once it runs (no-op after restart). */
void loader_read_rseq_facts(void);

#endif
