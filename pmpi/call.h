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
 * Handles are virtual (CKPT_VH_*); user reduction functions go through
 * trampolines (CKPT_CB). */
#ifndef CKPTMPI_PMPI_CALL_H
#define CKPTMPI_PMPI_CALL_H

#include <stddef.h>
#include <stdint.h>

/* the shim's internals are its own: calls and loads stay inside the
 * library (no PLT, no GOT), the application sees only MPI's names */
#pragma GCC visibility push(hidden)

extern void **ckpt_lower_fn;
extern int ckpt_have_fsgsbase;
extern __thread uint64_t ckpt_lower_fs __attribute__((tls_model("initial-exec")));
uint64_t ckpt_new_lower_context(void);
void ckpt_arch_set_fs(uint64_t fs);

/* The thread pointer, read as an ordinary load: the x86-64 TLS ABI has
 * the first word of every thread's TCB point to itself (glibc's and any
 * other libc's, the upper's and the lower's alike), and a load costs
 * less than rdfsbase (4 ns here) and far less than arch_prctl. */
static inline __attribute__((always_inline)) uint64_t ckpt_get_fs(void)
{
	uint64_t v;
	__asm__ volatile("movq %%fs:0, %0" : "=r"(v));
	return v;
}

static inline __attribute__((always_inline)) void ckpt_set_fs(uint64_t v)
{
	if (__builtin_expect(ckpt_have_fsgsbase, 1))
		__asm__ volatile("wrfsbase %0" : : "r"(v) : "memory");
	else
		ckpt_arch_set_fs(v);
}

/* ---- shim sections (docs/design.md, "Threads and the cut") ----
 * While a thread is inside a section (the shim's bookkeeping of a call,
 * and every call into the lower half) the park handler does not stop it:
 * it notes the request (`pending`) and the thread parks itself when it
 * leaves its outermost section. So the runtime, which touches the shim's
 * state only with every thread parked, sees that state only between
 * sections, never halfway through a transition. The handler finds this
 * word at the same offset from every upper thread's FS base (published
 * through the link; core/park.c). */
struct ckpt_section_word {
	volatile int32_t depth;
	volatile int32_t pending;
};
extern __thread struct ckpt_section_word ckpt_section __attribute__((tls_model("initial-exec")));
/* the runtime's "stopping the threads now" word (core/link.h, parking) */
extern volatile int32_t *ckpt_parking;
void ckpt_section_park_now(void);

#ifdef CKPTMPI_RACE_DELAYS
/* stress builds: widen every window the sections close (test/stress) */
void ckpt_race_delay(void);
void ckpt_race_delay_creating(void);
#define CKPT_RACE_DELAY() ckpt_race_delay()
#define CKPT_RACE_DELAY_CREATING() ckpt_race_delay_creating()
#else
#define CKPT_RACE_DELAY() ((void)0)
#define CKPT_RACE_DELAY_CREATING() ((void)0)
#endif

static inline __attribute__((always_inline)) void ckpt_section_begin(void)
{
	for (;;) {
		ckpt_section.depth++;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		/* a context is fetched outside any section (the control thread
		 * that makes it may be parking us); once inside, it stays: a
		 * restart clears it only while the thread is parked */
		if (__builtin_expect(ckpt_lower_fs != 0, 1) || ckpt_section.depth > 1)
			return;
		ckpt_section.depth--;
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		if (ckpt_section.pending)
			ckpt_section_park_now();
		ckpt_new_lower_context();
	}
}

static inline __attribute__((always_inline)) void ckpt_section_end(void)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	ckpt_section.depth--;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (__builtin_expect(ckpt_section.pending | *ckpt_parking, 0) && !ckpt_section.depth)
		ckpt_section_park_now();
}

/* The call itself, for a caller inside a section (which holds a lower
 * context: ckpt_section_begin made sure of it). The fast path of every
 * wrapper: one load of the thread pointer, two wrfsbase (the costly part:
 * 8-18 ns each on the machines measured), the indirect call; the FSGSBASE
 * test is made once. */
