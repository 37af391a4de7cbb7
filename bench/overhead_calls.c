/* The shim's own cost per MPI call, in instructions (bench/overhead_bench.sh
 * runs it under callgrind; instruction counts do not depend on the load).
 *
 *   overhead_calls SHIM.so OP N      OP: send recv sendrecv allreduce
 *                                        isend_wait exchange test_exchange
 *                                        test_pending comm_rank
 *
 * (exchange: MPI_Irecv, MPI_Isend, MPI_Waitall of the two; test_exchange:
 * MPI_Irecv, MPI_Isend, MPI_Test of the receive, MPI_Wait of the send;
 * test_pending: MPI_Test of a receive whose message never comes, as
 * hpcc's RandomAccess polls its receive between updates)
 *
 * The shim is loaded with a lower half of this program's own: a function
 * table of stubs that return at once (a send is taken, a receive's message
 * is there at the first MPI_Test), behind a link (core/link.h) as the
 * runtime publishes it. So what the loop costs beyond the stubs is the
 * wrapper path alone: sections, handle translation, request entries,
 * counting, the collective gate. The loop is bracketed with callgrind's
 * client requests; bench/overhead_callgrind.py takes the stubs out of the
 * count. Built by overhead_bench.sh with the flavour's mpi.h and the
 * build's generated pmpi/mpi_index.h; never linked with MPI. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

#include <mpi.h>

#include "core/link.h"
#include "pmpi/lower_fast.h"
#include "pmpi/mpi_index.h"
#include "pmpi/vstate.h"

#ifdef OPEN_MPI
typedef void *hnd;
#define H(name, ompi) dlsym(shim, ompi)
#else
typedef intptr_t hnd;
#define H(name, ompi) ((hnd)(name))
#endif

/* ---- the stub lower half: names start with stub_ (the analysis
 * subtracts them) ---- */
static int stub_ok(void) { return MPI_SUCCESS; }
static int stub_size(void *c, int *n) { (void)c; *n = 2; return MPI_SUCCESS; }
static int stub_rank(void *c, int *r) { (void)c; *r = 0; return MPI_SUCCESS; }
static int stub_isend(const void *b, int n, void *t, int p, int g, void *c, MPI_Request *r)
{
	(void)b, (void)n, (void)t, (void)p, (void)g, (void)c;
	*r = (MPI_Request)0x5a5a1000; /* a live request */
	return MPI_SUCCESS;
}
static int never_complete; /* test_pending */
static int stub_test(MPI_Request *r, int *flag, MPI_Status *st)
{
	if (never_complete) {
		*flag = 0;
		return MPI_SUCCESS;
	}
	*r = (MPI_Request)0;
	*flag = 1;
	if (st != MPI_STATUS_IGNORE) {
		st->MPI_SOURCE = 1;
		st->MPI_TAG = 0;
	}
	return MPI_SUCCESS;
}
static int stub_recv(void *b, int n, void *t, int p, int g, void *c, MPI_Status *st)
{
	(void)b, (void)n, (void)t, (void)g, (void)c;
	if (st != MPI_STATUS_IGNORE) {
		st->MPI_SOURCE = p;
		st->MPI_TAG = 0;
	}
	return MPI_SUCCESS;
}
/* the lower half's fast path of blocking calls (pmpi/lower_fast.h): every
 * request completes at its first test */
static int stub_p2p_fast(struct ckpt_fast_op *ops, int nops, MPI_Comm comm, MPI_Status *st,
                         const volatile int32_t *cut)
{
	(void)comm, (void)cut;
	for (int i = 0; i < nops; i++) {
		ops[i].req = (MPI_Request)0;
		ops[i].state = CKPT_FAST_DONE;
		if (ops[i].recv && st != MPI_STATUS_IGNORE) {
			st->MPI_SOURCE = ops[i].peer;
			st->MPI_TAG = ops[i].tag;
		}
	}
	return MPI_SUCCESS;
}
/* the lower half's waits: every request is complete at its first test */
static int stub_wait_fast(struct ckpt_vh *const *es, int n, int need, const volatile int32_t *cut)
{
	(void)need, (void)cut;
	for (int i = 0; i < n; i++) {
		es[i]->real = 0;
		es[i]->u.r.flag = 1;
		((MPI_Status *)es[i]->u.r.status)->MPI_SOURCE = 1;
		((MPI_Status *)es[i]->u.r.status)->MPI_TAG = 0;
	}
	return MPI_SUCCESS;
}
static int stub_type_size(void *t, int *s) { (void)t; *s = 8; return MPI_SUCCESS; }
static int stub_test_cancelled(const MPI_Status *st, int *f) { (void)st; *f = 0; return MPI_SUCCESS; }

