/* The verbs shadow's resources: PDs, MRs, completion channels, CQs, SRQs,
 * QPs and address handles. The application gets the shadow's objects;
 * every value it sees (keys, QP and SRQ numbers, LID) is virtual and
 * translated on every crossing; every live resource is in the creation log
 * with the calls that changed it. */
#include "ibshadow/shadow.h"
#include "ibshadow/iblog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void obj_init(pthread_mutex_t *m, pthread_cond_t *c)
{
	pthread_mutex_init(m, NULL);
	pthread_cond_init(c, NULL);
}

const char *shadow_qp_type_str(int t)
{
	switch (t) {
	case IBV_QPT_RC: return "RC";
	case IBV_QPT_UC: return "UC";
	case IBV_QPT_UD: return "UD";
	case IBV_QPT_XRC_SEND: return "XRC send";
	case IBV_QPT_XRC_RECV: return "XRC receive";
	default: return "?";
	}
}

const char *shadow_qp_state_str(int s)
{
	static const char *n[] = {"RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERR"};
	return s >= 0 && s <= 6 ? n[s] : "?";
}

/* ------------------------------------------------------------ PD */
struct ibv_pd *ibv_alloc_pd(struct ibv_context *ctx)
{
	IBS_SECTION();
	struct sh_ctx *c = (struct sh_ctx *)((char *)ctx - offsetof(struct verbs_context, context));
	struct sh_pd *p = calloc(1, sizeof *p);
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->dev = sdev_alloc_pd();
	if (!p->dev) {
		free(p);
		return NULL;
	}
	p->pd.context = ctx;
	p->pd.handle = p->dev;
	shadow_lock();
	p->log = shl_create(SHL_PD, &p->pd, c->log, NULL, 0);
	shl_describe(p->log, "PD %u", p->dev);
	shadow_unlock();
	return &p->pd;
}

/* A parent domain is its PD for this device (same protection domain on
 * the device); its allocators are not called: the device's queues live in
 * the device's own memory, never in buffers of the program. No thread
 * domains. */
struct ibv_pd *shadow_alloc_parent_domain(struct ibv_context *ctx,
                                          struct ibv_parent_domain_init_attr *a)
{
	IBS_SECTION();
	struct sh_pd *p;
	if (!a->pd || a->td ||
	    (a->comp_mask & ~(uint32_t)(IBV_PARENT_DOMAIN_INIT_ATTR_ALLOCATORS |
	                                IBV_PARENT_DOMAIN_INIT_ATTR_PD_CONTEXT))) {
		errno = a->td ? EOPNOTSUPP : EINVAL;
		return NULL;
	}
	p = calloc(1, sizeof *p);
	if (!p) {
		errno = ENOMEM;
		return NULL;
	}
	p->parent_of = SH(sh_pd, a->pd);
	p->dev = p->parent_of->dev;
	p->pd.context = ctx;
	p->pd.handle = p->dev;
	shadow_lock();
	p->log = shl_create(SHL_PD, &p->pd, p->parent_of->log, a, sizeof *a);
	shl_mark_unsupported(p->log, "a parent domain");
	shl_describe(p->log, "parent domain of PD %u", p->dev);
	shadow_unlock();
	return &p->pd;
}

int ibv_dealloc_pd(struct ibv_pd *pd)
{
	IBS_SECTION();
	struct sh_pd *p = SH(sh_pd, pd);
	shadow_lock();
	if (shl_children(p->log)) {
		shadow_unlock();
		iblog(1, "verbs: dealloc_pd of PD %u refused: resources still use it", p->dev);
		return EBUSY;
	}
	shadow_unlock();
	if (!p->parent_of)
		sdev_dealloc_pd(p->dev);
	shadow_lock();
	shl_destroy(p->log);
	shadow_unlock();
	free(p);
	return 0;
}

/* ------------------------------------------------------------ MR */
struct mr_args {
	void *addr;
	size_t length;
	uint64_t iova;
	int access;
};

static struct ibv_mr *reg_mr(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
                             int access)
{
	IBS_SECTION();
	struct sh_pd *p = SH(sh_pd, pd);
	struct sh_mr *m;
	struct mr_args a = {addr, length, iova, access};
	uint32_t key;
	int e;

	if (!pd) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof *m);
	if (!m) {
		errno = ENOMEM;
		return NULL;
	}
	access &= ~IBV_ACCESS_OPTIONAL_RANGE;
	if (access & ~(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
	               IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_RELAXED_ORDERING | IBV_ACCESS_MW_BIND)) {
		iblog(1, "verbs: reg_mr: access flags %#x not supported", access);
		free(m);
		errno = EOPNOTSUPP;
		return NULL;
	}
	e = sdev_reg_mr(p->dev, addr, length, iova, access, &key);
	if (e) {
		iblog(1, "verbs: reg_mr of %zu bytes at %p: %s", length, addr, strerror(e));
		free(m);
		errno = e;
		return NULL;
	}
	m->dev_key = key;
	m->mr.context = pd->context;
	m->mr.pd = pd;
	m->mr.addr = addr;
	m->mr.length = length;
	m->mr.handle = key;
	m->mr.lkey = key; /* virtual = the device's first value */
	m->mr.rkey = key;
	shadow_lock();
	xl_add(XL_KEY, m->mr.lkey, key);
	m->log = shl_create(SHL_MR, &m->mr, p->log, &a, sizeof a);
	shl_describe(m->log, "MR lkey %#x (%zu bytes)", key, length);
	shadow_unlock();
	return &m->mr;
}

