/* MPI functions the shim implements by hand: the real MPI was initialised
 * by the runtime before the application started, so the application's
 * MPI_Init only records that it happened. */
#include <dlfcn.h>
#include <mpi.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>

#include "pmpi/call.h"
#include "pmpi/upper_special.h"
#include "pmpi/mpi_index.h"
#include "pmpi/vstate.h"

int ckpt_lower_provided(void);

static int app_initialized, app_finalized;

int PMPI_Init(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (app_initialized)
		return MPI_ERR_OTHER;
	app_initialized = 1;
	ckpt_app_concurrent = 0; /* MPI_THREAD_SINGLE (MPI_Init_thread may raise it) */
	return MPI_SUCCESS;
}
#pragma weak MPI_Init = PMPI_Init

int PMPI_Init_thread(int *argc, char ***argv, int required, int *provided)
{
	int have = ckpt_lower_provided();
	int rc = PMPI_Init(argc, argv);
	*provided = required < have ? required : have;
	ckpt_app_concurrent = *provided == MPI_THREAD_MULTIPLE;
	return rc;
}
#pragma weak MPI_Init_thread = PMPI_Init_thread

int PMPI_Initialized(int *flag)
{
	*flag = app_initialized;
	return MPI_SUCCESS;
}
#pragma weak MPI_Initialized = PMPI_Initialized

/* MPI_Finalize ends the runtime's use of MPI too: no checkpoint may start
 * (rank 0 starts them), one under way completes, the control thread is
 * out of MPI, and every rank is here (a barrier, itself cut like any
 * collective) before the real MPI_Finalize. */
int PMPI_Finalize(void)
{
	typedef int (*fn_t)(void);
	int rc;

	/* MPI-3.1 8.7.1: MPI_COMM_SELF's attributes go first, as if freed */
	ckpt_attr_freeing(CKPT_HVAL(MPI_COMM_SELF));
	__atomic_store_n(&ckpt_st->finalizing, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&ckpt_st->ctl_busy, __ATOMIC_SEQ_CST))
		usleep(200);
	PMPI_Barrier(MPI_COMM_WORLD);
	for (;;) {
		int32_t seq = __atomic_load_n(&ckpt_st->cut_seq, __ATOMIC_ACQUIRE);
		if (__atomic_load_n(&ckpt_st->cut, __ATOMIC_ACQUIRE) == CKPT_CUT_RUN)
			break;
		syscall(SYS_futex, &ckpt_st->cut_seq, FUTEX_WAIT_PRIVATE, seq, NULL, NULL, 0);
	}
	__atomic_store_n(&ckpt_st->finalizing, 2, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&ckpt_st->ctl_busy, __ATOMIC_SEQ_CST))
		usleep(200);
	rc = CKPT_CALL(CKPT_MPI_MPI_Finalize, fn_t);
	if (rc == MPI_SUCCESS)
		app_finalized = 1;
	return rc;
}
#pragma weak MPI_Finalize = PMPI_Finalize

int PMPI_Finalized(int *flag)
{
	*flag = app_finalized;
	return MPI_SUCCESS;
}
#pragma weak MPI_Finalized = PMPI_Finalized

int PMPI_Pcontrol(const int level, ...)
{
	(void)level;
	return MPI_SUCCESS;
}
#pragma weak MPI_Pcontrol = PMPI_Pcontrol

/* MPI_Comm_idup(_with_info) are non-blocking (served by MPI_Comm_dup they
 * deadlocked programs whose members start them in different orders). The
 * new communicator gets its entry at once (its groups are its parent's)
 * and is logged as an MPI_Comm_dup of the parent (replayed blocking after
 * a restart); the request is MPI's, followed like any request the shim
 * does not make itself (a checkpoint waits for it). Its name for the cut
 * is derived from its parent's (pmpi/vtable.c, ckpt_vh_new_idup). */
