/* mpi_types_ops: derived datatypes and user-defined reduction operations.
 *
 *   mpi_types_ops [NITER=30] [SLEEP_MS=100]          (2 or more ranks)
 *
 * Committed once, before the loop: contiguous, vector, hvector, indexed,
 * indexed_block, create_struct (+ create_resized to the C struct's size),
 * create_resized (strided INT64), subarray, dup.  Created and freed every
 * iteration: a vector and an indexed_block whose shape depends on the
 * iteration (the vector is created before the sleep and freed after it).
 * The types under two of them (MPI_Type_get_contents: the struct under the
 * resized struct, freed by us at the start; the vector under the dup) are
 * taken before the sleep, checked and freed after it.
 * Each type is sent as the type and received as plain INT64 (and the other
 * way round), checked against the element positions worked out by hand,
 * and used in collectives (Bcast, Allgather, Gather into a resized type).
 *
 * User ops: a commutative one (element-wise sum, max, xor of 3 x int64 as a
 * contiguous type) and a non-commutative one (2x2 matrix product mod 2^64),
 * in Reduce, Allreduce, Iallreduce (pending across the sleep), Scan,
 * Exscan, Reduce_scatter and Reduce_scatter_block; every result is checked
 * against the value computed locally (for the matrix product, the rank
 * order of the operands matters), and an op created and freed every
 * iteration.  Rank 0 prints the ranks' checksums folded in rank order. */
#include "ckpt_common.h"

#include <stddef.h>

struct rec {
	int32_t a;
	int64_t b;
	char c[3];
};

static int rank, size;
static MPI_Datatype t_contig, t_vec, t_hvec, t_idx, t_idxb, t_struct, t_res, t_sub, t_dup, t_mat;
static int n_comm_calls, n_nc_calls;

static uint64_t v64(int64_t a, int64_t b, int64_t c)
{
	return mix(mix(mix(11, (uint64_t)a), (uint64_t)b), (uint64_t)c);
}

/* commutative: (sum, max, xor) of int64 triples; the datatype is ours */
static void op_comm_fn(void *in, void *inout, int *len, MPI_Datatype *dt)
{
	int64_t *a = in, *b = inout;
	CHECK(*dt == t_contig, "commutative op called with another datatype");
	for (int i = 0; i < *len; i++, a += 3, b += 3) {
		b[0] += a[0];
		b[1] = a[1] > b[1] ? a[1] : b[1];
		b[2] ^= a[2];
	}
	n_comm_calls++;
}

static void matmul(const uint64_t *x, const uint64_t *y, uint64_t *out)
{
	uint64_t r[4] = {x[0] * y[0] + x[1] * y[2], x[0] * y[1] + x[1] * y[3],
	                 x[2] * y[0] + x[3] * y[2], x[2] * y[1] + x[3] * y[3]};
	memcpy(out, r, sizeof r);
}

/* non-commutative: inout = in x inout (MPI: in is the left operand) */
static void op_nc_fn(void *in, void *inout, int *len, MPI_Datatype *dt)
{
	uint64_t *a = in, *b = inout;
	CHECK(*dt == t_mat, "matrix op called with another datatype");
	for (int i = 0; i < *len; i++, a += 4, b += 4)
		matmul(a, b, b);
	n_nc_calls++;
}

static void op_xor_fn(void *in, void *inout, int *len, MPI_Datatype *dt)
{
	uint64_t *a = in, *b = inout;
	CHECK(*dt == MPI_UINT64_T, "xor op called with another datatype");
	for (int i = 0; i < *len; i++)
		b[i] ^= a[i];
}

static void mat_of(int r, int it, int k, uint64_t *m)
{
	for (int i = 0; i < 4; i++)
		m[i] = v64(r, it, k * 4 + i) | 1;
}

static void trip_of(int r, int it, int k, int64_t *t)
{
	t[0] = (int64_t)(v64(r, it, k) % 100000);
	t[1] = (int64_t)(v64(r, it, k + 1) % 100000) - 50000;
	t[2] = (int64_t)v64(r, it, k + 2);
}

