/* The link between an application that calls ckptmpi_checkpoint() (upper
 * half, libckptmpi.so) and the runtime: a small struct in the runtime's
 * static data, found through CKPTMPI_LINK=<address>. The runtime binary is
 * at the same address in every run, so the link is too, and a restored
 * waiter finds the fresh runtime's link where the old one was. */
#ifndef CKPTMPI_CORE_LINK_H
#define CKPTMPI_CORE_LINK_H

#include <stdint.h>

#define CKPTMPI_LINK_MAGIC 0x636b70746d70696cull /* "ckptmpil" */

/* Requests written to trigger_fd, one byte each; the runtime's own signal
 * handlers use the same pipe, so every kind has its own byte. */
#define CKPTMPI_REQ_SIGNAL 's'   /* CKPTMPI_SIGNAL: checkpoint */
#define CKPTMPI_REQ_TERM 't'     /* SIGTERM: checkpoint, then exit */
#define CKPTMPI_REQ_API 'a'      /* ckptmpi_checkpoint() */
#define CKPTMPI_REQ_CONTEXT 'c'  /* a lower-half thread context for MPI calls */

struct ckptmpi_link {
	uint64_t magic;
	volatile int32_t pid;        /* the process this link serves */
	volatile int32_t seq;        /* futex word: bumped on every outcome */
	volatile int32_t committed;  /* checkpoints committed by this process */
	volatile int32_t failed;     /* checkpoints that failed */
	volatile int32_t epoch;      /* restarts of the job */
	int32_t trigger_fd;          /* CKPTMPI_REQ_* bytes go here */
	/* MPI builds of the runtime (0 otherwise) */
	uint64_t mpi_table;          /* void *fn[CKPT_MPI_NFUNCS] of the real MPI */
	uint64_t mpi_nfuncs;
	int32_t mpi_provided;        /* thread level the lower MPI gave */
	int32_t mpi_flavour;         /* 1 openmpi, 2 mpich */
	uint64_t main_lower_fs;      /* lower thread pointer of the main thread */
	uint64_t mpi_predef;         /* uint64_t[]: real addresses of the predefined */
	uint64_t mpi_npredef;        /* objects (ABIs whose handles are pointers) */
	volatile int32_t ctx_seq;    /* futex word: bumped when a context is made */
	volatile uint64_t ctx_fs;    /* the thread pointer of the new context */
	volatile uint64_t mpi_state; /* struct ckpt_mpi_state * (pmpi/vstate.h), set by the shim */
	/* shim sections (pmpi/call.h): where a thread's section word is,
	 * from its FS base (0: none), and the signal that parks a thread */
	volatile int64_t section_tls_off;
	int32_t park_signal;
	int32_t pad;
	/* the verbs shadow's struct ibshadow_summary * (ibshadow/summary.h),
	 * set by the shadow in the upper half; 0 when no verbs are in use */
	volatile uint64_t verbs_summary;
	/* The upper half's dynamic loader, for debuggers and tools that must
	 * find the program's objects (the lower loader's _r_debug lists only
	 * the runtime's): where it is mapped and the address of its
	 * `struct r_debug` (<link.h>: r_map is the program's link map, r_brk
	 * the function it calls on every change). Set before the upper half
	 * runs, on a fresh start and after a restart; 0 before. */
	volatile uint64_t upper_interp_base;
	volatile uint64_t upper_r_debug;
	/* Nonzero while the runtime stops the upper threads (core/park.c): a
	 * thread leaving its outermost section of an interposition layer
	 * then stops itself at once. The park signal finds a thread that
	 * spends most of its time inside MPI (a tight MPI_Test loop, above
	 * all under Open MPI, which yields inside its progress when cores
	 * are oversubscribed) inside the call nearly every time; asked again
	 * every 2 ms, such a thread held a cut for 1.4 s. */
	volatile int32_t parking;
	int32_t pad2;
};

#endif