#undef ibv_reg_mr
#undef ibv_reg_mr_iova
struct ibv_mr *ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access)
{
	return reg_mr(pd, addr, length, (uintptr_t)addr, access);
}

struct ibv_mr *ibv_reg_mr_iova(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
                               int access)
{
	return reg_mr(pd, addr, length, iova, access);
}

struct ibv_mr *ibv_reg_mr_iova2(struct ibv_pd *pd, void *addr, size_t length, uint64_t iova,
                                unsigned int access)
{
	return reg_mr(pd, addr, length, iova, (int)access);
}

int ibv_rereg_mr(struct ibv_mr *mr, int flags, struct ibv_pd *pd, void *addr, size_t length,
                 int access)
{
	IBS_SECTION();
	struct sh_mr *m = SH(sh_mr, mr);
	struct sh_pd *p = (flags & IBV_REREG_MR_CHANGE_PD) && pd ? SH(sh_pd, pd) : SH(sh_pd, mr->pd);
	int e;
	struct {
		int flags;
		struct shl_rec *pd;
		void *addr;
		size_t length;
		int access;
	} ch = {flags, p->log, addr, length, access};

	if (!flags || (flags & ~(IBV_REREG_MR_CHANGE_TRANSLATION | IBV_REREG_MR_CHANGE_PD |
	                         IBV_REREG_MR_CHANGE_ACCESS)) ||
	    ((flags & IBV_REREG_MR_CHANGE_TRANSLATION) && (!addr || !length)) ||
	    ((flags & IBV_REREG_MR_CHANGE_PD) && !pd) ||
	    ((flags & IBV_REREG_MR_CHANGE_ACCESS) &&
	     (access & ~(IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
	                 IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_RELAXED_ORDERING |
	                 IBV_ACCESS_MW_BIND)))) {
		errno = EINVAL;
		return IBV_REREG_MR_ERR_INPUT;
	}
	e = sdev_rereg_mr(m->dev_key, p->dev, addr, length, (uintptr_t)addr,
	                  access & ~IBV_ACCESS_RELAXED_ORDERING, flags);
	if (e) {
		errno = e;
		return IBV_REREG_MR_ERR_INPUT;
	}
	shadow_lock();
	if (flags & IBV_REREG_MR_CHANGE_TRANSLATION) {
		mr->addr = addr;
		mr->length = length;
	}
	if (flags & IBV_REREG_MR_CHANGE_PD) {
		mr->pd = pd;
		shl_reparent(m->log, p->log);
	}
	shl_change(m->log, SHL_REREG_MR, &ch, sizeof ch);
	shadow_unlock();
	return 0;
}

int ibv_dereg_mr(struct ibv_mr *mr)
{
	IBS_SECTION();
	struct sh_mr *m = SH(sh_mr, mr);
	int e = sdev_dereg_mr(m->dev_key);
	if (e)
		return e;
	shadow_lock();
	xl_del(XL_KEY, m->mr.lkey);
	shl_destroy(m->log);
	shadow_unlock();
	free(m);
	return 0;
}

/* ------------------------------------------------------------ windows */
struct ibv_mw *shadow_alloc_mw(struct ibv_pd *pd, enum ibv_mw_type type)
{
	IBS_SECTION();
	struct sh_mw *w = calloc(1, sizeof *w);
	uint32_t key;
	int e;
	if (!w) {
		errno = ENOMEM;
		return NULL;
	}
	e = sdev_alloc_mw(SH(sh_pd, pd)->dev, (int)type, &key);
	if (e) {
		free(w);
		errno = e;
		return NULL;
	}
	w->mw.context = pd->context;
	w->mw.pd = pd;
	w->mw.rkey = key;
	w->mw.handle = key;
	w->mw.type = type;
	shadow_lock();
	xl_add(XL_KEY, key, key);
	w->log = shl_create(SHL_MW, &w->mw, SH(sh_pd, pd)->log, &type, sizeof type);
	shl_mark_unsupported(w->log, "a memory window");
	shl_describe(w->log, "memory window type %d, rkey %#x", (int)type, key);
	shadow_unlock();
	return &w->mw;
}