static int comm_idup(uint32_t fn, MPI_Comm comm, MPI_Info info, int with_info, MPI_Comm *newcomm,
                     MPI_Request *request)
{
	typedef int (*idup_t)(MPI_Comm, MPI_Comm *, MPI_Request *);
	struct ckpt_vh *c = ckpt_coll_enter(CKPT_HVAL(comm));
	uint64_t pseq = c ? c->u.c.seq : 0; /* this idup's place on the parent */
	MPI_Comm lc, ln = MPI_COMM_NULL;
	MPI_Request lr = MPI_REQUEST_NULL;
	int rc;

	ckpt_section_begin();
	ckpt_create_begin();
	lc = CKPT_VH_IN(Comm, comm);
#ifdef CKPT_HAVE_MPI_Comm_idup_with_info
	if (with_info) {
		typedef int (*idupi_t)(MPI_Comm, MPI_Info, MPI_Comm *, MPI_Request *);
		MPI_Info li = CKPT_VH_IN(Info, info);
		rc = CKPT_CALL(CKPT_MPI_MPI_Comm_idup_with_info, idupi_t, lc, li, &ln, &lr);
	} else
#endif
	{
		(void)info;
		(void)with_info;
		rc = CKPT_CALL(CKPT_MPI_MPI_Comm_idup, idup_t, lc, &ln, &lr);
	}
	ckpt_coll_leave(c);
	if (rc == MPI_SUCCESS) {
		uint64_t *w;
		*newcomm = CKPT_HCAST(MPI_Comm,
		                      ckpt_vh_new_idup(CKPT_HVAL(ln), CKPT_HVAL(lc),
		                                       c ? c->u.c.name : 0, pseq,
		                                       CKPT_MPI_MPI_Comm_dup));
		*request = lr;
		CKPT_VH_OUT(Request, request, fn);
		/* the record MPI_Comm_dup writes (pmpi/gen_mpi.py, log_block) */
		w = ckpt_log_begin(CKPT_MPI_MPI_Comm_dup, 2);
		if (w) {
			w[0] = ckpt_logv(CKPT_HVAL(comm));
			w[1] = CKPT_HVAL(*newcomm);
			ckpt_log_end(w + 2);
		}
		ckpt_attr_copied(CKPT_HVAL(comm), CKPT_HVAL(*newcomm));
	}
	ckpt_create_end();
	ckpt_section_end();
	return rc;
}

int PMPI_Comm_idup(MPI_Comm comm, MPI_Comm *newcomm, MPI_Request *request)
{
	return comm_idup(CKPT_MPI_MPI_Comm_idup, comm, MPI_INFO_NULL, 0, newcomm, request);
}
#pragma weak MPI_Comm_idup = PMPI_Comm_idup

#ifdef CKPT_HAVE_MPI_Comm_idup_with_info
int PMPI_Comm_idup_with_info(MPI_Comm comm, MPI_Info info, MPI_Comm *newcomm, MPI_Request *request)
{
	return comm_idup(CKPT_MPI_MPI_Comm_idup_with_info, comm, info, 1, newcomm, request);
}
#pragma weak MPI_Comm_idup_with_info = PMPI_Comm_idup_with_info
#endif

/* MPI_Comm_free: attributes deleted first (an error of a delete callback
 * is the call's, and the communicator stays), then the cut's record, then MPI's
 * communicator: the real object goes now (the creation log re-creates and
 * frees it again after a restart). */
int PMPI_Comm_free(MPI_Comm *comm)
{
	typedef int (*free_t)(MPI_Comm *);
	MPI_Comm l;
	int rc;

	rc = ckpt_attr_freeing_rc(CKPT_HVAL(*comm));
	if (rc != MPI_SUCCESS)
		return rc;
	ckpt_section_begin();
	l = CKPT_VH_IN(Comm, *comm);
	ckpt_comm_freeing(CKPT_HVAL(*comm));
	rc = CKPT_CALL(CKPT_MPI_MPI_Comm_free, free_t, &l);
	CKPT_VH_INOUT(Comm, comm, l, CKPT_MPI_MPI_Comm_free);
	ckpt_section_end();
	return rc;
}
#pragma weak MPI_Comm_free = PMPI_Comm_free