#define CKPT_CALL_IN(IDX, FNTYPE, ...)                                                   \
	({                                                                               \
		FNTYPE ckpt__fn = (FNTYPE)ckpt_lower_fn[IDX];                            \
		int ckpt__fsgs = __builtin_expect(ckpt_have_fsgsbase, 1);                \
		uint64_t ckpt__lower = ckpt_lower_fs, ckpt__upper = ckpt_get_fs();       \
		CKPT_RACE_DELAY();                                                       \
		if (ckpt__fsgs)                                                          \
			__asm__ volatile("wrfsbase %0" : : "r"(ckpt__lower) : "memory"); \
		else                                                                     \
			ckpt_arch_set_fs(ckpt__lower);                                   \
		__typeof__(ckpt__fn(__VA_ARGS__)) ckpt__ret = ckpt__fn(__VA_ARGS__);     \
		if (ckpt__fsgs)                                                          \
			__asm__ volatile("wrfsbase %0" : : "r"(ckpt__upper) : "memory"); \
		else                                                                     \
			ckpt_arch_set_fs(ckpt__upper);                                   \
		ckpt__ret;                                                               \
	})

/* The call with a section of its own (callers outside one). */
#define CKPT_CALL(IDX, FNTYPE, ...)                                                      \
	({                                                                               \
		ckpt_section_begin();                                                    \
		__typeof__(((FNTYPE)0)(__VA_ARGS__)) ckpt__r =                           \
		        CKPT_CALL_IN(IDX, FNTYPE, __VA_ARGS__);                          \
		ckpt_section_end();                                                      \
		ckpt__r;                                                                 \
	})

/* ---- virtual handles (pmpi/vstate.h, pmpi/vtable.c) ----
 * Every handle the application gets for an object it created is virtual:
 * an entry of the shim's table that holds the real handle, so a restart
 * can re-create the object and rebind the entry. Predefined handles are
 * not virtual; for OpenMPI they are the shim's stamped objects. */
#include "pmpi/vstate.h"
extern struct ckpt_mpi_state *ckpt_st;
/* CKPTMPI_FASTPATH=0: every call takes the ordinary path (for comparison) */
extern int ckpt_fast_off;
/* The program's threads may be in the shim at once (pmpi/vtable.c) */
extern int ckpt_app_concurrent;

#ifdef CKPTMPI_HANDLES_ARE_POINTERS
/* OpenMPI: predefined handles are addresses of the shim's own objects (or
 * the executable's copies of them), mapped to the real objects
 * (pmpi/handles_ptr.c) */
extern uintptr_t ckpt_predef_min, ckpt_predef_max;
void *ckpt_vh_out_ptr(void *h);
#define CKPT_PREDEF_STAMP 0x636b70747072656full
static inline __attribute__((always_inline)) uint64_t ckpt_predef_in(uint64_t h)
{
	if (h < ckpt_predef_min || h > ckpt_predef_max)
		return h;
	/* every predefined handle object is stamped (pmpi/handles_ptr.c) */
	if (((const uint64_t *)(uintptr_t)h)[1] == (CKPT_PREDEF_STAMP ^ h))
		return ((const uint64_t *)(uintptr_t)h)[0];
	return h;
}
/* is a real handle predefined (or null)? *upper: the application's value */
static inline int ckpt_predef_out(uint64_t real, uint64_t *upper)
{
	*upper = (uint64_t)(uintptr_t)ckpt_vh_out_ptr((void *)(uintptr_t)real);
	return *upper != real || !real;
}
#define CKPT_HVAL(x) ((uint64_t)(uintptr_t)(x))
#define CKPT_HCAST(T, v) ((T)(uintptr_t)(v))
#else
/* MPICH: predefined handles are the same integers in both halves */
#define ckpt_predef_in(h) (h)
static inline int ckpt_predef_out(uint64_t real, uint64_t *upper)
{
	uint32_t r = (uint32_t)real;
	*upper = real;
	/* null (kind 0) and builtin (1) handles, and the direct-kind pair
	 * datatypes MPI_FLOAT_INT .. MPI_LONG_DOUBLE_INT */
	return (r >> 30) <= 1 || (r >= 0x8c000000u && r <= 0x8c000004u);
}
#define CKPT_HVAL(x) ((uint64_t)(uint32_t)(x))
#define CKPT_HCAST(T, v) ((T)(uint32_t)(v))
#endif

