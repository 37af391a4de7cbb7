/* The verbs shadow at a checkpoint and at a restart.
 *
 * Both run on the runtime's control thread under the thread pointer of a
 * parked program thread (ibshadow/lower_hooks.c switches to it, signals
 * blocked), while every program thread of every member is parked. So this
 * file never takes a lock a parked thread could hold and never calls
 * malloc (a thread may be parked inside it): its memory comes from mmap,
 * the translation tables' too (shadow_xlate.c). Locks of the shadow and
 * the device are only taken inside sections (shadow_section.h), so none
 * is held by a parked thread.
 *
 * The cut reads what lives only in the device (sdev_ckpt.c) and keeps it
 * in an arena of the upper half (an anonymous mapping, made before the
 * runtime's first look at the address space: it is in the image), with
 * every value made virtual. Why memory of the upper half rather than an
 * image section of its own: the record is then restored with the rest of
 * the shadow's state, needs no format of its own in the container, and the
 * objects point at their part of it directly.
 *
 * A restart re-creates every resource in creation order on a fresh device
 * (new device values, entered in the local tables; MR keys as they were
 * when the fresh segment has them free), exchanges the members'
 * translation tables (through the runtime's job), fills the remote tables,
 * walks each QP back with its logged modify_qp calls against the peers'
 * new numbers, posts the receives again, arms the CQs, gives back the
 * channel and async events, and returns the kept completions first; once
 * every member is there (a barrier), the sends that had not run are posted
 * again. */
#include "ibshadow/shadow_ckpt.h"
#include "ibshadow/shadow.h"
#include "ibshadow/iblog.h"
#include "ibshadow/summary.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------ arena */
static char *arena;
static size_t arena_len, arena_used;

static void *arena_take(size_t n)
{
	void *p;
	n = (n + 15) & ~(size_t)15;
	if (arena_used + n > arena_len)
		return NULL;
	p = arena + arena_used;
	arena_used += n;
	return p;
}

/* async events at the cut */
static struct sdev_async_rec *cut_async;
static uint32_t ncut_async;

static struct sh_ctx *ctx_of(void *obj)
{
	return (struct sh_ctx *)((char *)obj - offsetof(struct sh_ctx, v.context));
}

/* ------------------------------------------------------------ the cut */
static void wc_to_virt(struct ibv_wc *wc)
{
	wc->qp_num = xl_to_virt(XL_QPN, wc->qp_num);
	if (wc->wc_flags & IBV_WC_WITH_INV)
		wc->invalidated_rkey = xl_to_virt(XL_KEY, wc->invalidated_rkey);
	if (wc->opcode & IBV_WC_RECV) {
		wc->src_qp = xl_remote_virt(XL_QPN, 0, wc->src_qp);
		wc->slid = (uint16_t)xl_remote_virt(XL_LID, wc->slid, wc->slid);
	}
}

static void recv_to_virt(struct sdev_recv_wr *w, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t k = 0; k < w[i].nsge && k < 16; k++)
			w[i].sge[k].lkey = xl_to_virt(XL_KEY, w[i].sge[k].lkey);
}

