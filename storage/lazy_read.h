/* Page data read behind the running program (a lazy restart).
 *
 * While keeping is on, the chunk reader (storage/chunk_read.c) leaves
 * every /memory chunk whose bytes all go to the given ranges for later,
 * and delivers the bytes other chunks have there through a userfaultfd
 * (UFFDIO_COPY) on which the caller registered those ranges for missing
 * pages: nothing there is written by an ordinary store, so a page is
 * either absent (a touch waits for the loader) or whole and checked.
 * ck_lazy_load then reads the kept chunks, a touched page's chunk first,
 * each checked (fletcher32) before a byte of it is placed. */
#ifndef CKPTMPI_STORAGE_LAZY_READ_H
#define CKPTMPI_STORAGE_LAZY_READ_H

#include <stddef.h>
#include <stdint.h>

struct ck_lazy_range { uint64_t start, end; };

/* Keep from now on. ranges: sorted, disjoint, page-aligned (copied).
 * uffd: registered on them for missing pages (and write protection when
 * wp: pages are placed write-protected, so the write tracking sees only
 * the program's writes). own_fd: takes each file descriptor the loader
 * keeps open and returns the one to use (the runtime moves it among its
 * own). 0, or -1 (out of memory). */
int ck_lazy_begin(int uffd, int wp, const struct ck_lazy_range *ranges, size_t n,
                  int (*own_fd)(int fd));
/* 1 while keeping is on */
int ck_lazy_keeping(void);
/* 1 when a read failed because its file cannot be read behind the
 * program (filters or chunks the chunk reader leaves to HDF5) */
int ck_lazy_refused(void);
/* Forget everything kept (the caller unmapped the ranges), keeping off. */
void ck_lazy_reset(void);
/* Keeping off; what was kept stays for ck_lazy_load. */
void ck_lazy_stop_keeping(void);
/* Bytes the kept chunks hold for memory. */
uint64_t ck_lazy_pending(void);

/* Read every kept chunk on `workers` threads (touched pages' chunks
 * first) and place its bytes. Until ck_lazy_stream, only the chunks of
 * touched pages: the restart's own last steps (the plugins' objects
 * re-created, an MPI job's collectives among them) are not slowed by the
 * loaders of every member of a job sharing its cores. 0, or -1 with
 * container_error() naming the file, the chunk and the rank. progress:
 * bytes placed of the total. */
int ck_lazy_load(unsigned workers, void (*progress)(uint64_t done, uint64_t total));
/* The rest may come in now (the program runs). Any thread, any time. */
void ck_lazy_stream(void);
/* After ck_lazy_load: answer touches of pages nothing stored (zeros)
 * until the process ends. Never returns. */
void ck_lazy_serve(void) __attribute__((noreturn));

#endif
