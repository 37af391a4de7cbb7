/* Application callbacks called by the real MPI (lower half): they must run
 * under the application's thread pointer, not the lower context's. A pool
 * of trampolines, one per registered function, finds the upper thread
 * pointer of the calling thread (each lower context belongs to one upper
 * thread) and switches around the call.
 *
 * The trampolines start under the lower thread pointer: this file is built
 * without stack protector and touches no TLS until the switch. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include "pmpi/call.h"

#define MAX_CONTEXTS 1024
#define MAX_USER_FNS 64

static struct { uint64_t lower, upper; } contexts[MAX_CONTEXTS];
static int n_contexts;
static volatile int lock;

static void take(void)
{
	while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
		;
}
static void give(void) { __atomic_store_n(&lock, 0, __ATOMIC_RELEASE); }

void ckpt_note_context(uint64_t upper, uint64_t lower)
{
	take();
	/* a lower context at the address of one of an earlier run (before a
	 * restart) replaces it */
	for (int i = 0; i < n_contexts; i++)
		if (contexts[i].lower == lower) {
			contexts[i].upper = upper;
			give();
			return;
		}
	if (n_contexts < MAX_CONTEXTS) {
		contexts[n_contexts].lower = lower;
		contexts[n_contexts].upper = upper;
		__atomic_store_n(&n_contexts, n_contexts + 1, __ATOMIC_RELEASE);
	}
	give();
}

static uint64_t upper_of(uint64_t lower)
{
	int n = __atomic_load_n(&n_contexts, __ATOMIC_ACQUIRE);
	for (int i = 0; i < n; i++)
		if (contexts[i].lower == lower)
			return contexts[i].upper;
	return 0; /* an MPI-internal thread: leave the context alone */
}

static MPI_User_function *user_fns[MAX_USER_FNS];
static int n_user_fns;

static void run_user_fn(int i, void *in, void *inout, int *len, MPI_Datatype *dt)
{
	uint64_t lower = ckpt_get_fs(), upper = upper_of(lower);
	MPI_Datatype app_dt = *dt;

	if (upper)
		ckpt_set_fs(upper);
	app_dt = CKPT_HCAST(MPI_Datatype, ckpt_vh_upper_of(CKPT_VK_DATATYPE, CKPT_HVAL(app_dt)));
	user_fns[i](in, inout, len, &app_dt);
	if (upper)
		ckpt_set_fs(lower);
}

#define TRAMP(i)                                                                         \
	static void tramp_##i(void *in, void *inout, int *len, MPI_Datatype *dt)         \
	{                                                                                \
		run_user_fn(i, in, inout, len, dt);                                      \
	}
#define T8(a) TRAMP(a##0) TRAMP(a##1) TRAMP(a##2) TRAMP(a##3) TRAMP(a##4) TRAMP(a##5) TRAMP(a##6) TRAMP(a##7)
T8(0) T8(1) T8(2) T8(3) T8(4) T8(5) T8(6) T8(7)
#define R8(a) tramp_##a##0, tramp_##a##1, tramp_##a##2, tramp_##a##3, tramp_##a##4, tramp_##a##5, tramp_##a##6, tramp_##a##7
static MPI_User_function *const tramps[MAX_USER_FNS] = {R8(0), R8(1), R8(2), R8(3), R8(4), R8(5), R8(6), R8(7)};

MPI_User_function *ckpt_cb_user_function(MPI_User_function *fn)
{
	MPI_User_function *t = NULL;

	if (!fn)
		return fn;
	take();
	for (int i = 0; i < n_user_fns && !t; i++)
		if (user_fns[i] == fn)
			t = tramps[i];
	if (!t && n_user_fns < MAX_USER_FNS) {
		user_fns[n_user_fns] = fn;
		t = tramps[n_user_fns++];
	}
	give();
	if (!t) {
		fprintf(stderr, "ckptmpi: more than %d user reduction functions; the rest run "
		                "without their thread context\n", MAX_USER_FNS);
		return fn;
	}
	return t;
}

void *ckpt_cb_user_function_v(void *fn)
{
	return (void *)ckpt_cb_user_function((MPI_User_function *)fn);
}

/* Every other kind of callback (attribute copy and delete, error handlers,
 * generalized requests, data representations): one pool of trampolines
 * that pass six integer arguments on (what any of them takes on x86-64),
 * under the application's thread pointer. A handle MPI passes first — by
 * value (attribute callbacks) or by address (error handlers) — is turned
 * into the application's own. */
#define MAX_GENERIC 128
enum { ARG0_PLAIN, ARG0_HANDLE, ARG0_HANDLE_PTR };
static struct {
	uint64_t (*fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
	int mode;
	uint32_t kind;
} generic[MAX_GENERIC];
static int n_generic;

static uint64_t run_generic(int i, uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e,
                            uint64_t f)
{
	uint64_t lower = ckpt_get_fs(), upper = upper_of(lower), r, h = 0;

	if (upper)
		ckpt_set_fs(upper);
	if (generic[i].mode == ARG0_HANDLE) {
		a = ckpt_vh_upper_of(generic[i].kind, a);
	} else if (generic[i].mode == ARG0_HANDLE_PTR && a) {
		h = ckpt_vh_upper_of(generic[i].kind, CKPT_HVAL(*(MPI_Comm *)a));
		a = (uint64_t)(uintptr_t)&h;
	}
	r = generic[i].fn(a, b, c, d, e, f);
	if (upper)
		ckpt_set_fs(lower);
	return r;
}

#define GTRAMP(i)                                                                        \
	static uint64_t gtramp_##i(uint64_t a, uint64_t b, uint64_t c, uint64_t d,        \
	                           uint64_t e, uint64_t f)                                \
	{                                                                                \
		return run_generic(i, a, b, c, d, e, f);                                 \
	}
#define G8(a) GTRAMP(a##0) GTRAMP(a##1) GTRAMP(a##2) GTRAMP(a##3) GTRAMP(a##4) GTRAMP(a##5) GTRAMP(a##6) GTRAMP(a##7)
G8(0) G8(1) G8(2) G8(3) G8(4) G8(5) G8(6) G8(7) G8(8) G8(9) G8(10) G8(11) G8(12) G8(13) G8(14) G8(15)
#define GR8(a) gtramp_##a##0, gtramp_##a##1, gtramp_##a##2, gtramp_##a##3, gtramp_##a##4, \
	gtramp_##a##5, gtramp_##a##6, gtramp_##a##7
static uint64_t (*const gtramps[MAX_GENERIC])(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t,
                                              uint64_t) = {
	GR8(0), GR8(1), GR8(2), GR8(3), GR8(4), GR8(5), GR8(6), GR8(7),
	GR8(8), GR8(9), GR8(10), GR8(11), GR8(12), GR8(13), GR8(14), GR8(15)};

void *ckpt_cb_generic(void *fn, int mode, uint32_t kind)
{
	void *t = NULL;

	if (!fn)
		return fn;
	take();
	for (int i = 0; i < n_generic && !t; i++)
		if ((void *)generic[i].fn == fn && generic[i].mode == mode && generic[i].kind == kind)
			t = (void *)gtramps[i];
	if (!t && n_generic < MAX_GENERIC) {
		generic[n_generic].fn = (uint64_t(*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t,
		                                    uint64_t))fn;
		generic[n_generic].mode = mode;
		generic[n_generic].kind = kind;
		t = (void *)gtramps[n_generic++];
	}
	give();
	if (!t) {
		fprintf(stderr, "ckptmpi: more than %d callbacks; the rest run without their "
		                "thread context\n", MAX_GENERIC);
		return fn;
	}
	return t;
}