/* A function the library exports and the shim does not know
 * (upper_unsupported.c): it must not reach the application's own copy of
 * the library, which was never initialised. */
void ckpt_unsupported(const char *name)
{
	char msg[160];
	int n = snprintf(msg, sizeof msg, "ckptmpi: %s is not supported (not restorable: no "
	                 "wrapper); the job is aborted\n", name);
	if (write(2, msg, (size_t)n) < 0) {
		/* nothing more to say */
	}
	PMPI_Abort(MPI_COMM_WORLD, 1);
	_exit(1);
}

/* A dup whose attribute copy callback failed (pmpi/gen_mpi.py, @attrcopy):
 * the new object is freed (with what was copied) and the handle is null. */
void ckpt_attr_dup_failed(int kind, void *newobj)
{
	if (kind == CKPT_VK_COMM) {
		MPI_Comm *c = newobj;
		PMPI_Comm_free(c);
		*c = MPI_COMM_NULL;
	} else if (kind == CKPT_VK_DATATYPE) {
		MPI_Datatype *t = newobj;
		PMPI_Type_free(t);
		*t = MPI_DATATYPE_NULL;
	}
}

/* MPI_UNWEIGHTED and MPI_WEIGHTS_EMPTY (arrays of the graph constructors,
 * `:weights` in the table): Open MPI's are constants, MPICH's the
 * addresses of objects in the library, which the lower MPICH compares
 * with its own. The application has them from its own copy of the library
 * (the upper half's); the lower copy is the same file, so the lower value
 * is found at the same offset from a function both export. Looked up at
 * every call (rare calls; the lower library moves at a restart). */
#ifndef CKPTMPI_HANDLES_ARE_POINTERS
#pragma weak MPI_UNWEIGHTED
#pragma weak MPI_WEIGHTS_EMPTY
#endif
const void *ckpt_weights_in(const void *w)
{
#ifdef CKPTMPI_HANDLES_ARE_POINTERS
	return w;
#else
	static const char *const names[2] = {"MPI_UNWEIGHTED", "MPI_WEIGHTS_EMPTY"};
	const void *upper[2];
	void *lib;
	Dl_info di;
	char *fn;

	/* weak: the shim is also preloaded into processes without MPI
	 * (mpirun), where these are undefined */
	if (w == NULL || !&MPI_UNWEIGHTED || !&MPI_WEIGHTS_EMPTY)
		return w;
	upper[0] = MPI_UNWEIGHTED;
	upper[1] = MPI_WEIGHTS_EMPTY;
	if (w != upper[0] && w != upper[1])
		return w;
	lib = dlopen(CKPTMPI_MPI_SONAME, RTLD_NOW | RTLD_NOLOAD);
	fn = lib ? dlsym(lib, "PMPI_Dist_graph_create") : NULL;
	if (!fn || !dladdr(fn, &di) || !ckpt_lower_fn ||
	    !ckpt_lower_fn[CKPT_MPI_MPI_Dist_graph_create])
		return w;
	for (int k = 0; k < 2; k++) {
		char *var = dlsym(lib, names[k]);
		if (var && w == upper[k]) {
			char *lower_base = (char *)ckpt_lower_fn[CKPT_MPI_MPI_Dist_graph_create] -
			                   (fn - (char *)di.dli_fbase);
			return *(void *const *)(lower_base + (var - (char *)di.dli_fbase));
		}
	}
	return w;
#endif
}

/* MPI_Alloc_mem / MPI_Free_mem: the memory is the application's data, so
 * it comes from the upper half (this libc's allocator, which the image
 * saves), never from MPI, whose memory is the lower half's and is not
 * saved. Aligned like MPI's (64 bytes: a cache line, enough for any type
 * and for registration). The info hints are about MPI's own memory kinds,
 * which this memory does not need. */
int PMPI_Alloc_mem(MPI_Aint size, MPI_Info info, void *baseptr)
{
	void *p = NULL;

	(void)info;
	if (size < 0)
		return MPI_ERR_SIZE;
	if (posix_memalign(&p, 64, size ? (size_t)size : 1) != 0)
		return MPI_ERR_NO_MEM;
	*(void **)baseptr = p;
	return MPI_SUCCESS;
}
#pragma weak MPI_Alloc_mem = PMPI_Alloc_mem