/* pass 0 counts (bytes needed), pass 1 fills */
static int cut_pass(int fill, size_t *need, char *err, size_t len)
{
	size_t total = 0;
	int n;

	for (struct shl_rec *r = shl_first(); r; r = shl_next(r)) {
		void *o = shl_obj(r);
		switch (shl_kind_of(r)) {
		case SHL_CQ: {
			struct sh_cq *q = SH(sh_cq, o);
			uint32_t old = q->nkept ? q->nkept - q->kept_pos : 0;
			int armed = 0;
			n = sdev_cq_snapshot(q->dev, NULL, 0, NULL);
			if (!fill) {
				total += ((size_t)n + old) * sizeof(struct sdev_kept_cqe) + 16;
				break;
			}
			q->cut = arena_take(((size_t)n + old) * sizeof(struct sdev_kept_cqe));
			if (!q->cut && n + old)
				goto overflow;
			/* completions kept at a restart and not polled yet: first */
			if (old)
				memcpy(q->cut, q->kept + q->kept_pos, old * sizeof *q->cut);
			sdev_cq_snapshot(q->dev, q->cut + old, n, &armed);
			for (int i = 0; i < n; i++)
				wc_to_virt(&q->cut[old + (uint32_t)i].wc);
			q->ncut = old + (uint32_t)n;
			q->cut_armed = armed;
			break;
		}
		case SHL_QP: {
			struct sh_qp *q = SH(sh_qp, o);
			int nr = sdev_qp_snapshot_rq(q->dev, NULL, 0);
			int ns = sdev_qp_snapshot_sq(q->dev, NULL, 0);
			if (!fill) {
				total += (size_t)nr * sizeof(struct sdev_recv_wr) +
				         (size_t)ns * sizeof(struct sdev_send_wr) + 32;
				break;
			}
			q->cut_state = sdev_qp_state(q->dev);
			q->cut_rq = arena_take((size_t)nr * sizeof(struct sdev_recv_wr));
			q->cut_sq = arena_take((size_t)ns * sizeof(struct sdev_send_wr));
			if ((nr && !q->cut_rq) || (ns && !q->cut_sq))
				goto overflow;
			q->ncut_rq = (uint32_t)sdev_qp_snapshot_rq(q->dev, q->cut_rq, nr);
			q->ncut_sq = (uint32_t)sdev_qp_snapshot_sq(q->dev, q->cut_sq, ns);
			recv_to_virt(q->cut_rq, q->ncut_rq);
			for (uint32_t i = 0; i < q->ncut_sq; i++) {
				struct sdev_send_wr *w = &q->cut_sq[i];
				for (uint32_t k = 0; k < w->nsge && k < 16; k++)
					w->sge[k].lkey = xl_to_virt(XL_KEY, w->sge[k].lkey);
				w->rkey = xl_remote_virt(XL_KEY, q->peer_id, w->rkey);
				w->dqpn = xl_remote_virt(XL_QPN, 0, w->dqpn);
			}
			if (q->ncut_rq || q->ncut_sq)
				iblog(2, "verbs: cut: QP %#08x: %u receive(s) posted, %u send(s) waiting",
				      q->qp.qp_num, q->ncut_rq, q->ncut_sq);
			break;
		}
		case SHL_SRQ: {
			struct sh_srq *s = SH(sh_srq, o);
			n = sdev_srq_snapshot(s->dev, NULL, 0);
			if (!fill) {
				total += (size_t)n * sizeof(struct sdev_recv_wr) + 16;
				break;
			}
			s->cut_rq = arena_take((size_t)n * sizeof(struct sdev_recv_wr));
			if (n && !s->cut_rq)
				goto overflow;
			s->ncut_rq = (uint32_t)sdev_srq_snapshot(s->dev, s->cut_rq, n);
			recv_to_virt(s->cut_rq, s->ncut_rq);
			break;
		}
		case SHL_CHANNEL: {
			struct sh_chan *c = SH(sh_chan, o);
			n = sdev_chan_snapshot(c->dev, NULL, 0);
			if (n < 0) {
				snprintf(err, len, "verbs: cannot read completion channel fd %d: %s", c->ch.fd,
				         strerror(errno));
				return -1;
			}
			if (!fill) {
				total += (size_t)n * 8 + 16;
				break;
			}
			c->cut_ev = arena_take((size_t)n * 8);
			if (n && !c->cut_ev)
				goto overflow;
			n = sdev_chan_snapshot(c->dev, c->cut_ev, n);
			if (n < 0) {
				snprintf(err, len, "verbs: cannot read completion channel fd %d: %s", c->ch.fd,
				         strerror(errno));
				return -1;
			}
			c->ncut_ev = (uint32_t)n;
			break;
		}
		case SHL_CONTEXT:
			/* one device open per process: its async events once */
			if (r != shl_first())
				break;
			n = sdev_async_snapshot(NULL, 0);
			if (n < 0) {
				snprintf(err, len, "verbs: cannot read the async event FIFO: %s",
				         strerror(errno));
				return -1;
			}
			if (!fill) {
				total += (size_t)n * sizeof(struct sdev_async_rec) + 16;
				break;
			}
			cut_async = arena_take((size_t)n * sizeof *cut_async);
			if (n && !cut_async)
				goto overflow;
			ncut_async = (uint32_t)sdev_async_snapshot(cut_async, n);
			break;
		default:
			break;
		}
	}
	if (need)
		*need = total;
	return 0;
overflow:
	snprintf(err, len, "verbs: the device changed during the cut (a thread not parked?)");
	return -1;
}

