/* The creation log of the verbs shadow: for every live resource, the call
 * and arguments that made it and every later call that changed it, in
 * order, so that part 2 can re-create everything in creation order.
 * Destroyed resources leave the log. Also keeps the summary the runtime
 * reads (ibshadow/summary.h) current. Callers hold the shadow's creation
 * lock (shadow_lock()). */
#ifndef CKPTMPI_IBSHADOW_SHADOW_LOG_H
#define CKPTMPI_IBSHADOW_SHADOW_LOG_H

#include <stddef.h>
#include <stdint.h>

enum shl_kind { SHL_CONTEXT, SHL_PD, SHL_MR, SHL_CHANNEL, SHL_CQ, SHL_SRQ, SHL_QP, SHL_AH, SHL_XRCD, SHL_MW };

/* the calls that change a live resource */
enum shl_change {
	SHL_MODIFY_QP,     /* struct ibv_qp_attr, then int mask */
	SHL_MODIFY_SRQ,    /* struct ibv_srq_attr, then int mask */
	SHL_REQ_NOTIFY,    /* int solicited_only */
	SHL_REREG_MR,      /* int flags, pd's log record, addr, length, access */
	SHL_RESIZE_CQ,     /* int cqe */
	SHL_BIND_MW,       /* uint32_t new rkey, the MR's log record, addr, length, access */
};

struct shl_rec;

/* a resource is made: its kind, the object the application holds, the
 * log record of its parent (NULL for a context) and the arguments */
struct shl_rec *shl_create(enum shl_kind kind, void *obj, struct shl_rec *parent,
                           const void *args, size_t len);
void shl_change(struct shl_rec *r, enum shl_change what, const void *args, size_t len);
void shl_destroy(struct shl_rec *r);
/* what the resource is now, for messages ("QP 0x000123 (RC, RTS)") */
void shl_describe(struct shl_rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* live resources made under r (e.g. a PD's MRs, QPs, SRQs, AHs) */
unsigned shl_children(const struct shl_rec *r);
/* r now hangs under parent (an MR moved to another PD) */
void shl_reparent(struct shl_rec *r, struct shl_rec *parent);

/* walk the live resources in creation order (for part 2 and tests) */
struct shl_rec *shl_first(void);
struct shl_rec *shl_next(struct shl_rec *r);
enum shl_kind shl_kind_of(const struct shl_rec *r);
unsigned shl_live(void);
void *shl_obj(const struct shl_rec *r);
struct shl_rec *shl_parent(const struct shl_rec *r);
const void *shl_args(const struct shl_rec *r, size_t *len);
const char *shl_desc(const struct shl_rec *r);
/* the calls that changed r, in order */
struct shl_entry;
const struct shl_entry *shl_changes(const struct shl_rec *r);
const struct shl_entry *shl_change_next(const struct shl_entry *e);
enum shl_change shl_change_what(const struct shl_entry *e);
const void *shl_change_args(const struct shl_entry *e, size_t *len);

/* a resource a checkpoint cannot carry yet: checkpoints are refused
 * while it lives, naming the first (why) */
void shl_mark_unsupported(struct shl_rec *r, const char *why);

#endif
