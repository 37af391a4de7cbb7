#!/usr/bin/env bash
# mpi_ckpt_create_window: a checkpoint asked for while rank 0 of a new
# communicator is already in its first collective and the other members
# are still inside the call that creates it. Those members learn the
# communicator after the cut's round, and must still follow rank 0 into
# that collective; before the fix they stopped short of it, rank 0 waited
# in it, and the cut gave up at CKPTMPI_CUT_TIMEOUT (CI, 2026-12-01,
# storm_openmpi_comms). The race-delays shim makes the window wide and
# certain (CKPTMPI_RACE_CREATE_DELAY_US: every member but rank 0 of a new
# communicator sleeps 300 ms before it learns its name); mpi_comms opens
# two such windows an iteration (Comm_dup, Comm_create_group, each
# followed by an Allreduce on the new communicator).
# Open MPI, 4 ranks, unmodified through the runtime: checkpoints until the
# cut has met the window twice (its debug line), kill, restart from the
# last, merged output = plain run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
_mpi_options --runtime --trigger mpirun
mpi_setup openmpi
SHIM=$BUILD/lib/ckptmpi/$MPI_FL/race-delays/libckptmpi.so
[ -f "$SHIM" ] || skip "the race-delays shim is not built (-DCKPTMPI_RACE_DELAYS=OFF): $SHIM"
MPI_NP=4
_mpi_program mpi_comms 20 0
_mpi_reference
# the cut's debug lines (mpi_request_ckpt then waits for the commit, not
# for the first line on stderr)
export CKPTMPI_VERBOSE=2
mkdirs "$WORK/run" "$WORK/ck"
hold_arm
mpi_start "$WORK/run" "$WORK/run1.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_KEEP=2 \
	CKPTMPI_PRELOAD="$SHIM" CKPTMPI_RACE_CREATE_DELAY_US=300000 \
	CKPTMPI_CUT_TIMEOUT=20 -- "${MPI_CKPTCMD[@]}"
mpi_wait_step "$WORK/run1.out" 2
met=0
for i in 1 2 3 4 5 6; do
	mpi_request_ckpt "$WORK/ck" "$WORK/run1.out"
	met=$(grep -c 'made since the round' "$WORK/run1.out.err" || true)
	log "checkpoint $i: generation $GEN; the cut met a communicator made since its round $met time(s)"
	[ "$met" -lt 2 ] || break
	mpi_wait_step "$WORK/run1.out" $(($(last_step_of "$WORK/run1.out") + 1))
done
[ "$met" -ge 1 ] || fail "6 checkpoints and none fell in a creation window: the test does not test"
CKPT_AFTER=$(last_step_of "$WORK/run1.out")
lo=$REQ_STEP hi=$CKPT_AFTER
mpi_wait_step "$WORK/run1.out" $((CKPT_AFTER + 1))
grep -Eq '^[0-9]+ final' "$WORK/run1.out" && fail "the job finished before it could be killed"
mpi_kill_job
mpi_check_generation "$WORK/ck" "$GEN" "$MPI_NP"
mpi_run "$WORK/run" "$WORK/restart.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest \
	CKPTMPI_PRELOAD="$SHIM" -- "${MPI_CKPTCMD[@]}"
_mpi_check_resume "$WORK/restart.out" "$lo" "$hi"
merge_steps "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run + restart)" "the plain run"