int shadow_ckpt_cut(char *err, size_t len)
{
	size_t need = 0;
	void *p;

	if (shl_first() && shl_kind_of(shl_first()) != SHL_CONTEXT) {
		snprintf(err, len, "verbs: the creation log does not start with a device context");
		return -1;
	}
	if (cut_pass(0, &need, err, len))
		return -1;
	need = (need + 4096 + 4095) & ~(size_t)4095;
	p = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		snprintf(err, len, "verbs: no memory for the cut (%zu bytes): %s", need, strerror(errno));
		return -1;
	}
	arena = p;
	arena_len = need;
	arena_used = 0;
	cut_async = NULL;
	ncut_async = 0;
	if (cut_pass(1, NULL, err, len)) {
		shadow_ckpt_cut_done();
		return -1;
	}
	iblog(2, "verbs: cut recorded (%u resources, %zu bytes)", shl_live(), arena_used);
	return 0;
}

/* the program runs on: the device is as it was, the record goes */
void shadow_ckpt_cut_done(void)
{
	if (arena)
		munmap(arena, arena_len);
	arena = NULL;
	arena_len = arena_used = 0;
}

/* ------------------------------------------------------------ restart */
#define XT_MAGIC 0x78746231u
#define XT_ID 0xffu
struct xt_hdr {
	uint32_t magic, nids, nent, lid;
};
struct xt_ent {
	uint32_t kind, virt, dev;
};

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

/* The program's fd numbers of the device (async fd, channels) are free:
 * they were left out of the image. Each is held by a placeholder until
 * its FIFO is moved there, so that no fd the device opens meanwhile takes
 * it. */
static int reserve_fd(int fd, char *err, size_t len)
{
	int n;
	if (fcntl(fd, F_GETFD) >= 0)
		return fail(err, len, "verbs: fd %d (of the device before the checkpoint) is taken "
		            "by something else at the restart", fd);
	n = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (n < 0 || (n != fd && (dup3(n, fd, O_CLOEXEC) < 0 || close(n))))
		return fail(err, len, "verbs: cannot hold fd %d: %s", fd, strerror(errno));
	return 0;
}

