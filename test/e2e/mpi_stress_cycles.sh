#!/usr/bin/env bash
# mpi_stress_cycles: checkpoint / SIGKILL / restart cycles (issue 7, "A cut
# that never loses").  CYCLES times: (re)start the job (the first time from
# scratch, then from the latest generation), wait until it has printed a
# step (a restart: its first step, which must be the one after the cut of
# the generation it restarted), request a checkpoint (alternately
# "ckptmpi checkpoint DIR" and SIGUSR1: to mpirun, or to the process in
# MODE=single), wait for the commit, SIGKILL every process of the job at a
# random moment 0-0.5 s later.  Then the last restart runs to the end.  The
# outputs of all runs, merged run by run (merge_steps: what a run printed
# after the cut must be exactly what the next one printed first), must
# equal a plain run's.
#
#   MODE=mpi (default): "mpirun -np NP ckptmpi-runtime-FLAVOUR PROG NITER
#       SLEEP_MS", unmodified, restarted with CKPTMPI_RESTART=latest; with
#       DELAY_US > 0 through the race-delays shim.
#   MODE=single: "ckptmpi run --dir DIR -- threads NITER SLEEP_MS" (the
#       program of basic_threads), restarted with "ckptmpi restart DIR".
#
# Env: MODE, FLAVOUR (mpich), NP (4), PROG (mpi_p2p), CYCLES (8), SLEEP_MS
# (50; single: 100), NITER (default: enough for CYCLES cycles), DELAY_US (0),
# STRESS_SEED; see stress_lib.sh.
# shellcheck disable=SC2034,SC2012  # MPI_*, STRESS_*: read by the libraries; ls only for messages
source "$(dirname "${BASH_SOURCE[0]}")/stress_lib.sh"
MODE=${MODE:-mpi}
CYCLES=${CYCLES:-8}
if [ "$MODE" = single ]; then SLEEP=${SLEEP_MS:-100}; else SLEEP=${SLEEP_MS:-50}; fi
NITER=${NITER:-$((CYCLES * 6 + 30))}
DELAY_US=${DELAY_US:-0}
ms=0
declare -a OUTS=()

_cycles_summary() {
    local mean max n
    read -r mean max n <<<"$(stress_pauses "${OUTS[@]/%/.err}")"
    STRESS_SUMMARY="cycles $1: $STRESS_ATTEMPTS of $CYCLES cycles, $STRESS_FAILS failures, total $((SECONDS - STRESS_T0)) s, mean checkpoint pause $mean s (max $max s)"
    STRESS_EXTRA="mean_pause=$mean max_pause=$max"
}

# _cycle_check_gen G: the generation just committed must verify (counted).
_cycle_check_gen() {
    ck verify "$WORK/ck" --generation "$1"
    [ "$RC" -eq 0 ] ||
        stress_failure "cycle $c: ckptmpi verify $WORK/ck --generation $1 exited $RC: $(snip "$WORK/ck.err" 400)"
}

if [ "$MODE" = single ]; then
    stress_init "cycles-single"
    export CKPTMPI_VERBOSE=${CKPTMPI_VERBOSE:-1}
    need_prog threads
    PROG_CMD=("$PROGS/threads" "$NITER" "$SLEEP")
    mkdirs "$WORK/ref" "$WORK/run" "$WORK/ck"
    plain_bg "$WORK/ref" "$WORK/ref.out" -- "${PROG_CMD[@]}"
    ref_pid=$REF_PID
    lo='' hi=''
    for ((c = 1; c <= CYCLES; c++)); do
        _cycles_summary single
        out=$WORK/run$c.out
        OUTS+=("$out")
        if [ "$c" -eq 1 ]; then
            hold_arm
            run_bg "$WORK/run" "$out" "$WORK/ck" -- "${PROG_CMD[@]}"
            wait_step "$out" 1 "$JOB_PID" "$CMD_TIMEOUT"
        else
            hold_arm
            restart_bg "$WORK/run" "$out" "$WORK/ck"
            wait_step "$out" 0 "$JOB_PID" "$CMD_TIMEOUT"
            _mpi_check_resume "$out" "$lo" "$hi"
        fi
        STRESS_ATTEMPTS=$c
        before=$(mpi_latest_gen "$WORK/ck")
        lo=$(last_step_of "$out")
        if [ $((c % 2)) -eq 1 ]; then
            log "cycle $c: ckptmpi checkpoint $WORK/ck at step $lo"
            ckpt "$WORK/ck"
        else
            log "cycle $c: kill -USR1 $JOB_PID at step $lo"
            kill -USR1 "$JOB_PID" || fail "cycle $c: cannot signal $JOB_PID"
            wrc=0
            MPI_PID='' stress_wait_new_gen "$WORK/ck" "$before" "$CMD_TIMEOUT" || wrc=$?
            [ "$wrc" -ne 2 ] || fail "cycle $c: the program ended after SIGUSR1 without a generation: $(snip "$out.err" 400)"
            [ "$wrc" -eq 0 ] || fail "cycle $c: no generation in $CMD_TIMEOUT s after SIGUSR1"
        fi
        hi=$(last_step_of "$out")
        [ "$GEN" -eq $((before + 1)) ] || stress_failure "cycle $c: generation $GEN after $before"
        stress_no_second "$WORK/ck" "$GEN" "cycle $c" || true
        rand_int ms 0 500
        sleep "$(ms_to_s "$ms")"
        grep -Eq '^[0-9]+ final' "$out" && fail "cycle $c: the program finished before the kill: raise NITER (now $NITER)"
        log "cycle $c: generation $GEN (requested at step $lo, committed by step $hi); kill -9 $ms ms later at step $(last_step_of "$out")"
        kill_job "$JOB_PID"
        _cycle_check_gen "$GEN"
    done
    restart_fg "$WORK/run" "$WORK/last.out" "$WORK/ck"
    _mpi_check_resume "$WORK/last.out" "$lo" "$hi"
    wait_exit "$ref_pid" "reference run"
    stress_merge_chain "$WORK/merged.out" "${OUTS[@]}" "$WORK/last.out"
    same_file "$WORK/ref.out" "$WORK/merged.out" "stdout ($CYCLES killed runs + the last restart, merged)"
    _cycles_summary single
    stress_finish
    exit 0
