/* Raw Linux system calls for code that runs with the world stopped or on
 * an upper-half thread (signal handlers, the final restore step, the mmap
 * router): no libc, no errno, no TLS. Return values are the kernel's
 * (-errno on failure). */
#ifndef CKPTMPI_CORE_RAWSYS_H
#define CKPTMPI_CORE_RAWSYS_H

#include <stdint.h>
#include <sys/syscall.h>

static inline long raw_syscall6(long n, long a, long b, long c, long d, long e, long f)
{
	long ret;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	__asm__ volatile("syscall"
	                 : "=a"(ret)
	                 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
	                 : "rcx", "r11", "memory");
	return ret;
}
#define raw_syscall0(n) raw_syscall6((n), 0, 0, 0, 0, 0, 0)
#define raw_syscall1(n, a) raw_syscall6((n), (long)(a), 0, 0, 0, 0, 0)
#define raw_syscall2(n, a, b) raw_syscall6((n), (long)(a), (long)(b), 0, 0, 0, 0)
#define raw_syscall3(n, a, b, c) raw_syscall6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)
#define raw_syscall4(n, a, b, c, d) raw_syscall6((n), (long)(a), (long)(b), (long)(c), (long)(d), 0, 0)

static inline void *raw_mmap(void *addr, unsigned long len, int prot, int flags, int fd, long off)
{
	return (void *)raw_syscall6(SYS_mmap, (long)addr, (long)len, prot, flags, fd, off);
}
static inline int raw_is_err(long r) { return (unsigned long)r > (unsigned long)-4096L; }
static inline long raw_gettid(void) { return raw_syscall0(SYS_gettid); }
/* All of S (N bytes) to FD, giving up at the first error: messages of
 * code that may run with the world stopped or in a signal handler. */
static inline void raw_write_all(int fd, const char *s, unsigned long n)
{
	while (n) {
		long w = raw_syscall3(SYS_write, fd, s, n);
		if (w <= 0 || raw_is_err(w))
			return;
		s += w;
		n -= (unsigned long)w;
	}
}

#define RAW_FUTEX_WAIT 128 /* FUTEX_WAIT_PRIVATE */
#define RAW_FUTEX_WAKE 129 /* FUTEX_WAKE_PRIVATE */
static inline long raw_futex(volatile int *uaddr, int op, int val)
{
	return raw_syscall4(SYS_futex, (long)uaddr, op, val, 0);
}

#endif