static int recreate(char *err, size_t len)
{
	int opened = 0;
	const char *nk = getenv("CKPTMPI_TEST_VERBS_NEW_KEYS");
	int new_keys = nk && !strcmp(nk, "1");

	for (struct shl_rec *r = shl_first(); r; r = shl_next(r)) {
		void *o = shl_obj(r);
		if (shl_kind_of(r) == SHL_CONTEXT && !opened &&
		    reserve_fd(ctx_of(o)->v.context.async_fd, err, len))
			return -1;
		if (shl_kind_of(r) == SHL_CONTEXT)
			opened = 1;
		if (shl_kind_of(r) == SHL_CHANNEL && reserve_fd(SH(sh_chan, o)->ch.fd, err, len))
			return -1;
	}
	opened = 0;
	for (struct shl_rec *r = shl_first(); r; r = shl_next(r)) {
		void *o = shl_obj(r);
		struct shl_rec *par = shl_parent(r);
		size_t alen;
		const void *args = shl_args(r, &alen);

		switch (shl_kind_of(r)) {
		case SHL_CONTEXT: {
			struct sh_ctx *c = ctx_of(o);
			if (sdev_open() < 0)
				return fail(err, len, "verbs: cannot open %s again: %s", SDEV_NAME,
				            strerror(errno));
			if (!opened && sdev_move_async_fd(c->v.context.async_fd))
				return fail(err, len, "verbs: cannot move the async event fd to %d: %s",
				            c->v.context.async_fd, strerror(errno));
			opened = 1;
			break;
		}
		case SHL_PD:
			SH(sh_pd, o)->dev = sdev_alloc_pd();
			if (!SH(sh_pd, o)->dev)
				return fail(err, len, "verbs: cannot re-create a PD: %s", strerror(errno));
			break;
		case SHL_MR: {
			struct sh_mr *m = SH(sh_mr, o);
			const struct {
				void *addr;
				size_t length;
				uint64_t iova;
				int access;
			} *a = args;
			uint64_t iova = a->iova;
			int access = a->access & ~IBV_ACCESS_OPTIONAL_RANGE, e;
			uint32_t key;
			for (const struct shl_entry *c = shl_changes(r); c; c = shl_change_next(c)) {
				const struct {
					int flags;
					struct shl_rec *pd;
					void *addr;
					size_t length;
					int access;
				} *ch = shl_change_args(c, NULL);
				if (shl_change_what(c) != SHL_REREG_MR)
					continue;
				if (ch->flags & IBV_REREG_MR_CHANGE_TRANSLATION)
					iova = (uintptr_t)ch->addr;
				if (ch->flags & IBV_REREG_MR_CHANGE_ACCESS)
					access = ch->access & ~IBV_ACCESS_RELAXED_ORDERING;
			}
			/* CKPTMPI_TEST_VERBS_NEW_KEYS=1 in the program's environment
			 * (tests only): new keys, so that the peers' rkeys go
			 * through the translation tables */
			e = sdev_reg_mr_key(SH(sh_pd, shl_obj(par))->dev, m->mr.addr, m->mr.length, iova,
			                    access, new_keys ? 0 : m->mr.lkey, &key);
			if (e)
				return fail(err, len, "verbs: cannot register MR lkey %#x again (%zu bytes at "
				            "%p): %s", m->mr.lkey, m->mr.length, m->mr.addr, strerror(e));
			m->dev_key = key;
			xl_add(XL_KEY, m->mr.lkey, key);
			if (key != m->mr.lkey)
				iblog(2, "verbs: restart: MR lkey %#x is %#x on the device now", m->mr.lkey,
				      key);
			break;
		}
		case SHL_CHANNEL: {
			struct sh_chan *ch = SH(sh_chan, o);
			int fd;
			ch->dev = sdev_chan_create(&fd);
			if (!ch->dev || sdev_move_chan_fd(ch->dev, ch->ch.fd))
				return fail(err, len, "verbs: cannot re-create completion channel fd %d: %s",
				            ch->ch.fd, strerror(errno));
			break;
		}
		case SHL_CQ: {
			struct sh_cq *q = SH(sh_cq, o);
			const struct {
				int cqe;
				void *cq_context;
				struct ibv_comp_channel *channel;
				int comp_vector;
			} *a = args;
			int cqe = a->cqe, real;
			for (const struct shl_entry *c = shl_changes(r); c; c = shl_change_next(c))
				if (shl_change_what(c) == SHL_RESIZE_CQ)
					cqe = *(const int *)shl_change_args(c, NULL);
			q->dev = sdev_cq_create(cqe, a->channel ? SH(sh_chan, a->channel)->dev : NULL,
			                        (uint64_t)(uintptr_t)q, &real);
			if (!q->dev)
				return fail(err, len, "verbs: cannot re-create a CQ of %d entries: %s", cqe,
				            strerror(errno));
			break;
		}
		case SHL_SRQ: {
			struct sh_srq *s = SH(sh_srq, o);
			struct ibv_srq_init_attr i = *(const struct ibv_srq_init_attr *)args;
			uint32_t srqn;
			s->dev = sdev_srq_create(SH(sh_pd, shl_obj(par))->dev, &i.attr,
			                         (uint64_t)(uintptr_t)s, &srqn);
			if (!s->dev)
				return fail(err, len, "verbs: cannot re-create SRQ %#x: %s", s->vsrqn,
				            strerror(errno));
			for (const struct shl_entry *c = shl_changes(r); c; c = shl_change_next(c))
				if (shl_change_what(c) == SHL_MODIFY_SRQ) {
					const struct {
						struct ibv_srq_attr a;
						int mask;
					} *m = shl_change_args(c, NULL);
					struct ibv_srq_attr a = m->a;
					sdev_srq_modify(s->dev, &a, m->mask);
				}
			xl_add(XL_SRQN, s->vsrqn, srqn);
			break;
		}
		case SHL_QP: {
			struct sh_qp *q = SH(sh_qp, o);
			struct ibv_qp_init_attr i = *(const struct ibv_qp_init_attr *)args;
			uint32_t qpn;
			q->dev = sdev_qp_create(SH(sh_pd, shl_obj(par))->dev, &i,
			                        SH(sh_cq, i.send_cq)->dev,
			                        i.recv_cq ? SH(sh_cq, i.recv_cq)->dev : NULL,
			                        i.srq ? SH(sh_srq, i.srq)->dev : NULL,
			                        (uint64_t)(uintptr_t)q, &qpn);
			if (!q->dev)
				return fail(err, len, "verbs: cannot re-create QP %#08x: %s", q->qp.qp_num,
				            strerror(errno));
			xl_add(XL_QPN, q->qp.qp_num, qpn);
			iblog(2, "verbs: restart: QP %#08x is %#08x on the device now", q->qp.qp_num, qpn);
			break;
		}
		case SHL_AH:
			break; /* phase 2: it needs the peers' values */
		default:
			return fail(err, len, "verbs: %s cannot be re-created", shl_desc(r));
		}
	}
	return 0;
}

