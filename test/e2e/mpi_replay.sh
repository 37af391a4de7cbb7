#!/usr/bin/env bash
# mpi_replay: deterministic re-execution of an MPI job (docs/debug.md, "MPI
# replay").  mpi_wildcard prints the order its wildcard receives matched
# and how often MPI_Testany / MPI_Iprobe found nothing, so two plain runs
# differ (checked first: the case can fail).  A run under
# ckptmpi-runtime-FLAVOUR with CKPTMPI_MPI_RECORD=1 is checkpointed
# mid-run and SIGKILLed a few steps later; the generation is restarted and
# replays the log: every line the killed run printed after the checkpoint
# must come again, the same (merge_steps), and the restart runs to its end.
# FLAVOUR=mpich (default; SIGUSR1 to mpirun) or openmpi (SIGUSR1 to a rank).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
case $FL in
	mpich) trigger=mpirun ;;
	openmpi) trigger=rank ;;
	*) fail "FLAVOUR=$FL: mpich or openmpi" ;;
esac
_mpi_options --runtime --trigger "$trigger"
mpi_setup "$FL"
MPI_NP=4
_mpi_program mpi_wildcard 150

# natively, the output is not the same twice
mkdirs "$WORK/nat"
mpi_run "$WORK/nat" "$WORK/nat1.out" -- "${MPI_NATIVE[0]}" 15
mpi_run "$WORK/nat" "$WORK/nat2.out" -- "${MPI_NATIVE[0]}" 15
! cmp -s "$WORK/nat1.out" "$WORK/nat2.out" ||
	fail "two plain runs of mpi_wildcard printed the same: the program does not test the replay"

mkdirs "$WORK/run" "$WORK/ck"
mpi_start "$WORK/run" "$WORK/run1.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_MPI_RECORD=1 -- "${MPI_CKPTCMD[@]}"
_mpi_ckpt_and_kill "$WORK/run1.out"
lo=$REQ_STEP hi=$CKPT_AFTER
[ -s "$WORK/ck/replay/mpi.rank-0.log" ] || fail "no MPI replay log for rank 0 in $WORK/ck/replay"
mpi_run "$WORK/run" "$WORK/restart.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "${MPI_CKPTCMD[@]}"
grep -q 'MPI replay diverged' "$WORK/restart.out.err" &&
	fail "the restart's replay diverged: $(grep -m1 'MPI replay diverged' "$WORK/restart.out.err")"
_mpi_check_resume "$WORK/restart.out" "$lo" "$hi"
first=$(first_step_of "$WORK/restart.out")
again=$(awk -v f="$first" '{ s = $1 } s ~ /^[0-9]+$/ && s + 0 >= f' "$WORK/run1.out" | wc -l)
[ "$again" -ge 2 ] || fail "the killed run printed only $again lines after the checkpoint: nothing replayed to compare"
merge_steps "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
grep -Eq '^[0-9]+ final' "$WORK/merged.out" || fail "the restart did not run to its end"
log "the restart replayed the $again lines the recorded run printed after the checkpoint, identical"
