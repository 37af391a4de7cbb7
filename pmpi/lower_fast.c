/* Lower half: the fast paths of blocking point-to-point calls and of
 * waits (pmpi/lower_fast.h). Runs under the calling upper thread's lower
 * context, like any MPI call the shim makes: the park handler leaves the
 * thread alone while it is here, so the loop gives the thread back to the
 * upper half as soon as a checkpoint begins (the cut leaves RUN), where
 * the shim makes the posted request an entry and the thread can park. */
#include "pmpi/lower_fast.h"
#include "pmpi/vstate.h"

int ckpt_lower_p2p_fast(struct ckpt_fast_op *ops, int nops, MPI_Comm comm, MPI_Status *st,
                        const volatile int32_t *cut)
{
	unsigned spins = 0;
	int rc = MPI_SUCCESS, left = 0;

	for (int i = 0; i < nops; i++) {
		struct ckpt_fast_op *o = &ops[i];
		int r = rc != MPI_SUCCESS ? rc
		      : o->recv ? MPI_Irecv(o->buf, o->n, o->dt, o->peer, o->tag, comm, &o->req)
		                : MPI_Isend(o->buf, o->n, o->dt, o->peer, o->tag, comm, &o->req);
		if (r != MPI_SUCCESS) {
			o->state = CKPT_FAST_FAILED;
			rc = r;
			continue;
		}
		o->state = CKPT_FAST_PENDING;
		left++;
	}
	while (left) {
		for (int i = 0; i < nops; i++) {
			struct ckpt_fast_op *o = &ops[i];
			int flag = 0, r;
			if (o->state != CKPT_FAST_PENDING)
				continue;
			r = MPI_Test(&o->req, &flag, o->recv ? st : MPI_STATUS_IGNORE);
			if (flag || r != MPI_SUCCESS) {
				o->state = CKPT_FAST_DONE;
				left--;
				if (r != MPI_SUCCESS && rc == MPI_SUCCESS)
					rc = r;
			}
		}
		if (!left || *cut != CKPT_CUT_RUN)
			break;
		ckpt_spin_relax(&spins);
	}
	return rc;
}

int ckpt_lower_wait_fast(struct ckpt_vh *const *es, int n, int need, const volatile int32_t *cut)
{
	unsigned spins = 0;
	int rc = MPI_SUCCESS, left = n;

	for (;;) {
		for (int i = 0; i < n; i++) {
			struct ckpt_vh *e = es[i];
			int r;
			if (e->u.r.flag)
				continue;
			r = MPI_Test((MPI_Request *)&e->real, (int *)&e->u.r.flag,
			             (MPI_Status *)e->u.r.status);
			if (r != MPI_SUCCESS) {
				e->u.r.flag = 1;
				if (rc == MPI_SUCCESS)
					rc = r;
			}
			if (e->u.r.flag)
				left--;
		}
		if (n - left >= need || *cut != CKPT_CUT_RUN)
			return rc;
		ckpt_spin_relax(&spins);
	}
}
