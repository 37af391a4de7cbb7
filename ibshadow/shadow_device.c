/* The verbs shadow: the device list, contexts and the queries of the
 * device and port. The application sees ckptmpi_sw0 with a virtual LID
 * and GID (the device's first values until a restart). */
#include "ibshadow/shadow.h"
#include "ibshadow/iblog.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the library's lines carry the rank or member the runtime's do (as
 * launcher_rank() in core/control.c reads it) */
static __attribute__((constructor)) void shadow_log_rank(void)
{
	const char *v = getenv("OMPI_COMM_WORLD_RANK");
	if (!v)
		v = getenv("PMIX_RANK");
	if (!v)
		v = getenv("PMI_RANK");
	if (!v)
		v = getenv("CKPTMPI_JOB_MEMBER");
	log_init(v ? atoi(v) : 0);
}

static pthread_mutex_t creation = PTHREAD_MUTEX_INITIALIZER;
void shadow_lock(void) { pthread_mutex_lock(&creation); }
void shadow_unlock(void) { pthread_mutex_unlock(&creation); }

struct ibv_device shadow_device = {
	.node_type = IBV_NODE_CA,
	.transport_type = IBV_TRANSPORT_IB,
	.name = SDEV_NAME,
	.dev_name = "uverbs_ckptmpi0",
	.dev_path = "/sys/class/infiniband_verbs/uverbs_ckptmpi0",
	.ibdev_path = "/sys/class/infiniband/" SDEV_NAME,
};

/* the virtual port identity: what the application was told first */
static uint16_t vlid;
static union ibv_gid vgid;
static int vport_set;

static void vport_init(void)
{
	if (vport_set)
		return;
	vlid = sdev_lid();
	sdev_gid(&vgid);
	xl_add(XL_LID, vlid, sdev_lid());
	vport_set = 1;
}

struct ibv_device **ibv_get_device_list(int *num)
{
	struct ibv_device **l = calloc(2, sizeof *l);
	if (!l) {
		errno = ENOMEM;
		return NULL;
	}
	l[0] = &shadow_device;
	if (num)
		*num = 1;
	return l;
}

void ibv_free_device_list(struct ibv_device **list) { free(list); }

const char *ibv_get_device_name(struct ibv_device *d) { return d ? d->name : NULL; }

__be64 ibv_get_device_guid(struct ibv_device *d)
{
	(void)d;
	return sdev_guid();
}

int ibv_get_device_index(struct ibv_device *d) { return d == &shadow_device ? 0 : -1; }

static int sh_query_port(struct ibv_context *c, uint8_t port, struct ibv_port_attr *a, size_t len);
static int sh_query_device_ex(struct ibv_context *c, const struct ibv_query_device_ex_input *in,
                              struct ibv_device_attr_ex *a, size_t len);

struct ibv_context *ibv_open_device(struct ibv_device *dev)
{
	IBS_SECTION();
	struct sh_ctx *c;
	int fd;

