/* mpi_colls: every blocking and every non-blocking collective, with the
 * non-blocking ones pending across the sleep and the ranks skewed so that
 * at any moment different ranks sit in different collectives.
 *
 *   mpi_colls [NITER=30] [SLEEP_MS=100]          (2 or more ranks)
 *
 * A "set" is the 17 collectives Barrier, Bcast, Reduce, Allreduce, Gather,
 * Gatherv, Scatter, Scatterv, Allgather, Allgatherv, Alltoall, Alltoallv,
 * Alltoallw, Reduce_scatter, Reduce_scatter_block, Scan, Exscan, called
 * blocking or as their I-versions (Ibarrier ... Iexscan).  Per iteration:
 * a non-blocking set on a dup of COMM_WORLD and one on the parity split are
 * started, the rank sleeps SLEEP_MS, they are completed; then rank r
 * sleeps r * SLEEP_MS / (2 * size) and runs a blocking set on the parity
 * split, then on COMM_WORLD (so while rank 3 still sleeps, rank 1 waits in
 * the split's collectives and ranks 0 and 2 in COMM_WORLD's).  Every
 * result is checked against the value worked out locally and folded into
 * the rank's checksum; rank 0 prints the checksums folded in rank order.
 * Integer data only: no result depends on the reduction order. */
#include "ckpt_common.h"

#define NCOLL 17
#define MAXP 64

static const char *names[NCOLL] = {"Barrier", "Bcast", "Reduce", "Allreduce", "Gather", "Gatherv",
                                   "Scatter", "Scatterv", "Allgather", "Allgatherv", "Alltoall",
                                   "Alltoallv", "Alltoallw", "Reduce_scatter",
                                   "Reduce_scatter_block", "Scan", "Exscan"};

/* data of comm rank R for collective K, element I */
static int64_t data(int r, int it, int salt, int k, int i)
{
	return (int64_t)(mix(mix(mix(mix(5, (uint64_t)r), (uint64_t)it), (uint64_t)(salt * 32 + k)),
	                     (uint64_t)i) %
	                 1000003);
}

static int cnt3(int r) { return 1 + r % 3; }
static int cnt2(int r) { return 1 + r % 2; }
static int cvw(int from, int to) { return 1 + (from + 2 * to) % 3; }

struct cset {
	MPI_Comm c;
	int cr, cs, it, salt, nb, root, root2;
	MPI_Request req[NCOLL];
	int nreq;
	/* buffers, one pair per collective */
	int64_t *snd[NCOLL], *rcv[NCOLL];
	int scnt[NCOLL][MAXP], sdsp[NCOLL][MAXP], rcnt[NCOLL][MAXP], rdsp[NCOLL][MAXP];
	MPI_Datatype wty[MAXP];
	int sbd[MAXP], rbd[MAXP]; /* Alltoallw's byte displacements */
};

static int64_t *alloc64(size_t n, int64_t fillv)
{
	int64_t *p = malloc(sizeof *p * (n ? n : 1));
	CHECK(p != NULL, "out of memory");
	for (size_t i = 0; i < n; i++)
		p[i] = fillv;
	return p;
}

#define COLL(k, blocking, nonblocking)                                                           \
	do {                                                                                      \
		if (s->nb)                                                                        \
			MPI_OK(nonblocking);                                                      \
		else                                                                              \
			MPI_OK(blocking);                                                         \
	} while (0)
#define RQ (&s->req[s->nreq++])