/* upper value -> lower handle */
static inline __attribute__((always_inline)) uint64_t ckpt_in(uint64_t h)
{
	if (CKPT_IS_VIRT(ckpt_st, h))
		return ckpt_st->vt[CKPT_VIDX(ckpt_st, h)].real;
	return ckpt_predef_in(h);
}
/* lower handle just made by call FN -> upper value (a new virtual handle
 * unless predefined or null) */
uint64_t ckpt_vh_new(uint32_t kind, uint64_t real, uint32_t fn);
/* lower handle written back into an in-out argument whose upper value was
 * OLD: the same virtual handle, or null when MPI freed the object */
uint64_t ckpt_vh_update(uint32_t kind, uint64_t old, uint64_t real, uint32_t fn);
/* the application's handle of an existing object MPI passes to a callback */
uint64_t ckpt_vh_upper_of(uint32_t kind, uint64_t real);

/* creation log (pmpi/vtable.c) and collectives */
uint64_t *ckpt_log_begin(uint32_t fn, size_t words);
void ckpt_log_end(uint64_t *w);
/* the value a record keeps of a handle: virtual, or the real predefined */
static inline uint64_t ckpt_logv(uint64_t h)
{
	return CKPT_IS_VIRT(ckpt_st, h) ? h : ckpt_predef_in(h);
}
static inline void ckpt_create_begin(void)
{
	__atomic_fetch_add(&ckpt_st->creating, 1, __ATOMIC_SEQ_CST);
}
static inline void ckpt_create_end(void)
{
	__atomic_fetch_sub(&ckpt_st->creating, 1, __ATOMIC_SEQ_CST);
}
/* The collective gate (pmpi/vtable.c): counts a collective's entry and
 * holds it while a checkpoint agrees on a cut; the entry of the
 * communicator, or NULL (MPI_COMM_SELF, null). */
struct ckpt_vh *ckpt_coll_enter_slow(uint64_t comm);
/* Its fast path, inline: no checkpoint near. One thread at a time enters collectives on a communicator
 * (MPI-3.1 5.13: the program orders them), so the count is a plain store;
 * the cut's membarrier after each store of `cut` is the fence between
 * that store and the load of `cut` here (pmpi/lower_cut.c, set_cut). */
static inline __attribute__((always_inline)) struct ckpt_vh *ckpt_coll_enter(uint64_t comm)
{
	struct ckpt_mpi_state *st = ckpt_st;
	struct ckpt_vh *e;

	if (__builtin_expect(st->coll_asym, 1)) {
		if (CKPT_IS_VIRT(st, comm))
			e = &st->vt[CKPT_VIDX(st, comm)];
		else if (comm == st->world_upper)
			e = &st->vt[CKPT_VT_WORLD];
		else
			return ckpt_coll_enter_slow(comm);
		uint64_t n = __atomic_load_n(&e->u.c.seq, __ATOMIC_RELAXED) + 1;
		__atomic_store_n(&e->u.c.seq, n, __ATOMIC_RELAXED);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		CKPT_RACE_DELAY();
		if (__builtin_expect(__atomic_load_n(&st->cut, __ATOMIC_SEQ_CST) == CKPT_CUT_RUN, 1))
			return e;
		/* taken back: the slow path counts again and waits */
		__atomic_store_n(&e->u.c.seq, n - 1, __ATOMIC_RELAXED);
	}
	return ckpt_coll_enter_slow(comm);
}
static inline __attribute__((always_inline)) void ckpt_coll_leave(struct ckpt_vh *e)
{
	if (!e)
		return;
	if (__builtin_expect(ckpt_st->coll_asym, 1)) /* (one thread at a time, as at the entry) */
		__atomic_store_n(&e->u.c.done, __atomic_load_n(&e->u.c.done, __ATOMIC_RELAXED) + 1,
		                 __ATOMIC_RELEASE);
	else
		__atomic_fetch_add(&e->u.c.done, 1, __ATOMIC_ACQ_REL);
}
/* attributes kept by the shim (pmpi/attrs.c) */
void ckpt_attr_copied(uint64_t from, uint64_t to);
void ckpt_attr_freeing(uint64_t obj);