	if (dev != &shadow_device) {
		errno = ENODEV;
		return NULL;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	fd = sdev_open();
	if (fd < 0) {
		int e = errno;
		iblog(0, "verbs: cannot open %s: %s", SDEV_NAME, strerror(e));
		free(c);
		errno = e;
		return NULL;
	}
	c->v.sz = sizeof c->v;
	c->v.query_port = sh_query_port;
	c->v.query_device_ex = sh_query_device_ex;
	c->v.create_qp_ex = shadow_create_qp_ex;
	c->v.create_cq_ex = shadow_create_cq_ex;
	c->v.alloc_parent_domain = shadow_alloc_parent_domain;
	c->v.open_xrcd = shadow_open_xrcd;
	c->v.close_xrcd = shadow_close_xrcd;
	c->v.create_srq_ex = shadow_create_srq_ex;
	c->v.get_srq_num = shadow_get_srq_num;
	c->v.context.device = dev;
	/* no command fd: /dev/null stands for one (programs dup it) */
	c->v.context.cmd_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	c->v.context.async_fd = fd;
	c->v.context.num_comp_vectors = 1;
	pthread_mutex_init(&c->v.context.mutex, NULL);
	c->v.context.abi_compat = __VERBS_ABI_IS_EXTENDED;
	shadow_set_ops(c);
	shadow_lock();
	vport_init();
	c->log = shl_create(SHL_CONTEXT, &c->v.context, NULL, dev->name, strlen(dev->name) + 1);
	shl_describe(c->log, "device context");
	shadow_unlock();
	iblog(2, "verbs: opened %s", SDEV_NAME);
	return &c->v.context;
}

int ibv_close_device(struct ibv_context *ctx)
{
	IBS_SECTION();
	struct sh_ctx *c = (struct sh_ctx *)((char *)ctx - offsetof(struct verbs_context, context));
	shadow_lock();
	shl_destroy(c->log);
	shadow_unlock();
	sdev_close();
	if (ctx->cmd_fd >= 0)
		close(ctx->cmd_fd);
	free(c);
	return 0;
}

int ibv_query_device(struct ibv_context *ctx, struct ibv_device_attr *a)
{
	(void)ctx;
	sdev_query_device(a);
	return 0;
}

static int sh_query_device_ex(struct ibv_context *c, const struct ibv_query_device_ex_input *in,
                              struct ibv_device_attr_ex *a, size_t len)
{
	(void)in;
	if (len < sizeof a->orig_attr)
		return EINVAL;
	memset(a, 0, len);
	sdev_query_device(&a->orig_attr);
	if (len >= offsetof(struct ibv_device_attr_ex, phys_port_cnt_ex) + sizeof a->phys_port_cnt_ex)
		a->phys_port_cnt_ex = a->orig_attr.phys_port_cnt;
	(void)c;
	return 0;
}

static int sh_query_port(struct ibv_context *c, uint8_t port, struct ibv_port_attr *a, size_t len)
{
	struct ibv_port_attr p;
	(void)c;
	if (port != 1)
		return EINVAL;
	sdev_query_port(&p);
	p.lid = vlid;
	p.sm_lid = vlid;
	memset(a, 0, len);
	memcpy(a, &p, len < sizeof p ? len : sizeof p);
	return 0;
}

/* the exported (compat) one: the older, shorter struct */
#undef ibv_query_port
int ibv_query_port(struct ibv_context *c, uint8_t port, struct _compat_ibv_port_attr *a)
{
	return sh_query_port(c, port, (struct ibv_port_attr *)a,
	                     offsetof(struct ibv_port_attr, flags));
}

int ibv_query_gid(struct ibv_context *c, uint8_t port, int index, union ibv_gid *gid)
{
	(void)c;
	if (port != 1 || index < 0 || index > 1) {
		errno = EINVAL;
		return -1;
	}
	if (index == 0)
		*gid = vgid;
	else
		memset(gid, 0, sizeof *gid); /* an empty entry */
	return 0;
}

int _ibv_query_gid_ex(struct ibv_context *c, uint32_t port, uint32_t index,
                      struct ibv_gid_entry *e, uint32_t flags, size_t size)
{
	struct ibv_gid_entry g;
	(void)c;
	if (flags || port != 1 || index > 1)
		return EINVAL;
	if (index == 1)
		return ENODATA; /* the empty entry */
	memset(&g, 0, sizeof g);
	g.gid = vgid;
	g.gid_index = 0;
	g.port_num = 1;
	g.gid_type = IBV_GID_TYPE_IB;
	g.ndev_ifindex = 0;
	memcpy(e, &g, size < sizeof g ? size : sizeof g);
	return 0;
}

ssize_t _ibv_query_gid_table(struct ibv_context *c, struct ibv_gid_entry *e, size_t max,
                             uint32_t flags, size_t size)
{
	if (flags || !max)
		return -EINVAL;
	if (_ibv_query_gid_ex(c, 1, 0, e, 0, size))
		return -EINVAL;
	return 1;
}

/* private in libibverbs, used by ibv_devinfo */
/* (enum ibv_gid_type_sysfs of rdma-core's driver.h: 0 is IB/RoCE v1) */
int ibv_query_gid_type(struct ibv_context *c, uint8_t port, unsigned int index, int *type);
int ibv_query_gid_type(struct ibv_context *c, uint8_t port, unsigned int index, int *type)
{
	(void)c;
	if (port != 1 || index != 0) {
		errno = EINVAL;
		return -1;
	}
	*type = 0;
	return 0;
}

int ibv_query_pkey(struct ibv_context *c, uint8_t port, int index, __be16 *pkey)
{
	(void)c;
	if (port != 1 || index != 0) {
		errno = EINVAL;
		return -1;
	}
	*pkey = htobe16(0xffff);
	return 0;
}

int ibv_get_pkey_index(struct ibv_context *c, uint8_t port, __be16 pkey)
{
	(void)c;
	if (port != 1 || (be16toh(pkey) & 0x7fff) != 0x7fff) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Sysfs reads of our device have nothing to read; others go on. */
int ibv_read_sysfs_file(const char *dir, const char *file, char *buf, size_t size)
{
	static int (*real)(const char *, const char *, char *, size_t);
	if (dir && strstr(dir, SDEV_NAME)) {
		if (!strcmp(file, "node_desc") || !strcmp(file, "board_id")) {
			return snprintf(buf, size, "%s", !strcmp(file, "board_id") ? "CKPTMPI_SW" :
			                "ckptmpi software verbs device");
		}
		errno = ENOENT;
		return -1;
	}
	if (!real)
		real = (int (*)(const char *, const char *, char *, size_t))dlsym(RTLD_NEXT,
		                                                             "ibv_read_sysfs_file");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	return real(dir, file, buf, size);
}

const char *ibv_get_sysfs_path(void) { return "/sys"; }

int ibv_fork_init(void) { return 0; }
enum ibv_fork_status ibv_is_fork_initialized(void) { return IBV_FORK_UNNEEDED; }

/* ------------------------------------------------------------ async events */
int ibv_get_async_event(struct ibv_context *ctx, struct ibv_async_event *ev)
{
	int type, kind;
	uint64_t cookie;
	(void)ctx;
	if (sdev_async_get(&type, &kind, &cookie))
		return -1;
	memset(ev, 0, sizeof *ev);
	ev->event_type = (enum ibv_event_type)type;
	switch (kind) {
	case 1: ev->element.cq = (struct ibv_cq *)(uintptr_t)cookie; break;
	case 2: ev->element.qp = (struct ibv_qp *)(uintptr_t)cookie; break;
	case 3: ev->element.srq = (struct ibv_srq *)(uintptr_t)cookie; break;
	default: ev->element.port_num = 1; break;
	}
	return 0;
}

void ibv_ack_async_event(struct ibv_async_event *ev)
{
	switch (ev->event_type) {
	case IBV_EVENT_CQ_ERR: {
		struct ibv_cq *cq = ev->element.cq;
		pthread_mutex_lock(&cq->mutex);
		cq->async_events_completed++;
		pthread_cond_signal(&cq->cond);
		pthread_mutex_unlock(&cq->mutex);
		break;
	}
	case IBV_EVENT_SRQ_ERR:
	case IBV_EVENT_SRQ_LIMIT_REACHED: {
		struct ibv_srq *s = ev->element.srq;
		pthread_mutex_lock(&s->mutex);
		s->events_completed++;
		pthread_cond_signal(&s->cond);
		pthread_mutex_unlock(&s->mutex);
		break;
	}
	case IBV_EVENT_QP_FATAL:
	case IBV_EVENT_QP_REQ_ERR:
	case IBV_EVENT_QP_ACCESS_ERR:
	case IBV_EVENT_COMM_EST:
	case IBV_EVENT_SQ_DRAINED:
	case IBV_EVENT_PATH_MIG:
	case IBV_EVENT_PATH_MIG_ERR:
	case IBV_EVENT_QP_LAST_WQE_REACHED: {
		struct ibv_qp *qp = ev->element.qp;
		pthread_mutex_lock(&qp->mutex);
		qp->events_completed++;
		pthread_cond_signal(&qp->cond);
		pthread_mutex_unlock(&qp->mutex);
		break;
	}
	default:
		break;
	}
}

/* ------------------------------------------------------------ AH values */
void shadow_ah_to_dev(const struct ibv_ah_attr *v, struct sdev_ah *d, struct ibv_ah_attr *dattr)
{
	*dattr = *v;
	dattr->dlid = (uint16_t)xl_remote(XL_LID, v->dlid, v->dlid);
	/* a GID is its own translation until part 2 (a peer's GID table) */
	memset(d, 0, sizeof *d);
	d->dlid = dattr->dlid;
	d->sl = v->sl;
	d->is_global = v->is_global;
	d->dgid = v->grh.dgid;
	d->hop_limit = v->grh.hop_limit;
	d->traffic_class = v->grh.traffic_class;
	d->flow_label = v->grh.flow_label;
}
