/* What the verbs shadow does not implement: every other call libibverbs
 * exports fails cleanly (errno EOPNOTSUPP, NULL or -1 or the errno as the
 * call's convention is) and never reaches the real libibverbs, which would
 * find no device. Pure helpers (strings, rates, copies) are forwarded to
 * the real libibverbs. */
#include "ibshadow/shadow.h"
#include "ibshadow/iblog.h"

#include <dlfcn.h>
#include <errno.h>

/* the stubs ignore their arguments */
#pragma GCC diagnostic ignored "-Wunused-parameter"

static void refused(const char *fn)
{
	iblog(1, "verbs: %s is not supported on %s (EOPNOTSUPP)", fn, SDEV_NAME);
	errno = EOPNOTSUPP;
}

#define NULL_STUB(ret, name, ...)                                                                  \
	ret name(__VA_ARGS__)                                                                      \
	{                                                                                          \
		refused(#name);                                                                    \
		return NULL;                                                                       \
	}
#define NEG_STUB(name, ...)                                                                        \
	int name(__VA_ARGS__)                                                                      \
	{                                                                                          \
		refused(#name);                                                                    \
		return -1;                                                                         \
	}
#define ERRNO_STUB(name, ...)                                                                      \
	int name(__VA_ARGS__)                                                                      \
	{                                                                                          \
		refused(#name);                                                                    \
		return EOPNOTSUPP;                                                                 \
	}

ERRNO_STUB(ibv_attach_mcast, struct ibv_qp *qp, const union ibv_gid *gid, uint16_t lid)
ERRNO_STUB(ibv_detach_mcast, struct ibv_qp *qp, const union ibv_gid *gid, uint16_t lid)
NULL_STUB(struct ibv_mr *, ibv_reg_dmabuf_mr, struct ibv_pd *pd, uint64_t offset, size_t length,
          uint64_t iova, int fd, int access)
NULL_STUB(struct ibv_context *, ibv_import_device, int cmd_fd)
NULL_STUB(struct ibv_pd *, ibv_import_pd, struct ibv_context *context, uint32_t pd_handle)
NULL_STUB(struct ibv_mr *, ibv_import_mr, struct ibv_pd *pd, uint32_t mr_handle)
NULL_STUB(struct ibv_dm *, ibv_import_dm, struct ibv_context *context, uint32_t dm_handle)
ERRNO_STUB(ibv_query_ece, struct ibv_qp *qp, struct ibv_ece *ece)
ERRNO_STUB(ibv_set_ece, struct ibv_qp *qp, struct ibv_ece *ece)
ERRNO_STUB(ibv_resolve_eth_l2_from_gid, struct ibv_context *context, struct ibv_ah_attr *attr,
           uint8_t eth_mac[6], uint16_t *vid)

void ibv_unimport_pd(struct ibv_pd *pd) { (void)pd; }
void ibv_unimport_mr(struct ibv_mr *mr) { (void)mr; }
void ibv_unimport_dm(struct ibv_dm *dm) { (void)dm; }

int ibv_query_qp_data_in_order(struct ibv_qp *qp, enum ibv_wr_opcode op, uint32_t flags)
{
	/* data of an operation lands in order on this device */
	(void)qp;
	(void)op;
	(void)flags;
	return 1;
}

/* no fork protection is needed: registration pins nothing */
int ibv_dontfork_range(void *base, size_t size)
{
	(void)base;
	(void)size;
	return 0;
}
int ibv_dofork_range(void *base, size_t size)
{
	(void)base;
	(void)size;
	return 0;
}

/* providers are not loaded in the shadow */
void ibv_register_driver(const char *name, void *init);
void ibv_register_driver(const char *name, void *init)
{
	(void)name;
	(void)init;
}

/* ------------------------------------------------------------ helpers */
const char *ibv_wc_status_str(enum ibv_wc_status status)
{
	static const char *const s[] = {
		[IBV_WC_SUCCESS] = "success",
		[IBV_WC_LOC_LEN_ERR] = "local length error",
		[IBV_WC_LOC_QP_OP_ERR] = "local QP operation error",
		[IBV_WC_LOC_EEC_OP_ERR] = "local EE context operation error",
		[IBV_WC_LOC_PROT_ERR] = "local protection error",
		[IBV_WC_WR_FLUSH_ERR] = "Work Request Flushed Error",
		[IBV_WC_MW_BIND_ERR] = "memory management operation error",
		[IBV_WC_BAD_RESP_ERR] = "bad response error",
		[IBV_WC_LOC_ACCESS_ERR] = "local access error",
		[IBV_WC_REM_INV_REQ_ERR] = "remote invalid request error",
		[IBV_WC_REM_ACCESS_ERR] = "remote access error",
		[IBV_WC_REM_OP_ERR] = "remote operation error",
		[IBV_WC_RETRY_EXC_ERR] = "transport retry counter exceeded",
		[IBV_WC_RNR_RETRY_EXC_ERR] = "RNR retry counter exceeded",
		[IBV_WC_LOC_RDD_VIOL_ERR] = "local RDD violation error",
		[IBV_WC_REM_INV_RD_REQ_ERR] = "remote invalid RD request",
		[IBV_WC_REM_ABORT_ERR] = "aborted error",
		[IBV_WC_INV_EECN_ERR] = "invalid EE context number",
		[IBV_WC_INV_EEC_STATE_ERR] = "invalid EE context state",
		[IBV_WC_FATAL_ERR] = "fatal error",
		[IBV_WC_RESP_TIMEOUT_ERR] = "response timeout error",
		[IBV_WC_GENERAL_ERR] = "general error",
		[IBV_WC_TM_ERR] = "TM error",
		[IBV_WC_TM_RNDV_INCOMPLETE] = "TM software rendezvous",
	};
	if ((unsigned)status < sizeof s / sizeof *s && s[status])
		return s[status];
	return "unknown";
}

#define FORWARD(ret, name, fallback, params, args)                                                 \
	ret name params                                                                            \
	{                                                                                          \
		static ret(*real) params;                                                          \
		if (!real)                                                                         \
			real = (ret(*) params)dlsym(RTLD_NEXT, #name);                             \
		if (!real)                                                                         \
			return fallback;                                                           \
		return real args;                                                                  \
	}

FORWARD(const char *, ibv_event_type_str, "unknown", (enum ibv_event_type e), (e))
FORWARD(const char *, ibv_node_type_str, "unknown", (enum ibv_node_type t), (t))
FORWARD(const char *, ibv_port_state_str, "unknown", (enum ibv_port_state s), (s))
FORWARD(int, ibv_rate_to_mult, -1, (enum ibv_rate r), (r))
FORWARD(enum ibv_rate, mult_to_ibv_rate, IBV_RATE_MAX, (int m), (m))
FORWARD(int, ibv_rate_to_mbps, -1, (enum ibv_rate r), (r))
FORWARD(enum ibv_rate, mbps_to_ibv_rate, IBV_RATE_MAX, (int m), (m))