/* this process's table: the ids it answers to (its QPs' and the one it
 * has now), then (kind, virtual, device) of its keys, QPNs and SRQNs */
static int table(void *io, size_t cap, size_t *used, char *err, size_t len)
{
	struct xt_hdr *h = io;
	uint32_t *ids = (uint32_t *)(h + 1), nids = 0, max_ids = 1024;
	struct xt_ent *e = (struct xt_ent *)(ids + max_ids);
	size_t n = 0, max = (cap - sizeof *h - max_ids * 4) / sizeof *e;

	if (cap < sizeof *h + max_ids * 4)
		return fail(err, len, "verbs: no room for the translation table");
	ids[nids++] = sdev_self_id();
	for (struct shl_rec *r = shl_first(); r; r = shl_next(r)) {
		void *o = shl_obj(r);
		uint32_t kind, virt;
		if (shl_kind_of(r) == SHL_MR) {
			kind = XL_KEY;
			virt = SH(sh_mr, o)->mr.lkey;
		} else if (shl_kind_of(r) == SHL_QP) {
			uint32_t id = xl_peer_of(SH(sh_qp, o)->qp.qp_num), k;
			kind = XL_QPN;
			virt = SH(sh_qp, o)->qp.qp_num;
			for (k = 0; k < nids && ids[k] != id; k++)
				;
			if (k == nids && nids < max_ids)
				ids[nids++] = id;
		} else if (shl_kind_of(r) == SHL_SRQ) {
			kind = XL_SRQN;
			virt = SH(sh_srq, o)->vsrqn;
		} else {
			continue;
		}
		if (n == max)
			return fail(err, len, "verbs: too many resources for the translation table");
		e[n].kind = kind;
		e[n].virt = virt;
		e[n].dev = xl_to_dev((enum xl_kind)kind, virt);
		n++;
	}
	h->magic = XT_MAGIC;
	h->nids = nids;
	h->nent = (uint32_t)n;
	h->lid = sdev_lid();
	*used = sizeof *h + max_ids * 4 + n * sizeof *e;
	return 0;
}