int shadow_dealloc_mw(struct ibv_mw *mw)
{
	IBS_SECTION();
	struct sh_mw *w = SH(sh_mw, mw);
	int e = sdev_dealloc_mw(xl_to_dev(XL_KEY, mw->rkey));
	if (e)
		return e;
	shadow_lock();
	xl_del(XL_KEY, mw->rkey);
	shl_destroy(w->log);
	shadow_unlock();
	free(w);
	return 0;
}

/* a window's new key (the application sees it at once), logged */
void shadow_mw_rekey(struct ibv_mw *mw, uint32_t rkey, const struct ibv_mw_bind_info *b)
{
	IBS_SECTION();
	struct sh_mw *w = SH(sh_mw, mw);
	struct {
		uint32_t rkey;
		struct shl_rec *mr;
		uint64_t addr, length;
		unsigned access;
	} ch = {rkey, b->mr ? SH(sh_mr, b->mr)->log : NULL, b->addr, b->length,
	        b->mw_access_flags};
	shadow_lock();
	if (rkey != mw->rkey) {
		xl_del(XL_KEY, mw->rkey);
		xl_add(XL_KEY, rkey, rkey);
	}
	mw->rkey = rkey;
	shl_change(w->log, SHL_BIND_MW, &ch, sizeof ch);
	shadow_unlock();
}

int shadow_bind_mw(struct ibv_qp *qp, struct ibv_mw *mw, struct ibv_mw_bind *b)
{
	struct ibv_send_wr wr, *bad;
	uint32_t key = b->bind_info.length ? ibv_inc_rkey(mw->rkey) : mw->rkey;
	int e;
	memset(&wr, 0, sizeof wr);
	wr.wr_id = b->wr_id;
	wr.opcode = IBV_WR_BIND_MW;
	wr.send_flags = b->send_flags;
	wr.bind_mw.mw = mw;
	wr.bind_mw.rkey = key;
	wr.bind_mw.bind_info = b->bind_info;
	e = qp->context->ops.post_send(qp, &wr, &bad);
	return e;
}

/* ------------------------------------------------------------ channels */
struct ibv_comp_channel *ibv_create_comp_channel(struct ibv_context *ctx)
{
	IBS_SECTION();
	struct sh_ctx *c = (struct sh_ctx *)((char *)ctx - offsetof(struct verbs_context, context));
	struct sh_chan *ch = calloc(1, sizeof *ch);
	int fd;
	if (!ch) {
		errno = ENOMEM;
		return NULL;
	}
	ch->dev = sdev_chan_create(&fd);
	if (!ch->dev) {
		iblog(1, "verbs: cannot create a completion channel: %s", strerror(errno));
		free(ch);
		return NULL;
	}
	ch->ch.context = ctx;
	ch->ch.fd = fd;
	ch->ch.refcnt = 0;
	shadow_lock();
	ch->log = shl_create(SHL_CHANNEL, &ch->ch, c->log, NULL, 0);
	shl_describe(ch->log, "completion channel (fd %d)", fd);
	shadow_unlock();
	return &ch->ch;
}

int ibv_destroy_comp_channel(struct ibv_comp_channel *channel)
{
	IBS_SECTION();
	struct sh_chan *ch = SH(sh_chan, channel);
	shadow_lock();
	if (channel->refcnt) {
		shadow_unlock();
		return EBUSY;
	}
	shl_destroy(ch->log);
	shadow_unlock();
	sdev_chan_destroy(ch->dev);
	free(ch);
	return 0;
}

/* ------------------------------------------------------------ CQ */
struct cq_args {
	int cqe;
	void *cq_context;
	struct ibv_comp_channel *channel;
	int comp_vector;
};

struct ibv_cq *ibv_create_cq(struct ibv_context *ctx, int cqe, void *cq_context,
                             struct ibv_comp_channel *channel, int comp_vector)
{
	IBS_SECTION();
	struct sh_ctx *c = (struct sh_ctx *)((char *)ctx - offsetof(struct verbs_context, context));
	struct sh_cq *q;
	struct cq_args a = {cqe, cq_context, channel, comp_vector};
	int real;

	if (comp_vector < 0 || comp_vector >= ctx->num_comp_vectors) {
		errno = EINVAL;
		return NULL;
	}
	q = calloc(1, sizeof *q);
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	q->dev = sdev_cq_create(cqe, channel ? SH(sh_chan, channel)->dev : NULL,
	                        (uint64_t)(uintptr_t)q, &real);
	if (!q->dev) {
		iblog(1, "verbs: create_cq of %d entries: %s", cqe, strerror(errno));
		free(q);
		return NULL;
	}
	q->cq.context = ctx;
	q->cq.channel = channel;
	q->cq.cq_context = cq_context;
	q->cq.cqe = real;
	obj_init(&q->cq.mutex, &q->cq.cond);
	shadow_lock();
	if (channel)
		channel->refcnt++;
	q->log = shl_create(SHL_CQ, &q->cq, c->log, &a, sizeof a);
	shl_describe(q->log, "CQ (%d entries)", real);
	shadow_unlock();
	return &q->cq;
}

