/* Translation of the values the application sees (virtual) to the
 * device's, and back. Local tables hold this process's own resources;
 * the remote table holds peers' values keyed by (peer virtual LID, virtual
 * id). Until a restart every value is its own translation; part 2 fills
 * the tables with the new device values. Lookups are lock-free (a direct
 * mapped cache in front of an open-addressing table). */
#ifndef CKPTMPI_IBSHADOW_SHADOW_XLATE_H
#define CKPTMPI_IBSHADOW_SHADOW_XLATE_H

#include <stdatomic.h>
#include <stdint.h>

enum xl_kind {
	XL_KEY,  /* MR lkey/rkey */
	XL_QPN,  /* QP numbers */
	XL_SRQN, /* SRQ numbers */
	XL_LID,  /* the port's LID */
	XL_NKINDS
};

/* translations that are not the identity (all of them, local and remote);
 * while 0 the data path may hand the application's values on unchanged */
extern _Atomic unsigned xl_nonidentity;
static inline int xl_all_identity(void)
{
	return __atomic_load_n((unsigned *)&xl_nonidentity, __ATOMIC_RELAXED) == 0;
}

/* this process's resources (add/del under the shadow's creation lock) */
void xl_add(enum xl_kind k, uint32_t virt, uint32_t dev);
void xl_del(enum xl_kind k, uint32_t virt);
uint32_t xl_to_dev(enum xl_kind k, uint32_t virt);
uint32_t xl_to_virt(enum xl_kind k, uint32_t dev);

/* peers' resources: what a peer calls virt is dev on the device now;
 * identity when nobody said otherwise. A peer is named by its id: the
 * process part of a virtual QP number (xl_peer_of: every process on the
 * device has its own, and one host has one LID), so keys, which are per
 * process, are told apart. QPNs carry their own id. */
static inline uint16_t xl_peer_of(uint32_t vqpn) { return (uint16_t)((vqpn >> 12) & 0xfff); }
void xl_remote_add(enum xl_kind k, uint16_t peer, uint32_t virt, uint32_t dev);
uint32_t xl_remote(enum xl_kind k, uint16_t peer, uint32_t virt);
/* the reverse, for completions carrying a peer's device values (QPNs and
 * SRQNs: peer 0) */
uint32_t xl_remote_virt(enum xl_kind k, uint16_t peer, uint32_t dev);
/* a restart: every table empty */
void xl_reset(void);

#endif