static int remote_fill(const void *all, int n, size_t stride, char *err, size_t len)
{
	for (int m = 0; m < n; m++) {
		const struct xt_hdr *h = (const void *)((const char *)all + (size_t)m * stride);
		const uint32_t *ids = (const uint32_t *)(h + 1);
		const struct xt_ent *e = (const struct xt_ent *)(ids + 1024);
		if (h->magic != XT_MAGIC)
			continue; /* a member without verbs */
		if (h->lid != sdev_lid())
			return fail(err, len, "verbs: member %d is behind LID %u, this one %u: the "
			            "software device spans one host", m, h->lid, sdev_lid());
		for (uint32_t i = 0; i < h->nent; i++) {
			if (e[i].kind == XL_QPN) {
				xl_remote_add(XL_QPN, xl_peer_of(e[i].virt), e[i].virt, e[i].dev);
				continue;
			}
			for (uint32_t k = 0; k < h->nids; k++)
				xl_remote_add((enum xl_kind)e[i].kind, (uint16_t)ids[k], e[i].virt, e[i].dev);
		}
	}
	return 0;
}

/* a logged modify_qp, translated as ibv_modify_qp does */
static int replay_modify(struct sh_qp *q, const struct ibv_qp_attr *attr, int mask)
{
	struct ibv_qp_attr d = *attr;
	if (mask & IBV_QP_AV) {
		struct sdev_ah ah;
		shadow_ah_to_dev(&attr->ah_attr, &ah, &d.ah_attr);
	}
	if (mask & IBV_QP_DEST_QPN)
		d.dest_qp_num = xl_remote(XL_QPN, xl_peer_of(attr->dest_qp_num), attr->dest_qp_num);
	return sdev_qp_modify(q->dev, &d, mask);
}

static int repost_recv(struct sdev_qp *qp, struct sdev_srq *srq, const struct sdev_recv_wr *w,
                       uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct ibv_sge sg[16];
		struct ibv_recv_wr wr;
		int e;
		memset(&wr, 0, sizeof wr);
		wr.wr_id = w[i].wr_id;
		wr.num_sge = (int)w[i].nsge;
		wr.sg_list = sg;
		for (uint32_t k = 0; k < w[i].nsge && k < 16; k++) {
			sg[k] = w[i].sge[k];
			sg[k].lkey = xl_to_dev(XL_KEY, sg[k].lkey);
		}
		e = qp ? sdev_post_recv(qp, &wr) : sdev_post_srq_recv(srq, &wr);
		if (e)
			return e;
	}
	return 0;
}

