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

#ifdef CKPTMPI_HANDLES_ARE_POINTERS
/* OpenMPI: predefined handles are addresses of the shim's own objects (or
 * the executable's copies of them), mapped to the real objects
 * (pmpi/handles_ptr.c) */
extern uintptr_t ckpt_predef_min, ckpt_predef_max;
void *ckpt_vh_out_ptr(void *h);
#define CKPT_PREDEF_STAMP 0x636b70747072656full
static inline __attribute__((always_inline)) void *ckpt_vh_in_ptr(void *h)
{
	if ((uintptr_t)h < ckpt_predef_min || (uintptr_t)h > ckpt_predef_max)
		return h;
	/* every predefined handle object is stamped (pmpi/handles_ptr.c) */
	if (((const uint64_t *)h)[1] == (CKPT_PREDEF_STAMP ^ (uint64_t)(uintptr_t)h))
		return (void *)((const uint64_t *)h)[0];
	return h;
}
/* Keyvals are integers in every ABI; every other kind is a pointer here */
#define CKPT_VH_IN(Kind, x) CKPT_VH_IN_##Kind(x)
#define CKPT_VH_OUT(Kind, ptr) CKPT_VH_OUT_##Kind(ptr)
#define CKPT_VH_IN_Keyval(x) (x)
#define CKPT_VH_OUT_Keyval(ptr) ((void)0)
#define CKPT_VH_IN_PTR(x) ((__typeof__(x))ckpt_vh_in_ptr((void *)(x)))
static inline __attribute__((always_inline)) void ckpt_vh_out_store(void **p)
{
	if (p)
		*p = ckpt_vh_out_ptr(*p);
}
#define CKPT_VH_OUT_PTR(ptr) ckpt_vh_out_store((void **)(ptr))
#define CKPT_VH_IN_Comm(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_Comm(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_Datatype(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_Datatype(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_Errhandler(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_Errhandler(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_File(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_File(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_Group(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_Group(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_Info(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_Info(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_Message(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_Message(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_Op(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_Op(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_Request(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_Request(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_T_cvar_handle(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_T_cvar_handle(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_T_enum(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_T_enum(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_T_pvar_handle(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_T_pvar_handle(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_T_pvar_session(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_T_pvar_session(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_Win(x) CKPT_VH_IN_PTR(x)
#define CKPT_VH_OUT_Win(p) CKPT_VH_OUT_PTR(p)
#define CKPT_VH_IN_ARRAY(Kind, arr, n)                                                \
	({                                                                            \
		void **ckpt__t = (void **)(arr);                                      \
		int ckpt__n = (arr) ? (int)(n) : 0;                                   \
		if (ckpt__n > 0) {                                                    \
			ckpt__t = __builtin_alloca(sizeof *ckpt__t * (size_t)ckpt__n); \
			for (int ckpt__i = 0; ckpt__i < ckpt__n; ckpt__i++)           \
				ckpt__t[ckpt__i] = ckpt_vh_in_ptr((void *)(arr)[ckpt__i]); \
		}                                                                     \
		(void *)ckpt__t;                                                      \
	})
#define CKPT_VH_OUT_ARRAY(Kind, arr, tmp, n)                                          \
	do {                                                                          \
		int ckpt__n = (arr) ? (int)(n) : 0;                                   \
		for (int ckpt__i = 0; ckpt__i < ckpt__n; ckpt__i++)                   \
			((void **)(arr))[ckpt__i] =                                   \
				ckpt_vh_out_ptr(((void **)(tmp))[ckpt__i]);           \
	} while (0)
#else
/* MPICH: handles are integers the same in both halves */
#define CKPT_VH_IN(Kind, x) (x)
#define CKPT_VH_OUT(Kind, ptr) ((void)0)
#define CKPT_VH_IN_ARRAY(Kind, arr, n) (arr)
#define CKPT_VH_OUT_ARRAY(Kind, arr, tmp, n) ((void)0)
#endif
/* callbacks the real MPI calls: User_function (MPI_Op_create) goes through
 * a trampoline that restores the application's thread pointer
 * (pmpi/callbacks.c); the other kinds are passed as they are for now */
void *ckpt_cb_user_function_v(void *fn);
#define CKPT_CB(Kind, fn) CKPT_CB_##Kind(fn)
#define CKPT_CB_User_function(fn) ((__typeof__(fn))ckpt_cb_user_function_v((void *)(fn)))
#define CKPT_CB_Comm_copy_attr_function(fn) (fn)
#define CKPT_CB_Comm_delete_attr_function(fn) (fn)
#define CKPT_CB_Comm_errhandler_function(fn) (fn)
#define CKPT_CB_Copy_function(fn) (fn)
#define CKPT_CB_Datarep_conversion_function(fn) (fn)
#define CKPT_CB_Datarep_extent_function(fn) (fn)
#define CKPT_CB_Delete_function(fn) (fn)
#define CKPT_CB_File_errhandler_function(fn) (fn)
#define CKPT_CB_Grequest_cancel_function(fn) (fn)
#define CKPT_CB_Grequest_free_function(fn) (fn)
#define CKPT_CB_Grequest_query_function(fn) (fn)
#define CKPT_CB_Handler_function(fn) (fn)
#define CKPT_CB_Type_copy_attr_function(fn) (fn)
#define CKPT_CB_Type_delete_attr_function(fn) (fn)
#define CKPT_CB_Win_copy_attr_function(fn) (fn)
#define CKPT_CB_Win_delete_attr_function(fn) (fn)
#define CKPT_CB_Win_errhandler_function(fn) (fn)
void ckpt_note_context(uint64_t upper, uint64_t lower);

#endif