fi

[ "$MODE" = mpi ] || fail "MODE=$MODE: mpi or single"
FL=${FLAVOUR:-mpich}
PROG=${PROG:-mpi_p2p}
stress_init "cycles-$FL-$PROG"
stress_mpi_setup "$FL"
MPI_NP=${NP:-4}
MPI_MODE=runtime
_mpi_program "$PROG" "$NITER" "$SLEEP"
log "cycles: $FL, $MPI_NP ranks, $PROG $NITER $SLEEP, $CYCLES cycles"
_mpi_reference
stress_race_env "$DELAY_US"
mkdirs "$WORK/run" "$WORK/ck"
lo='' hi=''
for ((c = 1; c <= CYCLES; c++)); do
    _cycles_summary "$FL $PROG"
    out=$WORK/run$c.out
    OUTS+=("$out")
    if [ "$c" -eq 1 ]; then
        hold_arm
        mpi_start "$WORK/run" "$out" CKPTMPI_DIR="$WORK/ck" -- "${MPI_CKPTCMD[@]}"
        mpi_wait_step "$out" 1
    else
        hold_arm
        mpi_start "$WORK/run" "$out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "${MPI_CKPTCMD[@]}"
        mpi_wait_step "$out" 0
        _mpi_check_resume "$out" "$lo" "$hi"
    fi
    STRESS_ATTEMPTS=$c
    if [ $((c % 2)) -eq 1 ]; then MPI_TRIGGER="command"; else MPI_TRIGGER="mpirun"; fi
    before=$(mpi_latest_gen "$WORK/ck")
    mpi_request_ckpt "$WORK/ck" "$out"
    lo=$REQ_STEP
    hi=$(last_step_of "$out")
    [ "$GEN" -eq $((before + 1)) ] || stress_failure "cycle $c ($MPI_TRIGGER): generation $GEN after $before"
    stress_no_second "$WORK/ck" "$GEN" "cycle $c ($MPI_TRIGGER)" || true
    rand_int ms 0 500
    sleep "$(ms_to_s "$ms")"
    grep -Eq '^[0-9]+ final' "$out" && fail "cycle $c: the job finished before the kill: raise NITER (now $NITER)"
    log "cycle $c: generation $GEN (requested at step $lo, committed by step $hi); kill -9 of the job $ms ms later, at step $(last_step_of "$out")"
    mpi_kill_job
    stress_strip_trailer "$out"
    _cycle_check_gen "$GEN"
done
mpi_check_generation "$WORK/ck" "$GEN" "$MPI_NP"
mpi_run "$WORK/run" "$WORK/last.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "${MPI_CKPTCMD[@]}"
OUTS+=("$WORK/last.out")
_mpi_check_resume "$WORK/last.out" "$lo" "$hi"
stress_merge_chain "$WORK/merged.out" "${OUTS[@]}"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout ($CYCLES killed runs + the last restart, merged)" "the plain run"
_cycles_summary "$FL $PROG"
stress_finish