static void cset_start(struct cset *s, MPI_Comm c, int it, int salt, int nb)
{
	int cr, cs, n;
	memset(s, 0, sizeof *s);
	MPI_Comm_rank(c, &cr);
	MPI_Comm_size(c, &cs);
	CHECK(cs <= MAXP, "at most %d ranks", MAXP);
	s->c = c, s->cr = cr, s->cs = cs, s->it = it, s->salt = salt, s->nb = nb;
	s->root = (it + salt) % cs;
	s->root2 = (it + salt + 1) % cs;
#define D(r, k, i) data((r), it, salt, (k), (i))

	/* 0 Barrier */
	COLL(0, MPI_Barrier(c), MPI_Ibarrier(c, RQ));
	/* 1 Bcast, 5 words from root */
	s->rcv[1] = alloc64(5, -1);
	if (cr == s->root)
		for (int i = 0; i < 5; i++)
			s->rcv[1][i] = D(cr, 1, i);
	COLL(1, MPI_Bcast(s->rcv[1], 5, MPI_INT64_T, s->root, c),
	     MPI_Ibcast(s->rcv[1], 5, MPI_INT64_T, s->root, c, RQ));
	/* 2 Reduce (sum) to root2; 3 Allreduce (max) */
	for (int k = 2; k <= 3; k++) {
		s->snd[k] = alloc64(3, 0);
		s->rcv[k] = alloc64(3, -1);
		for (int i = 0; i < 3; i++)
			s->snd[k][i] = D(cr, k, i);
	}
	COLL(2, MPI_Reduce(s->snd[2], s->rcv[2], 3, MPI_INT64_T, MPI_SUM, s->root2, c),
	     MPI_Ireduce(s->snd[2], s->rcv[2], 3, MPI_INT64_T, MPI_SUM, s->root2, c, RQ));
	COLL(3, MPI_Allreduce(s->snd[3], s->rcv[3], 3, MPI_INT64_T, MPI_MAX, c),
	     MPI_Iallreduce(s->snd[3], s->rcv[3], 3, MPI_INT64_T, MPI_MAX, c, RQ));
	/* 4 Gather, 2 words each, to root */
	s->snd[4] = alloc64(2, 0);
	s->rcv[4] = alloc64(2 * (size_t)cs, -1);
	for (int i = 0; i < 2; i++)
		s->snd[4][i] = D(cr, 4, i);
	COLL(4, MPI_Gather(s->snd[4], 2, MPI_INT64_T, s->rcv[4], 2, MPI_INT64_T, s->root, c),
	     MPI_Igather(s->snd[4], 2, MPI_INT64_T, s->rcv[4], 2, MPI_INT64_T, s->root, c, RQ));
	/* 5 Gatherv: cnt3(r) words, a gap of one word between ranks */
	n = 0;
	for (int r = 0; r < cs; r++) {
		s->rcnt[5][r] = cnt3(r);
		s->rdsp[5][r] = n;
		n += cnt3(r) + 1;
	}
	s->snd[5] = alloc64(3, 0);
	s->rcv[5] = alloc64((size_t)n, -1);
	for (int i = 0; i < cnt3(cr); i++)
		s->snd[5][i] = D(cr, 5, i);
	COLL(5,
	     MPI_Gatherv(s->snd[5], cnt3(cr), MPI_INT64_T, s->rcv[5], s->rcnt[5], s->rdsp[5], MPI_INT64_T,
	                 s->root2, c),
	     MPI_Igatherv(s->snd[5], cnt3(cr), MPI_INT64_T, s->rcv[5], s->rcnt[5], s->rdsp[5], MPI_INT64_T,
	                  s->root2, c, RQ));
	/* 6 Scatter, 2 words each, from root */
	s->snd[6] = alloc64(2 * (size_t)cs, 0);
	s->rcv[6] = alloc64(2, -1);
	for (int i = 0; i < 2 * cs; i++)
		s->snd[6][i] = D(cr, 6, i);
	COLL(6, MPI_Scatter(s->snd[6], 2, MPI_INT64_T, s->rcv[6], 2, MPI_INT64_T, s->root, c),
	     MPI_Iscatter(s->snd[6], 2, MPI_INT64_T, s->rcv[6], 2, MPI_INT64_T, s->root, c, RQ));
	/* 7 Scatterv: cnt3(r) words from root2's buffer with gaps */
	n = 0;
	for (int r = 0; r < cs; r++) {
		s->scnt[7][r] = cnt3(r);
		s->sdsp[7][r] = n;
		n += cnt3(r) + 1;
	}
	s->snd[7] = alloc64((size_t)n, 0);
	s->rcv[7] = alloc64(3, -1);
	for (int i = 0; i < n; i++)
		s->snd[7][i] = D(cr, 7, i);
	COLL(7,
	     MPI_Scatterv(s->snd[7], s->scnt[7], s->sdsp[7], MPI_INT64_T, s->rcv[7], cnt3(cr), MPI_INT64_T,
	                  s->root2, c),
	     MPI_Iscatterv(s->snd[7], s->scnt[7], s->sdsp[7], MPI_INT64_T, s->rcv[7], cnt3(cr), MPI_INT64_T,
	                   s->root2, c, RQ));
	/* 8 Allgather, one word each */
	s->snd[8] = alloc64(1, D(cr, 8, 0));
	s->rcv[8] = alloc64((size_t)cs, -1);
	COLL(8, MPI_Allgather(s->snd[8], 1, MPI_INT64_T, s->rcv[8], 1, MPI_INT64_T, c),
	     MPI_Iallgather(s->snd[8], 1, MPI_INT64_T, s->rcv[8], 1, MPI_INT64_T, c, RQ));
	/* 9 Allgatherv, cnt2(r) words each */
	n = 0;
	for (int r = 0; r < cs; r++) {
		s->rcnt[9][r] = cnt2(r);
		s->rdsp[9][r] = n;
		n += cnt2(r);
	}
	s->snd[9] = alloc64(2, 0);
	s->rcv[9] = alloc64((size_t)n, -1);
	for (int i = 0; i < cnt2(cr); i++)
		s->snd[9][i] = D(cr, 9, i);
	COLL(9,
	     MPI_Allgatherv(s->snd[9], cnt2(cr), MPI_INT64_T, s->rcv[9], s->rcnt[9], s->rdsp[9], MPI_INT64_T, c),
	     MPI_Iallgatherv(s->snd[9], cnt2(cr), MPI_INT64_T, s->rcv[9], s->rcnt[9], s->rdsp[9], MPI_INT64_T,
	                     c, RQ));
	/* 10 Alltoall, 2 words per pair */
	s->snd[10] = alloc64(2 * (size_t)cs, 0);
	s->rcv[10] = alloc64(2 * (size_t)cs, -1);
	for (int i = 0; i < 2 * cs; i++)
		s->snd[10][i] = D(cr, 10, i);
	COLL(10, MPI_Alltoall(s->snd[10], 2, MPI_INT64_T, s->rcv[10], 2, MPI_INT64_T, c),
	     MPI_Ialltoall(s->snd[10], 2, MPI_INT64_T, s->rcv[10], 2, MPI_INT64_T, c, RQ));
	/* 11 Alltoallv and 12 Alltoallw: cvw(from, to) words; w with byte
	 * displacements and a gap of one word between blocks received */
	for (int k = 11; k <= 12; k++) {
		int ns = 0, nr = 0;
		for (int j = 0; j < cs; j++) {
			s->scnt[k][j] = cvw(cr, j);
			s->sdsp[k][j] = ns;
			ns += cvw(cr, j);
			s->rcnt[k][j] = cvw(j, cr);
			s->rdsp[k][j] = nr;
			nr += cvw(j, cr) + (k == 12);
		}
		s->snd[k] = alloc64((size_t)ns, 0);
		s->rcv[k] = alloc64((size_t)nr, -1);
		for (int j = 0; j < cs; j++)
			for (int i = 0; i < cvw(cr, j); i++)
				s->snd[k][s->sdsp[k][j] + i] = D(cr, k, j * 8 + i);
	}
	COLL(11,
	     MPI_Alltoallv(s->snd[11], s->scnt[11], s->sdsp[11], MPI_INT64_T, s->rcv[11], s->rcnt[11],
	                   s->rdsp[11], MPI_INT64_T, c),
	     MPI_Ialltoallv(s->snd[11], s->scnt[11], s->sdsp[11], MPI_INT64_T, s->rcv[11], s->rcnt[11],
	                    s->rdsp[11], MPI_INT64_T, c, RQ));
	{
		int *sbd = s->sbd, *rbd = s->rbd;
		for (int j = 0; j < cs; j++) {
			s->wty[j] = MPI_INT64_T;
			sbd[j] = s->sdsp[12][j] * 8;
			rbd[j] = s->rdsp[12][j] * 8;
		}
		COLL(12,
		     MPI_Alltoallw(s->snd[12], s->scnt[12], sbd, s->wty, s->rcv[12], s->rcnt[12], rbd, s->wty, c),
		     MPI_Ialltoallw(s->snd[12], s->scnt[12], sbd, s->wty, s->rcv[12], s->rcnt[12], rbd, s->wty, c,
		                    RQ));
	}
	/* 13 Reduce_scatter (sum), cnt2(r) words to rank r */
	n = 0;
	for (int r = 0; r < cs; r++) {
		s->rcnt[13][r] = cnt2(r);
		n += cnt2(r);
	}
	s->snd[13] = alloc64((size_t)n, 0);
	s->rcv[13] = alloc64(2, -1);
	for (int i = 0; i < n; i++)
		s->snd[13][i] = D(cr, 13, i);
	COLL(13, MPI_Reduce_scatter(s->snd[13], s->rcv[13], s->rcnt[13], MPI_INT64_T, MPI_SUM, c),
	     MPI_Ireduce_scatter(s->snd[13], s->rcv[13], s->rcnt[13], MPI_INT64_T, MPI_SUM, c, RQ));
	/* 14 Reduce_scatter_block (bxor), 2 words each */
	s->snd[14] = alloc64(2 * (size_t)cs, 0);
	s->rcv[14] = alloc64(2, -1);
	for (int i = 0; i < 2 * cs; i++)
		s->snd[14][i] = D(cr, 14, i);
	COLL(14, MPI_Reduce_scatter_block(s->snd[14], s->rcv[14], 2, MPI_INT64_T, MPI_BXOR, c),
	     MPI_Ireduce_scatter_block(s->snd[14], s->rcv[14], 2, MPI_INT64_T, MPI_BXOR, c, RQ));
	/* 15 Scan, 16 Exscan (sum), 2 words */
	for (int k = 15; k <= 16; k++) {
		s->snd[k] = alloc64(2, 0);
		s->rcv[k] = alloc64(2, -1);
		for (int i = 0; i < 2; i++)
			s->snd[k][i] = D(cr, k, i);
	}
	COLL(15, MPI_Scan(s->snd[15], s->rcv[15], 2, MPI_INT64_T, MPI_SUM, c),
	     MPI_Iscan(s->snd[15], s->rcv[15], 2, MPI_INT64_T, MPI_SUM, c, RQ));
	COLL(16, MPI_Exscan(s->snd[16], s->rcv[16], 2, MPI_INT64_T, MPI_SUM, c),
	     MPI_Iexscan(s->snd[16], s->rcv[16], 2, MPI_INT64_T, MPI_SUM, c, RQ));
	CHECK(!nb || s->nreq == NCOLL, "%d requests", s->nreq);
}

