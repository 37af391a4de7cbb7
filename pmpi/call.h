/* Calling the lower half from an upper-half MPI wrapper.
 *
 * The real MPI runs under the lower half's libc, so a call switches the
 * thread pointer (FS base) to a lower-half thread context for the length
 * of the call and back. Each upper thread gets its own lower context (the
 * TCB of a lower thread that sleeps forever), so lower TLS — errno, MPI's
 * per-thread state, lock owners — is per upper thread as it would be
 * natively. wrfsbase is used where the CPU and kernel allow (a few
 * cycles), arch_prctl otherwise.
 *
 * Handle virtualisation hooks (CKPT_VH_*) and callback trampolines
 * (CKPT_CB) are identities for now: the shim passes the real MPI's handles
 * through. */
#ifndef CKPTMPI_PMPI_CALL_H
#define CKPTMPI_PMPI_CALL_H

#include <stdint.h>

extern void **ckpt_lower_fn;
extern int ckpt_have_fsgsbase;
extern __thread uint64_t ckpt_lower_fs __attribute__((tls_model("initial-exec")));
uint64_t ckpt_new_lower_context(void);
uint64_t ckpt_arch_get_fs(void);
void ckpt_arch_set_fs(uint64_t fs);

static inline __attribute__((always_inline)) uint64_t ckpt_get_fs(void)
{
	uint64_t v;
	if (__builtin_expect(ckpt_have_fsgsbase, 1)) {
		__asm__ volatile("rdfsbase %0" : "=r"(v));
		return v;
	}
	return ckpt_arch_get_fs();
}

static inline __attribute__((always_inline)) void ckpt_set_fs(uint64_t v)
{
	if (__builtin_expect(ckpt_have_fsgsbase, 1))
		__asm__ volatile("wrfsbase %0" : : "r"(v) : "memory");
	else
		ckpt_arch_set_fs(v);
}

static inline __attribute__((always_inline)) uint64_t ckpt_enter(void)
{
	uint64_t lower = ckpt_lower_fs;
	uint64_t upper = ckpt_get_fs();
	if (__builtin_expect(!lower, 0))
		lower = ckpt_new_lower_context();
	ckpt_set_fs(lower);
	return upper;
}

#define CKPT_CALL(IDX, FNTYPE, ...)                                                      \
	({                                                                               \
		FNTYPE ckpt__fn = (FNTYPE)ckpt_lower_fn[IDX];                            \
		uint64_t ckpt__upper = ckpt_enter();                                     \
		__typeof__(ckpt__fn(__VA_ARGS__)) ckpt__ret = ckpt__fn(__VA_ARGS__);     \
		ckpt_set_fs(ckpt__upper);                                                \
		ckpt__ret;                                                               \
	})

#define CKPT_VH_IN(Kind, x) (x)
#define CKPT_VH_OUT(Kind, ptr) ((void)0)
#define CKPT_VH_IN_ARRAY(Kind, arr, n) (arr)
#define CKPT_VH_OUT_ARRAY(Kind, arr, tmp, n) ((void)0)
#define CKPT_CB(Kind, fn) (fn)

#endif
