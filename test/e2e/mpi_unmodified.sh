#!/usr/bin/env bash
# mpi_unmodified: programs nobody here wrote, unmodified, run through
# ckptmpi on OpenMPI (Debian builds them against it) as
# `mpirun -np N ckptmpi-runtime-openmpi PROGRAM`:
#   - python3 with mpi4py: output identical to the native run;
#   - hpcc: every check it makes passes (Success=1, no FAILED line, no
#     failed residual check), it completes the same sections as natively
#     (how many PTRANS rows it prints depends on timing), and the ranks
#     really ran with MPI in the lower half.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
RT=$BUILD/bin/ckptmpi-runtime-openmpi
[ -x "$RT" ] || skip "OpenMPI flavour not built"
MPIRUN=(mpirun.openmpi --oversubscribe)
ran=0

in_work() { # DIR OUT CMD...
	local dir=$1 out=$2; shift 2
	(cd "$dir" && exec timeout -s KILL 300 "${AS_USER[@]}" "$@") >"$out" 2>"$out.err" </dev/null ||
		fail "$* failed: $(snip "$out.err" 800)"
}

if /usr/bin/python3 -c 'import mpi4py' 2>/dev/null; then
	cat >"$WORK/m4.py" <<'PY'
from mpi4py import MPI
c = MPI.COMM_WORLD
r, s = c.Get_rank(), c.Get_size()
tot = c.allreduce(r + 1, op=MPI.SUM)
data = c.bcast({"k": [1, 2, 3]} if r == 0 else None, root=0)
nxt = c.sendrecv(r, dest=(r + 1) % s, source=(r - 1) % s)
sub = c.Split(r % 2, r)
g = sub.allgather(r)
req = c.isend(r * r, dest=(r + 1) % s, tag=7)
got = c.recv(source=MPI.ANY_SOURCE, tag=7)
req.wait()
vals = c.gather(got, root=0)
if r == 0:
    print("size", s, "sum", tot, "bcast", data, "left", nxt, "sub", g, "gathered", sorted(vals))
PY
	chmod 644 "$WORK/m4.py"
	in_work "$WORK" "$WORK/m4.native" "${MPIRUN[@]}" -np 3 /usr/bin/python3 m4.py
	in_work "$WORK" "$WORK/m4.ckpt" env CKPTMPI_VERBOSE=2 "${MPIRUN[@]}" -np 3 "$RT" /usr/bin/python3 m4.py
	same_file "$WORK/m4.native" "$WORK/m4.ckpt" "mpi4py output"
	[ "$(grep -c 'initialised in the lower half: rank [0-9]* of 3, thread level 3$' "$WORK/m4.ckpt.err")" = 3 ] ||
		fail "mpi4py: the runtime's MPI is not at MPI_THREAD_MULTIPLE on every rank: $(grep 'thread level' "$WORK/m4.ckpt.err" | head -3)"
	ran=$((ran + 1))
else
	log "python3-mpi4py not installed: mpi4py part skipped"
fi

if command -v hpcc >/dev/null; then
	for d in nat ck; do
		mkdir -p "$WORK/$d"
		cp /usr/share/doc/hpcc/examples/_hpccinf.txt "$WORK/$d/hpccinf.txt"
		sed -i '6s/^[0-9]*/300/; 8s/^[0-9]*/50/; 11s/^[0-9]*/1/; 12s/^[0-9]*/2/' "$WORK/$d/hpccinf.txt"
		chmod -R a+rwX "$WORK/$d"
	done
	in_work "$WORK/nat" "$WORK/hpcc.native" "${MPIRUN[@]}" -np 2 hpcc
	in_work "$WORK/ck" "$WORK/hpcc.ckpt" env CKPTMPI_VERBOSE=2 "${MPIRUN[@]}" -np 2 "$RT" "$(command -v hpcc)"
	grep -q '^Success=1' "$WORK/ck/hpccoutf.txt" || fail "hpcc under ckptmpi did not succeed: $(snip "$WORK/ck/hpccoutf.txt" 600)"
	! grep -q FAILED "$WORK/ck/hpccoutf.txt" || fail "an hpcc check FAILED under ckptmpi"
	grep -q PASSED "$WORK/ck/hpccoutf.txt" || fail "hpcc under ckptmpi passed no check"
	[ "$(grep -c 'initialised in the lower half: rank [0-9]* of 2, thread level 0$' "$WORK/hpcc.ckpt.err")" = 2 ] ||
		fail "hpcc calls MPI_Init: the runtime's MPI is not at MPI_THREAD_SINGLE on both ranks: $(grep 'thread level' "$WORK/hpcc.ckpt.err" | head -2)"
	if grep 'tests completed and failed residual checks' "$WORK/ck/hpccoutf.txt" | grep -qv '^ *0 '; then
		fail "hpcc residual checks failed under ckptmpi"
	fi
	sections() { grep -E '^End of .* section' "$1" | sort -u; }
	diff <(sections "$WORK/nat/hpccoutf.txt") <(sections "$WORK/ck/hpccoutf.txt") >"$WORK/sections.diff" ||
		fail "hpcc completed other sections under ckptmpi: $(snip "$WORK/sections.diff" 600)"
	n_ck=$(sections "$WORK/ck/hpccoutf.txt" | wc -l)
	n=$(grep -c 'initialised in the lower half' "$WORK/hpcc.ckpt.err" || true)
	[ "$n" -eq 2 ] || fail "expected 2 ranks with MPI in the lower half, saw $n"
	log "hpcc: Success=1, no failed check, the same $n_ck sections completed as natively"
	ran=$((ran + 1))
else
	log "hpcc not installed: hpcc part skipped"
fi
[ "$ran" -gt 0 ] || skip "neither python3-mpi4py nor hpcc installed"
log "PASS"
