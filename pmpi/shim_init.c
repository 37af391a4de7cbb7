/* Upper-half MPI shim: start-up and thread contexts.
 *
 * Loaded into the application (linked with -lckptmpi, or preloaded), it
 * finds the runtime through the link (core/link.h). When the process is
 * not running under the runtime (a plain `mpirun ./app`), it re-executes
 * the rank through ckptmpi-runtime-<flavour> before main runs. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <asm/prctl.h>

#include "pmpi/link_find.h"
#include "pmpi/call.h"
#include "pmpi/mpi_index.h"
#include "pmpi/shim.h"
#include "pmpi/ucx_env.h"

void **ckpt_lower_fn;
int ckpt_have_fsgsbase;
__thread uint64_t ckpt_lower_fs __attribute__((tls_model("initial-exec")));
static struct ckptmpi_link *link_area;

void ckpt_arch_set_fs(uint64_t fs) { syscall(SYS_arch_prctl, ARCH_SET_FS, fs); }

static __attribute__((noreturn)) void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "ckptmpi: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	_exit(127);
}

/* Run this rank again, as the upper half of the runtime. */
static void reexec_through_runtime(void)
{
	static char cmd[1 << 16];
	char self[PATH_MAX], rt[PATH_MAX + 64], lib[PATH_MAX];
	char *args[1024];
	Dl_info info;
	ssize_t n;
	int fd, argc = 0;

	if (getenv("CKPTMPI_REEXEC"))
		die("%s: the ckptmpi runtime did not take over this process", CKPTMPI_RUNTIME_NAME);
	if (!dladdr((void *)reexec_through_runtime, &info) || !info.dli_fname)
		die("%s: cannot locate the ckptmpi shim library", "dladdr");
	if (getenv("CKPTMPI_RUNTIME")) {
		snprintf(rt, sizeof rt, "%s", getenv("CKPTMPI_RUNTIME"));
	} else {
		/* installed: LIBDIR/ckptmpi/FLAVOUR -> BINDIR; build tree:
		 * lib/ckptmpi/FLAVOUR -> bin */
		snprintf(lib, sizeof lib, "%s", info.dli_fname);
		snprintf(rt, sizeof rt, "%s/%s/%s", dirname(lib), CKPTMPI_SHIM_TO_BIN, CKPTMPI_RUNTIME_NAME);
		if (access(rt, X_OK))
			snprintf(rt, sizeof rt, "%s/../../../bin/%s", lib, CKPTMPI_RUNTIME_NAME);
	}
	n = readlink("/proc/self/exe", self, sizeof self - 1);
	fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (n < 0 || fd < 0)
		die("%s: cannot read this process's command line", "/proc/self");
	self[n] = 0;
	n = read(fd, cmd, sizeof cmd - 1);
	close(fd);
	if (n <= 0)
		die("%s: cannot read this process's command line", "/proc/self/cmdline");
	cmd[n] = 0;
	args[argc++] = rt;
	args[argc++] = self;
	setenv("CKPTMPI_ARGV0", cmd, 1);
	for (ssize_t off = (ssize_t)strlen(cmd) + 1; off < n && argc < 1023; off += (ssize_t)strlen(cmd + off) + 1)
		args[argc++] = cmd + off;
	args[argc] = NULL;
	setenv("CKPTMPI_REEXEC", "1", 1);
	/* what the runtime would otherwise re-execute itself for (a second
	 * load of its libraries: ~10 ms a rank): the fixed layout and UCX's
	 * environment (the program's own MPI is already loaded here: its UCX
	 * saw the environment as it was) */
	{
		int p = personality(0xffffffff);
		if (p >= 0 && !(p & ADDR_NO_RANDOMIZE))
			(void)personality((unsigned long)p | ADDR_NO_RANDOMIZE);
	}
	(void)ckpt_ucx_env_set();
	/* a preloaded shim belongs in the upper half only: the runtime hands
	 * it on to the application it loads */
	if (getenv("LD_PRELOAD")) {
		setenv("CKPTMPI_PRELOAD", getenv("LD_PRELOAD"), 1);
		unsetenv("LD_PRELOAD");
	}
	execv(rt, args);
	die("cannot start the ckptmpi runtime %s", rt);
}

static int in_runtime_binary(void)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0)
		return 0;
	self[n] = 0;
	return !strncmp(basename(self), "ckptmpi-runtime", 15);
}

/* Is the real MPI library part of this program? Preloaded into every
 * process of a job, the shim must leave mpirun and its helpers alone. */
static int program_uses_mpi(void)
{
	const char *pre = getenv("LD_PRELOAD");
	void *h;

	/* linked with -lckptmpi: an MPI program by construction (the linker
	 * may even have dropped the MPI library the shim stands in for) */
	if (!pre || !strstr(pre, "libckptmpi"))
		return 1;
	h = dlopen(CKPTMPI_MPI_SONAME, RTLD_LAZY | RTLD_NOLOAD);
	if (h)
		dlclose(h);
	return h != NULL;
}

static pthread_key_t ctx_key;
static int ctx_key_ok;
static void ctx_give_back(void *unused);

