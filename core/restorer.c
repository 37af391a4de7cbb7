#include "core/restorer.h"

#include <asm/prctl.h>
#include <linux/sched.h>
#include <sys/syscall.h>

#include "core/rawsys.h"

#define RSEQ_SIGNATURE 0x53053053

__attribute__((noreturn)) void restorer_finish_thread(struct thread_restore_args *a)
{
	raw_syscall2(SYS_arch_prctl, ARCH_SET_FS, a->fs_base);
	if (a->gs_base)
		raw_syscall2(SYS_arch_prctl, ARCH_SET_GS, a->gs_base);
	if (a->tid_addr) {
		if (a->is_main)
			raw_syscall1(SYS_set_tid_address, a->tid_addr);
		*(volatile int *)a->tid_addr = (int)raw_gettid();
	}
	if (a->robust_head)
		raw_syscall2(SYS_set_robust_list, a->robust_head, a->robust_len);
	if (a->rseq_len)
		raw_syscall4(SYS_rseq, a->rseq_addr, a->rseq_len, 0, RSEQ_SIGNATURE);
	__asm__ volatile("mov %0, %%rsp\n\t"
	                 "mov $15, %%eax\n\t" /* rt_sigreturn */
	                 "syscall\n\t"
	                 "ud2\n\t"
	                 :
	                 : "r"(a->uc)
	                 : "memory");
	__builtin_unreachable();
}

long restorer_clone_thread(struct thread_restore_args *a, void *child_stack_top)
{
	unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
	                      CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
	                      CLONE_CHILD_CLEARTID;
	long ret;
	register long r10 __asm__("r10") = (long)a->tid_addr; /* child_tid */
	register long r8 __asm__("r8") = (long)a->fs_base;    /* tls */
	register long r9 __asm__("r9") = (long)a;
	uint64_t sp = ((uint64_t)child_stack_top & ~15ull) - 16;

	/* the child starts on child_stack with nothing of ours on it: it
	 * takes `a` from r9 (preserved across syscall) and never returns */
	__asm__ volatile("syscall\n\t"
	                 "test %%rax, %%rax\n\t"
	                 "jnz 1f\n\t"
	                 "xor %%ebp, %%ebp\n\t"
	                 "mov %%r9, %%rdi\n\t"
	                 "call restorer_finish_thread\n\t"
	                 "ud2\n\t"
	                 "1:\n\t"
	                 : "=a"(ret)
	                 : "a"((long)SYS_clone), "D"(flags), "S"(sp), "d"(a->tid_addr), "r"(r10),
	                   "r"(r8), "r"(r9)
	                 : "rcx", "r11", "memory");
	return ret;
}
