/* The lower half's side of MPI: initialise the real MPI before the
 * application exists, and publish its function table through the link. */
#include <ctype.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdint.h>

#include "core/control.h"
#include "core/ctl_net.h"
#include "core/elf_file.h"
#include "core/log.h"
#include "core/runtime_info.h"
#include "pmpi/lower_job.h"
#include "storage/shm_ledger.h"
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pmpi/lower_fast.h"
#include "pmpi/ucx_env.h"
#include "pmpi/mpi_index.h"

void ckpt_mpi_table_fill(void **fn);

/* MPI's functions, then the lower half's own (pmpi/lower_fast.h) */
static void *mpi_table[CKPT_LOWER_NSLOTS];

/* UCX's environment (pmpi/ucx_env.h): returns 1 when it had to set a
 * variable (the runtime then re-executes itself, for UCX's constructors
 * to see it). */
int runtime_mpi_env(void)
{
	return ckpt_ucx_env_set();
}

/* 1 when a preload list (':' or ' ' separated) names a libckptmpi.so */
static int preload_has_shim(const char *list)
{
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ": ");
		const char *slash = memrchr(p, '/', len);
		const char *base = slash ? slash + 1 : p;
		if ((size_t)(p + len - base) == strlen("libckptmpi.so") &&
		    !strncmp(base, "libckptmpi.so", len - (size_t)(base - p)))
			return 1;
		p += len;
		p += strspn(p, ": ");
	}
	return 0;
}

/* Started directly (`mpirun -np N ckptmpi-runtime-FLAVOUR PROGRAM`) for a
 * program that is not linked with -lckptmpi: preload this flavour's shim
 * into the upper half so its MPI calls come down here. */
void runtime_mpi_upper_preload(void)
{
	char self[4096], shim[4200];
	const char *list = getenv("CKPTMPI_PRELOAD");
	ssize_t n;

	if (getenv("CKPTMPI_REEXEC"))
		return; /* re-executed by the shim: it is there already */
	/* a list of its own (`ckptmpi run` puts the verbs library there): the
	 * shim goes after it, unless one is there already */
	if (list && preload_has_shim(list))
		return;
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0)
		return;
	self[n] = 0;
	*strrchr(self, '/') = 0;
	snprintf(shim, sizeof shim, "%s/../lib/ckptmpi/%s/libckptmpi.so", self, CKPTMPI_FLAVOUR);
	if (access(shim, R_OK)) {
		/* installed layout: PREFIX/bin and PREFIX/LIBDIR/ckptmpi */
		snprintf(shim, sizeof shim, "%s/../%s/ckptmpi/%s/libckptmpi.so", self,
		         CKPTMPI_INSTALL_LIBDIR, CKPTMPI_FLAVOUR);
		if (access(shim, R_OK)) {
			log_info("no %s shim next to the runtime: the program must be linked with -lckptmpi",
			         CKPTMPI_FLAVOUR);
			return;
		}
	}
	if (list && *list) {
		char *both;
		if (asprintf(&both, "%s:%s", list, shim) < 0) {
			log_error("no memory for the preload list: the program must be linked with "
			          "-lckptmpi");
			return;
		}
		setenv("CKPTMPI_PRELOAD", both, 1);
		free(both);
	} else {
		setenv("CKPTMPI_PRELOAD", shim, 1);
	}
}

int runtime_mpi_ctl_init(void);

#define CKPT_LOW_FDS 64

/* 1 once MPI is up in the lower half */
static volatile int mpi_level_ready;

int runtime_mpi_active(void)
{
	return __atomic_load_n(&mpi_level_ready, __ATOMIC_ACQUIRE) && ctlnet_up();
}

/* The ranks coordinate over the control network while the program runs
 * (pmpi/lower_cut.c): without it, no checkpoint */
int runtime_mpi_check(char *err, size_t len)
{
	if (!__atomic_load_n(&mpi_level_ready, __ATOMIC_ACQUIRE) || runtime_mpi_active())
		return 0;
	snprintf(err, len, "the runtime's control network did not start (see the job's start): "
	         "no checkpoints of this job");
	return -1;
}

const char *runtime_mpi_flavour(void) { return CKPTMPI_FLAVOUR; }

/* The program's MPI_Finalize: MPI removes its shared memory, so the
 * ledger that lists it for a killed job's successor goes too. */
static int (*real_finalize)(void);

static int lower_finalize(void)
{
	int rc = real_finalize();
	if (rc == MPI_SUCCESS)
		shm_ledger_drop();
	return rc;
}

/* What the program's own executable calls to start MPI: any MPI_Init*
 * (C, PMPI_, the Fortran bindings' mpi_init_*), and whether one of them
 * asks for a thread level */
struct init_calls {
	int init, init_thread;
};

