#!/usr/bin/env bash
# mpi_ckpt_finalizing: a checkpoint asked for while the other ranks are in
# MPI_Finalize and rank 0 still works (test/mpi/mpi_finalize_late.c, rank 0
# held there by the harness's hold) is refused, and said so: SIGUSR1 to a
# finalizing rank prints "no checkpoint: the program is finalizing" on
# that rank at the default verbosity; `ckptmpi checkpoint DIR` (served by
# rank 0) exits non-zero naming the finalizing; no generation is made; the
# job then ends normally, its output that of a plain run.
# FLAVOUR=mpich (default) or openmpi.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
mpi_setup "$FL"
need_prog "mpi_finalize_late_$FL"
MPI_NP=3
RT=$BUILD/bin/ckptmpi-runtime-$FL
[ -x "$RT" ] || skip "$FL flavour not built"
PROG=("$PROGS/mpi_finalize_late_$FL" 5 50 5)
mkdirs "$WORK/ref" "$WORK/run" "$WORK/ck"
mpi_run "$WORK/ref" "$WORK/ref.out" -- "${PROG[@]}"

hold_arm
mpi_start "$WORK/run" "$WORK/run.out" CKPTMPI_DIR="$WORK/ck" -- "$RT" "${PROG[@]}"
deadline=$((SECONDS + 120))
until hold_reached; do
    _alive "$MPI_PID" || fail "the job ended before rank 0 reached its hold: $(_mpi_first_error "$WORK/run.out.err")"
    [ "$SECONDS" -lt "$deadline" ] || fail "rank 0 did not reach its hold in 120 s (last step $(last_step_of "$WORK/run.out"))"
    sleep 0.05
done
log "rank 0 holds after its post lines (last step $(last_step_of "$WORK/run.out")); the other ranks finalize"

# SIGUSR1 to the last rank: refused there, in a line of its own
pid=$(mpi_rank_pid $((MPI_NP - 1))) || fail "no process of rank $((MPI_NP - 1))"
errsz=$(stat -c %s "$WORK/run.out.err")
log "kill -USR1 rank $((MPI_NP - 1)) (pid $pid)"
kill -USR1 "$pid"
deadline=$((SECONDS + 30))
until tail -c +"$((errsz + 1))" "$WORK/run.out.err" | grep -q "^ckptmpi\[$((MPI_NP - 1))\]: no checkpoint: the program is finalizing"; do
    [ "$SECONDS" -lt "$deadline" ] ||
        fail "rank $((MPI_NP - 1)) did not say the request was refused in 30 s: $(tail -c +"$((errsz + 1))" "$WORK/run.out.err" | head -c 600)"
    sleep 0.05
done
log "refused: $(tail -c +"$((errsz + 1))" "$WORK/run.out.err" | head -n 3 | tr '\n' ' ')"

# the command, served by rank 0 (which is not finalizing): an error too
ck checkpoint "$WORK/ck"
[ "$RC" -ne 0 ] || fail "ckptmpi checkpoint of a finalizing job exited 0: $(snip "$WORK/ck.out")"
grep -q "finaliz" "$WORK/ck.err" || fail "ckptmpi checkpoint (exit $RC) does not say why: $(snip "$WORK/ck.err")"
log "ckptmpi checkpoint exited $RC: $(snip "$WORK/ck.err" 300)"
[ -z "$(gens_in "$WORK/ck")" ] || fail "a generation was made: $(gens_in "$WORK/ck" | tr '\n' ' ')"

hold_release
mpi_wait_gone "the job after its hold" 60
[ "$RC" -eq 0 ] || fail "mpirun exited $RC after the refusals: $(_mpi_first_error "$WORK/run.out.err")"
same_file "$WORK/ref.out" "$WORK/run.out" "stdout"
