#!/usr/bin/env bash
# mpi_replay_diverge: a replay that cannot follow its log is said, not run
# on.  A run of mpi_wildcard is recorded (CKPTMPI_MPI_RECORD=1); a fresh
# run replaying that log (CKPTMPI_MPI_REPLAY=DIR) with the same input
# prints exactly what the recorded run printed; one with another input
# (messages of another size) stops at its first wildcard receive with one
# line naming the rank, the call, the receive and what was recorded vs.
# seen, and exits 86; a log that is not there is an error, not a live run.
# FLAVOUR=mpich (default) or openmpi.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
_mpi_options --runtime
mpi_setup "$FL"
MPI_NP=3
_mpi_program mpi_wildcard 12 1
rt=("${MPI_CKPTCMD[0]}" "${MPI_CKPTCMD[1]}")
mkdirs "$WORK/run" "$WORK/ck" "$WORK/ck2" "$WORK/ck3"

mpi_run "$WORK/run" "$WORK/rec.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_MPI_RECORD=1 -- "${rt[@]}" 12 1
[ -s "$WORK/ck/replay/mpi.rank-0.log" ] || fail "no MPI replay log for rank 0 in $WORK/ck/replay"

mpi_run "$WORK/run" "$WORK/same.out" CKPTMPI_DIR="$WORK/ck2" CKPTMPI_MPI_REPLAY="$WORK/ck" -- "${rt[@]}" 12 1
same_file "$WORK/rec.out" "$WORK/same.out" "the replay's stdout" "the recorded run's"

# another input: the job must stop, saying why
mpi_start "$WORK/run" "$WORK/other.out" CKPTMPI_DIR="$WORK/ck3" CKPTMPI_MPI_REPLAY="$WORK/ck" -- "${rt[@]}" 12 2
mpi_wait_gone "the replay of another input" 60
[ "$RC" -ne 0 ] || fail "the replay of another input ran to its end (mpirun exited 0): $(tail -n 2 "$WORK/other.out" | tr '\n' ' ')"
line=$(grep -m 1 'MPI replay diverged' "$WORK/other.out.err" || true)
[ -n "$line" ] || fail "mpirun exited $RC without a divergence line: $(_mpi_first_error "$WORK/other.out.err")"
log "said: $line"
[[ $line =~ ^ckptmpi\[0\]:\ MPI\ replay\ diverged\ in\ MPI_Recv,\ wildcard\ receive\ 1\ got\ a\ message\ from\ [0-9]+\ tag\ 1,\ 8\ bytes\ where\ the\ recorded\ run\ got\ one\ from\ [0-9]+\ tag\ 1,\ 4\ bytes\ \(record\ at\ offset\ [0-9]+,\ log\ .*/ck/replay/mpi.rank-0.log\)$ ]] ||
	fail "the divergence line does not name rank 0, MPI_Recv, the receive, the log position and 8 vs. 4 bytes: $line"
[ "$(grep -c 'MPI replay diverged' "$WORK/other.out.err")" = 1 ] || fail "more than one divergence line"
grep -Eq '^[0-9]+ ' "$WORK/other.out" && fail "the replay of another input printed steps: $(head -n 1 "$WORK/other.out")"

# no log there: an error naming it
mpi_start "$WORK/run" "$WORK/none.out" CKPTMPI_DIR="$WORK/ck3" CKPTMPI_MPI_REPLAY="$WORK/nothing" -- "${rt[@]}" 12 1
mpi_wait_gone "the replay without a log" 60
[ "$RC" -ne 0 ] || fail "a replay without a log ran (mpirun exited 0)"
grep -q "MPI replay log $WORK/nothing/mpi.rank-0.log: cannot open (CKPTMPI_MPI_REPLAY)" "$WORK/none.out.err" ||
	fail "no clear error for a missing log: $(_mpi_first_error "$WORK/none.out.err")"
log "PASS: same input replayed exactly; another input and a missing log stopped with a message"
