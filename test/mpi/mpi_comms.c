/* mpi_comms: communicators, groups, attributes and error handlers, made
 * before the loop (so they exist at any checkpoint) and every iteration
 * (one created before the sleep and freed after it, so a checkpoint during
 * the sleep finds it live, and one Comm_idup pending across the sleep).
 *
 *   mpi_comms [NITER=30] [SLEEP_MS=100]          (2 or more ranks)
 *
 * Before the loop: Comm_dup; Comm_split by parity; Comm_create from groups
 * made with Group_range_incl / Group_excl / Group_union / Group_incl (a
 * permuted and a reversed order, and a lower half the others are not part
 * of); a periodic 2-D Cart_create with Cart_shift neighbour exchange and
 * Neighbor_allgather; Comm_split_type(MPI_COMM_TYPE_SHARED); a keyval with
 * copy and delete callbacks that only count; an error handler of our own
 * (counts its calls) and MPI_ERRORS_RETURN.  Every iteration: a
 * Comm_split keyed on the iteration, a Comm_idup, a Comm_dup of the
 * communicator carrying the attribute (copy callback), Comm_create_group,
 * collectives on every communicator, one deliberate error caught through
 * the return code (MPI_Send to a rank that does not exist), one call of
 * our error handler (Comm_call_errhandler), and the frees (delete
 * callback).  Rank 0 prints the callback counters (which a restart must
 * not disturb: replaying communicator creation must not call them again)
 * and the ranks' checksums folded in rank order. */
#include "ckpt_common.h"

static int rank, size;
static int n_copy, n_delete, n_errh, last_errh_class;

static int copy_cb(MPI_Comm old, int kv, void *extra, void *in, void *out, int *flag)
{
	(void)old, (void)kv;
	CHECK(extra == (void *)&n_copy, "copy callback: wrong extra_state");
	n_copy++;
	*(void **)out = (void *)((intptr_t)in + 1); /* the copy's value is one more */
	*flag = 1;
	return MPI_SUCCESS;
}

static int delete_cb(MPI_Comm comm, int kv, void *val, void *extra)
{
	(void)comm, (void)kv, (void)val;
	CHECK(extra == (void *)&n_copy, "delete callback: wrong extra_state");
	n_delete++;
	return MPI_SUCCESS;
}

static void errh_fn(MPI_Comm *comm, int *code, ...)
{
	int cls;
	(void)comm;
	MPI_Error_class(*code, &cls);
	last_errh_class = cls;
	n_errh++;
}

static uint64_t coll_sum(MPI_Comm c, int64_t v, uint64_t h)
{
	int64_t s = 0;
	MPI_OK(MPI_Allreduce(&v, &s, 1, MPI_INT64_T, MPI_SUM, c));
	return mix(h, (uint64_t)s);
}