/* Send one element of T (laid out in a buffer of SPAN int64 words filled
 * from the sender's rank) to the right, receive it from the left as NIDX
 * plain INT64 and compare with the words at IDX; then the other way round:
 * plain INT64 out, T in, and only the words at IDX may have changed. */
static uint64_t shape_check(MPI_Datatype t, int count, const int *idx, int nidx, int span, int it,
                            const char *what, uint64_t h)
{
	int left = (rank + size - 1) % size, right = (rank + 1) % size, tag = 100 + it % 1000;
	int64_t *sb = malloc(sizeof(int64_t) * (size_t)span), *rb = malloc(sizeof(int64_t) * (size_t)span);
	int64_t *plain = malloc(sizeof(int64_t) * (size_t)nidx);
	MPI_Status st;
	int cnt;

	CHECK(sb && rb && plain, "out of memory");
	for (int i = 0; i < span; i++)
		sb[i] = (int64_t)v64(rank, it, i);
	MPI_OK(MPI_Sendrecv(sb, count, t, right, tag, plain, nidx, MPI_INT64_T, left, tag, MPI_COMM_WORLD,
	                    &st));
	MPI_Get_count(&st, MPI_INT64_T, &cnt);
	CHECK(cnt == nidx, "%s: %d words received, expected %d", what, cnt, nidx);
	for (int i = 0; i < nidx; i++)
		CHECK(plain[i] == (int64_t)v64(left, it, idx[i]), "%s: word %d (position %d) wrong", what, i,
		      idx[i]);
	h = mix_bytes(h, plain, sizeof(int64_t) * (size_t)nidx);
	for (int i = 0; i < nidx; i++)
		plain[i] = (int64_t)v64(rank, it, 1000 + i);
	for (int i = 0; i < span; i++)
		rb[i] = -7;
	MPI_OK(MPI_Sendrecv(plain, nidx, MPI_INT64_T, right, tag, rb, count, t, left, tag, MPI_COMM_WORLD,
	                    &st));
	MPI_Get_elements(&st, MPI_INT64_T, &cnt);
	CHECK(cnt == nidx, "%s: Get_elements says %d, expected %d", what, cnt, nidx);
	for (int i = 0, j = 0; i < span; i++) {
		if (j < nidx && idx[j] == i)
			CHECK(rb[i] == (int64_t)v64(left, it, 1000 + j++), "%s: received word at %d wrong", what, i);
		else
			CHECK(rb[i] == -7, "%s: the type wrote at %d, outside its elements", what, i);
	}
	h = mix_bytes(h, rb, sizeof(int64_t) * (size_t)span);
	free(sb), free(rb), free(plain);
	return h;
}

