/* mpi_p2p: point-to-point in every flavour, with messages and wildcard
 * receives pending across the per-iteration sleep (where a checkpoint
 * lands).
 *
 *   mpi_p2p [NITER=30] [SLEEP_MS=100]          (2 or more ranks)
 *
 * Per iteration, before the sleep: 2*(P-1) MPI_ANY_SOURCE receives (each
 * rank sends two messages to every other rank), an MPI_ANY_SOURCE +
 * MPI_ANY_TAG receive, a large (rendezvous-sized) ring message, persistent
 * requests started with MPI_Startall, a receive nobody will match, and
 * another cancelled at once; the sends are started too, then the rank
 * sleeps; after it everything is completed, the unmatched receive is
 * cancelled (MPI_Test_cancelled must say so of both).  Then: blocking ring (Send/Recv), Sendrecv, Sendrecv_replace,
 * Ssend, Issend, Rsend to a pre-posted receive, Bsend (attached buffer),
 * Probe/Iprobe + Recv of the probed count, Mprobe/Mrecv, Improbe/Imrecv,
 * Waitany + Testsome + Testall, Waitsome, and a second persistent pair
 * started with MPI_Start.  Every received payload is checked and folded
 * into the rank's checksum; wildcard receives are folded per source in
 * posting order (so the matching order among messages of one source is
 * checked, while the interleaving of sources, which depends on timing,
 * is not).  Rank 0 prints the ranks' checksums folded in rank order. */
#include "ckpt_common.h"

#define WLEN 6      /* int64 words of a wildcard message */
#define BIG_N 60000 /* int64 words of the ring message: rendezvous on both MPIs */
#define TAG_PERS1 32100
#define TAG_PERS2 32101
#define TAG_NEVER 32300

static int rank, size, left, right;

static int64_t val(int64_t a, int64_t b, int64_t c, int64_t d)
{
	return (int64_t)(mix(mix(mix(mix(7, (uint64_t)a), (uint64_t)b), (uint64_t)c), (uint64_t)d) >>
	                 1);
}

static int tagb(int it) { return 16 + (it % 2000) * 16; }

/* chain through the ring with blocking sends: rank 0 sends first */
static uint64_t ring_chain(int it, int tag, int sync, uint64_t h)
{
	int64_t out[3] = {rank, it, val(rank, it, tag, 1)}, in[3] = {-1, -1, -1};
	MPI_Status st;
	int cnt;

	if (rank == 0) {
		if (sync)
			MPI_OK(MPI_Ssend(out, 3, MPI_INT64_T, right, tag, MPI_COMM_WORLD));
		else
			MPI_OK(MPI_Send(out, 3, MPI_INT64_T, right, tag, MPI_COMM_WORLD));
	}
	MPI_OK(MPI_Recv(in, 3, MPI_INT64_T, left, tag, MPI_COMM_WORLD, &st));
	MPI_Get_count(&st, MPI_INT64_T, &cnt);
	CHECK(cnt == 3 && st.MPI_SOURCE == left && st.MPI_TAG == tag, "ring: count %d from %d", cnt,
	      st.MPI_SOURCE);
	CHECK(in[0] == left && in[1] == it && in[2] == val(left, it, tag, 1),
	      "ring tag %d: got %lld/%lld", tag, (long long)in[0], (long long)in[1]);
	if (rank != 0) {
		if (sync)
			MPI_OK(MPI_Ssend(out, 3, MPI_INT64_T, right, tag, MPI_COMM_WORLD));
		else
			MPI_OK(MPI_Send(out, 3, MPI_INT64_T, right, tag, MPI_COMM_WORLD));
	}
	return mix_bytes(h, in, sizeof in);
}

/* variable-length message to the right, received after a probe */
static int plen(int from, int it, int k) { return 1 + (from * 5 + it * 3 + k) % 23; }

static void fill(int64_t *b, int n, int from, int it, int k)
{
	for (int i = 0; i < n; i++)
		b[i] = val(from, it, k, i);
}