int main(int argc, char **argv)
{
	int niter;
	long ms;
	uint64_t total = 0;
	MPI_Comm dup, par, uni, rev, low, cart, shm;
	MPI_Group gw, g_even, g_odd, g_union, g_rev, g_low;
	MPI_Errhandler errh;
	int kv;

	parse_args(argc, argv, &niter, &ms, 30, 100);
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	CHECK(size >= 2, "needs at least 2 ranks");

	/* ---- made once, before any checkpoint ---- */
	MPI_OK(MPI_Comm_dup(MPI_COMM_WORLD, &dup));
	MPI_OK(MPI_Comm_set_name(dup, "ckpt-dup"));
	MPI_OK(MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &par));
	MPI_OK(MPI_Comm_group(MPI_COMM_WORLD, &gw));
	int range[1][3] = {{0, size - 1, 2}};
	MPI_OK(MPI_Group_range_incl(gw, 1, range, &g_even));
	int neven = (size + 1) / 2, *evens = malloc(sizeof(int) * (size_t)size);
	int *revl = malloc(sizeof(int) * (size_t)size);
	CHECK(evens && revl, "out of memory");
	for (int i = 0; i < neven; i++)
		evens[i] = 2 * i;
	MPI_OK(MPI_Group_excl(gw, neven, evens, &g_odd));
	MPI_OK(MPI_Group_union(g_odd, g_even, &g_union)); /* odd ranks first */
	for (int i = 0; i < size; i++)
		revl[i] = size - 1 - i;
	MPI_OK(MPI_Group_incl(gw, size, revl, &g_rev));
	int lowr[1][3] = {{0, (size - 1) / 2, 1}};
	MPI_OK(MPI_Group_range_incl(gw, 1, lowr, &g_low));
	MPI_OK(MPI_Comm_create(MPI_COMM_WORLD, g_union, &uni));
	MPI_OK(MPI_Comm_create(MPI_COMM_WORLD, g_rev, &rev));
	MPI_OK(MPI_Comm_create(MPI_COMM_WORLD, g_low, &low));
	CHECK((low == MPI_COMM_NULL) == (rank > (size - 1) / 2), "Comm_create: membership of the lower half");
	{
		int r_uni, r_rev, expect_uni;
		MPI_Comm_rank(uni, &r_uni);
		MPI_Comm_rank(rev, &r_rev);
		expect_uni = rank % 2 ? rank / 2 : size / 2 + rank / 2;
		CHECK(r_uni == expect_uni && r_rev == size - 1 - rank, "ranks in the union %d / reversed %d",
		      r_uni, r_rev);
	}
	int dims[2] = {0, 0}, periods[2] = {1, 1}, coords[2];
	MPI_OK(MPI_Dims_create(size, 2, dims));
	MPI_OK(MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &cart));
	MPI_OK(MPI_Cart_coords(cart, rank, 2, coords));
	MPI_OK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &shm));
	MPI_OK(MPI_Comm_create_keyval(copy_cb, delete_cb, &kv, &n_copy));
	MPI_OK(MPI_Comm_set_attr(dup, kv, (void *)(intptr_t)1000));
	MPI_OK(MPI_Comm_create_errhandler(errh_fn, &errh));
	MPI_OK(MPI_Comm_set_errhandler(dup, errh));
	MPI_OK(MPI_Comm_set_errhandler(par, MPI_ERRORS_RETURN));

	if (rank == 0) {
		printf("0 mpi_comms np=%d niter=%d cart=%dx%d\n", size, niter, dims[0], dims[1]);
		fflush(stdout);
	}
	for (int it = 1; it <= niter; it++) {
		uint64_t h = mix(0, (uint64_t)it);
		MPI_Comm per, idup, dup2, grp = MPI_COMM_NULL;
		MPI_Request idup_req;
		int flag, r, s, cmp;
		void *v;

		/* ---- created before the sleep, live across it ---- */
		MPI_OK(MPI_Comm_split(MPI_COMM_WORLD, (rank + it) % 3, size - rank, &per));
		MPI_OK(MPI_Comm_set_attr(per, kv, (void *)(intptr_t)(2000 + it)));
		MPI_OK(MPI_Comm_idup(par, &idup, &idup_req));

		sleep_ms(ms);

		MPI_OK(MPI_Wait(&idup_req, MPI_STATUS_IGNORE));
		/* the split: ranks with the same (rank + it) % 3, ordered by descending rank */
		MPI_Comm_rank(per, &r);
		MPI_Comm_size(per, &s);
		{
			int er = 0, es = 0;
			for (int q = 0; q < size; q++)
				if ((q + it) % 3 == (rank + it) % 3) {
					es++;
					er += q > rank;
				}
			CHECK(r == er && s == es, "split: rank %d of %d, expected %d of %d", r, s, er, es);
		}
		h = coll_sum(per, rank * 7 + it, mix(mix(h, (uint64_t)r), (uint64_t)s));
		{
			MPI_Group gp;
			int zero = 0, wr;
			MPI_OK(MPI_Comm_group(per, &gp));
			MPI_OK(MPI_Group_translate_ranks(gp, 1, &zero, gw, &wr));
			h = mix(h, (uint64_t)wr);
			MPI_OK(MPI_Group_free(&gp));
		}
		MPI_OK(MPI_Comm_get_attr(per, kv, &v, &flag));
		CHECK(flag && (intptr_t)v == 2000 + it, "attribute on the split");

		/* the idup of the parity communicator */
		MPI_OK(MPI_Comm_compare(idup, par, &cmp));
		CHECK(cmp == MPI_CONGRUENT, "Comm_idup: compare says %d", cmp);
		MPI_OK(MPI_Barrier(idup));
		h = coll_sum(idup, rank + it, h);

		/* a dup of the communicator with the attribute: copy callback */
		MPI_OK(MPI_Comm_dup(dup, &dup2));
		MPI_OK(MPI_Comm_get_attr(dup2, kv, &v, &flag));
		CHECK(flag && (intptr_t)v == 1001, "copied attribute: flag %d value %ld", flag, (long)(intptr_t)v);
		h = coll_sum(dup2, (int64_t)(intptr_t)v + rank, h);

		/* Comm_create_group: only the even ranks take part */
		if (rank % 2 == 0) {
			MPI_OK(MPI_Comm_create_group(MPI_COMM_WORLD, g_even, it, &grp));
			h = coll_sum(grp, rank * it, h);
		}

		/* ---- collectives on the communicators made before the loop ---- */
		h = coll_sum(MPI_COMM_WORLD, rank + 1, h);
		{
			int64_t x = rank == it % size ? 1000 + it : -1;
			MPI_OK(MPI_Bcast(&x, 1, MPI_INT64_T, it % size, dup));
			CHECK(x == 1000 + it, "Bcast on the dup");
			h = mix(h, (uint64_t)x);
			char name[MPI_MAX_OBJECT_NAME];
			int len;
			MPI_OK(MPI_Comm_get_name(dup, name, &len));
			CHECK(!strcmp(name, "ckpt-dup"), "the dup's name is '%s'", name);
			h = mix_bytes(h, name, (size_t)len);
		}
		{
			int64_t mx = 0, me = rank * it, *all = malloc(sizeof(int64_t) * (size_t)size);
			int ps;
			CHECK(all != NULL, "out of memory");
			MPI_Comm_size(par, &ps);
			MPI_OK(MPI_Allreduce(&me, &mx, 1, MPI_INT64_T, MPI_MAX, par));
			MPI_OK(MPI_Allgather(&me, 1, MPI_INT64_T, all, 1, MPI_INT64_T, par));
			for (int i = 0; i < ps; i++)
				CHECK(all[i] == (int64_t)(2 * i + rank % 2) * it, "Allgather on the parity split");
			h = mix_bytes(mix(h, (uint64_t)mx), all, sizeof(int64_t) * (size_t)ps);
			free(all);
		}
		{
			int64_t me = rank + 100 * it, sc = 0;
			MPI_OK(MPI_Scan(&me, &sc, 1, MPI_INT64_T, MPI_SUM, uni));
			h = mix(h, (uint64_t)sc);
		}
		{
			int64_t me = rank, *all = NULL;
			int rr;
			MPI_Comm_rank(rev, &rr);
			if (rr == 0)
				all = malloc(sizeof(int64_t) * (size_t)size);
			MPI_OK(MPI_Gather(&me, 1, MPI_INT64_T, all, 1, MPI_INT64_T, 0, rev));
			if (rr == 0) {
				for (int i = 0; i < size; i++)
					CHECK(all[i] == size - 1 - i, "Gather on the reversed communicator");
				h = mix_bytes(h, all, sizeof(int64_t) * (size_t)size);
				free(all);
			}
			h = coll_sum(rev, rr * it, h);
		}
		if (low != MPI_COMM_NULL)
			h = coll_sum(low, rank * rank + it, h);
		{
			int src, dst;
			int64_t out[2] = {rank, it}, in[2];
			for (int d = 0; d < 2; d++) {
				MPI_OK(MPI_Cart_shift(cart, d, 1, &src, &dst));
				MPI_OK(MPI_Sendrecv(out, 2, MPI_INT64_T, dst, d, in, 2, MPI_INT64_T, src, d, cart,
				                    MPI_STATUS_IGNORE));
				CHECK(in[0] == src && in[1] == it, "cart shift in dimension %d", d);
				h = mix_bytes(h, in, sizeof in);
			}
			int64_t me = rank * 10 + it, nb[4] = {-1, -1, -1, -1};
			MPI_OK(MPI_Neighbor_allgather(&me, 1, MPI_INT64_T, nb, 1, MPI_INT64_T, cart));
			h = mix_bytes(h, nb, sizeof nb);
		}
		{
			int ss;
			MPI_Comm_size(shm, &ss);
			h = coll_sum(shm, ss + rank, mix(h, (uint64_t)ss));
		}
		MPI_OK(MPI_Comm_compare(rev, MPI_COMM_WORLD, &cmp));
		h = mix(h, (uint64_t)(cmp == MPI_SIMILAR));
		MPI_OK(MPI_Comm_compare(dup, MPI_COMM_WORLD, &cmp));
		h = mix(h, (uint64_t)(cmp == MPI_CONGRUENT));

		/* ---- errors: one returned, one handled by our handler ---- */
		{
			int x = it, rc, cls = -1, ps;
			MPI_Comm_size(par, &ps);
			rc = MPI_Send(&x, 1, MPI_INT, ps + 5, 0, par);
			CHECK(rc != MPI_SUCCESS, "MPI_Send to rank %d of %d succeeded", ps + 5, ps);
			MPI_Error_class(rc, &cls);
			CHECK(cls == MPI_ERR_RANK, "MPI_Send to a bad rank: error class %d, expected MPI_ERR_RANK", cls);
			h = mix(h, (uint64_t)cls);
			MPI_OK(MPI_Comm_call_errhandler(dup, MPI_ERR_OTHER));
			CHECK(last_errh_class == MPI_ERR_OTHER, "our error handler saw class %d", last_errh_class);
			MPI_Errhandler e;
			MPI_OK(MPI_Comm_get_errhandler(par, &e));
			CHECK(e == MPI_ERRORS_RETURN, "the parity split lost MPI_ERRORS_RETURN");
			MPI_Errhandler_free(&e);
		}

		/* ---- frees: delete callbacks for per and dup2 ---- */
		MPI_OK(MPI_Comm_free(&per));
		MPI_OK(MPI_Comm_free(&dup2));
		MPI_OK(MPI_Comm_free(&idup));
		if (grp != MPI_COMM_NULL)
			MPI_OK(MPI_Comm_free(&grp));
		CHECK(n_copy == it && n_delete == 2 * it && n_errh == it,
		      "callbacks: %d copies, %d deletes, %d handler calls after %d iterations", n_copy,
		      n_delete, n_errh, it);

		uint64_t hi = gather_fold(h, MPI_COMM_WORLD);
		if (rank == 0) {
			total = mix(total, hi);
			printf("%d copies=%d deletes=%d errh=%d comms=%016llx h=%016llx\n", it, n_copy, n_delete,
			       n_errh, (unsigned long long)hi, (unsigned long long)total);
			fflush(stdout);
		}
	}
	MPI_Comm_free(&uni);
	MPI_Comm_free(&rev);
	if (low != MPI_COMM_NULL)
		MPI_Comm_free(&low);
	MPI_Comm_free(&cart);
	MPI_Comm_free(&shm);
	MPI_Comm_free(&dup); /* delete callback for the original attribute */
	MPI_Comm_free(&par);
	CHECK(n_delete == 2 * niter + 1, "%d deletes at the end", n_delete);
	MPI_Comm_free_keyval(&kv);
	MPI_Errhandler_free(&errh);
	MPI_Group_free(&gw);
	MPI_Group_free(&g_even);
	MPI_Group_free(&g_odd);
	MPI_Group_free(&g_union);
	MPI_Group_free(&g_rev);
	MPI_Group_free(&g_low);
	free(evens);
	free(revl);
	hold_before_final(); /* every rank: none waits in MPI meanwhile */
	if (rank == 0) {
		printf("%d final %016llx\n", niter + 1, (unsigned long long)total);
		fflush(stdout);
	}
	MPI_Finalize();
	return 0;
}
