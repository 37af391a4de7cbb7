/* The software verbs device (ckptmpi_sw0): what the shadow calls under it
 * when the host has no HCA. Values in and out are the device's own (real)
 * keys, QP numbers, LID and GID; the shadow translates. The device keeps
 * all its state in its own mappings (sdev_mappings()), never in the heap. */
#ifndef CKPTMPI_IBSHADOW_SDEV_H
#define CKPTMPI_IBSHADOW_SDEV_H

#include <stddef.h>
#include <stdint.h>
#include <infiniband/verbs.h>

#define SDEV_NAME "ckptmpi_sw0"

struct sdev_cq;
struct sdev_qp;
struct sdev_srq;
struct sdev_chan;

/* the device's constant description */
void sdev_query_device(struct ibv_device_attr *a);
void sdev_query_port(struct ibv_port_attr *p);
uint64_t sdev_guid(void);   /* network order, as ibv_get_device_guid */
void sdev_gid(union ibv_gid *g);
uint16_t sdev_lid(void);

/* Opening joins the per-user device directory (one segment per process,
 * shared by the process's contexts). Returns the async event fd, -1 +
 * errno on failure. */
int sdev_open(void);
void sdev_close(void);

uint32_t sdev_alloc_pd(void);                 /* 0 + errno on failure */
void sdev_dealloc_pd(uint32_t pd);
int sdev_reg_mr(uint32_t pd, void *addr, size_t len, uint64_t iova, int access,
                uint32_t *key);               /* 0 or errno */
int sdev_dereg_mr(uint32_t key);
/* change an MR in place (flags: IBV_REREG_MR_CHANGE_*); the key stays */
int sdev_rereg_mr(uint32_t key, uint32_t pd, void *addr, size_t len, uint64_t iova, int access,
                  int flags);
/* memory windows (type 1 or 2): the key is an MR key's kind; bound by a
 * send WR (IBV_WR_BIND_MW: bind_mw.rkey is the new key, bind_info.mr->lkey
 * the device key of the MR; type 1 windows too, through the shadow) */
int sdev_alloc_mw(uint32_t pd, int type, uint32_t *key);
int sdev_dealloc_mw(uint32_t key);
/* A local key's access flags (-1 when the key is not one of ours). */
int sdev_mr_access(uint32_t key);

struct sdev_chan *sdev_chan_create(int *fd);
void sdev_chan_destroy(struct sdev_chan *ch);
/* One completion event: the cookie of the CQ (0 with errno on error; the
 * read blocks or not as the fd's flags say). */
uint64_t sdev_chan_get(struct sdev_chan *ch);

struct sdev_cq *sdev_cq_create(int cqe, struct sdev_chan *ch, uint64_t cookie, int *real_cqe);
int sdev_cq_destroy(struct sdev_cq *cq);
int sdev_cq_resize(struct sdev_cq *cq, int cqe, int *real_cqe);
int sdev_poll_cq(struct sdev_cq *cq, int n, struct ibv_wc *wc);
int sdev_req_notify(struct sdev_cq *cq, int solicited_only);

struct sdev_srq *sdev_srq_create(uint32_t pd, struct ibv_srq_attr *attr, uint64_t cookie,
                                 uint32_t *srqn);
/* an XRC SRQ: its domain (sdev_xrcd_id) and the CQ of its completions */
struct sdev_srq *sdev_srq_create_xrc(uint32_t pd, struct ibv_srq_attr *attr, uint32_t xrcd,
                                     struct sdev_cq *cq, uint64_t cookie, uint32_t *srqn);
int sdev_srq_modify(struct sdev_srq *s, struct ibv_srq_attr *attr, int mask);
int sdev_srq_query(struct sdev_srq *s, struct ibv_srq_attr *attr);
int sdev_srq_destroy(struct sdev_srq *s);
int sdev_post_srq_recv(struct sdev_srq *s, const struct ibv_recv_wr *wr);
void sdev_srq_kick(struct sdev_srq *s);

struct sdev_qp *sdev_qp_create(uint32_t pd, struct ibv_qp_init_attr *init, struct sdev_cq *scq,
                               struct sdev_cq *rcq, struct sdev_srq *srq, uint64_t cookie,
                               uint32_t *qpn);
/* an XRC receive (target) QP of a domain: no queues of its own */
struct sdev_qp *sdev_qp_create_xrc_recv(uint32_t xrcd, uint64_t cookie, uint32_t *qpn);
/* an XRC domain: the same for every process that opens the same file
 * (dev, ino), else one of this process's own. 0 + errno on failure */
uint32_t sdev_xrcd_id(int fd);
int sdev_qp_modify(struct sdev_qp *qp, struct ibv_qp_attr *attr, int mask);
int sdev_qp_query(struct sdev_qp *qp, struct ibv_qp_attr *attr, struct ibv_qp_init_attr *init);
int sdev_qp_state(struct sdev_qp *qp);
int sdev_qp_destroy(struct sdev_qp *qp);

