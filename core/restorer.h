/* The last step of a restart, per thread: switch to the saved thread
 * pointer, re-register what the kernel keeps per thread, and rt_sigreturn
 * onto the saved signal frame. Built freestanding (no stack protector, no
 * sanitizers, no libc): after the thread pointer changes, nothing of the
 * lower half's TLS may be touched. */
#ifndef CKPTMPI_CORE_RESTORER_H
#define CKPTMPI_CORE_RESTORER_H

#include <stdint.h>

struct thread_restore_args {
	uint64_t fs_base, gs_base;
	uint64_t uc;             /* saved ucontext: rsp for rt_sigreturn */
	uint64_t tid_addr;       /* glibc's cached tid, also clear_child_tid */
	uint64_t robust_head, robust_len;
	uint64_t rseq_addr, rseq_len;
	uint64_t is_main;
	uint64_t hold;           /* its system calls wait for restorer_hold_release */
};

/* A lazy restart (core/lazy_restore.c): a thread restored with `hold`
 * runs, but its first system call (syscall user dispatch: every one made
 * outside this file's hold section raises SIGSYS) waits in
 * restorer_hold_sigsys until restorer_hold_release, then is made as it
 * was asked. Memory the kernel would touch for it is then all in. */
extern char restorer_hold_selector;
void restorer_hold_sigsys(int sig, void *info, void *uc);
void restorer_hold_sigreturn(void);
void restorer_hold_release(void);
/* the hold section: system calls made from it always pass */
void restorer_hold_range(uint64_t *start, uint64_t *len);

__attribute__((noreturn)) void restorer_finish_thread(struct thread_restore_args *a);
/* clone a thread of this process that runs restorer_finish_thread(a) on
 * child_stack. Returns the new tid or -errno. */
long restorer_clone_thread(struct thread_restore_args *a, void *child_stack_top);

#endif