static uint64_t check_probed(int64_t *b, int n, int from, int it, int k, uint64_t h)
{
	CHECK(from == left, "probe tag %d: message from %d, expected %d", k, from, left);
	CHECK(n == plen(from, it, k), "probe tag %d: count %d, expected %d", k, n, plen(from, it, k));
	for (int i = 0; i < n; i++)
		CHECK(b[i] == val(from, it, k, i), "probe tag %d: word %d wrong", k, i);
	return mix_bytes(h, b, sizeof *b * (size_t)n);
}

int main(int argc, char **argv)
{
	int niter;
	long ms;
	MPI_Comm comm_any, comm_sync;
	uint64_t total = 0;

	parse_args(argc, argv, &niter, &ms, 30, 100);
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	CHECK(size >= 2, "needs at least 2 ranks");
	left = (rank + size - 1) % size;
	right = (rank + 1) % size;
	MPI_OK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_any));  /* the ANY_TAG traffic */
	MPI_OK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_sync)); /* barriers for Rsend */

	int npeer = size - 1, nw = 2 * npeer;
	int64_t(*wout)[WLEN] = calloc((size_t)nw, sizeof *wout);
	int64_t(*win)[WLEN] = calloc((size_t)nw, sizeof *win);
	int64_t *big_out = malloc(sizeof(int64_t) * BIG_N), *big_in = malloc(sizeof(int64_t) * BIG_N);
	int64_t *set_in = calloc((size_t)size, sizeof(int64_t)), *set_out = calloc((size_t)size, sizeof(int64_t));
	MPI_Request *wreq = malloc(sizeof(MPI_Request) * (size_t)(2 * nw + 8));
	MPI_Status *wst = malloc(sizeof(MPI_Status) * (size_t)(2 * nw + 8));
	MPI_Request *rset = malloc(sizeof(MPI_Request) * (size_t)size);
	MPI_Request *sset = malloc(sizeof(MPI_Request) * (size_t)size);
	int *idx = malloc(sizeof(int) * (size_t)size);
	MPI_Status *sts = malloc(sizeof(MPI_Status) * (size_t)size);
	CHECK(wout && win && big_out && big_in && set_in && set_out && wreq && wst && rset && sset &&
	          idx && sts,
	      "out of memory");

	/* persistent requests, reused by every iteration */
	int64_t pers1_out[4], pers1_in[4], pers2_out[4], pers2_in[4];
	MPI_Request pers1[2], pers2[2], pers3;
	int64_t pers3_in = 0;
	MPI_OK(MPI_Recv_init(pers1_in, 4, MPI_INT64_T, left, TAG_PERS1, MPI_COMM_WORLD, &pers1[0]));
	MPI_OK(MPI_Send_init(pers1_out, 4, MPI_INT64_T, right, TAG_PERS1, MPI_COMM_WORLD, &pers1[1]));
	MPI_OK(MPI_Send_init(pers2_out, 4, MPI_INT64_T, left, TAG_PERS2, MPI_COMM_WORLD, &pers2[0]));
	MPI_OK(MPI_Recv_init(pers2_in, 4, MPI_INT64_T, right, TAG_PERS2, MPI_COMM_WORLD, &pers2[1]));
	/* never matched: started, cancelled and completed before the sleep,
	 * started again and cancelled after it (a checkpoint in the sleep
	 * must cancel this activation although the last one was cancelled
	 * by the program) */
	MPI_OK(MPI_Recv_init(&pers3_in, 1, MPI_INT64_T, MPI_ANY_SOURCE, TAG_NEVER + 2, MPI_COMM_WORLD,
	                     &pers3));

	/* buffered sends: room for 16 messages of 4 words */
	int psz;
	MPI_Pack_size(4, MPI_INT64_T, MPI_COMM_WORLD, &psz);
	int bsize = 16 * (psz + MPI_BSEND_OVERHEAD);
	void *bbuf = malloc((size_t)bsize);
	CHECK(bbuf != NULL, "out of memory");
	MPI_OK(MPI_Buffer_attach(bbuf, bsize));

	if (rank == 0) {
		printf("0 mpi_p2p np=%d niter=%d\n", size, niter);
		fflush(stdout);
	}
	for (int it = 1; it <= niter; it++) {
		int b = tagb(it), n = 0, flag;
		uint64_t h = mix(0, (uint64_t)it);
		MPI_Status st;
		int64_t any_in = -1, any_out = val(rank, it, 77, 0), never = 0, never2 = 0;
		MPI_Request never_req, never2_req;

		/* ---- posted before the sleep, completed after it ---- */
		for (int i = 0; i < nw; i++)
			MPI_OK(MPI_Irecv(win[i], WLEN, MPI_INT64_T, MPI_ANY_SOURCE, b, MPI_COMM_WORLD,
			                 &wreq[n++]));
		MPI_OK(MPI_Irecv(&any_in, 1, MPI_INT64_T, MPI_ANY_SOURCE, MPI_ANY_TAG, comm_any, &wreq[n++]));
		MPI_OK(MPI_Irecv(big_in, BIG_N, MPI_INT64_T, left, b + 1, MPI_COMM_WORLD, &wreq[n++]));
		MPI_OK(MPI_Irecv(&never, 1, MPI_INT64_T, MPI_ANY_SOURCE, TAG_NEVER, MPI_COMM_WORLD,
		                 &never_req));
		/* cancelled now, completed after the sleep: a checkpoint there
		 * must not cancel it again (Open MPI 4.1 crashes on that) */
		MPI_OK(MPI_Irecv(&never2, 1, MPI_INT64_T, MPI_ANY_SOURCE, TAG_NEVER + 1, MPI_COMM_WORLD,
		                 &never2_req));
		MPI_OK(MPI_Cancel(&never2_req));
		MPI_OK(MPI_Start(&pers3));
		MPI_OK(MPI_Cancel(&pers3));
		MPI_OK(MPI_Wait(&pers3, &st));
		MPI_OK(MPI_Test_cancelled(&st, &flag));
		CHECK(flag, "the persistent receive nobody sends to was not cancelled");
		MPI_OK(MPI_Start(&pers3));
		for (int k = 0; k < 4; k++)
			pers1_out[k] = val(rank, it, 1000, k);
		MPI_OK(MPI_Startall(2, pers1));
		for (int q = 0, j = 0; q < size; q++) {
			if (q == rank)
				continue;
			for (int seq = 0; seq < 2; seq++, j++) {
				int64_t *m = wout[j];
				m[0] = rank, m[1] = q, m[2] = it, m[3] = seq;
				m[4] = val(rank, q, it, seq), m[5] = val(q, rank, seq, it);
				MPI_OK(MPI_Isend(m, WLEN, MPI_INT64_T, q, b, MPI_COMM_WORLD, &wreq[n++]));
			}
		}
		MPI_OK(MPI_Isend(&any_out, 1, MPI_INT64_T, right, 1 + (it * 7 + rank) % 50, comm_any,
		                 &wreq[n++]));
		for (int i = 0; i < BIG_N; i++)
			big_out[i] = val(rank, it, i, 5);
		MPI_OK(MPI_Isend(big_out, BIG_N, MPI_INT64_T, right, b + 1, MPI_COMM_WORLD, &wreq[n++]));

		sleep_ms(ms);

		MPI_OK(MPI_Waitall(n, wreq, wst));
		{
			/* per source, in posting order: seq 0 then seq 1 */
			uint64_t *hs = calloc((size_t)size, sizeof *hs);
			int *next = calloc((size_t)size, sizeof *next);
			CHECK(hs && next, "out of memory");
			for (int i = 0; i < nw; i++) {
				int src = wst[i].MPI_SOURCE, cnt;
				MPI_Get_count(&wst[i], MPI_INT64_T, &cnt);
				CHECK(cnt == WLEN && src != rank && src >= 0 && src < size,
				      "wildcard receive %d: count %d from %d", i, cnt, src);
				CHECK(win[i][0] == src && win[i][1] == rank && win[i][2] == it,
				      "wildcard receive %d: header %lld %lld %lld from %d", i,
				      (long long)win[i][0], (long long)win[i][1], (long long)win[i][2], src);
				CHECK(win[i][3] == next[src],
				      "messages from rank %d matched out of order: seq %lld before %d", src,
				      (long long)win[i][3], next[src]);
				CHECK(win[i][4] == val(src, rank, it, next[src]) &&
				          win[i][5] == val(rank, src, next[src], it),
				      "wildcard receive %d: payload from %d wrong", i, src);
				next[src]++;
				hs[src] = mix_bytes(hs[src] + 1, win[i], sizeof win[i]);
			}
			for (int q = 0; q < size; q++) {
				CHECK(q == rank || next[q] == 2, "%d messages from rank %d, expected 2", next[q], q);
				h = mix(h, hs[q]);
			}
			free(hs);
			free(next);
		}
		/* ANY_SOURCE + ANY_TAG: only the left neighbour sends on comm_any */
		st = wst[nw];
		CHECK(st.MPI_SOURCE == left && st.MPI_TAG == 1 + (it * 7 + left) % 50 &&
		          any_in == val(left, it, 77, 0),
		      "ANY_TAG receive: from %d tag %d", st.MPI_SOURCE, st.MPI_TAG);
		h = mix(mix(mix(h, (uint64_t)st.MPI_SOURCE), (uint64_t)st.MPI_TAG), (uint64_t)any_in);
		for (int i = 0; i < BIG_N; i++)
			CHECK(big_in[i] == val(left, it, i, 5), "large ring message: word %d wrong", i);
		h = mix_bytes(h, big_in, sizeof(int64_t) * BIG_N);
		MPI_OK(MPI_Waitall(2, pers1, MPI_STATUSES_IGNORE));
		for (int k = 0; k < 4; k++)
			CHECK(pers1_in[k] == val(left, it, 1000, k), "persistent (Startall) word %d", k);
		h = mix_bytes(h, pers1_in, sizeof pers1_in);
		MPI_OK(MPI_Cancel(&never_req));
		MPI_OK(MPI_Wait(&never_req, &st));
		MPI_OK(MPI_Test_cancelled(&st, &flag));
		CHECK(flag, "the receive nobody sends to was not cancelled");
		h = mix(h, (uint64_t)flag);
		MPI_OK(MPI_Wait(&never2_req, &st));
		MPI_OK(MPI_Test_cancelled(&st, &flag));
		CHECK(flag, "the receive cancelled before the sleep was not cancelled");
		MPI_OK(MPI_Cancel(&pers3));
		MPI_OK(MPI_Wait(&pers3, &st));
		MPI_OK(MPI_Test_cancelled(&st, &flag));
		CHECK(flag, "the persistent receive nobody sends to was not cancelled");

		/* ---- blocking ring, Sendrecv, Sendrecv_replace ---- */
		h = ring_chain(it, b + 2, 0, h);
		{
			int64_t out[2] = {rank, val(rank, it, 3, 0)}, in[2] = {-1, -1};
			MPI_OK(MPI_Sendrecv(out, 2, MPI_INT64_T, right, b + 3, in, 2, MPI_INT64_T, left,
			                    b + 3, MPI_COMM_WORLD, &st));
			CHECK(in[0] == left && in[1] == val(left, it, 3, 0), "Sendrecv payload");
			h = mix_bytes(h, in, sizeof in);
			int64_t rep[3] = {rank, it, val(rank, it, 4, 0)};
			MPI_OK(MPI_Sendrecv_replace(rep, 3, MPI_INT64_T, left, b + 4, right, b + 4,
			                            MPI_COMM_WORLD, &st));
			CHECK(rep[0] == right && rep[1] == it && rep[2] == val(right, it, 4, 0),
			      "Sendrecv_replace payload");
			h = mix_bytes(h, rep, sizeof rep);
		}
		/* ---- synchronous sends ---- */
		h = ring_chain(it, b + 5, 1, h);
		{
			int64_t out[2] = {rank, val(rank, it, 6, 0)}, in[2] = {-1, -1};
			MPI_Request rq;
			MPI_OK(MPI_Issend(out, 2, MPI_INT64_T, right, b + 6, MPI_COMM_WORLD, &rq));
			MPI_OK(MPI_Recv(in, 2, MPI_INT64_T, left, b + 6, MPI_COMM_WORLD, &st));
			MPI_OK(MPI_Wait(&rq, &st));
			CHECK(in[0] == left && in[1] == val(left, it, 6, 0), "Issend payload");
			h = mix_bytes(h, in, sizeof in);
		}
		/* ---- ready send to a receive posted before a barrier ---- */
		{
			int64_t out[2] = {rank, val(rank, it, 7, 0)}, in[2] = {-1, -1};
			MPI_Request rq;
			MPI_OK(MPI_Irecv(in, 2, MPI_INT64_T, left, b + 7, MPI_COMM_WORLD, &rq));
			MPI_OK(MPI_Barrier(comm_sync));
			MPI_OK(MPI_Rsend(out, 2, MPI_INT64_T, right, b + 7, MPI_COMM_WORLD));
			MPI_OK(MPI_Wait(&rq, &st));
			CHECK(in[0] == left && in[1] == val(left, it, 7, 0), "Rsend payload");
			h = mix_bytes(h, in, sizeof in);
		}
		/* ---- buffered send ---- */
		{
			int64_t out[4] = {rank, it, val(rank, it, 8, 0), val(rank, it, 8, 1)}, in[4];
			MPI_OK(MPI_Bsend(out, 4, MPI_INT64_T, right, b + 8, MPI_COMM_WORLD));
			memset(out, 0, sizeof out); /* Bsend copied it */
			MPI_OK(MPI_Recv(in, 4, MPI_INT64_T, left, b + 8, MPI_COMM_WORLD, &st));
			CHECK(in[0] == left && in[1] == it && in[2] == val(left, it, 8, 0) &&
			          in[3] == val(left, it, 8, 1),
			      "Bsend payload");
			h = mix_bytes(h, in, sizeof in);
		}
		/* ---- Probe / Iprobe, then a receive of the probed size ---- */
		for (int k = 9; k <= 12; k++) {
			int64_t out[32], *in;
			int cnt, ln = plen(rank, it, k);
			MPI_Request rq, rr;
			MPI_Message msg;

			fill(out, ln, rank, it, k);
			MPI_OK(MPI_Isend(out, ln, MPI_INT64_T, right, b + k, MPI_COMM_WORLD, &rq));
			flag = 0;
			switch (k) {
			case 9:
				MPI_OK(MPI_Probe(MPI_ANY_SOURCE, b + k, MPI_COMM_WORLD, &st));
				break;
			case 10:
				while (!flag)
					MPI_OK(MPI_Iprobe(MPI_ANY_SOURCE, b + k, MPI_COMM_WORLD, &flag, &st));
				break;
			case 11:
				MPI_OK(MPI_Mprobe(MPI_ANY_SOURCE, b + k, MPI_COMM_WORLD, &msg, &st));
				break;
			case 12:
				while (!flag)
					MPI_OK(MPI_Improbe(MPI_ANY_SOURCE, b + k, MPI_COMM_WORLD, &flag, &msg, &st));
				break;
			}
			MPI_Get_count(&st, MPI_INT64_T, &cnt);
			CHECK(cnt >= 1 && cnt <= 32, "probed count %d", cnt);
			in = malloc(sizeof *in * (size_t)cnt);
			CHECK(in != NULL, "out of memory");
			int src = st.MPI_SOURCE;
			if (k <= 10) {
				MPI_OK(MPI_Recv(in, cnt, MPI_INT64_T, src, b + k, MPI_COMM_WORLD, &st));
			} else if (k == 11) {
				MPI_OK(MPI_Mrecv(in, cnt, MPI_INT64_T, &msg, &st));
			} else {
				MPI_OK(MPI_Imrecv(in, cnt, MPI_INT64_T, &msg, &rr));
				MPI_OK(MPI_Wait(&rr, &st));
			}
			CHECK(st.MPI_SOURCE == src, "received from %d after probing %d", st.MPI_SOURCE, src);
			h = check_probed(in, cnt, src, it, k, h);
			free(in);
			MPI_OK(MPI_Wait(&rq, MPI_STATUS_IGNORE));
		}
		/* ---- Waitany + Testsome + Testall ---- */
		for (int round = 0; round < 2; round++) {
			int tag = b + 13 + round, m = 0, done = 0, outc;
			for (int q = 0; q < size; q++) {
				set_in[q] = -1;
				if (q == rank) {
					rset[q] = sset[q] = MPI_REQUEST_NULL;
					continue;
				}
				set_out[q] = val(rank, q, it, tag);
				MPI_OK(MPI_Irecv(&set_in[q], 1, MPI_INT64_T, q, tag, MPI_COMM_WORLD, &rset[q]));
				MPI_OK(MPI_Isend(&set_out[q], 1, MPI_INT64_T, q, tag, MPI_COMM_WORLD, &sset[q]));
				m++;
			}
			if (round == 0) {
				int i;
				MPI_OK(MPI_Waitany(size, rset, &i, &st));
				CHECK(i != MPI_UNDEFINED && i != rank && st.MPI_SOURCE == i,
				      "Waitany: index %d source %d", i, st.MPI_SOURCE);
				done = 1;
				while (done < m) {
					MPI_OK(MPI_Testsome(size, rset, &outc, idx, sts));
					CHECK(outc != MPI_UNDEFINED, "Testsome: no active request left");
					for (int j = 0; j < outc; j++)
						CHECK(sts[j].MPI_SOURCE == idx[j], "Testsome: source %d at %d",
						      sts[j].MPI_SOURCE, idx[j]);
					done += outc;
				}
				flag = 0;
				while (!flag)
					MPI_OK(MPI_Testall(size, sset, &flag, MPI_STATUSES_IGNORE));
			} else {
				while (done < m) {
					MPI_OK(MPI_Waitsome(size, rset, &outc, idx, sts));
					CHECK(outc != MPI_UNDEFINED && outc > 0, "Waitsome returned %d", outc);
					done += outc;
				}
				MPI_OK(MPI_Waitall(size, sset, MPI_STATUSES_IGNORE));
			}
			CHECK(done == m, "completed %d receives of %d", done, m);
			for (int q = 0; q < size; q++) {
				CHECK(q == rank || set_in[q] == val(q, rank, it, tag), "set %d: from %d", round, q);
				h = mix(h, (uint64_t)set_in[q]);
			}
		}
		/* ---- persistent pair started one by one ---- */
		for (int k = 0; k < 4; k++)
			pers2_out[k] = val(rank, it, 2000, k);
		MPI_OK(MPI_Start(&pers2[1]));
		MPI_OK(MPI_Start(&pers2[0]));
		MPI_OK(MPI_Wait(&pers2[1], &st));
		MPI_OK(MPI_Wait(&pers2[0], MPI_STATUS_IGNORE));
		for (int k = 0; k < 4; k++)
			CHECK(pers2_in[k] == val(right, it, 2000, k), "persistent (Start) word %d", k);
		h = mix_bytes(h, pers2_in, sizeof pers2_in);

		uint64_t hi = gather_fold(h, MPI_COMM_WORLD);
		if (rank == 0) {
			total = mix(total, hi);
			printf("%d p2p=%016llx h=%016llx\n", it, (unsigned long long)hi,
			       (unsigned long long)total);
			fflush(stdout);
		}
	}

	void *ba;
	int bs;
	MPI_OK(MPI_Buffer_detach(&ba, &bs));
	CHECK(ba == bbuf && bs == bsize, "Buffer_detach returned another buffer");
	MPI_Request_free(&pers3);
	for (int k = 0; k < 2; k++) {
		MPI_Request_free(&pers1[k]);
		MPI_Request_free(&pers2[k]);
	}
	MPI_Comm_free(&comm_any);
	MPI_Comm_free(&comm_sync);
	hold_before_final(); /* every rank: none waits in MPI meanwhile */
	if (rank == 0) {
		printf("%d final %016llx\n", niter + 1, (unsigned long long)total);
		fflush(stdout);
	}
	free(bbuf);
	free(wout), free(win), free(big_out), free(big_in), free(set_in), free(set_out);
	free(wreq), free(wst), free(rset), free(sset), free(idx), free(sts);
	MPI_Finalize();
	return 0;
}
