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

/* peers' resources: what a peer (by its virtual LID) calls virt is dev
 * on the device now; identity when nobody said otherwise */
void xl_remote_add(enum xl_kind k, uint16_t peer_vlid, uint32_t virt, uint32_t dev);
uint32_t xl_remote(enum xl_kind k, uint16_t peer_vlid, uint32_t virt);
/* the reverse, for completions carrying a peer's device values */
uint32_t xl_remote_virt(enum xl_kind k, uint16_t peer_dlid, uint32_t dev);

#endif