int ibv_destroy_cq(struct ibv_cq *cq)
{
	struct sh_cq *q = SH(sh_cq, cq);
	int e;
	/* wait for the events handed out to be acknowledged, as libibverbs;
	 * first, outside the section (a wait on another thread must not hold
	 * up a checkpoint), then the device and the log together */
	pthread_mutex_lock(&cq->mutex);
	while (cq->comp_events_completed != cq->handle)
		pthread_cond_wait(&cq->cond, &cq->mutex);
	pthread_mutex_unlock(&cq->mutex);
	{
		IBS_SECTION();
		e = sdev_cq_destroy(q->dev);
		if (e)
			return e;
		shadow_lock();
		if (cq->channel)
			cq->channel->refcnt--;
		shl_destroy(q->log);
		shadow_unlock();
	}
	free(q);
	return 0;
}

int ibv_resize_cq(struct ibv_cq *cq, int cqe)
{
	IBS_SECTION();
	struct sh_cq *q = SH(sh_cq, cq);
	int real, e = sdev_cq_resize(q->dev, cqe, &real);
	if (e)
		return e;
	shadow_lock();
	cq->cqe = real;
	shl_change(q->log, SHL_RESIZE_CQ, &cqe, sizeof cqe);
	shl_describe(q->log, "CQ (%d entries)", real);
	shadow_unlock();
	return 0;
}

int ibv_get_cq_event(struct ibv_comp_channel *channel, struct ibv_cq **cq, void **cq_context)
{
	struct sh_cq *q = (struct sh_cq *)(uintptr_t)sdev_chan_get(SH(sh_chan, channel)->dev);
	if (!q)
		return -1;
	*cq = &q->cq;
	*cq_context = q->cq.cq_context;
	/* events handed out, counted in the handle field (unused otherwise) */
	pthread_mutex_lock(&q->cq.mutex);
	q->cq.handle++;
	pthread_mutex_unlock(&q->cq.mutex);
	return 0;
}

void ibv_ack_cq_events(struct ibv_cq *cq, unsigned int nevents)
{
	pthread_mutex_lock(&cq->mutex);
	cq->comp_events_completed += nevents;
	pthread_cond_signal(&cq->cond);
	pthread_mutex_unlock(&cq->mutex);
}

/* ------------------------------------------------------------ SRQ */
struct ibv_srq *ibv_create_srq(struct ibv_pd *pd, struct ibv_srq_init_attr *init)
{
	IBS_SECTION();
	struct sh_srq *s = calloc(1, sizeof *s);
	uint32_t srqn;
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	s->dev = sdev_srq_create(SH(sh_pd, pd)->dev, &init->attr, (uint64_t)(uintptr_t)s, &srqn);
	if (!s->dev) {
		iblog(1, "verbs: create_srq: %s", strerror(errno));
		free(s);
		return NULL;
	}
	s->srq.context = pd->context;
	s->srq.srq_context = init->srq_context;
	s->srq.pd = pd;
	s->srq.handle = srqn;
	s->vsrqn = srqn;
	obj_init(&s->srq.mutex, &s->srq.cond);
	shadow_lock();
	xl_add(XL_SRQN, s->vsrqn, srqn);
	s->log = shl_create(SHL_SRQ, &s->srq, SH(sh_pd, pd)->log, init, sizeof *init);
	shl_describe(s->log, "SRQ %#x (%u WRs)", s->vsrqn, init->attr.max_wr);
	shadow_unlock();
	return &s->srq;
}

int ibv_modify_srq(struct ibv_srq *srq, struct ibv_srq_attr *attr, int mask)
{
	IBS_SECTION();
	struct sh_srq *s = SH(sh_srq, srq);
	int e = sdev_srq_modify(s->dev, attr, mask);
	if (!e) {
		struct {
			struct ibv_srq_attr a;
			int mask;
		} ch = {*attr, mask};
		shadow_lock();
		shl_change(s->log, SHL_MODIFY_SRQ, &ch, sizeof ch);
		shadow_unlock();
	}
	return e;
}

int ibv_query_srq(struct ibv_srq *srq, struct ibv_srq_attr *attr)
{
	return sdev_srq_query(SH(sh_srq, srq)->dev, attr);
}

