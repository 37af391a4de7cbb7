#include "core/restorer.h"

#include <asm/prctl.h>
#include <linux/sched.h>
#include <sys/syscall.h>

#include "core/rawsys.h"

#define RSEQ_SIGNATURE 0x53053053

/* The hold: code in this section makes its system calls itself (always
 * inlined), so that they pass the dispatch filter; nothing here calls
 * out of it once a thread's dispatch is on. */
#define HOLD __attribute__((section("ckpt_hold"), used, noinline))
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define DISPATCH_ON 1
#define DISPATCH_OFF 0
#define FILTER_ALLOW 0
#define FILTER_BLOCK 1
#define SI_CODE_SYS_USER_DISPATCH 2

extern char __start_ckpt_hold[], __stop_ckpt_hold[];

char restorer_hold_selector = FILTER_BLOCK;
static volatile int hold_released;

static inline __attribute__((always_inline)) long hold_sys(long n, long a, long b, long c, long d,
                                                           long e)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	long ret;
	__asm__ volatile("syscall"
	                 : "=a"(ret)
	                 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
	                 : "rcx", "r11", "memory");
	return ret;
}

/* siginfo_t and ucontext_t as the kernel lays them out (x86-64) */
#define SI_CODE(info) (*(const int *)((const char *)(info) + 8))
#define SI_SYSCALL(info) (*(const int *)((const char *)(info) + 24))
#define UC_GREG(uc, i) (*(long long *)((char *)(uc) + 40 + 8 * (i)))
#define REG_RAX_ 13
#define REG_RIP_ 16

/* SIGSYS of a held thread: wait, turn the filter off for this thread,
 * and make the call again (rip back over `syscall`, rax its number).
 * Any other SIGSYS is the program's, whose disposition was the default
 * (core/lazy_restore.c makes sure): that again, and raised. */
HOLD void restorer_hold_sigsys(int sig, void *info, void *uc)
{
	if (SI_CODE(info) != SI_CODE_SYS_USER_DISPATCH) {
		long dfl[4] = { 0, 0, 0, 0 }; /* SIG_DFL */
		hold_sys(SYS_rt_sigaction, sig, (long)dfl, 0, 8, 0);
		hold_sys(SYS_tgkill, hold_sys(SYS_getpid, 0, 0, 0, 0, 0),
		         hold_sys(SYS_gettid, 0, 0, 0, 0, 0), sig, 0, 0);
		return;
	}
	while (!__atomic_load_n(&hold_released, __ATOMIC_ACQUIRE))
		hold_sys(SYS_futex, (long)&hold_released, RAW_FUTEX_WAIT, 0, 0, 0);
	hold_sys(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, DISPATCH_OFF, 0, 0, 0);
	UC_GREG(uc, REG_RIP_) -= 2;
	UC_GREG(uc, REG_RAX_) = SI_SYSCALL(info);
}

/* the handler's sa_restorer: rt_sigreturn from inside the section */
__attribute__((section("ckpt_hold"), used, naked)) void restorer_hold_sigreturn(void)
{
	__asm__ volatile("mov $15, %eax\n\tsyscall\n\tud2");
}

void restorer_hold_release(void)
{
	/* new calls pass from now on; the held ones are woken */
	__atomic_store_n(&restorer_hold_selector, FILTER_ALLOW, __ATOMIC_RELEASE);
	__atomic_store_n(&hold_released, 1, __ATOMIC_RELEASE);
	raw_futex(&hold_released, RAW_FUTEX_WAKE, 0x7fffffff);
}

void restorer_hold_range(uint64_t *start, uint64_t *len)
{
	*start = (uint64_t)(uintptr_t)__start_ckpt_hold;
	*len = (uint64_t)(__stop_ckpt_hold - __start_ckpt_hold);
}

HOLD __attribute__((noreturn)) void restorer_finish_thread(struct thread_restore_args *a)
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
	/* last: from here only this section's calls pass (rt_sigreturn below) */
	if (a->hold)
		hold_sys(SYS_prctl, PR_SET_SYSCALL_USER_DISPATCH, DISPATCH_ON,
		         (long)(uintptr_t)__start_ckpt_hold, (long)(__stop_ckpt_hold - __start_ckpt_hold),
		         (long)(uintptr_t)&restorer_hold_selector);
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