#define CKPT_VKIND_Keyval CKPT_VK_KEYVAL /* integers, passed through */
#define CKPT_VKIND_Comm CKPT_VK_COMM
#define CKPT_VKIND_Group CKPT_VK_GROUP
#define CKPT_VKIND_Datatype CKPT_VK_DATATYPE
#define CKPT_VKIND_Op CKPT_VK_OP
#define CKPT_VKIND_Errhandler CKPT_VK_ERRHANDLER
#define CKPT_VKIND_Request CKPT_VK_REQUEST
#define CKPT_VKIND_Info CKPT_VK_INFO
#define CKPT_VKIND_Message CKPT_VK_MESSAGE
#define CKPT_VKIND_Win CKPT_VK_WIN
#define CKPT_VKIND_File CKPT_VK_FILE
#define CKPT_VKIND_T_enum CKPT_VK_OTHER
#define CKPT_VKIND_T_cvar_handle CKPT_VK_OTHER
#define CKPT_VKIND_T_pvar_handle CKPT_VK_OTHER
#define CKPT_VKIND_T_pvar_session CKPT_VK_OTHER

/* Keyvals are integers the application may compare with predefined ones;
 * they pass through (the checkpoint refuses while a user keyval exists) */
#define CKPT_VH_IN(Kind, x) CKPT_VH_IN_##Kind(x)
#define CKPT_VH_IN_Keyval(x) (x)
#define CKPT_VH_IN_H(x) CKPT_HCAST(__typeof__(x), ckpt_in(CKPT_HVAL(x)))
#define CKPT_VH_IN_Comm CKPT_VH_IN_H
#define CKPT_VH_IN_Group CKPT_VH_IN_H
#define CKPT_VH_IN_Datatype CKPT_VH_IN_H
#define CKPT_VH_IN_Op CKPT_VH_IN_H
#define CKPT_VH_IN_Errhandler CKPT_VH_IN_H
#define CKPT_VH_IN_Request CKPT_VH_IN_H
#define CKPT_VH_IN_Info CKPT_VH_IN_H
#define CKPT_VH_IN_Message CKPT_VH_IN_H
#define CKPT_VH_IN_Win CKPT_VH_IN_H
#define CKPT_VH_IN_File CKPT_VH_IN_H
#define CKPT_VH_IN_T_enum CKPT_VH_IN_H
#define CKPT_VH_IN_T_cvar_handle CKPT_VH_IN_H
#define CKPT_VH_IN_T_pvar_handle CKPT_VH_IN_H
#define CKPT_VH_IN_T_pvar_session CKPT_VH_IN_H