int ibv_destroy_srq(struct ibv_srq *srq)
{
	IBS_SECTION();
	struct sh_srq *s = SH(sh_srq, srq);
	int e = sdev_srq_destroy(s->dev);
	if (e)
		return e;
	shadow_lock();
	xl_del(XL_SRQN, s->vsrqn);
	shl_destroy(s->log);
	shadow_unlock();
	free(s);
	return 0;
}

/* ------------------------------------------------------------ QP */
static void qp_describe(struct sh_qp *q)
{
	shl_describe(q->log, "QP %#08x (%s, %s)", q->qp.qp_num, shadow_qp_type_str(q->qp.qp_type),
	             shadow_qp_state_str(q->qp.state));
}

struct ibv_qp *ibv_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *init)
{
	IBS_SECTION();
	struct sh_qp *q;
	uint32_t qpn;
	struct ibv_qp_init_attr a;

	if (!pd || !init || !init->send_cq ||
	    (!init->recv_cq && init->qp_type != IBV_QPT_XRC_SEND)) {
		errno = EINVAL;
		return NULL;
	}
	q = calloc(1, sizeof *q);
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	a = *init;
	q->dev = sdev_qp_create(SH(sh_pd, pd)->dev, init, SH(sh_cq, init->send_cq)->dev,
	                        init->recv_cq ? SH(sh_cq, init->recv_cq)->dev : NULL,
	                        init->srq ? SH(sh_srq, init->srq)->dev : NULL, (uint64_t)(uintptr_t)q,
	                        &qpn);
	if (!q->dev) {
		iblog(1, "verbs: create_qp (%s, %u/%u WRs, %u/%u SGEs): %s",
		      shadow_qp_type_str(init->qp_type), init->cap.max_send_wr, init->cap.max_recv_wr,
		      init->cap.max_send_sge, init->cap.max_recv_sge, strerror(errno));
		free(q);
		return NULL;
	}
	q->qp.context = pd->context;
	q->qp.qp_context = init->qp_context;
	q->qp.pd = pd;
	q->qp.send_cq = init->send_cq;
	q->qp.recv_cq = init->recv_cq;
	q->qp.srq = init->srq;
	q->qp.handle = qpn;
	q->qp.qp_num = qpn; /* virtual = the device's first value */
	q->qp.state = IBV_QPS_RESET;
	q->qp.qp_type = init->qp_type;
	obj_init(&q->qp.mutex, &q->qp.cond);
	shadow_lock();
	xl_add(XL_QPN, q->qp.qp_num, qpn);
	q->log = shl_create(SHL_QP, &q->qp, SH(sh_pd, pd)->log, &a, sizeof a);
	if (init->qp_type == IBV_QPT_XRC_SEND)
		shl_mark_unsupported(q->log, "an XRC send QP");
	qp_describe(q);
	shadow_unlock();
	iblog(2, "verbs: QP %#08x (%s) created", qpn, shadow_qp_type_str(init->qp_type));
	return &q->qp;
}

int ibv_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask)
{
	IBS_SECTION();
	struct sh_qp *q = SH(sh_qp, qp);
	struct ibv_qp_attr d = *attr;
	uint16_t peer = q->peer_vlid;
	int e;

	if (mask & IBV_QP_AV) {
		struct sdev_ah ah;
		peer = attr->ah_attr.dlid;
		shadow_ah_to_dev(&attr->ah_attr, &ah, &d.ah_attr);
	}
	if (mask & IBV_QP_DEST_QPN)
		d.dest_qp_num = xl_remote(XL_QPN, xl_peer_of(attr->dest_qp_num), attr->dest_qp_num);
	e = sdev_qp_modify(q->dev, &d, mask);
	if (e) {
		iblog(1, "verbs: modify_qp of QP %#08x (%s, %s -> %s, mask %#x) refused: %s",
		      qp->qp_num, shadow_qp_type_str(qp->qp_type), shadow_qp_state_str(qp->state),
		      shadow_qp_state_str((mask & IBV_QP_STATE) ? (int)attr->qp_state : (int)qp->state),
		      mask, strerror(e));
		return e;
	}
	if (attr->qp_access_flags != d.qp_access_flags)
		attr->qp_access_flags = d.qp_access_flags;
	shadow_lock();
	q->peer_vlid = peer;
	if (mask & IBV_QP_DEST_QPN)
		q->peer_id = xl_peer_of(attr->dest_qp_num);
	qp->state = (enum ibv_qp_state)sdev_qp_state(q->dev);
	{
		struct {
			struct ibv_qp_attr a;
			int mask;
		} ch = {*attr, mask};
		shl_change(q->log, SHL_MODIFY_QP, &ch, sizeof ch);
	}
	qp_describe(q);
	shadow_unlock();
	iblog(3, "verbs: QP %#08x -> %s", qp->qp_num, shadow_qp_state_str(qp->state));
	return 0;
}