static int phase2(char *err, size_t len)
{
	for (struct shl_rec *r = shl_first(); r; r = shl_next(r)) {
		void *o = shl_obj(r);
		switch (shl_kind_of(r)) {
		case SHL_QP: {
			struct sh_qp *q = SH(sh_qp, o);
			int e;
			for (const struct shl_entry *c = shl_changes(r); c; c = shl_change_next(c)) {
				const struct {
					struct ibv_qp_attr a;
					int mask;
				} *m = shl_change_args(c, NULL);
				if (shl_change_what(c) != SHL_MODIFY_QP)
					continue;
				e = replay_modify(q, &m->a, m->mask);
				if (e)
					return fail(err, len, "verbs: QP %#08x: a logged modify_qp (mask %#x) is "
					            "refused at the restart: %s", q->qp.qp_num, m->mask,
					            strerror(e));
			}
			if (q->cut_state != sdev_qp_state(q->dev)) {
				/* the device moved it (an error completion): as it was */
				struct ibv_qp_attr a;
				memset(&a, 0, sizeof a);
				a.qp_state = (enum ibv_qp_state)q->cut_state;
				if ((e = sdev_qp_modify(q->dev, &a, IBV_QP_STATE)))
					return fail(err, len, "verbs: QP %#08x cannot be brought to %s: %s",
					            q->qp.qp_num, shadow_qp_state_str(q->cut_state),
					            strerror(e));
			}
			if ((e = repost_recv(q->dev, NULL, q->cut_rq, q->ncut_rq)))
				return fail(err, len, "verbs: QP %#08x: its %u receive(s) cannot be posted "
				            "again: %s", q->qp.qp_num, q->ncut_rq, strerror(e));
			break;
		}
		case SHL_SRQ: {
			struct sh_srq *s = SH(sh_srq, o);
			int e = repost_recv(NULL, s->dev, s->cut_rq, s->ncut_rq);
			if (e)
				return fail(err, len, "verbs: SRQ %#x: its %u receive(s) cannot be posted "
				            "again: %s", s->vsrqn, s->ncut_rq, strerror(e));
			break;
		}
		case SHL_AH: {
			struct sh_ah *a = SH(sh_ah, o);
			struct ibv_ah_attr d;
			shadow_ah_to_dev(&a->vattr, &a->dev, &d);
			break;
		}
		case SHL_CQ: {
			struct sh_cq *q = SH(sh_cq, o);
			if (q->cut_armed)
				sdev_req_notify(q->dev, q->cut_armed == 2);
			q->kept = q->cut;
			q->kept_pos = 0;
			q->nkept = q->ncut;
			break;
		}
		case SHL_CHANNEL: {
			struct sh_chan *c = SH(sh_chan, o);
			for (uint32_t i = 0; i < c->ncut_ev; i++)
				if (c->cut_ev[i] &&
				    sdev_chan_requeue(c->dev, SH(sh_cq, (uintptr_t)c->cut_ev[i])->dev))
					return fail(err, len, "verbs: completion channel fd %d: an event cannot "
					            "be given back: %s", c->ch.fd, strerror(errno));
			break;
		}
		default:
			break;
		}
	}
	for (uint32_t i = 0; i < ncut_async; i++) {
		const struct sdev_async_rec *a = &cut_async[i];
		void *dev = NULL;
		if (a->kind == 1 && a->cookie)
			dev = SH(sh_cq, (uintptr_t)a->cookie)->dev;
		else if (a->kind == 2 && a->cookie)
			dev = SH(sh_qp, (uintptr_t)a->cookie)->dev;
		else if (a->kind == 3 && a->cookie)
			dev = SH(sh_srq, (uintptr_t)a->cookie)->dev;
		if (sdev_async_requeue(a->type, a->kind, dev))
			return fail(err, len, "verbs: an async event cannot be given back: %s",
			            strerror(errno));
	}
	return 0;
}