/* The destination of a UD send (what an address handle resolves to). */
struct sdev_ah {
	uint16_t dlid;
	uint8_t sl;
	uint8_t is_global;
	uint8_t hop_limit;
	uint8_t traffic_class;
	uint32_t flow_label;
	union ibv_gid dgid;
};
/* One send WR (next and the AH ignored; ah for UD). 0 or errno. */
int sdev_post_send(struct sdev_qp *qp, const struct ibv_send_wr *wr, const struct sdev_ah *ah);
int sdev_post_recv(struct sdev_qp *qp, const struct ibv_recv_wr *wr);
/* Do the work posted (after a list of WRs). */
void sdev_qp_kick(struct sdev_qp *qp);

/* An async event: the event type, the kind (0 device, 1 CQ, 2 QP, 3 SRQ)
 * and cookie of the element. 0, or -1 + errno. */
int sdev_async_get(int *type, int *kind, uint64_t *cookie);

/* the device's directory (its fds are files in it); "" before an open */
const char *sdev_dir(void);

/* the device's mappings (start, length), to be left out of an image */
struct sdev_range {
	uint64_t start, len;
};
int sdev_mappings(struct sdev_range *out, int max);
/* the device's own table of them (n entries, len 0 unused; NULL before
 * the first open), kept current as mappings come and go */
const struct sdev_range *sdev_mapping_table(int *n);

/* ---- checkpoint support (sdev_ckpt.c, sdev_shm.c) ----
 * What lives only in the device, read at the cut (every process of the
 * job parked: nothing moves) and given back at a restart. Values are the
 * device's at the cut; the shadow makes them virtual. */
#define SDEV_SMALL 144
struct sdev_kept_cqe {        /* a completion not yet polled */
	struct ibv_wc wc;
	uint32_t ncopy, pad;  /* a small message: data[] goes to copy[] at poll */
	struct {
		uint64_t addr;
		uint32_t len, pad;
	} copy[3];
	uint8_t data[SDEV_SMALL];
};
struct sdev_recv_wr {         /* a receive posted, not yet consumed */
	uint64_t wr_id;
	uint32_t nsge, pad;
	struct ibv_sge sge[16];   /* as posted: lkey the device's */
};
struct sdev_send_wr {         /* a send posted, not yet executed */
	uint64_t wr_id;
	uint32_t opcode, flags, imm, nsge;
	uint64_t raddr;
	uint32_t rkey, dqpn, qkey, inl, srqn, total;
	uint64_t cmp, swap;
	struct sdev_ah ah;
	struct ibv_sge sge[16];   /* addr in the MR's iova space, lkey the device's */
	uint8_t data[512];        /* inline data (inl) */
};
/* n entries are written to out (max 0: only counted); the count returned */
int sdev_cq_snapshot(struct sdev_cq *cq, struct sdev_kept_cqe *out, int max, int *armed);
int sdev_qp_snapshot_rq(struct sdev_qp *qp, struct sdev_recv_wr *out, int max);
int sdev_srq_snapshot(struct sdev_srq *srq, struct sdev_recv_wr *out, int max);
int sdev_qp_snapshot_sq(struct sdev_qp *qp, struct sdev_send_wr *out, int max);
/* the CQ a cookie of an event names (the shadow's object) */
uint64_t sdev_cq_cookie(struct sdev_cq *cq);
/* Completion events written to a channel and not read yet: the cookies
 * of their CQs; read and written back (the program reads them as before).
 * max 0: only counted. -1 + errno on failure. */
int sdev_chan_snapshot(struct sdev_chan *ch, uint64_t *cookies, int max);
/* the same for async events: {type, kind, cookie} */
struct sdev_async_rec {
	int32_t type, kind;
	uint64_t cookie;
};
int sdev_async_snapshot(struct sdev_async_rec *out, int max);
/* a restart: events given back (obj: the device object the event names,
 * of the kind: 1 CQ, 2 QP, 3 SRQ, else the device) */
int sdev_chan_requeue(struct sdev_chan *ch, struct sdev_cq *cq);
int sdev_async_requeue(int type, int kind, void *obj);
/* A restart: the device's state of the process before (its mappings and
 * files are gone: left out of the image) is forgotten; the next
 * sdev_open starts afresh. */
void sdev_restart_reset(void);
/* an MR with the key it had (the keys are per process: a fresh segment
 * has it free), else any */
int sdev_reg_mr_key(uint32_t pd, void *addr, size_t len, uint64_t iova, int access, uint32_t want,
                    uint32_t *key);
/* this process's part of every QP number it makes now (xl_peer_of) */
uint32_t sdev_self_id(void);
/* the next open takes a generation whose id is none of these (a restarted
 * job's virtual QP numbers: a QP made after the restart must not get one) */
void sdev_forbid_ids(const uint16_t *ids, int n);
/* the device's fds moved to the numbers the program knows */
int sdev_move_async_fd(int to);
int sdev_move_chan_fd(struct sdev_chan *ch, int to);

#endif