void ckpt_keyval_created(uint32_t fn);
#define CKPT_VH_OUT(Kind, p, FN) CKPT_VH_OUT_##Kind(p, FN)
#define CKPT_VH_OUT_Keyval(p, FN) ckpt_keyval_created(FN)
#define CKPT_VH_OUT_H(Kind, p, FN)                                                         \
	do {                                                                               \
		__typeof__(p) ckpt__p = (p);                                               \
		if (ckpt__p)                                                               \
			*ckpt__p = CKPT_HCAST(__typeof__(*(p)),                            \
			                  ckpt_vh_new(CKPT_VKIND_##Kind, CKPT_HVAL(*ckpt__p), FN)); \
	} while (0)
#define CKPT_VH_OUT_Comm(p, FN) CKPT_VH_OUT_H(Comm, p, FN)
#define CKPT_VH_OUT_Group(p, FN) CKPT_VH_OUT_H(Group, p, FN)
#define CKPT_VH_OUT_Datatype(p, FN) CKPT_VH_OUT_H(Datatype, p, FN)
#define CKPT_VH_OUT_Op(p, FN) CKPT_VH_OUT_H(Op, p, FN)
#define CKPT_VH_OUT_Errhandler(p, FN) CKPT_VH_OUT_H(Errhandler, p, FN)
#define CKPT_VH_OUT_Request(p, FN) CKPT_VH_OUT_H(Request, p, FN)
#define CKPT_VH_OUT_Info(p, FN) CKPT_VH_OUT_H(Info, p, FN)
#define CKPT_VH_OUT_Message(p, FN) CKPT_VH_OUT_H(Message, p, FN)
#define CKPT_VH_OUT_Win(p, FN) CKPT_VH_OUT_H(Win, p, FN)
#define CKPT_VH_OUT_File(p, FN) CKPT_VH_OUT_H(File, p, FN)
#define CKPT_VH_OUT_T_enum(p, FN) CKPT_VH_OUT_H(T_enum, p, FN)
#define CKPT_VH_OUT_T_cvar_handle(p, FN) CKPT_VH_OUT_H(T_cvar_handle, p, FN)
#define CKPT_VH_OUT_T_pvar_handle(p, FN) CKPT_VH_OUT_H(T_pvar_handle, p, FN)
#define CKPT_VH_OUT_T_pvar_session(p, FN) CKPT_VH_OUT_H(T_pvar_session, p, FN)

#ifndef CKPTMPI_HANDLES_ARE_POINTERS
/* MPICH's files (ROMIO) and tool-interface handles are pointers: passed
 * through; the checkpoint refuses while a file is open */
void ckpt_unrestorable(uint32_t fn);
#undef CKPT_VH_IN_File
#undef CKPT_VH_IN_T_enum
#undef CKPT_VH_IN_T_cvar_handle
#undef CKPT_VH_IN_T_pvar_handle
#undef CKPT_VH_IN_T_pvar_session
#undef CKPT_VH_OUT_File
#undef CKPT_VH_OUT_T_enum
#undef CKPT_VH_OUT_T_cvar_handle
#undef CKPT_VH_OUT_T_pvar_handle
#undef CKPT_VH_OUT_T_pvar_session
#define CKPT_VH_IN_File(x) (x)
#define CKPT_VH_IN_T_enum(x) (x)
#define CKPT_VH_IN_T_cvar_handle(x) (x)
#define CKPT_VH_IN_T_pvar_handle(x) (x)
#define CKPT_VH_IN_T_pvar_session(x) (x)
#define CKPT_VH_OUT_File(p, FN) ckpt_unrestorable(FN)
#define CKPT_VH_OUT_T_enum(p, FN) ((void)0)
#define CKPT_VH_OUT_T_cvar_handle(p, FN) ((void)0)
#define CKPT_VH_OUT_T_pvar_handle(p, FN) ((void)0)
#define CKPT_VH_OUT_T_pvar_session(p, FN) ((void)0)
#endif

/* in-out: *p still holds the upper value, L the lower one MPI wrote */
#define CKPT_VH_INOUT(Kind, p, L, FN) CKPT_VH_INOUT_##Kind(p, L, FN)
#define CKPT_VH_INOUT_H(Kind, p, L, FN)                                                    \
	(*(p) = CKPT_HCAST(__typeof__(*(p)),                                               \
	                   ckpt_vh_update(CKPT_VKIND_##Kind, CKPT_HVAL(*(p)), CKPT_HVAL(L), FN)))
#define CKPT_VH_INOUT_PASS(p, L, FN) (*(p) = (L))
#define CKPT_VH_INOUT_Keyval CKPT_VH_INOUT_PASS
#define CKPT_VH_INOUT_Comm(p, L, FN) CKPT_VH_INOUT_H(Comm, p, L, FN)
#define CKPT_VH_INOUT_Group(p, L, FN) CKPT_VH_INOUT_H(Group, p, L, FN)
#define CKPT_VH_INOUT_Datatype(p, L, FN) CKPT_VH_INOUT_H(Datatype, p, L, FN)
#define CKPT_VH_INOUT_Op(p, L, FN) CKPT_VH_INOUT_H(Op, p, L, FN)
#define CKPT_VH_INOUT_Errhandler(p, L, FN) CKPT_VH_INOUT_H(Errhandler, p, L, FN)
#define CKPT_VH_INOUT_Request(p, L, FN) CKPT_VH_INOUT_H(Request, p, L, FN)
#define CKPT_VH_INOUT_Info(p, L, FN) CKPT_VH_INOUT_H(Info, p, L, FN)
#define CKPT_VH_INOUT_Message(p, L, FN) CKPT_VH_INOUT_H(Message, p, L, FN)
#define CKPT_VH_INOUT_Win(p, L, FN) CKPT_VH_INOUT_H(Win, p, L, FN)
#define CKPT_VH_INOUT_File(p, L, FN) CKPT_VH_INOUT_H(File, p, L, FN)
#define CKPT_VH_INOUT_T_enum(p, L, FN) CKPT_VH_INOUT_H(T_enum, p, L, FN)
#define CKPT_VH_INOUT_T_cvar_handle(p, L, FN) CKPT_VH_INOUT_H(T_cvar_handle, p, L, FN)
#define CKPT_VH_INOUT_T_pvar_handle(p, L, FN) CKPT_VH_INOUT_H(T_pvar_handle, p, L, FN)
#define CKPT_VH_INOUT_T_pvar_session(p, L, FN) CKPT_VH_INOUT_H(T_pvar_session, p, L, FN)
#ifndef CKPTMPI_HANDLES_ARE_POINTERS
#undef CKPT_VH_INOUT_File
#undef CKPT_VH_INOUT_T_enum
#undef CKPT_VH_INOUT_T_cvar_handle
#undef CKPT_VH_INOUT_T_pvar_handle
#undef CKPT_VH_INOUT_T_pvar_session
#define CKPT_VH_INOUT_File CKPT_VH_INOUT_PASS
#define CKPT_VH_INOUT_T_enum CKPT_VH_INOUT_PASS
#define CKPT_VH_INOUT_T_cvar_handle CKPT_VH_INOUT_PASS
#define CKPT_VH_INOUT_T_pvar_handle CKPT_VH_INOUT_PASS
#define CKPT_VH_INOUT_T_pvar_session CKPT_VH_INOUT_PASS
#endif

#define CKPT_VH_IN_ARRAY(Kind, arr, n)                                                    \
	({                                                                                \
		typedef MPI_##Kind ckpt__T;                                                \
		ckpt__T *ckpt__t = (ckpt__T *)(arr);                                      \
		int ckpt__n = (arr) ? (int)(n) : 0;                                       \
		if (ckpt__n > 0) {                                                        \
			ckpt__t = __builtin_alloca(sizeof *ckpt__t * (size_t)ckpt__n);    \
			for (int ckpt__i = 0; ckpt__i < ckpt__n; ckpt__i++)               \
				ckpt__t[ckpt__i] = CKPT_HCAST(ckpt__T,                    \
				        ckpt_in(CKPT_HVAL((arr)[ckpt__i])));              \
		}                                                                         \
		ckpt__t;                                                                  \
	})
#define CKPT_VH_OUT_ARRAY(Kind, arr, tmp, n, FN)                                          \
	do {                                                                              \
		int ckpt__n = (arr) ? (int)(n) : 0;                                       \
		for (int ckpt__i = 0; ckpt__i < ckpt__n; ckpt__i++)                       \
			(arr)[ckpt__i] = CKPT_HCAST(__typeof__(*(arr)),                   \
			        ckpt_vh_new(CKPT_VKIND_##Kind, CKPT_HVAL((tmp)[ckpt__i]), FN)); \
	} while (0)
#define CKPT_VH_INOUT_ARRAY(Kind, arr, tmp, n, FN)                                        \
	do {                                                                              \
		int ckpt__n = (arr) ? (int)(n) : 0;                                       \
		for (int ckpt__i = 0; ckpt__i < ckpt__n; ckpt__i++)                       \
			CKPT_VH_INOUT(Kind, &(arr)[ckpt__i], (tmp)[ckpt__i], FN);          \
	} while (0)
/* callbacks the real MPI calls go through trampolines that restore the
 * application's thread pointer (pmpi/callbacks.c) */
void *ckpt_cb_user_function_v(void *fn);
#define CKPT_CB(Kind, fn) CKPT_CB_##Kind(fn)
#define CKPT_CB_User_function(fn) ((__typeof__(fn))ckpt_cb_user_function_v((void *)(fn)))
/* the other kinds: pmpi/callbacks.c's generic pool; mode 1 maps a handle
 * passed first by value, mode 2 one passed by address */
void *ckpt_cb_generic(void *fn, int mode, uint32_t kind);
#define CKPT_CB_G(fn, mode, kind) ((__typeof__(fn))ckpt_cb_generic((void *)(fn), mode, kind))
#define CKPT_CB_Comm_copy_attr_function(fn) CKPT_CB_G(fn, 1, CKPT_VK_COMM)
#define CKPT_CB_Comm_delete_attr_function(fn) CKPT_CB_G(fn, 1, CKPT_VK_COMM)
#define CKPT_CB_Comm_errhandler_function(fn) CKPT_CB_G(fn, 2, CKPT_VK_COMM)
#define CKPT_CB_Copy_function(fn) CKPT_CB_G(fn, 1, CKPT_VK_COMM)
#define CKPT_CB_Delete_function(fn) CKPT_CB_G(fn, 1, CKPT_VK_COMM)
#define CKPT_CB_Handler_function(fn) CKPT_CB_G(fn, 2, CKPT_VK_COMM)
#define CKPT_CB_Type_copy_attr_function(fn) CKPT_CB_G(fn, 1, CKPT_VK_DATATYPE)
#define CKPT_CB_Type_delete_attr_function(fn) CKPT_CB_G(fn, 1, CKPT_VK_DATATYPE)
#define CKPT_CB_Win_copy_attr_function(fn) CKPT_CB_G(fn, 1, CKPT_VK_WIN)
#define CKPT_CB_Win_delete_attr_function(fn) CKPT_CB_G(fn, 1, CKPT_VK_WIN)
#define CKPT_CB_Win_errhandler_function(fn) CKPT_CB_G(fn, 2, CKPT_VK_WIN)
#define CKPT_CB_File_errhandler_function(fn) CKPT_CB_G(fn, 0, 0)
#define CKPT_CB_Grequest_cancel_function(fn) CKPT_CB_G(fn, 0, 0)
#define CKPT_CB_Grequest_free_function(fn) CKPT_CB_G(fn, 0, 0)
#define CKPT_CB_Grequest_query_function(fn) CKPT_CB_G(fn, 0, 0)
#define CKPT_CB_Datarep_conversion_function(fn) CKPT_CB_G(fn, 0, 0)
#define CKPT_CB_Datarep_extent_function(fn) CKPT_CB_G(fn, 0, 0)
void ckpt_note_context(uint64_t upper, uint64_t lower);

#pragma GCC visibility pop

#endif
