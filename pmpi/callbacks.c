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
#ifdef CKPTMPI_HANDLES_ARE_POINTERS
	app_dt = (MPI_Datatype)ckpt_vh_out_ptr((void *)app_dt); /* the application's handle */
#endif
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
