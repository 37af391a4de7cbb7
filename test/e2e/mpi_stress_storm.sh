#!/usr/bin/env bash
# mpi_stress_storm: a storm of checkpoint requests on one MPI job (issue 7,
# "A cut that never loses").  PROG runs on NP ranks without any sleep
# (SLEEP_MS=0), unmodified, through ckptmpi-runtime-FLAVOUR with the
# race-delays shim (CKPTMPI_PRELOAD, CKPTMPI_RACE_DELAY_US=DELAY_US: at the
# points where the runtime and a program thread meet, a thread sleeps now
# and then), CKPTMPI_KEEP=2 and a full generation every 2 (the others
# incremental, so retention keeps chains and removes the rest).  While it runs, NCKPT requests, 0.2-1 s
# apart (counted from the previous commit), each by a trigger picked at
# random: "ckptmpi checkpoint DIR", SIGUSR1 to mpirun (which forwards it to
# every rank: one generation all the same), SIGUSR1 to one random rank.
# Each request must give exactly one new generation, numbered one more
# than the previous (checked when it appears and 0.3 s later, and at the
# end against the commits the runtime logged).  At the end the job's
# output must equal a plain run's exactly, mpirun must exit 0, DIR must
# hold the last two generations and no temporary, "ckptmpi verify" must
# pass on the latest, and the latest, restarted, must run to the end and
# merge with the job's output into the plain run's.
#
# The job must outlast the storm: its NITER is sized from a short plain
# run (the load of the machine varies, though).  Should it come near its
# end with requests left, no more are made on it; it is checked as above
# and a new job (fresh directory, twice as many iterations at least) takes
# the remaining requests (at most 4 jobs); a request the job's end
# overtook (the final line out, mpirun exited 0) is not counted.
#
# Env: FLAVOUR (mpich), NP (4), PROG (mpi_p2p, mpi_colls, mpi_threads_ckpt),
# NCKPT (12), DELAY_US (300), STORM_NITER (first job's NITER), STRESS_SEED; see
# stress_lib.sh.  Prints "storm FLAVOUR PROG: N requests, N generations,
# F failures, total S s, mean checkpoint pause X s".
# shellcheck disable=SC2034,SC2012  # MPI_MODE, STRESS_*: read by the libraries; ls only for messages
source "$(dirname "${BASH_SOURCE[0]}")/stress_lib.sh"
FL=${FLAVOUR:-mpich}
PROG=${PROG:-mpi_p2p}
NCKPT=${NCKPT:-12}
DELAY_US=${DELAY_US:-300}
stress_init "storm-$FL-$PROG"
stress_mpi_setup "$FL"
MPI_NP=${NP:-4}
MPI_MODE=runtime

NREQ=0 NOK=0 NVOID=0
declare -A BYTRIG=([command]=0 [mpirun]=0 [rank]=0)
ERRS=()
_storm_summary() {
    local p mean max n ngen=0 e
    read -r mean max n <<<"$(stress_pauses "${ERRS[@]}")"
    for e in "${ERRS[@]}"; do ngen=$((ngen + $(stress_commits "$e" | wc -l))); done
    p="mean checkpoint pause $mean s (max $max s)"
    STRESS_SUMMARY="storm $FL $PROG: $NREQ requests, $ngen generations, $STRESS_FAILS failures, total $((SECONDS - STRESS_T0)) s, $p"
    STRESS_EXTRA="requests=$NREQ ok=$NOK void=$NVOID jobs=$SEG command=${BYTRIG[command]} mpirun=${BYTRIG[mpirun]} rank=${BYTRIG[rank]} generations=$ngen mean_pause=$mean max_pause=$max"
}

# _job_over: has the job printed its final line, or ended?
_job_over() {
    grep -Eq '^[0-9]+ final' "$RUN" || ! _alive "$MPI_PID"
}