int PMPI_Free_mem(void *base)
{
	free(base);
	return MPI_SUCCESS;
}
#pragma weak MPI_Free_mem = PMPI_Free_mem

#ifdef CKPT_HAVE_MPI_Info_create_env
/* MPI_Info_create_env: MPI's object read into one of MPI_Info_create and
 * MPI_Info_set, which the creation log replays after a restart. */
int PMPI_Info_create_env(int argc, char *argv[], MPI_Info *info)
{
	typedef int (*env_t)(int, char **, MPI_Info *);
	typedef int (*nkeys_t)(MPI_Info, int *);
	typedef int (*nth_t)(MPI_Info, int, char *);
	typedef int (*vlen_t)(MPI_Info, const char *, int *, int *);
	typedef int (*get_t)(MPI_Info, const char *, int, char *, int *);
	typedef int (*free_t)(MPI_Info *);
	MPI_Info env = MPI_INFO_NULL;
	int rc, n = 0;

	ckpt_section_begin();
	rc = CKPT_CALL(CKPT_MPI_MPI_Info_create_env, env_t, argc, argv, &env);
	if (rc == MPI_SUCCESS)
		rc = PMPI_Info_create(info);
	if (rc == MPI_SUCCESS)
		rc = CKPT_CALL(CKPT_MPI_MPI_Info_get_nkeys, nkeys_t, env, &n);
	for (int i = 0; rc == MPI_SUCCESS && i < n; i++) {
		char key[MPI_MAX_INFO_KEY + 1], *val;
		int len = 0, flag = 0;
		rc = CKPT_CALL(CKPT_MPI_MPI_Info_get_nthkey, nth_t, env, i, key);
		if (rc == MPI_SUCCESS)
			rc = CKPT_CALL(CKPT_MPI_MPI_Info_get_valuelen, vlen_t, env, key, &len, &flag);
		if (rc != MPI_SUCCESS || !flag)
			continue;
		val = malloc((size_t)len + 1);
		if (!val) {
			rc = MPI_ERR_NO_MEM;
			break;
		}
		rc = CKPT_CALL(CKPT_MPI_MPI_Info_get, get_t, env, key, len, val, &flag);
		val[len] = 0;
		if (rc == MPI_SUCCESS && flag)
			rc = PMPI_Info_set(*info, key, val);
		free(val);
	}
	if (env != MPI_INFO_NULL)
		CKPT_CALL(CKPT_MPI_MPI_Info_free, free_t, &env);
	ckpt_section_end();
	return rc;
}
#pragma weak MPI_Info_create_env = PMPI_Info_create_env
#endif

#ifdef CKPT_HAVE_MPI_Session_init
/* Sessions: MPI's own (the runtime's world model runs alongside, as MPI-4
 * allows); not restored, so a checkpoint is refused once one was made. A
 * program that only used sessions never calls MPI_Finalize: the runtime's
 * MPI is finalized when it exits (else the launcher sees a rank end
 * without finalizing and kills the job). */
static int sessions_used;

int PMPI_Session_init(MPI_Info info, MPI_Errhandler errhandler, MPI_Session *session)
{
	typedef int (*fn_t)(MPI_Info, MPI_Errhandler, MPI_Session *);
	int rc;

	ckpt_section_begin();
	rc = CKPT_CALL(CKPT_MPI_MPI_Session_init, fn_t, CKPT_VH_IN(Info, info),
	               CKPT_VH_IN(Errhandler, errhandler), session);
	ckpt_section_end();
	if (rc == MPI_SUCCESS) {
		ckpt_refuse_call(CKPT_MPI_MPI_Session_init);
		sessions_used = 1;
	}
	return rc;
}
#pragma weak MPI_Session_init = PMPI_Session_init

__attribute__((destructor)) static void finalize_sessions_only(void)
{
	if (sessions_used && !app_initialized && !app_finalized)
		PMPI_Finalize();
}
#endif