int main(int argc, char **argv)
{
	int niter;
	long ms;
	uint64_t total = 0;
	MPI_Datatype t_structraw;
	MPI_Op op_comm, op_nc;

	parse_args(argc, argv, &niter, &ms, 30, 100);
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	CHECK(size >= 2, "needs at least 2 ranks");

	/* ---- committed once ---- */
	MPI_OK(MPI_Type_contiguous(3, MPI_INT64_T, &t_contig));
	MPI_OK(MPI_Type_vector(4, 2, 3, MPI_INT64_T, &t_vec));
	MPI_OK(MPI_Type_create_hvector(3, 1, 4 * sizeof(int64_t), t_contig, &t_hvec));
	{
		int bl[3] = {2, 1, 3}, dp[3] = {0, 3, 5};
		MPI_OK(MPI_Type_indexed(3, bl, dp, MPI_INT64_T, &t_idx));
		int dpb[3] = {1, 4, 8};
		MPI_OK(MPI_Type_create_indexed_block(3, 2, dpb, MPI_INT32_T, &t_idxb));
		int sbl[3] = {1, 1, 3};
		MPI_Aint sdp[3] = {offsetof(struct rec, a), offsetof(struct rec, b), offsetof(struct rec, c)};
		MPI_Datatype sty[3] = {MPI_INT32_T, MPI_INT64_T, MPI_CHAR};
		MPI_OK(MPI_Type_create_struct(3, sbl, sdp, sty, &t_structraw));
		MPI_OK(MPI_Type_create_resized(t_structraw, 0, sizeof(struct rec), &t_struct));
		MPI_OK(MPI_Type_create_resized(MPI_INT64_T, 0, 2 * sizeof(int64_t), &t_res));
		int sz[2] = {6, 6}, sub[2] = {3, 2}, st[2] = {1, 2};
		MPI_OK(MPI_Type_create_subarray(2, sz, sub, st, MPI_ORDER_C, MPI_INT64_T, &t_sub));
		MPI_OK(MPI_Type_dup(t_vec, &t_dup));
		MPI_OK(MPI_Type_contiguous(4, MPI_UINT64_T, &t_mat));
	}
	MPI_Datatype all[] = {t_contig, t_vec, t_hvec, t_idx, t_idxb, t_struct, t_res, t_sub, t_dup, t_mat};
	for (size_t i = 0; i < sizeof all / sizeof *all; i++)
		MPI_OK(MPI_Type_commit(&all[i]));
	t_contig = all[0], t_vec = all[1], t_hvec = all[2], t_idx = all[3], t_idxb = all[4];
	t_struct = all[5], t_res = all[6], t_sub = all[7], t_dup = all[8], t_mat = all[9];
	MPI_Type_free(&t_structraw);
	{
		MPI_Aint lb, ext;
		int sz;
		MPI_Type_get_extent(t_struct, &lb, &ext);
		CHECK(lb == 0 && ext == sizeof(struct rec), "struct type extent %ld", (long)ext);
		MPI_Type_size(t_vec, &sz);
		CHECK(sz == 8 * 8, "vector type size %d", sz);
	}
	MPI_OK(MPI_Op_create(op_comm_fn, 1, &op_comm));
	MPI_OK(MPI_Op_create(op_nc_fn, 0, &op_nc));
	{
		int c;
		MPI_Op_commutative(op_nc, &c);
		CHECK(!c, "the matrix op is not commutative");
	}

	if (rank == 0) {
		printf("0 mpi_types_ops np=%d niter=%d\n", size, niter);
		fflush(stdout);
	}
	uint64_t *mats = malloc(sizeof(uint64_t) * 4 * (size_t)size);
	int *rcounts = malloc(sizeof(int) * (size_t)size);
	CHECK(mats && rcounts, "out of memory");
	/* memory from MPI_Alloc_mem is the program's data: it must come back
	 * after a restart (each iteration checks the last one's pattern) */
	enum { AWORDS = 8192 };
	uint64_t *amem = NULL;
	MPI_OK(MPI_Alloc_mem((MPI_Aint)(AWORDS * sizeof *amem), MPI_INFO_NULL, &amem));
	CHECK(amem && (uintptr_t)amem % 8 == 0, "MPI_Alloc_mem gave no aligned memory");
	for (int i = 0; i < AWORDS; i++)
		amem[i] = v64(rank, 0, i);
	for (int it = 1; it <= niter; it++) {
		uint64_t h = mix(0, (uint64_t)it);
		for (int i = 0; i < AWORDS; i++) {
			CHECK(amem[i] == v64(rank, it - 1, i), "MPI_Alloc_mem memory lost its contents");
			amem[i] = v64(rank, it, i);
		}
		h = mix(h, amem[it % AWORDS]);
		int left = (rank + size - 1) % size, right = (rank + 1) % size;
		MPI_Datatype t_itvec, t_itblk;
		MPI_Request rq[3];
		uint64_t my_m[4], nb_m[4], prod[4] = {1, 0, 0, 1}, pre[4] = {1, 0, 0, 1};
		int nvec = 2 + it % 3, svec = 1 + it % 4;

		/* the matrices of every rank, and their ordered products */
		for (int r = 0; r < size; r++) {
			mat_of(r, it, 0, &mats[4 * r]);
			matmul(prod, &mats[4 * r], prod);
			if (r == rank - 1)
				memcpy(pre, prod, sizeof pre);
		}
		memcpy(my_m, &mats[4 * rank], sizeof my_m);

		/* ---- pending across the sleep: a type made this iteration, a
		 *      subarray message and a reduction with the matrix op ---- */
		MPI_OK(MPI_Type_vector(nvec, 1, svec, MPI_INT64_T, &t_itvec));
		MPI_OK(MPI_Type_commit(&t_itvec));
		int64_t grid_out[36], grid_in[36];
		for (int i = 0; i < 36; i++)
			grid_out[i] = (int64_t)v64(rank, it, 500 + i), grid_in[i] = 0;
		MPI_OK(MPI_Irecv(grid_in, 1, t_sub, left, 7, MPI_COMM_WORLD, &rq[0]));
		MPI_OK(MPI_Isend(grid_out, 1, t_sub, right, 7, MPI_COMM_WORLD, &rq[1]));
		MPI_OK(MPI_Iallreduce(my_m, nb_m, 1, t_mat, op_nc, MPI_COMM_WORLD, &rq[2]));
		/* the types a type was made from, held across the sleep: the
		 * struct under the resized one was freed by us long ago, the
		 * vector under the dup is alive */
		MPI_Datatype raw_of_struct, vec_of_dup;
		{
			int ni, na, nd, comb;
			MPI_Aint ad[2];
			int in[4];
			MPI_OK(MPI_Type_get_envelope(t_struct, &ni, &na, &nd, &comb));
			CHECK(comb == MPI_COMBINER_RESIZED && nd == 1, "resized struct: combiner %d, %d types",
			      comb, nd);
			MPI_OK(MPI_Type_get_contents(t_struct, 4, 2, 1, in, ad, &raw_of_struct));
			MPI_OK(MPI_Type_get_envelope(t_dup, &ni, &na, &nd, &comb));
			CHECK(comb == MPI_COMBINER_DUP && nd == 1, "dup: combiner %d, %d types", comb, nd);
			MPI_OK(MPI_Type_get_contents(t_dup, 4, 2, 1, in, ad, &vec_of_dup));
		}

		sleep_ms(ms);

		{
			int sz, ni, na, nd, comb;
			MPI_OK(MPI_Type_size(raw_of_struct, &sz));
			CHECK(sz == 4 + 8 + 3, "the struct under the resized one: size %d", sz);
			MPI_OK(MPI_Type_get_envelope(raw_of_struct, &ni, &na, &nd, &comb));
			CHECK(comb == MPI_COMBINER_STRUCT && ni == 4 && nd == 3,
			      "the struct under the resized one: combiner %d", comb);
			MPI_OK(MPI_Type_free(&raw_of_struct));
			static const int vec_idx[] = {0, 1, 3, 4, 6, 7, 9, 10};
			h = shape_check(vec_of_dup, 1, vec_idx, 8, 12, it, "vector under the dup", h);
			MPI_OK(MPI_Type_free(&vec_of_dup));
		}

		MPI_OK(MPI_Waitall(3, rq, MPI_STATUSES_IGNORE));
		CHECK(!memcmp(nb_m, prod, sizeof prod), "Iallreduce with the matrix op: wrong product");
		h = mix_bytes(h, nb_m, sizeof nb_m);
		for (int i = 0; i < 36; i++) {
			int in_sub = i / 6 >= 1 && i / 6 < 4 && i % 6 >= 2 && i % 6 < 4;
			CHECK(grid_in[i] == (in_sub ? (int64_t)v64(left, it, 500 + i) : 0), "subarray word %d", i);
		}
		h = mix_bytes(h, grid_in, sizeof grid_in);

		/* ---- shapes ---- */
		{
			static const int i_contig[] = {0, 1, 2}, i_vec[] = {0, 1, 3, 4, 6, 7, 9, 10},
			                 i_hvec[] = {0, 1, 2, 4, 5, 6, 8, 9, 10}, i_idx[] = {0, 1, 3, 5, 6, 7},
			                 i_res[] = {0, 2, 4, 6}, i_sub[] = {8, 9, 14, 15, 20, 21};
			int i_it[8];
			for (int i = 0; i < nvec; i++)
				i_it[i] = i * svec;
			h = shape_check(t_contig, 1, i_contig, 3, 4, it, "contiguous", h);
			h = shape_check(t_vec, 1, i_vec, 8, 12, it, "vector", h);
			h = shape_check(t_hvec, 1, i_hvec, 9, 12, it, "hvector", h);
			h = shape_check(t_idx, 1, i_idx, 6, 8, it, "indexed", h);
			h = shape_check(t_res, 4, i_res, 4, 8, it, "resized", h);
			h = shape_check(t_sub, 1, i_sub, 6, 36, it, "subarray", h);
			h = shape_check(t_dup, 1, i_vec, 8, 12, it, "dup of vector", h);
			h = shape_check(t_itvec, 1, i_it, nvec, (nvec - 1) * svec + 1, it, "this iteration's vector", h);
		}
		MPI_OK(MPI_Type_free(&t_itvec));
		{
			/* indexed_block of int32, made and freed here */
			int dp[2] = {it % 5, 6 + it % 3};
			int32_t out[10], in[10], in2[10];
			MPI_OK(MPI_Type_create_indexed_block(2, 2, dp, MPI_INT32_T, &t_itblk));
			MPI_OK(MPI_Type_commit(&t_itblk));
			for (int i = 0; i < 10; i++)
				out[i] = (int32_t)(rank * 100 + it * 10 + i), in[i] = in2[i] = -1;
			MPI_OK(MPI_Sendrecv(out, 1, t_itblk, right, 9, in, 4, MPI_INT32_T, left, 9, MPI_COMM_WORLD,
			                    MPI_STATUS_IGNORE));
			MPI_OK(MPI_Sendrecv(out, 1, t_idxb, right, 10, in2, 6, MPI_INT32_T, left, 10, MPI_COMM_WORLD,
			                    MPI_STATUS_IGNORE));
			int e1[4] = {dp[0], dp[0] + 1, dp[1], dp[1] + 1}, e2[6] = {1, 2, 4, 5, 8, 9};
			for (int i = 0; i < 4; i++)
				CHECK(in[i] == left * 100 + it * 10 + e1[i], "indexed_block (per iteration) word %d", i);
			for (int i = 0; i < 6; i++)
				CHECK(in2[i] == left * 100 + it * 10 + e2[i], "indexed_block word %d", i);
			h = mix_bytes(mix_bytes(h, in, sizeof in), in2, sizeof in2);
			MPI_OK(MPI_Type_free(&t_itblk));
		}
		{
			/* struct, resized to the C struct: two records by Sendrecv and Bcast */
			struct rec out[2], in[2], bc[2];
			int root = it % size;
			memset(out, 0, sizeof out), memset(in, 0, sizeof in), memset(bc, 0, sizeof bc);
			for (int k = 0; k < 2; k++) {
				out[k].a = rank * 10 + k;
				out[k].b = (int64_t)v64(rank, it, k);
				memcpy(out[k].c, (char[3]){(char)('a' + rank % 26), (char)('0' + it % 10), (char)k}, 3);
			}
			MPI_OK(MPI_Sendrecv(out, 2, t_struct, right, 11, in, 2, t_struct, left, 11, MPI_COMM_WORLD,
			                    MPI_STATUS_IGNORE));
			for (int k = 0; k < 2; k++)
				CHECK(in[k].a == left * 10 + k && in[k].b == (int64_t)v64(left, it, k) &&
				          in[k].c[0] == 'a' + left % 26 && in[k].c[2] == k,
				      "struct record %d", k);
			if (rank == root)
				memcpy(bc, out, sizeof bc);
			MPI_OK(MPI_Bcast(bc, 2, t_struct, root, MPI_COMM_WORLD));
			CHECK(bc[1].a == root * 10 + 1 && bc[1].b == (int64_t)v64(root, it, 1), "Bcast of records");
			for (int k = 0; k < 2; k++)
				h = mix(mix(mix_bytes(h, in[k].c, 3), (uint64_t)in[k].b), (uint64_t)bc[k].b);
		}
		{
			/* Allgather of contiguous triples; Gather into a resized (strided) type */
			int64_t mine[3], *ag = malloc(sizeof(int64_t) * 3 * (size_t)size), *gs = NULL, one;
			CHECK(ag != NULL, "out of memory");
			trip_of(rank, it, 40, mine);
			MPI_OK(MPI_Allgather(mine, 1, t_contig, ag, 1, t_contig, MPI_COMM_WORLD));
			for (int r = 0; r < size; r++) {
				int64_t t[3];
				trip_of(r, it, 40, t);
				CHECK(!memcmp(t, &ag[3 * r], sizeof t), "Allgather of triples: rank %d", r);
			}
			h = mix_bytes(h, ag, sizeof(int64_t) * 3 * (size_t)size);
			one = rank * 1000 + it;
			if (rank == 0) {
				gs = malloc(sizeof(int64_t) * 2 * (size_t)size);
				CHECK(gs != NULL, "out of memory");
				for (int i = 0; i < 2 * size; i++)
					gs[i] = -5;
			}
			MPI_OK(MPI_Gather(&one, 1, MPI_INT64_T, gs, 1, t_res, 0, MPI_COMM_WORLD));
			if (rank == 0) {
				for (int i = 0; i < 2 * size; i++)
					CHECK(gs[i] == (i % 2 ? -5 : (i / 2) * 1000 + it), "Gather into the resized type: %d", i);
				h = mix_bytes(h, gs, sizeof(int64_t) * 2 * (size_t)size);
				free(gs);
			}
			free(ag);
		}

		/* ---- user ops ---- */
		{
			int root = (it + 1) % size;
			int64_t mine[2][3], red[2][3], exp[2][3];
			for (int k = 0; k < 2; k++) {
				trip_of(rank, it, 60 + 3 * k, mine[k]);
				exp[k][0] = 0, exp[k][1] = INT64_MIN, exp[k][2] = 0;
			}
			for (int r = 0; r < size; r++)
				for (int k = 0; k < 2; k++) {
					int64_t t[3];
					trip_of(r, it, 60 + 3 * k, t);
					exp[k][0] += t[0];
					exp[k][1] = t[1] > exp[k][1] ? t[1] : exp[k][1];
					exp[k][2] ^= t[2];
				}
			memset(red, 0, sizeof red);
			MPI_OK(MPI_Reduce(mine, red, 2, t_contig, op_comm, root, MPI_COMM_WORLD));
			if (rank == root)
				CHECK(!memcmp(red, exp, sizeof exp), "Reduce with the commutative op");
			memset(red, 0, sizeof red);
			MPI_OK(MPI_Allreduce(mine, red, 2, t_contig, op_comm, MPI_COMM_WORLD));
			CHECK(!memcmp(red, exp, sizeof exp), "Allreduce with the commutative op");
			h = mix_bytes(h, red, sizeof red);

			uint64_t r4[4], sc[4];
			MPI_OK(MPI_Reduce(my_m, r4, 1, t_mat, op_nc, root, MPI_COMM_WORLD));
			if (rank == root)
				CHECK(!memcmp(r4, prod, sizeof prod), "Reduce with the matrix op");
			MPI_OK(MPI_Allreduce(my_m, r4, 1, t_mat, op_nc, MPI_COMM_WORLD));
			CHECK(!memcmp(r4, prod, sizeof prod), "Allreduce with the matrix op");
			MPI_OK(MPI_Scan(my_m, sc, 1, t_mat, op_nc, MPI_COMM_WORLD));
			uint64_t incl[4];
			matmul(pre, my_m, incl);
			CHECK(!memcmp(sc, incl, sizeof incl), "Scan with the matrix op");
			h = mix_bytes(h, sc, sizeof sc);
			MPI_OK(MPI_Exscan(my_m, sc, 1, t_mat, op_nc, MPI_COMM_WORLD));
			if (rank > 0) {
				CHECK(!memcmp(sc, pre, sizeof pre), "Exscan with the matrix op");
				h = mix_bytes(h, sc, sizeof sc);
			}
			int64_t ex[3];
			MPI_OK(MPI_Exscan(mine[0], ex, 1, t_contig, op_comm, MPI_COMM_WORLD));
			if (rank > 0)
				h = mix_bytes(h, ex, sizeof ex);
		}
		{
			/* Reduce_scatter: rank r gets 1 + r % 2 matrices; _block: one each */
			int n = 0, off = 0;
			for (int r = 0; r < size; r++) {
				rcounts[r] = 1 + r % 2;
				if (r < rank)
					off += rcounts[r];
				n += rcounts[r];
			}
			uint64_t *in = malloc(sizeof(uint64_t) * 4 * (size_t)n), out[8];
			CHECK(in != NULL, "out of memory");
			for (int j = 0; j < n; j++)
				mat_of(rank, it, 10 + j, &in[4 * j]);
			MPI_OK(MPI_Reduce_scatter(in, out, rcounts, t_mat, op_nc, MPI_COMM_WORLD));
			for (int j = 0; j < rcounts[rank]; j++) {
				uint64_t p[4] = {1, 0, 0, 1}, m[4];
				for (int r = 0; r < size; r++) {
					mat_of(r, it, 10 + off + j, m);
					matmul(p, m, p);
				}
				CHECK(!memcmp(p, &out[4 * j], sizeof p), "Reduce_scatter with the matrix op: block %d", j);
			}
			h = mix_bytes(h, out, sizeof(uint64_t) * 4 * (size_t)rcounts[rank]);
			MPI_OK(MPI_Reduce_scatter_block(in, out, 1, t_mat, op_nc, MPI_COMM_WORLD));
			{
				uint64_t p[4] = {1, 0, 0, 1}, m[4];
				for (int r = 0; r < size; r++) {
					mat_of(r, it, 10 + rank, m);
					matmul(p, m, p);
				}
				CHECK(!memcmp(p, out, sizeof p), "Reduce_scatter_block with the matrix op");
			}
			h = mix_bytes(h, out, sizeof(uint64_t) * 4);
			int64_t tin[3 * 64], tout[3];
			CHECK(size <= 64, "at most 64 ranks");
			for (int r = 0; r < size; r++)
				trip_of(rank, it, 80 + r, &tin[3 * r]);
			MPI_OK(MPI_Reduce_scatter_block(tin, tout, 1, t_contig, op_comm, MPI_COMM_WORLD));
			h = mix_bytes(h, tout, sizeof tout);
			free(in);
		}
		{
			/* an op that lives for one iteration */
			MPI_Op op_x;
			uint64_t x = v64(rank, it, 99), y = 0, e = 0;
			MPI_OK(MPI_Op_create(op_xor_fn, 1, &op_x));
			MPI_OK(MPI_Allreduce(&x, &y, 1, MPI_UINT64_T, op_x, MPI_COMM_WORLD));
			MPI_OK(MPI_Op_free(&op_x));
			CHECK(op_x == MPI_OP_NULL, "Op_free did not reset the handle");
			for (int r = 0; r < size; r++)
				e ^= v64(r, it, 99);
			CHECK(y == e, "Allreduce with this iteration's op");
			h = mix(h, y);
		}

		uint64_t hi = gather_fold(h, MPI_COMM_WORLD);
		if (rank == 0) {
			total = mix(total, hi);
			printf("%d types=%016llx h=%016llx\n", it, (unsigned long long)hi, (unsigned long long)total);
			fflush(stdout);
		}
	}
	int calls[2] = {n_comm_calls > 0, n_nc_calls > 0}, anyc[2];
	MPI_Allreduce(calls, anyc, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
	CHECK(anyc[0] && anyc[1], "a user op was never called");
	MPI_Op_free(&op_comm);
	MPI_Op_free(&op_nc);
	for (size_t i = 0; i < sizeof all / sizeof *all; i++)
		MPI_Type_free(&all[i]);
	free(mats), free(rcounts);
	MPI_OK(MPI_Free_mem(amem));
	hold_before_final(); /* every rank: none waits in MPI meanwhile */
	if (rank == 0) {
		printf("%d final %016llx\n", niter + 1, (unsigned long long)total);
		fflush(stdout);
	}
	MPI_Finalize();
	return 0;
}