static int phase3(char *err, size_t len)
{
	for (struct shl_rec *r = shl_first(); r; r = shl_next(r)) {
		struct sh_qp *q;
		if (shl_kind_of(r) != SHL_QP)
			continue;
		q = SH(sh_qp, shl_obj(r));
		for (uint32_t i = 0; i < q->ncut_sq; i++) {
			struct sdev_send_wr *w = &q->cut_sq[i];
			struct ibv_sge sg[16];
			struct ibv_send_wr wr;
			uint32_t rkey = xl_remote(XL_KEY, q->peer_id, w->rkey);
			int e;
			memset(&wr, 0, sizeof wr);
			wr.wr_id = w->wr_id;
			wr.opcode = (enum ibv_wr_opcode)w->opcode;
			wr.send_flags = w->flags;
			wr.imm_data = w->imm;
			wr.sg_list = sg;
			if (w->inl) {
				sg[0].addr = (uintptr_t)w->data;
				sg[0].length = w->total;
				sg[0].lkey = 0;
				wr.num_sge = w->total ? 1 : 0;
				wr.send_flags |= IBV_SEND_INLINE;
			} else {
				wr.num_sge = (int)w->nsge;
				for (uint32_t k = 0; k < w->nsge && k < 16; k++) {
					sg[k] = w->sge[k];
					sg[k].lkey = xl_to_dev(XL_KEY, sg[k].lkey);
				}
			}
			if (wr.opcode == IBV_WR_ATOMIC_CMP_AND_SWP ||
			    wr.opcode == IBV_WR_ATOMIC_FETCH_AND_ADD) {
				wr.wr.atomic.remote_addr = w->raddr;
				wr.wr.atomic.rkey = rkey;
				wr.wr.atomic.compare_add = w->cmp;
				wr.wr.atomic.swap = w->swap;
			} else if (q->qp.qp_type == IBV_QPT_UD) {
				wr.wr.ud.remote_qpn = xl_remote(XL_QPN, xl_peer_of(w->dqpn), w->dqpn);
				wr.wr.ud.remote_qkey = w->qkey;
			} else if (wr.opcode == IBV_WR_SEND_WITH_INV) {
				wr.invalidate_rkey = rkey;
			} else {
				wr.wr.rdma.remote_addr = w->raddr;
				wr.wr.rdma.rkey = rkey;
			}
			e = sdev_post_send(q->dev, &wr, q->qp.qp_type == IBV_QPT_UD ? &w->ah : NULL);
			if (e)
				return fail(err, len, "verbs: QP %#08x: a send that had not run cannot be "
				            "posted again: %s", q->qp.qp_num, strerror(e));
		}
		if (q->ncut_sq)
			sdev_qp_kick(q->dev);
	}
	return 0;
}

/* phase 0: the ids this process's virtual QP numbers use */
static int my_ids(void *io, size_t cap, size_t *used)
{
	uint32_t *count = io;
	uint16_t *ids = (uint16_t *)(count + 1);
	uint32_t max = (uint32_t)((cap - 4) / 2);
	*count = 0;
	for (struct shl_rec *r = shl_first(); r; r = shl_next(r)) {
		uint16_t id;
		uint32_t k;
		if (shl_kind_of(r) != SHL_QP)
			continue;
		id = xl_peer_of(SH(sh_qp, shl_obj(r))->qp.qp_num);
		for (k = 0; k < *count && ids[k] != id; k++)
			;
		if (k == *count && *count < max)
			ids[(*count)++] = id;
	}
	*used = 4 + 2 * (size_t)*count;
	return 0;
}

/* phase 1's input: every member's ids, none of which the device may give
 * this process now */
static void forbid_all(const void *all, int n)
{
	uint16_t ids[4096];
	int m = 0;
	for (int i = 0; i < n; i++) {
		const uint32_t *count = (const void *)((const char *)all + (size_t)i * IBSHADOW_IDS_LEN);
		const uint16_t *v = (const uint16_t *)(count + 1);
		for (uint32_t k = 0; k < *count && k < 1024 && m < 4096; k++)
			ids[m++] = v[k];
	}
	sdev_forbid_ids(ids, m);
}

int shadow_ckpt_restart(int phase, void *io, size_t cap, size_t *used, const void *all, int n,
                        char *err, size_t len)
{
	switch (phase) {
	case 0:
		return my_ids(io, cap, used);
	case 1:
		sdev_restart_reset();
		xl_reset();
		if (all)
			forbid_all(all, n);
		if (recreate(err, len))
			return -1;
		return table(io, cap, used, err, len);
	case 2:
		if (remote_fill(all, n, cap, err, len))
			return -1;
		return phase2(err, len);
	case 3:
		return phase3(err, len);
	default:
		return fail(err, len, "verbs: restart phase %d?", phase);
	}
}
