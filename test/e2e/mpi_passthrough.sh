#!/usr/bin/env bash
# mpi_passthrough: an MPI program runs through ckptmpi on FLAVOUR (default
# mpich) with the real MPI in the lower half, and prints exactly what it
# prints natively: linked with -lckptmpi and started by a plain mpirun (the
# shim re-executes each rank through the runtime), and unmodified with the
# shim preloaded. A checkpoint of the running job lets it run on unchanged.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
[ -x "$BUILD/bin/ckptmpi-runtime-$FL" ] || skip "MPI flavour $FL not built"
need_prog "mpi_basic_$FL" "mpi_basic_linked_$FL"
case $FL in
	mpich) MPIRUN=(mpirun.mpich) ;;
	openmpi) MPIRUN=(mpirun.openmpi --oversubscribe) ;;
esac
SHIM=$BUILD/lib/ckptmpi/$FL/libckptmpi.so
NP=3

mpi_run() { # OUT [ENV...] -- PROGRAM ARGS
	local out=$1; shift
	local envs=()
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	log "mpirun -np $NP ${envs[*]} $*"
	(cd "$WORK" && exec timeout -s KILL 120 "${AS_USER[@]}" env "${envs[@]}" \
		"${MPIRUN[@]}" -np "$NP" "$@") >"$out" 2>"$out.err" </dev/null ||
		fail "mpirun $* failed: $(snip "$out.err" 800)"
}

mpi_run "$WORK/native.out" X=1 -- "$PROGS/mpi_basic_$FL" 12 5
grep -q '^13 final' "$WORK/native.out" || fail "the native run did not finish: $(snip "$WORK/native.out")"

mpi_run "$WORK/linked.out" CKPTMPI_DIR="$WORK/ck" -- "$PROGS/mpi_basic_linked_$FL" 12 5
same_file "$WORK/native.out" "$WORK/linked.out" "output of the program linked with -lckptmpi"

mpi_run "$WORK/preload.out" LD_PRELOAD="$SHIM" -- "$PROGS/mpi_basic_$FL" 12 5
same_file "$WORK/native.out" "$WORK/preload.out" "output of the unmodified program with the shim preloaded"

# MPI_THREAD_MULTIPLE: threads of a rank call MPI concurrently, each
# through a lower-half context of its own (and keeps its own errno); 1100
# short-lived threads, more than the 1024 contexts the runtime keeps (the
# native run of 4 threads a rank, 3 ranks on 2 cores, spins: 6 s of it)
need_prog "mpi_threads_$FL" "mpi_threads_linked_$FL"
mpi_run "$WORK/thr.native" X=1 -- "$PROGS/mpi_threads_$FL" 30 4 1100
mpi_run "$WORK/thr.linked" CKPTMPI_VERBOSE=2 -- "$PROGS/mpi_threads_linked_$FL" 30 4 1100
grep -q 'errno_ok=1' "$WORK/thr.linked" || fail "errno not kept per thread: $(snip "$WORK/thr.linked")"
same_file "$WORK/thr.native" "$WORK/thr.linked" "output of the MPI_THREAD_MULTIPLE program"

# the ranks really ran under the runtime: its log says the MPI is in the lower half
mpi_run "$WORK/verbose.out" CKPTMPI_VERBOSE=2 LD_PRELOAD="$SHIM" -- "$PROGS/mpi_basic_$FL" 2 1
n=$(grep -c 'initialised in the lower half' "$WORK/verbose.out.err" || true)
[ "$n" -eq "$NP" ] || fail "expected $NP ranks with MPI in the lower half, saw $n: $(snip "$WORK/verbose.out.err" 600)"

# `ckptmpi checkpoint DIR` checkpoints the whole job, which runs on and
# prints exactly what the native run prints (the cut drained and resumed)
# (the plain run without the 50 ms a step: mpi_basic prints the same)
mpi_run "$WORK/job.native" X=1 -- "$PROGS/mpi_basic_$FL" 40 1
(cd "$WORK" && exec "${AS_USER[@]}" env CKPTMPI_DIR="$WORK/ck2" "${MPIRUN[@]}" -np "$NP" \
	"$PROGS/mpi_basic_linked_$FL" 40 50) >"$WORK/job.out" 2>"$WORK/job.out.err" </dev/null &
job=$!
_PIDS+=("$job")
wait_step "$WORK/job.out" 3 "$job"
ck checkpoint "$WORK/ck2"
[ "$RC" -eq 0 ] || fail "checkpoint of the MPI job failed: $(snip "$WORK/ck.err")"
wait_exit "$job" "the MPI job after the checkpoint"
same_file "$WORK/job.native" "$WORK/job.out" "output of the job that was checkpointed and ran on"
verify_ok "$WORK/ck2"
log "PASS"