__attribute__((constructor(101))) static void shim_init(void)
{
	link_area = ckpt_find_link();
	if ((!link_area || !link_area->mpi_table) && (in_runtime_binary() || !program_uses_mpi()))
		return; /* the lower half itself, or not an MPI program: stay out */
	if (!link_area || !link_area->mpi_table) {
		if (getenv("CKPTMPI_SHIM_PASSIVE"))
			return; /* build tools (e.g. configure probes) that never call MPI */
		reexec_through_runtime();
	}
	unsetenv("CKPTMPI_REEXEC");
	if (link_area->mpi_nfuncs != CKPT_MPI_NFUNCS)
		die("%s: the runtime and the shim library come from different builds",
		    CKPTMPI_RUNTIME_NAME);
	ckpt_lower_fn = (void **)link_area->mpi_table;
#ifdef CKPTMPI_HANDLES_ARE_POINTERS
	{
		int ckpt_predef_bind(const uint64_t *lower, unsigned n);
		if (ckpt_predef_bind((const uint64_t *)link_area->mpi_predef,
		                     (unsigned)link_area->mpi_npredef))
			die("%s: the runtime and the shim disagree on predefined objects",
			    CKPTMPI_RUNTIME_NAME);
	}
#endif
	ckpt_have_fsgsbase = (getauxval(AT_HWCAP2) & 2) != 0; /* HWCAP2_FSGSBASE */
	if (gettid() == getpid()) {
		ckpt_lower_fs = link_area->main_lower_fs;
		ckpt_note_context(ckpt_get_fs(), ckpt_lower_fs);
	}
	if (ckpt_state_init(link_area))
		die("%s: cannot map the shim's handle tables", CKPTMPI_RUNTIME_NAME);
	ckpt_section_init(link_area);
	ctx_key_ok = pthread_key_create(&ctx_key, ctx_give_back) == 0;
}

/* A thread that ends gives its lower context back (a pthread key's
 * destructor, run in the ending thread: its ckpt_lower_fs is the context
 * of this process, or 0 after a restart cleared it), so a program that
 * starts thousands of short-lived threads needs only as many contexts as
 * it has threads at once. */

/* The list is emptied by a restart, which happens only with every thread
 * parked: taking and giving back are sections (without a lower context:
 * the depth alone), so no thread holds a context of the old process
 * across it. */
static void ctx_lock(void)
{
	ckpt_section.depth++;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	while (__atomic_exchange_n(&ckpt_st->ctx_lock, 1, __ATOMIC_ACQUIRE))
		syscall(SYS_sched_yield);
}
static void ctx_unlock(void)
{
	__atomic_store_n(&ckpt_st->ctx_lock, 0, __ATOMIC_RELEASE);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	if (!--ckpt_section.depth && ckpt_section.pending)
		ckpt_section_park_now();
}

static void ctx_give_back(void *unused)
{
	(void)unused;
	if (!ckpt_st)
		return;
	ctx_lock();
	if (ckpt_lower_fs && ckpt_lower_fs != link_area->main_lower_fs &&
	    ckpt_st->n_ctx_free < CKPT_CTX_FREE_MAX) {
		ckpt_st->ctx_free[ckpt_st->n_ctx_free++] = ckpt_lower_fs;
		ckpt_lower_fs = 0;
	}
	ctx_unlock();
}

/* Ask the runtime's control thread for a lower-half context of our own
 * (or take one a finished thread gave back). */
uint64_t ckpt_new_lower_context(void)
{
	static volatile int lock;
	char t = CKPTMPI_REQ_CONTEXT;
	int32_t seq;
	int saved_errno = errno; /* the application's: futex and write may set it */

	if (ckpt_st && ctx_key_ok) {
		uint64_t fs = 0;
		pthread_setspecific(ctx_key, (void *)1);
		ctx_lock();
		if (ckpt_st->n_ctx_free > 0) {
			fs = ckpt_st->ctx_free[--ckpt_st->n_ctx_free];
			ckpt_lower_fs = fs;
		}
		ctx_unlock();
		if (fs) {
			ckpt_note_context(ckpt_get_fs(), fs);
			errno = saved_errno;
			return fs;
		}
	}
	while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE))
		syscall(SYS_sched_yield);
	seq = __atomic_load_n(&link_area->ctx_seq, __ATOMIC_ACQUIRE);
	if (write(link_area->trigger_fd, &t, 1) != 1)
		die("%s: cannot reach the runtime for a thread context", "write");
	while (__atomic_load_n(&link_area->ctx_seq, __ATOMIC_ACQUIRE) == seq)
		syscall(SYS_futex, &link_area->ctx_seq, FUTEX_WAIT, seq, NULL, NULL, 0);
	ckpt_lower_fs = link_area->ctx_fs;
	ckpt_note_context(ckpt_get_fs(), ckpt_lower_fs);
	__atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
	errno = saved_errno;
	return ckpt_lower_fs;
}

int ckpt_lower_provided(void) { return link_area ? link_area->mpi_provided : 0; }
