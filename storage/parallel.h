/* Chunks compressed, read and checked on every core: a parallel loop for
 * the writers and the reader of page data. */
#ifndef CKPTMPI_STORAGE_PARALLEL_H
#define CKPTMPI_STORAGE_PARALLEL_H

/* Threads worth running: the CPUs this process may use, at most 8. */
unsigned ck_workers(void);

/* fn(arg, w) for w in [0, n): the caller runs w = 0, n - 1 threads the
 * others (fewer if threads cannot be had: fn must share its work out, e.g.
 * through an atomic counter, rather than expect all n). Returns -1 if any
 * fn did, else 0. */
int ck_parallel(unsigned n, int (*fn)(void *arg, unsigned w), void *arg);

#endif
