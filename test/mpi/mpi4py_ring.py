"""mpi4py_ring: point-to-point and collectives through mpi4py, per iteration,
with a receive and a send pending across the sleep.

    mpirun -np N python3 mpi4py_ring.py [NITER=30] [SLEEP_MS=100]

Rank 0 prints "0 ..." then one line per iteration ("IT ring=... h=...")
and "NITER+1 final CHECKSUM"; every value printed comes from data received
through MPI (buffer-based Isend/Irecv with MPI.ANY_SOURCE, pickled
sendrecv, bcast, allreduce, gather, alltoall, a Split communicator's
allgather, scan), and is checked against what it must be."""
import sys
import time
from array import array

from mpi4py import MPI

from hold_end import hold_before_final  # beside it in BUILD/test/programs

M64 = (1 << 64) - 1


def mix(h, v):
    h = (h ^ ((v + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2)) & M64)) & M64
    h = (h * 0x100000001B3) & M64
    return h ^ (h >> 29)


def val(*xs):
    h = 17
    for x in xs:
        h = mix(h, x & M64)
    return h >> 2


def check(cond, what):
    if not cond:
        sys.stderr.write("mpi4py_ring: check failed: %s\n" % what)
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(3)


def main():
    niter = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    ms = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    check(size >= 2, "needs at least 2 ranks")
    left, right = (rank - 1) % size, (rank + 1) % size
    half = comm.Split(rank % 2, rank)
    total = 0
    if rank == 0:
        print("0 mpi4py_ring np=%d niter=%d" % (size, niter), flush=True)
    for it in range(1, niter + 1):
        h = mix(0, it)
        # posted before the sleep, completed after it
        out = array("q", [val(rank, it, k) for k in range(8)])
        inb = array("q", [-1] * 8)
        st = MPI.Status()
        rreq = comm.Irecv([inb, MPI.INT64_T], source=MPI.ANY_SOURCE, tag=it % 1000)
        sreq = comm.Isend([out, MPI.INT64_T], dest=right, tag=it % 1000)
        time.sleep(ms / 1000.0)
        rreq.Wait(st)
        sreq.Wait()
        check(st.Get_source() == left, "ANY_SOURCE receive from %d" % st.Get_source())
        check(list(inb) == [val(left, it, k) for k in range(8)], "ring payload")
        for x in inb:
            h = mix(h, x)
        # pickled objects
        got = comm.sendrecv({"r": rank, "it": it, "v": [val(rank, it, 99)]}, dest=left,
                            source=right)
        check(got == {"r": right, "it": it, "v": [val(right, it, 99)]}, "sendrecv object")
        h = mix(h, got["v"][0])
        root = it % size
        b = comm.bcast(("b", it, val(root, it, 7)) if rank == root else None, root=root)
        check(b == ("b", it, val(root, it, 7)), "bcast")
        h = mix(h, b[2])
        s = comm.allreduce(rank * 10 + it, op=MPI.SUM)
        check(s == sum(r * 10 + it for r in range(size)), "allreduce")
        h = mix(h, s)
        g = comm.gather(val(rank, it, 5), root=0)
        if rank == 0:
            check(g == [val(r, it, 5) for r in range(size)], "gather")
            for x in g:
                h = mix(h, x)
        a = comm.alltoall([val(rank, j, it) for j in range(size)])
        check(a == [val(j, rank, it) for j in range(size)], "alltoall")
        for x in a:
            h = mix(h, x)
        ag = half.allgather(rank)
        check(ag == list(range(rank % 2, size, 2)), "split allgather")
        h = mix(h, sum(ag))
        sc = comm.scan(it + rank, op=MPI.SUM)
        check(sc == sum(it + r for r in range(rank + 1)), "scan")
        h = mix(h, sc)
        hs = comm.gather(h, root=0)
        if rank == 0:
            hi = 0
            for x in hs:
                hi = mix(hi, x)
            total = mix(total, hi)
            print("%d ring=%016x h=%016x" % (it, hi, total), flush=True)
    half.Free()
    hold_before_final()  # every rank: none waits in MPI meanwhile
    if rank == 0:
        print("%d final %016x" % (niter + 1, total), flush=True)


main()