int ibv_query_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask,
                 struct ibv_qp_init_attr *init)
{
	struct sh_qp *q = SH(sh_qp, qp);
	struct ibv_qp_init_attr i;
	(void)mask;
	sdev_qp_query(q->dev, attr, &i);
	attr->dest_qp_num = xl_remote_virt(XL_QPN, 0, attr->dest_qp_num);
	attr->ah_attr.dlid = (uint16_t)xl_remote_virt(XL_LID, attr->ah_attr.dlid, attr->ah_attr.dlid);
	qp->state = attr->qp_state;
	if (init) {
		memset(init, 0, sizeof *init);
		init->qp_context = qp->qp_context;
		init->send_cq = qp->send_cq;
		init->recv_cq = qp->recv_cq;
		init->srq = qp->srq;
		init->cap = i.cap;
		init->qp_type = qp->qp_type;
		init->sq_sig_all = i.sq_sig_all;
	}
	return 0;
}

int ibv_destroy_qp(struct ibv_qp *qp)
{
	IBS_SECTION();
	struct sh_qp *q = SH(sh_qp, qp);
	int e = sdev_qp_destroy(q->dev);
	if (e)
		return e;
	shadow_lock();
	xl_del(XL_QPN, qp->qp_num);
	shl_destroy(q->log);
	shadow_unlock();
	iblog(2, "verbs: QP %#08x destroyed", qp->qp_num);
	shadow_qp_ex_free(q);
	free(q);
	return 0;
}

/* ------------------------------------------------------------ AH */
struct ibv_ah *ibv_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *attr)
{
	IBS_SECTION();
	struct sh_ah *a;
	struct ibv_ah_attr d;

	if (!pd || !attr || (attr->port_num && attr->port_num != 1) ||
	    (attr->is_global && attr->grh.sgid_index != 0)) {
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof *a);
	if (!a) {
		errno = ENOMEM;
		return NULL;
	}
	a->vattr = *attr;
	shadow_ah_to_dev(attr, &a->dev, &d);
	a->ah.context = pd->context;
	a->ah.pd = pd;
	shadow_lock();
	a->log = shl_create(SHL_AH, &a->ah, SH(sh_pd, pd)->log, attr, sizeof *attr);
	shl_describe(a->log, "AH to LID %u", attr->dlid);
	shadow_unlock();
	return &a->ah;
}

int ibv_destroy_ah(struct ibv_ah *ah)
{
	IBS_SECTION();
	struct sh_ah *a = SH(sh_ah, ah);
	shadow_lock();
	shl_destroy(a->log);
	shadow_unlock();
	free(a);
	return 0;
}

int ibv_init_ah_from_wc(struct ibv_context *ctx, uint8_t port, struct ibv_wc *wc,
                        struct ibv_grh *grh, struct ibv_ah_attr *ah)
{
	(void)ctx;
	memset(ah, 0, sizeof *ah);
	ah->dlid = wc->slid;
	ah->sl = wc->sl;
	ah->src_path_bits = wc->dlid_path_bits;
	ah->port_num = port;
	if (wc->wc_flags & IBV_WC_GRH) {
		uint32_t flow = be32toh(grh->version_tclass_flow);
		ah->is_global = 1;
		ah->grh.dgid = grh->sgid;
		ah->grh.sgid_index = 0;
		ah->grh.flow_label = flow & 0xfffff;
		ah->grh.hop_limit = 0xff;
		ah->grh.traffic_class = (uint8_t)(flow >> 20);
	}
	return 0;
}

struct ibv_ah *ibv_create_ah_from_wc(struct ibv_pd *pd, struct ibv_wc *wc, struct ibv_grh *grh,
                                     uint8_t port)
{
	struct ibv_ah_attr a;
	if (ibv_init_ah_from_wc(pd->context, port, wc, grh, &a))
		return NULL;
	return ibv_create_ah(pd, &a);
}

/* ------------------------------------------------------------ XRC */
static void qp_describe(struct sh_qp *q);
struct ibv_xrcd *shadow_open_xrcd(struct ibv_context *ctx, struct ibv_xrcd_init_attr *a)
{
	IBS_SECTION();
	struct sh_ctx *c = (struct sh_ctx *)((char *)ctx - offsetof(struct verbs_context, context));
	struct sh_xrcd *x;
	int fd = (a->comp_mask & IBV_XRCD_INIT_ATTR_FD) ? a->fd : -1;
	if (a->comp_mask & ~(uint32_t)(IBV_XRCD_INIT_ATTR_FD | IBV_XRCD_INIT_ATTR_OFLAGS)) {
		errno = EINVAL;
		return NULL;
	}
	x = calloc(1, sizeof *x);
	if (!x) {
		errno = ENOMEM;
		return NULL;
	}
	x->dev = sdev_xrcd_id(fd);
	if (!x->dev) {
		free(x);
		return NULL;
	}
	x->xrcd.context = ctx;
	shadow_lock();
	x->log = shl_create(SHL_XRCD, &x->xrcd, c->log, a, sizeof *a);
	shl_mark_unsupported(x->log, "an XRC domain");
	shl_describe(x->log, "XRC domain %#x", x->dev);
	shadow_unlock();
	return &x->xrcd;
}