static int init_call(const char *name, void *arg)
{
	struct init_calls *c = arg;
	char low[64];
	size_t i;

	for (i = 0; name[i] && i < sizeof low - 1; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	low[i] = 0;
	if (strncmp(low, "mpi_init", 8) && strncmp(low, "pmpi_init", 9))
		return 0;
	if (strstr(low, "thread"))
		c->init_thread = 1;
	else if (!strstr(low, "initialized"))
		c->init = 1;
	return 0;
}

/* The thread level the runtime asks MPI for, before the program asks for
 * its own (the runtime's MPI is up before the program starts):
 * CKPTMPI_MPI_THREAD when set; else the level the program gets without
 * ckptmpi when its executable calls MPI_Init and no MPI_Init_thread:
 * MPI_THREAD_SINGLE, MPI without its locks (the control thread uses MPI
 * only with the program parked, pmpi/lower_cut.c); else
 * MPI_THREAD_MULTIPLE, which serves every program (one that asks for a
 * level, or starts MPI in a library: Python's mpi4py). */
static int wanted_level(void)
{
	const char *want = getenv("CKPTMPI_MPI_THREAD");
	struct init_calls c = {0, 0};

	if (want && *want) {
		if (!strcmp(want, "single"))
			return MPI_THREAD_SINGLE;
		if (!strcmp(want, "funneled"))
			return MPI_THREAD_FUNNELED;
		if (!strcmp(want, "serialized"))
			return MPI_THREAD_SERIALIZED;
		if (!strcmp(want, "multiple"))
			return MPI_THREAD_MULTIPLE;
		log_error("CKPTMPI_MPI_THREAD=%s: expected single, funneled, serialized or multiple",
		          want);
		return -1;
	}
	if (runtime_program()[0])
		elf_each_dynamic_name(runtime_program(), init_call, &c);
	log_debug("%s calls MPI_Init %s, MPI_Init_thread %s", runtime_program(),
	          c.init ? "yes" : "no", c.init_thread ? "yes" : "no");
	return c.init && !c.init_thread ? MPI_THREAD_SINGLE : MPI_THREAD_MULTIPLE;
}

int runtime_mpi_init(void)
{
	int provided = 0, rank = 0, size = 0, level = wanted_level();

	if (level < 0)
		return -1;
	/* keep the low descriptor numbers for the application: what MPI opens
	 * while it starts goes above them, so a restart can give the program
	 * its own numbers back */
	int hold[CKPT_LOW_FDS], nhold = 0, devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	for (int fd = 3; devnull >= 0 && fd < CKPT_LOW_FDS; fd++)
		if (fcntl(fd, F_GETFD) == -1 && dup3(devnull, fd, O_CLOEXEC) == fd)
			hold[nhold++] = fd;
	if (MPI_Init_thread(NULL, NULL, level, &provided) != MPI_SUCCESS) {
		log_error("MPI_Init_thread failed in the runtime");
		return -1;
	}
	for (int i = 0; i < nhold; i++)
		close(hold[i]);
	if (devnull >= 0)
		close(devnull);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (runtime_mpi_ctl_init()) {
		log_error("cannot make the runtime's own communicator");
		return -1;
	}
	ckpt_mpi_table_fill(mpi_table);
	real_finalize = (int (*)(void))mpi_table[CKPT_MPI_MPI_Finalize];
	mpi_table[CKPT_MPI_MPI_Finalize] = (void *)lower_finalize;
	mpi_table[CKPT_LOWER_P2P_FAST] = (void *)(ckpt_lower_p2p_fast_fn){ckpt_lower_p2p_fast};
	mpi_table[CKPT_LOWER_WAIT_FAST] = (void *)(ckpt_lower_wait_fast_fn){ckpt_lower_wait_fast};
#ifdef CKPTMPI_HANDLES_ARE_POINTERS
	{
		/* where the real predefined objects are, for the shim's copies */
		extern const unsigned ckpt_predef_count;
		extern const char *const ckpt_predef_names[];
		static uint64_t addrs[1024];
		for (unsigned i = 0; i < ckpt_predef_count && i < 1024; i++)
			addrs[i] = (uint64_t)dlsym(RTLD_DEFAULT, ckpt_predef_names[i]);
		control_set_mpi_predefined(addrs, ckpt_predef_count);
	}
#endif
	__atomic_store_n(&mpi_level_ready, 1, __ATOMIC_RELEASE);
	control_set_mpi(mpi_table, CKPT_MPI_NFUNCS, provided, CKPTMPI_FLAVOUR_ID,
	                (uint64_t)__builtin_thread_pointer());
	log_debug("MPI (%s) initialised in the lower half: rank %d of %d, thread level %d",
	          CKPTMPI_FLAVOUR, rank, size, provided);
	return 0;
}