#define EXPECT(k, cond, fmt, ...)                                                                 \
	CHECK(cond, "%s (set %d, %s): " fmt, names[k], s->salt, s->nb ? "non-blocking" : "blocking", \
	      __VA_ARGS__)

/* Complete (non-blocking sets), check every result, fold, free. */
static uint64_t cset_finish(struct cset *s, uint64_t h)
{
	int cr = s->cr, cs = s->cs, it = s->it, salt = s->salt;
	if (s->nb)
		MPI_OK(MPI_Waitall(s->nreq, s->req, MPI_STATUSES_IGNORE));
	h = mix(h, (uint64_t)cs);
	for (int i = 0; i < 5; i++)
		EXPECT(1, s->rcv[1][i] == D(s->root, 1, i), "word %d", i);
	h = mix_bytes(h, s->rcv[1], 5 * 8);
	for (int i = 0; i < 3; i++) {
		int64_t sum = 0, mx = INT64_MIN;
		for (int r = 0; r < cs; r++) {
			sum += D(r, 2, i);
			mx = D(r, 3, i) > mx ? D(r, 3, i) : mx;
		}
		if (cr == s->root2)
			EXPECT(2, s->rcv[2][i] == sum, "word %d", i);
		EXPECT(3, s->rcv[3][i] == mx, "word %d", i);
	}
	if (cr == s->root2)
		h = mix_bytes(h, s->rcv[2], 3 * 8);
	h = mix_bytes(h, s->rcv[3], 3 * 8);
	if (cr == s->root) {
		for (int r = 0; r < cs; r++)
			for (int i = 0; i < 2; i++)
				EXPECT(4, s->rcv[4][2 * r + i] == D(r, 4, i), "from %d word %d", r, i);
		h = mix_bytes(h, s->rcv[4], 16 * (size_t)cs);
	}
	if (cr == s->root2) {
		for (int r = 0; r < cs; r++) {
			for (int i = 0; i < cnt3(r); i++)
				EXPECT(5, s->rcv[5][s->rdsp[5][r] + i] == D(r, 5, i), "from %d word %d", r, i);
			EXPECT(5, s->rcv[5][s->rdsp[5][r] + cnt3(r)] == -1, "gap after %d written", r);
		}
		h = mix_bytes(h, s->rcv[5], 8 * (size_t)(s->rdsp[5][cs - 1] + cnt3(cs - 1)));
	}
	for (int i = 0; i < 2; i++)
		EXPECT(6, s->rcv[6][i] == D(s->root, 6, 2 * cr + i), "word %d", i);
	h = mix_bytes(h, s->rcv[6], 16);
	{
		int d = 0;
		for (int r = 0; r < cr; r++)
			d += cnt3(r) + 1;
		for (int i = 0; i < cnt3(cr); i++)
			EXPECT(7, s->rcv[7][i] == D(s->root2, 7, d + i), "word %d", i);
		h = mix_bytes(h, s->rcv[7], 8 * (size_t)cnt3(cr));
	}
	for (int r = 0; r < cs; r++)
		EXPECT(8, s->rcv[8][r] == D(r, 8, 0), "from %d", r);
	h = mix_bytes(h, s->rcv[8], 8 * (size_t)cs);
	for (int r = 0; r < cs; r++)
		for (int i = 0; i < cnt2(r); i++)
			EXPECT(9, s->rcv[9][s->rdsp[9][r] + i] == D(r, 9, i), "from %d word %d", r, i);
	h = mix_bytes(h, s->rcv[9], 8 * (size_t)(s->rdsp[9][cs - 1] + cnt2(cs - 1)));
	for (int j = 0; j < cs; j++)
		for (int i = 0; i < 2; i++)
			EXPECT(10, s->rcv[10][2 * j + i] == D(j, 10, 2 * cr + i), "from %d word %d", j, i);
	h = mix_bytes(h, s->rcv[10], 16 * (size_t)cs);
	for (int k = 11; k <= 12; k++) {
		for (int j = 0; j < cs; j++) {
			for (int i = 0; i < cvw(j, cr); i++)
				EXPECT(k, s->rcv[k][s->rdsp[k][j] + i] == D(j, k, cr * 8 + i), "from %d word %d", j, i);
			if (k == 12)
				EXPECT(k, s->rcv[k][s->rdsp[k][j] + cvw(j, cr)] == -1, "gap after %d written", j);
			h = mix_bytes(h, &s->rcv[k][s->rdsp[k][j]], 8 * (size_t)cvw(j, cr));
		}
	}
	{
		int off = 0;
		for (int r = 0; r < cr; r++)
			off += cnt2(r);
		for (int i = 0; i < cnt2(cr); i++) {
			int64_t sum = 0;
			for (int r = 0; r < cs; r++)
				sum += D(r, 13, off + i);
			EXPECT(13, s->rcv[13][i] == sum, "word %d", i);
		}
		h = mix_bytes(h, s->rcv[13], 8 * (size_t)cnt2(cr));
	}
	for (int i = 0; i < 2; i++) {
		int64_t x = 0, sc = 0, ex = 0;
		for (int r = 0; r < cs; r++)
			x ^= D(r, 14, 2 * cr + i);
		for (int r = 0; r <= cr; r++) {
			sc += D(r, 15, i);
			if (r < cr)
				ex += D(r, 16, i);
		}
		EXPECT(14, s->rcv[14][i] == x, "word %d", i);
		EXPECT(15, s->rcv[15][i] == sc, "word %d", i);
		if (cr > 0)
			EXPECT(16, s->rcv[16][i] == ex, "word %d", i);
	}
	h = mix_bytes(mix_bytes(h, s->rcv[14], 16), s->rcv[15], 16);
	if (cr > 0)
		h = mix_bytes(h, s->rcv[16], 16);
	for (int k = 0; k < NCOLL; k++)
		free(s->snd[k]), free(s->rcv[k]);
	return h;
#undef D
}

