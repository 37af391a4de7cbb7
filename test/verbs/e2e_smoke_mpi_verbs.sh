#!/usr/bin/env bash
# e2e_smoke_mpi_verbs: an MPI program that also drives verbs itself
# (smoke_mpi_verbs: QP numbers and rkeys exchanged over MPI, RDMA writes
# and sends over verbs, an MPI_Allreduce a step; issue 9, item 6), two
# ranks of MPICH under ckptmpi-runtime-mpich with the verbs shadow in the
# upper half (CKPTMPI_PRELOAD: the shadow; the runtime adds the MPI shim
# after it), checkpointed
# mid-run, SIGKILLed, restarted: the job's output (run + restart) is
# that of an uninterrupted run (the same program under mpirun with the
# shadow preloaded). The MPI cut and the verbs cut are taken together; the
# verbs tables go through MPI_Allgather at the restart. Rank 0 prints the
# steps; either rank's failed check aborts the job.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
MPI_CASE_TIMEOUT=${MPI_CASE_TIMEOUT:-100}
MPI_RUN_TIMEOUT=${MPI_RUN_TIMEOUT:-60}
MPI_ENV=()
mpi_setup "$FL"
MPI_NP=2
orig=${CKPTMPI_BUILD:-$SRC_DIR/build}
VL=$BUILD/lib/libckptmpi-verbs.so
[ -f "$VL" ] || skip "the software verbs device is not built"
SHIM=$BUILD/lib/ckptmpi/$FL/libckptmpi.so
[ -f "$SHIM" ] || skip "the MPI shim of $FL is not built"
PROG=$BUILD/test/verbs/smoke_mpi_verbs_$FL
if [ ! -x "$PROG" ] && [ -x "$orig/test/verbs/smoke_mpi_verbs_$FL" ]; then
    mkdir -p "$BUILD/test/verbs"
    cp -a "$orig/test/verbs/smoke_mpi_verbs_$FL" "$BUILD/test/verbs/"
    chmod -R a+rX "$BUILD/test"
fi
[ -x "$PROG" ] || fail "test program not built: $PROG"
RT=$BUILD/bin/ckptmpi-runtime-$FL
STEPS=${STEPS:-400}
dir=$WORK/ckpt
mkdirs "$dir" "$WORK/ref" "$WORK/ck"

mpi_run "$WORK/ref" "$WORK/ref.out" LD_PRELOAD="$VL" -- "$PROG" "$STEPS" 10
mpi_start "$WORK/ck" "$WORK/run.out" CKPTMPI_DIR="$dir" CKPTMPI_PRELOAD="$VL" -- \
    "$RT" "$PROG" "$STEPS" 10
wait_step "$WORK/run.out" 40 "$MPI_PID"
ckpt "$dir"
after=$(last_step_of "$WORK/run.out")
wait_step "$WORK/run.out" "$((after + 5))" "$MPI_PID"
finished "$WORK/run.out" "$STEPS" && fail "the job finished before it could be killed (raise STEPS)"
mpi_kill_job
mpi_run "$WORK/ck" "$WORK/restart.out" CKPTMPI_DIR="$dir" CKPTMPI_RESTART="$GEN" \
    CKPTMPI_PRELOAD="$VL" -- "$RT"
check_resume "$WORK/restart.out" 41 "$((after + 1))"
merge_outputs "$WORK/run.out" "$WORK/restart.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run + restart)"
log "PASS"
