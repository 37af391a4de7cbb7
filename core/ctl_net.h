/* The control network of a job whose members may be on several hosts
 * (the ranks of an MPI job): the runtime's own messages between members
 * while the program runs — who starts a checkpoint, the cut's rounds,
 * the votes — on a transport of their own, so that the control thread
 * never calls the job's MPI beside the program's threads (docs/design.md,
 * "The control network").
 *
 * A star around member 0 over TCP: member 0 listens on every address of
 * its host, the members learn where (and a secret) from a blob the job
 * shares once at its start (over MPI, before the program runs), connect
 * and prove they know the secret; member 0 proves it too. Collectives are
 * made by member 0: every member sends it its part, it answers each. A
 * member lost (its connection closed) fails every collective from then on,
 * on every member alike, instead of leaving them waiting.
 *
 * Every member calls the collectives in the same order, from one thread
 * (the control thread). */
#ifndef CKPTMPI_CORE_CTL_NET_H
#define CKPTMPI_CORE_CTL_NET_H

#include <stddef.h>
#include <stdint.h>

#define CTLNET_BLOB 1024

/* Member 0: listen; into blob (a string) where, and the secret. 0 or -1
 * (said). */
int ctlnet_listen(char *blob, size_t len);
/* Every member, with member 0's blob: member 0 waits for the others (up
 * to CKPTMPI_CTL_TIMEOUT seconds, 60), the others connect. adopt (may be
 * NULL) moves each descriptor the network keeps out of the program's way
 * and returns its new number, or -1. 0 or -1 (said). */
int ctlnet_join(int member, int size, const char *blob, int (*adopt)(int fd));
int ctlnet_up(void);
/* every connection (and a listener) closed */
void ctlnet_close(void);

/* Starting a checkpoint: a member asks member 0 (last_gen: the last
 * generation it saw begin), member 0 tells every member. */
int ctlnet_request(int why, uint64_t last_gen);
int ctlnet_begin(uint64_t gen, int why);
/* Without waiting: 1 when a checkpoint starts. Member 0: a request made
 * since last_gen began (*gen 0: member 0 chooses); another member:
 * member 0's begin (*gen, *why). */
int ctlnet_poll(uint64_t last_gen, uint64_t *gen, int *why);

/* Collectives: 0, or -1 on every member alike (a member failed, is gone,
 * or said it failed: ok 0). */
/* every member's len bytes, in member order, into *all (malloc'd, size()
 * parts); lens (size() entries) says each part's length. ok 0: this
 * member failed, and the step fails on all */
int ctlnet_allgatherv(const void *mine, uint32_t len, int ok, void **all, uint32_t *lens);
/* member 0 gets every member's part (in *all, malloc'd, lens as above);
 * the others learn only that the step succeeded */
int ctlnet_gatherv(const void *mine, uint32_t len, int ok, void **all, uint32_t *lens);
/* member 0 gives member k parts[k] (lens[k] bytes; NULL on the others):
 * into *mine (malloc'd), *len bytes */
int ctlnet_scatterv(const void *const *parts, const uint32_t *lens, int ok, void **mine,
                    uint32_t *len);
/* member 0's len bytes of buf into every member's buf */
int ctlnet_bcast(void *buf, uint32_t len, int ok);
/* the same len on every member: into all (size * len bytes) */
int ctlnet_allgather(const void *mine, uint32_t len, void *all);
enum { CTLNET_MIN, CTLNET_MAX };
/* v[0..n) reduced over the members in place */
int ctlnet_allreduce(int32_t *v, int n, int op);

#endif