int main(int argc, char **argv)
{
	int niter, rank, size;
	long ms;
	uint64_t total = 0;
	MPI_Comm nbc, sub;
	static struct cset a, b, c, d;

	parse_args(argc, argv, &niter, &ms, 30, 100);
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	CHECK(size >= 2 && size <= MAXP, "needs 2 to %d ranks", MAXP);
	MPI_OK(MPI_Comm_dup(MPI_COMM_WORLD, &nbc));
	MPI_OK(MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &sub));
	long skew = ms / (2 * size);

	if (rank == 0) {
		printf("0 mpi_colls np=%d niter=%d\n", size, niter);
		fflush(stdout);
	}
	for (int it = 1; it <= niter; it++) {
		uint64_t h = mix(0, (uint64_t)it);

		/* non-blocking sets pending across the sleep */
		cset_start(&a, nbc, it, 1, 1);
		cset_start(&b, sub, it, 2, 1);
		sleep_ms(ms);
		h = cset_finish(&b, cset_finish(&a, h));

		/* skewed entry: the split's collectives, then COMM_WORLD's */
		sleep_ms(rank * skew);
		cset_start(&c, sub, it, 3, 0);
		h = cset_finish(&c, h);
		cset_start(&d, MPI_COMM_WORLD, it, 4, 0);
		h = cset_finish(&d, h);

		uint64_t hi = gather_fold(h, MPI_COMM_WORLD);
		if (rank == 0) {
			total = mix(total, hi);
			printf("%d colls=%016llx h=%016llx\n", it, (unsigned long long)hi, (unsigned long long)total);
			fflush(stdout);
		}
	}
	MPI_Comm_free(&nbc);
	MPI_Comm_free(&sub);
	hold_before_final(); /* every rank: none waits in MPI meanwhile */
	if (rank == 0) {
		printf("%d final %016llx\n", niter + 1, (unsigned long long)total);
		fflush(stdout);
	}
	MPI_Finalize();
	return 0;
}
