#!/usr/bin/env bash
# mpi_replay_pending: an MPI replay restarted from a checkpoint cut while
# several wildcard receives were pending (docs/debug.md, "MPI replay").
# mpi_wildcard's HOLD step: rank 0 posts three MPI_ANY_SOURCE receives
# (tag 5) and polls the first with MPI_Test while the senders wait 4 s;
# the checkpoint is requested when rank 0 says so, the job is killed a few
# steps later, and the restart replays. Each receive must be posted again
# with its recorded source, in its order: one pinned only when first
# polled sat behind the others, posted again as wildcards, which took its
# message, and the restart waited for ever. The restart must run to its
# end and print what the killed run printed after the checkpoint.
# FLAVOUR=mpich (default) or openmpi.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
_mpi_options --runtime --trigger mpirun
mpi_setup "$FL"
MPI_NP=4
HOLD=4
_mpi_program mpi_wildcard 12 1 "$HOLD"

mkdirs "$WORK/run" "$WORK/ck"
hold_arm
mpi_start "$WORK/run" "$WORK/run1.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_MPI_RECORD=1 -- "${MPI_CKPTCMD[@]}"
deadline=$((SECONDS + 60))
until grep -q "hold at step $HOLD" "$WORK/run1.out.err" 2>/dev/null; do
	_alive "$MPI_PID" || fail "the job ended before rank 0 held at step $HOLD"
	[ "$SECONDS" -lt "$deadline" ] || fail "rank 0 did not hold at step $HOLD within 60 s"
	sleep 0.02
done
mpi_request_ckpt "$WORK/ck" "$WORK/run1.out"
[ "$(last_step_of "$WORK/run1.out")" -lt "$HOLD" ] ||
	fail "the checkpoint committed after step $HOLD was printed: not cut with the receives pending"
lo=$REQ_STEP hi=$((HOLD - 1))
mpi_wait_step "$WORK/run1.out" $((HOLD + 2))
mpi_kill_job
log "checkpoint generation $GEN cut at step $HOLD with the receives pending; killed at step $(last_step_of "$WORK/run1.out")"
mpi_run "$WORK/run" "$WORK/restart.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "${MPI_CKPTCMD[@]}"
grep -q 'MPI replay diverged' "$WORK/restart.out.err" &&
	fail "the restart's replay diverged: $(grep -m1 'MPI replay diverged' "$WORK/restart.out.err")"
_mpi_check_resume "$WORK/restart.out" "$lo" "$hi"
merge_steps "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
grep -Eq '^[0-9]+ final' "$WORK/merged.out" || fail "the restart did not run to its end"
first=$(first_step_of "$WORK/restart.out")
again=$(awk -v f="$first" '{ s = $1 } s ~ /^[0-9]+$/ && s + 0 >= f' "$WORK/run1.out")
[ -n "$again" ] || fail "the killed run printed nothing after the checkpoint"
diff <(echo "$again") <(head -n "$(echo "$again" | wc -l)" "$WORK/restart.out") > "$WORK/diff" ||
	fail "the restart did not print what the killed run printed after the checkpoint: $(head -c 600 "$WORK/diff")"
log "the restart replayed steps $first-$(last_step_of "$WORK/run1.out") as recorded and ran to its end"