# storm_job NITER NLEFT: one job (reference run, the job under ckptmpi,
# up to NLEFT requests, its end, the checks); sets DONE (requests made),
# SPR (steps a request took from the job), LO, HI, LAST_GEN.
storm_job() {
    local niter=$1 nleft=$2 k before req_step t0 what wrc crc pid hi ms=0 i=0 r=0 timeouts=0 step0
    local ck=$WORK/ck$SEG ref=$WORK/ref$SEG.out t deadline g
    local -A req_of=()
    RUN=$WORK/run$SEG.out
    REF=$ref JOB_NITER=$niter
    ERRS+=("$RUN.err")
    _mpi_program "$PROG" "$niter" 0
    log "storm job $SEG: $FL, $MPI_NP ranks, $PROG $niter 0, up to $nleft requests, race delays ${DELAY_US} us"
    MPI_ENV=()
    mkdirs "$WORK/ref$SEG" "$WORK/run" "$ck"
    mpi_run "$WORK/ref$SEG" "$ref" -- "${MPI_NATIVE[@]}"
    grep -Eq '^[0-9]+ final' "$ref" || fail "the reference run printed no 'final' line: $(tail -n 3 "$ref" | tr '\n' ' ')"
    stress_race_env "$DELAY_US"
    mpi_start "$WORK/run" "$RUN" CKPTMPI_DIR="$ck" CKPTMPI_KEEP=2 CKPTMPI_FULL_EVERY=2 -- "${MPI_CKPTCMD[@]}"
    mpi_wait_step "$RUN" 1
    step0=$(last_step_of "$RUN")
    DONE=0 SPR=0 LAST_GEN=''
    for ((k = 1; k <= nleft; k++)); do
        _storm_summary
        rand_int ms 200 1000
        sleep "$(ms_to_s "$ms")"
        req_step=$(last_step_of "$RUN")
        _job_over && break
        # steps a request takes from the job, so far: stop while there is room
        [ "$DONE" -eq 0 ] || SPR=$(((req_step - step0 + DONE - 1) / DONE))
        if [ $((niter - req_step)) -lt $((2 * SPR + 4)) ]; then
            log "job $SEG at step $req_step of $niter (about $SPR steps a request): no more requests on it"
            break
        fi
        rand_int i 0 2
        trigs=(command mpirun rank)
        trig=${trigs[$i]}
        NREQ=$((NREQ + 1))
        STRESS_ATTEMPTS=$NREQ
        BYTRIG[$trig]=$((BYTRIG[$trig] + 1))
        before=$(mpi_latest_gen "$ck")
        t0=$(now_ms)
        what="request $NREQ (job $SEG, $trig, at step $req_step, after generation $before)"
        wrc=0
        case $trig in
            command)
                crc=0
                timeout -s KILL "$(_mpi_t "$MPI_CKPT_TIMEOUT")" "${AS_USER[@]}" "$CKPTMPI" checkpoint "$ck" \
                    >"$WORK/cmd$NREQ.out" 2>"$WORK/cmd$NREQ.err" </dev/null || crc=$?
                GEN=$(sed -n 's/^generation \([0-9][0-9]*\)$/\1/p' "$WORK/cmd$NREQ.out" | tail -n 1)
                if [ "$crc" -ne 0 ] || [ -z "$GEN" ]; then
                    if _job_over; then wrc=2; else
                        stress_failure "$what: ckptmpi checkpoint exited $crc, printed '$(snip "$WORK/cmd$NREQ.out" 100)': $(snip "$WORK/cmd$NREQ.err" 300)"
                        [ "$crc" -ne 137 ] || timeouts=$((timeouts + 1))
                        [ "$timeouts" -lt 2 ] || fail "two requests in a row got no answer: the job seems stuck"
                        continue
                    fi
                elif [ ! -f "$(gen_file "$ck" "$GEN")" ]; then
                    stress_failure "$what: ckptmpi checkpoint said generation $GEN, but $(gen_file "$ck" "$GEN") does not exist ($(ls -A "$ck" | tr '\n' ' '))"
                fi
                ;;
            mpirun)
                kill -USR1 "$MPI_PID" || fail "$what: cannot signal mpirun $MPI_PID"
                stress_wait_new_gen "$ck" "$before" "$(_mpi_t "$MPI_CKPT_TIMEOUT")" || wrc=$?
                ;;
            rank)
                rand_int r 0 $((MPI_NP - 1))
                if ! pid=$(mpi_rank_pid "$r" 2>/dev/null); then
                    # shellcheck disable=SC2046
                    _job_over || fail "$what: no process of rank $r among $(_mpi_describe $(_mpi_job_pids))"
                    wrc=2
                else
                    what="request $NREQ (job $SEG, SIGUSR1 to rank $r, pid $pid, at step $req_step, after generation $before)"
                    kill -USR1 "$pid" 2>/dev/null || _job_over || fail "$what: cannot signal $pid"
                    stress_wait_new_gen "$ck" "$before" "$(_mpi_t "$MPI_CKPT_TIMEOUT")" || wrc=$?
                fi
                ;;
        esac
        if [ "$wrc" -eq 2 ]; then
            # the job's end overtook the request: judged below, by mpirun's status
            log "$what: the job ended (last step $(last_step_of "$RUN") of $niter) before a generation: request not counted"
            NREQ=$((NREQ - 1)) NVOID=$((NVOID + 1))
            BYTRIG[$trig]=$((BYTRIG[$trig] - 1))
            break
        fi
        if [ "$wrc" -eq 1 ]; then
            stress_failure "$what: no new generation in $MPI_CKPT_TIMEOUT s ($(ls -A "$ck" | tr '\n' ' '))"
            timeouts=$((timeouts + 1))
            [ "$timeouts" -lt 2 ] || fail "two requests in a row made no generation: the job seems stuck"
            DONE=$((DONE + 1))
            continue
        fi
        timeouts=0
        hi=$(last_step_of "$RUN")
        log "$what -> generation $GEN in $(($(now_ms) - t0)) ms (step $hi)"
        [ "$GEN" -eq $((before + 1)) ] ||
            stress_failure "$what: made generation $GEN, expected $((before + 1)) (a generation begun and lost, or one per rank?)"
        ! stress_no_second "$ck" "$GEN" "$what" || NOK=$((NOK + 1))
        req_of[$GEN]=$NREQ
        LO=$req_step HI=$hi LAST_GEN=$GEN
        DONE=$((DONE + 1))
    done
    _storm_summary

    # ---- the job runs to its end
    log "job $SEG: $DONE requests, now at step $(last_step_of "$RUN") of $niter; waiting for its end"
    t=$(_mpi_t $((MPI_RUN_TIMEOUT * 2)))
    deadline=$((SECONDS + t))
    while _alive "$MPI_PID"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            mpi_kill_job
            fail "job $SEG did not end within ${t}s after the storm (last step $(last_step_of "$RUN") of $niter)"
        fi
        sleep 0.1
    done
    mpi_wait_gone "the job after mpirun exited" 10
    [ "$RC" -eq 0 ] || stress_failure "job $SEG: mpirun exited $RC after the storm: $(_mpi_first_error "$RUN.err")"
    if ! cmp -s "$ref" "$RUN"; then
        diff -u "$ref" "$RUN" | head -n 40 >&2 || true
        stress_failure "job $SEG: the job's output ($RUN) differs from the plain run's ($ref)"
    else
        log "job $SEG: output identical to the plain run's ($(wc -l <"$ref") lines)"
    fi

    # ---- every commit the runtime logged was asked for, once
    local -a commits extra=() left
    mapfile -t commits < <(stress_commits "$RUN.err")
    for g in "${commits[@]}"; do
        [ -n "${req_of[$g]:-}" ] || extra+=("$g")
    done
    [ "${#extra[@]}" -eq 0 ] ||
        stress_failure "job $SEG: generation(s) ${extra[*]} committed that no request was answered with (${#commits[@]} commits logged for $DONE requests): duplicates"
    [ "${#commits[@]}" -eq "${#req_of[@]}" ] ||
        stress_failure "job $SEG: ${#commits[@]} commits logged (${commits[*]:-none}), ${#req_of[@]} generations seen by the requests"
    grep -E '^ckptmpi\[[0-9]+\]: .*request\(s\) made during the checkpoint' "$RUN.err" | head -n 3 >&2 || true

    # ---- what the directory holds
    [ -n "$LAST_GEN" ] || return 0
    mapfile -t left < <(gens_in "$ck")
    # CKPTMPI_KEEP=2 keeps the last two generations committed and, with
    # incremental ones (CKPTMPI_FULL_EVERY), every generation back to the
    # oldest their chains of parents reach: exactly the committed
    # generations from there on
    local -a kept_sorted want_set
    mapfile -t kept_sorted < <(printf '%s\n' "${!req_of[@]}" | sort -n)
    local last2=("${kept_sorted[@]: -2}") oldest
    ck ls "$ck" --json
    oldest=$(python3 -c '
import json, sys
gens = {g["generation"]: g for g in json.load(open(sys.argv[1])) if g.get("ok")}
lo = None
for g in map(int, sys.argv[2:]):
    while g in gens:
        lo = g if lo is None else min(lo, g)
        g = gens[g].get("pages_parent", 0)
print(lo if lo is not None else 0)' "$WORK/ck.out" "${last2[@]}" 2>"$WORK/chain.err") ||
        stress_failure "job $SEG: cannot read the chains of ${last2[*]} from ckptmpi ls --json: $(snip "$WORK/chain.err") $(snip "$WORK/ck.out" 300)"
    want_set=()
    for g in "${kept_sorted[@]}"; do [ "$g" -lt "${oldest:-0}" ] || want_set+=("$g"); done
    if [ "${left[*]}" != "${want_set[*]}" ] || [ "${left[-1]}" -ne "$LAST_GEN" ]; then
        stress_failure "job $SEG: with CKPTMPI_KEEP=2, $ck holds generations ${left[*]:-none}, expected ${want_set[*]:-none} (the last 2 up to $LAST_GEN and the generations their chains reach back to ${oldest:-?})"
    fi
    local tmps
    tmps=$(stress_temps "$ck")
    [ -z "$tmps" ] || stress_failure "job $SEG: temporaries left in $ck after the job ended: $(echo "$tmps" | tr '\n' ' ')"
    ck verify "$ck" --generation "$LAST_GEN"
    [ "$RC" -eq 0 ] || stress_failure "job $SEG: ckptmpi verify $ck --generation $LAST_GEN exited $RC: $(snip "$WORK/ck.err" 400)"
}

