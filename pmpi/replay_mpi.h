/* Upper half: record and replay of the MPI outcomes a rank cannot
 * reproduce by itself (issue 10 item 3; docs/debug.md, "MPI replay"):
 * which message a wildcard receive or a probe matched, and what
 * MPI_Test*, MPI_Wait{any,some}, MPI_Iprobe and MPI_Improbe answered.
 *
 * One log per rank, a file mapped MAP_SHARED as replay/'s log is: a
 * checkpoint maps it again from its file at restart, so what was recorded
 * after the checkpoint survives it, while the rank's place in the log is
 * private memory restored with the checkpoint. A restart therefore replays
 * from its generation on; past the end of the log it records again.
 * Off (CKPTMPI_MPI_RECORD, CKPTMPI_MPI_REPLAY unset), p2p.c pays one
 * predictable branch on ckpt_mrr_on. */
#ifndef CKPTMPI_PMPI_REPLAY_MPI_H
#define CKPTMPI_PMPI_REPLAY_MPI_H

#include <stdint.h>

extern int ckpt_mrr_on;
#define CKPT_MRR() __builtin_expect(ckpt_mrr_on, 0)

/* request entry bits (u.r.pad2) of a wildcard receive the log follows */
#define CKPT_MRR_SEQ 0x3fffffffu    /* its number among the rank's wildcard receives */
#define CKPT_MRR_PINNED 0x80000000u /* posted with the recorded source and tag */
#define CKPT_MRR_LOOKED 0x40000000u /* the log was searched for its match */

/* Exit status of a rank whose replay diverged (no debugger attached). */
#define CKPT_MRR_EXIT_DIVERGED 86

/* The next wildcard receive's number (from 1). */
uint32_t ckpt_mrr_wild_seq(void);
/* The recorded match of wildcard receive SEQ: 1 and source, tag, bytes
 * when the log holds it; 0 when a replay's log does not; -1 when the
 * rank only records (the log holds nothing it did not write itself). */
int ckpt_mrr_match_find(uint32_t seq, int *source, int *tag, int64_t *bytes);
/* As ckpt_mrr_match_find, for the runtime posting again the receives a
 * cut cancelled, with the program's threads stopped (on the lower thread
 * pointer: no TLS, no libc, no lock, the log is not opened here): -1 also
 * when the log is not open, or a restart asked for another one (the
 * receive is then pinned when first polled). */
int ckpt_mrr_match_peek(uint32_t seq, int *source, int *tag);
/* Wildcard receive SEQ handed to the program: recorded, or (replayed)
 * checked against the log. */
void ckpt_mrr_match_done(uint32_t seq, int source, int tag, int64_t bytes);

/* A completion call (MPI_Test, Testany, ...): FN its index, N its request
 * count. In a replay: 1, with the recorded *flag (flag or outcount) and
 * the indices in idx (*nidx of them, room for CAP); a call the log does not
 * hold next is a divergence. 0: run it and record the outcome. */
int ckpt_mrr_test_replay(uint32_t fn, int n, int *flag, int *idx, int cap, int *nidx);
void ckpt_mrr_test_record(uint32_t fn, int n, int flag, const int *idx, int nidx);

/* A probe (MPI_Iprobe, Improbe, Probe, Mprobe) asking for SRC and TAG. */
int ckpt_mrr_probe_replay(uint32_t fn, int src, int tag, int *flag, int *source, int *rtag,
                          int64_t *bytes);
void ckpt_mrr_probe_record(uint32_t fn, int src, int tag, int flag, int source, int rtag,
                           int64_t bytes);

/* The replay cannot go on: one line on stderr naming the rank, the call,
 * the log position, what the log expected and what the program did; then
 * SIGTRAP under a debugger (which may continue: the rest runs live and is
 * recorded), else exit CKPT_MRR_EXIT_DIVERGED. */
void ckpt_mrr_diverged(uint32_t fn, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* a debugger's breakpoint: called at a divergence with it said in words */
void ckptmpi_mpi_replay_diverged(const char *why);

#endif