/* MPI's functions, then the lower half's own (a shim before them ignores it) */
static void *table[CKPT_LOWER_NSLOTS];
static struct ckptmpi_link link_area;

static void *sym(void *shim, const char *n)
{
	void *p = dlsym(shim, n);
	if (!p) {
		fprintf(stderr, "overhead_calls: %s: %s\n", n, dlerror());
		exit(2);
	}
	return p;
}

static uint64_t get_fs(void)
{
	uint64_t v;
	if (getauxval(AT_HWCAP2) & 2) {
		__asm__ volatile("rdfsbase %0" : "=r"(v));
		return v;
	}
	/* (under valgrind: no FSGSBASE, the shim uses arch_prctl too) */
	extern int arch_prctl(int, unsigned long *);
	arch_prctl(0x1003 /* ARCH_GET_FS */, (unsigned long *)&v);
	return v;
}

int main(int argc, char **argv)
{
	char env[64];
	void *shim;
	int n;

	if (argc != 4) {
		fprintf(stderr, "usage: overhead_calls SHIM.so OP N\n");
		return 2;
	}
	n = atoi(argv[3]);
	for (int i = 0; i < CKPT_MPI_NFUNCS; i++)
		table[i] = (void *)stub_ok;
	table[CKPT_MPI_MPI_Comm_size] = (void *)stub_size;
	table[CKPT_MPI_MPI_Comm_remote_size] = (void *)stub_size;
	table[CKPT_MPI_MPI_Comm_rank] = (void *)stub_rank;
	table[CKPT_MPI_MPI_Isend] = (void *)stub_isend;
	table[CKPT_MPI_MPI_Irecv] = (void *)stub_isend;
	table[CKPT_MPI_MPI_Test] = (void *)stub_test;
	table[CKPT_MPI_MPI_Send] = (void *)stub_ok;
	table[CKPT_MPI_MPI_Recv] = (void *)stub_recv;
	table[CKPT_MPI_MPI_Type_size] = (void *)stub_type_size;
	table[CKPT_MPI_MPI_Test_cancelled] = (void *)stub_test_cancelled;
	table[CKPT_LOWER_P2P_FAST] = (void *)stub_p2p_fast;
	table[CKPT_LOWER_WAIT_FAST] = (void *)stub_wait_fast;

	/* what the runtime publishes (core/link.h) */
	link_area.magic = CKPTMPI_LINK_MAGIC;
	link_area.pid = getpid();
	link_area.trigger_fd = -1;
	link_area.mpi_table = (uint64_t)(uintptr_t)table;
	link_area.mpi_nfuncs = CKPT_MPI_NFUNCS;
	link_area.mpi_provided = MPI_THREAD_MULTIPLE;
	link_area.main_lower_fs = get_fs(); /* the stubs run on this thread's own */
#ifdef OPEN_MPI
	{
		/* the real objects of the predefined handles: distinct dummies */
		static uint64_t lower[4096], objs[4096][2];
		link_area.mpi_npredef = strtoul(getenv("OVERHEAD_NPREDEF") ?: "0", NULL, 10);
		for (unsigned i = 0; i < link_area.mpi_npredef && i < 4096; i++)
			lower[i] = (uint64_t)(uintptr_t)objs[i];
		link_area.mpi_predef = (uint64_t)(uintptr_t)lower;
	}
#endif
	snprintf(env, sizeof env, "%llx", (unsigned long long)(uintptr_t)&link_area);
	setenv("CKPTMPI_LINK", env, 1);
	shim = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
	if (!shim) {
		fprintf(stderr, "overhead_calls: %s\n", dlerror());
		return 2;
	}

	int (*send)(const void *, int, hnd, int, int, hnd) = sym(shim, "PMPI_Send");
	int (*recv)(void *, int, hnd, int, int, hnd, MPI_Status *) = sym(shim, "PMPI_Recv");
	int (*sendrecv)(const void *, int, hnd, int, int, void *, int, hnd, int, int, hnd,
	                MPI_Status *) = sym(shim, "PMPI_Sendrecv");
	int (*isend)(const void *, int, hnd, int, int, hnd, hnd *) = sym(shim, "PMPI_Isend");
	int (*wait)(hnd *, MPI_Status *) = sym(shim, "PMPI_Wait");
	/* (requests as MPI declares them: MPICH's are ints) */
	int (*irecv)(void *, int, hnd, int, int, hnd, MPI_Request *) = sym(shim, "PMPI_Irecv");
	int (*isend_r)(const void *, int, hnd, int, int, hnd, MPI_Request *) = sym(shim, "PMPI_Isend");
	int (*waitall)(int, MPI_Request *, MPI_Status *) = sym(shim, "PMPI_Waitall");
	int (*test_r)(MPI_Request *, int *, MPI_Status *) = sym(shim, "PMPI_Test");
	int (*wait_r)(MPI_Request *, MPI_Status *) = sym(shim, "PMPI_Wait");
	int (*allreduce)(const void *, void *, int, hnd, hnd, hnd) = sym(shim, "PMPI_Allreduce");
	int (*comm_rank)(hnd, int *) = sym(shim, "PMPI_Comm_rank");
	hnd world = H(MPI_COMM_WORLD, "ompi_mpi_comm_world");
	hnd dbl = H(MPI_DOUBLE, "ompi_mpi_double");
	hnd sum = H(MPI_SUM, "ompi_mpi_op_sum");
	double a = 1, b = 0;
	MPI_Status st;
	int r = 0, op = -1;
	MPI_Status sts[2];
	const char *ops[] = {"send",      "recv",     "sendrecv",     "allreduce", "isend_wait",
	                     "comm_rank", "exchange", "test_exchange", "test_pending"};
	MPI_Request pending;

	for (int i = 0; i < 9; i++)
		if (!strcmp(argv[2], ops[i]))
			op = i;
	if (op < 0 || !world || !dbl || !sum) {
		fprintf(stderr, "overhead_calls: unknown operation %s\n", argv[2]);
		return 2;
	}
	/* the program's MPI_Init, as a program that asks for no threads
	 * (OVERHEAD_THREAD_LEVEL=multiple: MPI_Init_thread at MULTIPLE; the
	 * shim's bookkeeping then takes locked instructions) */
	{
		int (*init)(int *, char ***) = sym(shim, "PMPI_Init");
		int (*init_thread)(int *, char ***, int, int *) = sym(shim, "PMPI_Init_thread");
		const char *lv = getenv("OVERHEAD_THREAD_LEVEL");
		int provided = 0;

		if (lv && !strcmp(lv, "multiple"))
			init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
		else
			init(NULL, NULL);
	}
	/* warm: entries, first-call paths */
	send(&a, 1, dbl, 1, 0, world);
	recv(&b, 1, dbl, 1, 0, world, &st);
	if (op == 8) {
		r |= irecv(&b, 1, dbl, 1, 0, world, &pending);
		never_complete = 1;
	}
	CALLGRIND_ZERO_STATS;
	for (int i = 0; i < n; i++) {
		hnd req;
		switch (op) {
		case 0: r |= send(&a, 1, dbl, 1, 0, world); break;
		case 1: r |= recv(&b, 1, dbl, 1, 0, world, MPI_STATUS_IGNORE); break;
		case 2: r |= sendrecv(&a, 1, dbl, 1, 0, &b, 1, dbl, 1, 0, world, &st); break;
		case 3: r |= allreduce(&a, &b, 1, dbl, sum, world); break;
		case 4: r |= isend(&a, 1, dbl, 1, 0, world, &req) | wait(&req, &st); break;
		case 5: r |= comm_rank(world, &op); op = 5; break;
		case 6: {
			MPI_Request q[2];
			r |= irecv(&b, 1, dbl, 1, 0, world, &q[0]) | isend_r(&a, 1, dbl, 1, 0, world, &q[1]) |
			     waitall(2, q, sts);
			break;
		}
		case 7: {
			MPI_Request q[2];
			int flag = 0;
			r |= irecv(&b, 1, dbl, 1, 0, world, &q[0]) | isend_r(&a, 1, dbl, 1, 0, world, &q[1]);
			while (!flag && !r)
				r |= test_r(&q[0], &flag, MPI_STATUS_IGNORE);
			r |= wait_r(&q[1], MPI_STATUS_IGNORE);
			break;
		}
		case 8: {
			int flag = 1;
			r |= test_r(&pending, &flag, &st);
			r |= flag; /* (it never completes) */
			break;
		}
		}
	}
	CALLGRIND_DUMP_STATS_AT("loop");
	if (r) {
		fprintf(stderr, "overhead_calls: a call failed (%d)\n", r);
		return 1;
	}
	printf("%s %d calls done\n", argv[2], n);
	return 0;
}