# ---- size the first job
if [ -n "${STORM_NITER:-}" ]; then
    NITER=$STORM_NITER
else
    stress_race_env "$DELAY_US"
    stress_calibrate 30 "$PROG"
    # running time the storm takes from the job (it is paused while it
    # checkpoints): about 0.6 s between requests, 0.3 s of watching, the
    # request and the stopping of the threads (about 2.5 s a request was
    # seen on a loaded 2-core VM); half as much again, for the load
    NITER=$(((NCKPT * 2500 + 3000) * 3 / 2 / STEP_MS))
    [ "$NITER" -ge 30 ] || NITER=30
fi

SEG=0 LEFT=$NCKPT
while [ "$LEFT" -gt 0 ]; do
    SEG=$((SEG + 1))
    [ "$SEG" -le 4 ] || fail "4 jobs ended before $NCKPT requests were made ($NREQ made): the job runs much faster than its sizing; set STORM_NITER"
    storm_job "$NITER" "$LEFT"
    LEFT=$((LEFT - DONE))
    [ "$LEFT" -gt 0 ] || break
    n=$((LEFT * (SPR > 0 ? SPR : 10) * 2 + 30))
    [ "$n" -ge $((NITER * 2)) ] || n=$((NITER * 2))
    log "job $SEG ended with $LEFT requests left: a new job of $n iterations takes them"
    NITER=$n
    [ -z "$LAST_GEN" ] || { FINAL_CK=$WORK/ck$SEG FINAL_RUN=$RUN FINAL_REF=$REF FINAL_NITER=$JOB_NITER FINAL_GEN=$LAST_GEN FINAL_LO=$LO FINAL_HI=$HI; }
done
[ -z "$LAST_GEN" ] || { FINAL_CK=$WORK/ck$SEG FINAL_RUN=$RUN FINAL_REF=$REF FINAL_NITER=$JOB_NITER FINAL_GEN=$LAST_GEN FINAL_LO=$LO FINAL_HI=$HI; }
_storm_summary
[ -n "${FINAL_GEN:-}" ] || fail "no request made a generation"
[ "$STRESS_FAILS" -eq 0 ] || stress_finish

# ---- the latest generation of the last job, restarted, runs to the end
mpi_check_generation "$FINAL_CK" "$FINAL_GEN" "$MPI_NP"
_mpi_program "$PROG" "$FINAL_NITER" 0
mpi_run "$WORK/run" "$WORK/restart.out" CKPTMPI_DIR="$FINAL_CK" CKPTMPI_RESTART=latest -- "${MPI_CKPTCMD[@]}"
_mpi_check_resume "$WORK/restart.out" "$FINAL_LO" "$FINAL_HI"
merge_steps "$FINAL_RUN" "$WORK/restart.out" "$WORK/merged.out"
same_file "$FINAL_REF" "$WORK/merged.out" "stdout (the job + the restart of generation $FINAL_GEN)" "the plain run"
_storm_summary
stress_finish