int shadow_close_xrcd(struct ibv_xrcd *xrcd)
{
	IBS_SECTION();
	struct sh_xrcd *x = SH(sh_xrcd, xrcd);
	shadow_lock();
	if (shl_children(x->log)) {
		shadow_unlock();
		return EBUSY;
	}
	shl_destroy(x->log);
	shadow_unlock();
	free(x);
	return 0;
}

struct ibv_srq *shadow_create_srq_ex(struct ibv_context *ctx, struct ibv_srq_init_attr_ex *a)
{
	IBS_SECTION();
	uint32_t ok = IBV_SRQ_INIT_ATTR_TYPE | IBV_SRQ_INIT_ATTR_PD | IBV_SRQ_INIT_ATTR_XRCD |
	              IBV_SRQ_INIT_ATTR_CQ;
	enum ibv_srq_type t = (a->comp_mask & IBV_SRQ_INIT_ATTR_TYPE) ? a->srq_type : IBV_SRQT_BASIC;
	struct sh_srq *s;
	uint32_t srqn;
	(void)ctx;
	if ((a->comp_mask & ~ok) || !(a->comp_mask & IBV_SRQ_INIT_ATTR_PD) || !a->pd ||
	    (t != IBV_SRQT_BASIC && t != IBV_SRQT_XRC)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (t == IBV_SRQT_BASIC) {
		struct ibv_srq_init_attr i = {.srq_context = a->srq_context, .attr = a->attr};
		struct ibv_srq *r = ibv_create_srq(a->pd, &i);
		if (r)
			a->attr = i.attr;
		return r;
	}
	if (!(a->comp_mask & IBV_SRQ_INIT_ATTR_XRCD) || !a->xrcd ||
	    !(a->comp_mask & IBV_SRQ_INIT_ATTR_CQ) || !a->cq) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	s->dev = sdev_srq_create_xrc(SH(sh_pd, a->pd)->dev, &a->attr, SH(sh_xrcd, a->xrcd)->dev,
	                             SH(sh_cq, a->cq)->dev, (uint64_t)(uintptr_t)s, &srqn);
	if (!s->dev) {
		iblog(1, "verbs: create_srq_ex (XRC): %s", strerror(errno));
		free(s);
		return NULL;
	}
	s->srq.context = a->pd->context;
	s->srq.srq_context = a->srq_context;
	s->srq.pd = a->pd;
	s->srq.handle = srqn;
	s->vsrqn = srqn;
	pthread_mutex_init(&s->srq.mutex, NULL);
	pthread_cond_init(&s->srq.cond, NULL);
	shadow_lock();
	xl_add(XL_SRQN, s->vsrqn, srqn);
	/* under its PD (the domain, the CQ are in the arguments) */
	s->log = shl_create(SHL_SRQ, &s->srq, SH(sh_pd, a->pd)->log, a, sizeof *a);
	shl_mark_unsupported(s->log, "an XRC SRQ");
	shl_describe(s->log, "XRC SRQ %#x (%u WRs)", s->vsrqn, a->attr.max_wr);
	shadow_unlock();
	return &s->srq;
}

int shadow_get_srq_num(struct ibv_srq *srq, uint32_t *num)
{
	*num = SH(sh_srq, srq)->vsrqn;
	return 0;
}

static struct ibv_qp *create_xrc_recv_qp(struct ibv_context *ctx, struct ibv_qp_init_attr_ex *a)
{
	IBS_SECTION();
	struct sh_xrcd *x = SH(sh_xrcd, a->xrcd);
	struct sh_qp *q = calloc(1, sizeof *q);
	uint32_t qpn;
	if (!q) {
		errno = ENOMEM;
		return NULL;
	}
	q->dev = sdev_qp_create_xrc_recv(x->dev, (uint64_t)(uintptr_t)q, &qpn);
	if (!q->dev) {
		free(q);
		return NULL;
	}
	q->qp.context = ctx;
	q->qp.qp_context = a->qp_context;
	q->qp.handle = qpn;
	q->qp.qp_num = qpn;
	q->qp.state = IBV_QPS_RESET;
	q->qp.qp_type = IBV_QPT_XRC_RECV;
	pthread_mutex_init(&q->qp.mutex, NULL);
	pthread_cond_init(&q->qp.cond, NULL);
	shadow_lock();
	xl_add(XL_QPN, qpn, qpn);
	q->log = shl_create(SHL_QP, &q->qp, x->log, a, sizeof *a);
	shl_mark_unsupported(q->log, "an XRC receive QP");
	qp_describe(q);
	shadow_unlock();
	return &q->qp;
}

/* ibv_create_qp_ex: what ibv_create_qp has (a zero create_flags too), and
 * the send ops of the ibv_wr_* API this device carries; the rest (XRC,
 * RSS, TSO, memory windows, invalidation) refused */
struct ibv_qp *shadow_create_qp_ex(struct ibv_context *ctx, struct ibv_qp_init_attr_ex *a)
{
	IBS_SECTION();
	uint32_t ok = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_CREATE_FLAGS |
	              IBV_QP_INIT_ATTR_SEND_OPS_FLAGS | IBV_QP_INIT_ATTR_XRCD;
	uint64_t ops_ok = IBV_QP_EX_WITH_RDMA_WRITE | IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM |
	                  IBV_QP_EX_WITH_SEND | IBV_QP_EX_WITH_SEND_WITH_IMM |
	                  IBV_QP_EX_WITH_RDMA_READ | IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP |
	                  IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD | IBV_QP_EX_WITH_BIND_MW |
	                  IBV_QP_EX_WITH_LOCAL_INV | IBV_QP_EX_WITH_SEND_WITH_INV |
	                  IBV_QP_EX_WITH_ATOMIC_WRITE;
	struct ibv_qp *qp;
	if (a->qp_type == IBV_QPT_XRC_RECV) {
		if (!(a->comp_mask & IBV_QP_INIT_ATTR_XRCD) || !a->xrcd ||
		    ((a->comp_mask & IBV_QP_INIT_ATTR_CREATE_FLAGS) && a->create_flags)) {
			errno = EINVAL;
			return NULL;
		}
		return create_xrc_recv_qp(ctx, a);
	}
	if ((a->comp_mask & ~ok) || !(a->comp_mask & IBV_QP_INIT_ATTR_PD) ||
	    ((a->comp_mask & IBV_QP_INIT_ATTR_CREATE_FLAGS) && a->create_flags) ||
	    ((a->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS) && (a->send_ops_flags & ~ops_ok))) {
		iblog(1, "verbs: create_qp_ex with comp_mask %#x, create_flags %#x, send_ops_flags %#llx "
		         "not supported",
		      a->comp_mask, (a->comp_mask & IBV_QP_INIT_ATTR_CREATE_FLAGS) ? a->create_flags : 0,
		      (unsigned long long)((a->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS) ?
		                               a->send_ops_flags : 0));
		errno = EOPNOTSUPP;
		return NULL;
	}
	qp = ibv_create_qp(a->pd, (struct ibv_qp_init_attr *)a);
	if (qp && (a->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS)) {
		int e = shadow_qp_ex_init(SH(sh_qp, qp), a->send_ops_flags, a->cap.max_send_wr,
		                          a->cap.max_send_sge);
		if (e) {
			ibv_destroy_qp(qp);
			errno = e;
			return NULL;
		}
	}
	return qp;
}

/* ibv_create_cq_ex: the standard completion fields; timestamps, flow
 * tags, tag matching refused */
struct ibv_cq_ex *shadow_create_cq_ex(struct ibv_context *ctx, struct ibv_cq_init_attr_ex *a)
{
	IBS_SECTION();
	struct ibv_cq *cq;
	if ((a->wc_flags & ~(uint64_t)IBV_WC_STANDARD_FLAGS) ||
	    (a->comp_mask & ~(uint32_t)(IBV_CQ_INIT_ATTR_MASK_FLAGS | IBV_CQ_INIT_ATTR_MASK_PD)) ||
	    ((a->comp_mask & IBV_CQ_INIT_ATTR_MASK_FLAGS) &&
	     (a->flags & ~(uint32_t)IBV_CREATE_CQ_ATTR_SINGLE_THREADED)) ||
	    ((a->comp_mask & IBV_CQ_INIT_ATTR_MASK_PD) &&
	     (!a->parent_domain || !SH(sh_pd, a->parent_domain)->parent_of))) {
		iblog(1, "verbs: create_cq_ex with wc_flags %#llx, comp_mask %#x not supported",
		      (unsigned long long)a->wc_flags, a->comp_mask);
		errno = EOPNOTSUPP;
		return NULL;
	}
	cq = ibv_create_cq(ctx, (int)a->cqe, a->cq_context, a->channel, (int)a->comp_vector);
	if (!cq)
		return NULL;
	shadow_cq_ex_init(SH(sh_cq, cq));
	return &SH(sh_cq, cq)->cqx;
}
