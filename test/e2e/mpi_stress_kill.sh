#!/usr/bin/env bash
# mpi_stress_kill: SIGKILL in the middle of a checkpoint (issue 7, "A cut
# that never loses").  An MPI job (PROG on NP ranks, unmodified, through
# ckptmpi-runtime-FLAVOUR; with DELAY_US > 0 through the race-delays shim)
# commits a first generation, whose duration D sizes the window.  Then
# TRIES times: a checkpoint is requested (by a trigger picked at random:
# "ckptmpi checkpoint DIR", SIGUSR1 to mpirun, SIGUSR1 to a random rank) and
# at a random moment 0-0.9 D later (or at once when the new generation
# shows up first: a "late" try; D becomes that checkpoint's duration), one
# process gets SIGKILL: a random rank, or (one time in three)
# mpirun; the rest of the job is given 5 s to go down by itself, then
# SIGKILLed.  Afterwards the previous generation must still be there and
# pass "ckptmpi verify", every generation present must verify (one that the
# interrupted checkpoint managed to commit included), no temporary may be
# listed or taken as a generation, "ckptmpi checkpoint" must come back with
# an answer, and the latest generation is restarted (CKPTMPI_RESTART=latest:
# it must resume at its cut) for the next try.  The last restart runs to
# the end; all outputs merged must equal a plain run's, and the
# temporaries of the killed writers must be gone by then.  A try whose
# checkpoint committed before the kill came ("late") is still checked,
# and counted apart.
#
# Env: FLAVOUR (mpich), NP (4), PROG (mpi_p2p), TRIES (5), SLEEP_MS (100),
# NITER (enough for TRIES tries), DELAY_US (0), STRESS_SEED.
# shellcheck disable=SC2034,SC2012  # MPI_*, STRESS_*: read by the libraries; ls only for messages
source "$(dirname "${BASH_SOURCE[0]}")/stress_lib.sh"
FL=${FLAVOUR:-mpich}
PROG=${PROG:-mpi_p2p}
TRIES=${TRIES:-5}
SLEEP=${SLEEP_MS:-100}
NITER=${NITER:-$((TRIES * 10 + 40))}
DELAY_US=${DELAY_US:-0}
stress_init "kill-$FL-$PROG"
stress_mpi_setup "$FL"
MPI_NP=${NP:-4}
MPI_MODE=runtime
_mpi_program "$PROG" "$NITER" "$SLEEP"
log "kill during checkpoint: $FL, $MPI_NP ranks, $PROG $NITER $SLEEP, $TRIES tries"
_mpi_reference
stress_race_env "$DELAY_US"
mkdirs "$WORK/run" "$WORK/ck"
CK=$WORK/ck
declare -A GLO=() GHI=() LOSSY=()
declare -a OUTS=()
HITS=0 LATE=0 ms=0 v=0 r=0 i=0

_kill_summary() {
    local mean max n
    read -r mean max n <<<"$(stress_pauses "${OUTS[@]/%/.err}")"
    STRESS_SUMMARY="kill $FL $PROG: $STRESS_ATTEMPTS of $TRIES tries ($HITS killed during the checkpoint, $LATE after its commit), $STRESS_FAILS failures, total $((SECONDS - STRESS_T0)) s, mean checkpoint pause $mean s"
    STRESS_EXTRA="during=$HITS late=$LATE mean_pause=$mean max_pause=$max"
}

# ---- the first job, the first generation
out=$WORK/run1.out
OUTS+=("$out")
hold_arm
mpi_start "$WORK/run" "$out" CKPTMPI_DIR="$CK" -- "${MPI_CKPTCMD[@]}"
mpi_wait_step "$out" 1
MPI_TRIGGER="command"
t0=$(now_ms)
mpi_request_ckpt "$CK" "$out"
D=$(($(now_ms) - t0))
GLO[$GEN]=$REQ_STEP GHI[$GEN]=$(last_step_of "$out")
log "the first checkpoint took $D ms: the kills come 0-$((D * 9 / 10)) ms after a request"

for ((t = 1; t <= TRIES; t++)); do
    _kill_summary
    if [ "$t" -gt 1 ]; then
        out=$WORK/run$t.out
        OUTS+=("$out")
        g=$(mpi_latest_gen "$CK")
        hold_arm
        mpi_start "$WORK/run" "$out" CKPTMPI_DIR="$CK" CKPTMPI_RESTART=latest -- "${MPI_CKPTCMD[@]}"
        mpi_wait_step "$out" 0
        _mpi_check_resume "$out" "${GLO[$g]}" "${GHI[$g]}"
    fi
    mpi_wait_step "$out" $(($(last_step_of "$out") + 1))
    STRESS_ATTEMPTS=$t
    prev=$(mpi_latest_gen "$CK")
    ls -A "$CK" | sort >"$WORK/dir.before"
    errsz=$(stat -c %s "$out.err")
    rand_int i 0 2
    trigs=(command mpirun rank)
    trig=${trigs[$i]}
    req_step=$(last_step_of "$out")
    what="try $t ($trig at step $req_step, after generation $prev)"
    cmd_pid=''
    case $trig in
        command)
            (exec timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" "$CKPTMPI" checkpoint "$CK") \
                >"$WORK/cmd$t.out" 2>"$WORK/cmd$t.err" </dev/null &
            cmd_pid=$!
            _PIDS+=("$cmd_pid")
            ;;
        mpirun) kill -USR1 "$MPI_PID" || fail "$what: cannot signal mpirun $MPI_PID" ;;
        rank)
            rand_int r 0 $((MPI_NP - 1))
            # shellcheck disable=SC2046
            pid=$(mpi_rank_pid "$r") || fail "$what: no process of rank $r among $(_mpi_describe $(_mpi_job_pids))"
            kill -USR1 "$pid" || fail "$what: cannot signal rank $r ($pid)"
            what="try $t (SIGUSR1 to rank $r at step $req_step, after generation $prev)"
            ;;
    esac
    rand_int ms 0 $((D * 9 / 10))
    # until then, or until the commit (then at once: the job must not end)
    t0=$(now_ms)
    while now=$(mpi_latest_gen "$CK") && [ "$now" -le "$prev" ] && [ $(($(now_ms) - t0)) -lt "$ms" ]; do
        sleep 0.01
    done
    [ "$now" -le "$prev" ] || D=$(($(now_ms) - t0))
    phase=$(tail -c +"$((errsz + 1))" "$out.err" | grep -c 'checkpoint: wrote' || true)
    rand_int v 0 2
    if [ "$v" -eq 0 ]; then
        victim=$MPI_PID vname="mpirun"
    else
        rand_int r 0 $((MPI_NP - 1))
        # shellcheck disable=SC2046
        victim=$(mpi_rank_pid "$r") || fail "$what: no process of rank $r to kill among $(_mpi_describe $(_mpi_job_pids))"
        vname="rank $r"
    fi
    kill_step=$(last_step_of "$out")
    if [ "$now" -gt "$prev" ]; then
        LATE=$((LATE + 1))
        log "$what: generation $now was committed $D ms after the request, before the kill planned at $ms ms: kill -9 $vname ($victim) now (late)"
    else
        HITS=$((HITS + 1))
        log "$what: kill -9 $vname ($victim) $ms ms after the request, during the checkpoint ($phase rank(s) had logged their write done)"
    fi
    kill -KILL "$victim" 2>/dev/null || log "note: $vname ($victim) was gone already"
    # the rest of the job: 5 s to go down by itself (and to commit nothing
    # half-made), then SIGKILL
    deadline=$((SECONDS + 5))
    while [ -n "$(_mpi_job_pids)" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    left=$(_mpi_job_pids | wc -l)
    [ "$left" -eq 0 ] || log "$left process(es) of the job still there 5 s after the kill: SIGKILL"
    mpi_kill_job
    stress_strip_trailer "$out"
    if [ -n "$cmd_pid" ]; then
        crc=0
        deadline=$((SECONDS + 30))
        while _alive "$cmd_pid"; do
            [ "$SECONDS" -lt "$deadline" ] || break
            sleep 0.05
        done
        if _alive "$cmd_pid"; then
            stress_failure "$what: ckptmpi checkpoint still waits 30 s after the job was killed"
            kill -KILL "$cmd_pid" 2>/dev/null || true
        fi
        wait "$cmd_pid" 2>/dev/null || crc=$?
        log "$what: ckptmpi checkpoint exited $crc: $(snip "$WORK/cmd$t.out" 100) $(snip "$WORK/cmd$t.err" 300)"
        if [ "$crc" -eq 0 ]; then
            cg=$(sed -n 's/^generation \([0-9][0-9]*\)$/\1/p' "$WORK/cmd$t.out" | tail -n 1)
            if [ -z "$cg" ] || [ ! -f "$(gen_file "$CK" "$cg")" ]; then
                stress_failure "$what: ckptmpi checkpoint succeeded ('$(snip "$WORK/cmd$t.out" 100)') but there is no such generation in $CK: $(ls -A "$CK" | tr '\n' ' ')"
            fi
        elif [ "$crc" -eq 137 ]; then
            stress_failure "$what: ckptmpi checkpoint hung (killed after $CMD_TIMEOUT s)"
        elif [ "$(grep -c . "$WORK/cmd$t.err" || true)" -eq 0 ]; then
            stress_failure "$what: ckptmpi checkpoint failed (exit $crc) without a message"
        fi
    fi

    # ---- what the directory holds now
    mapfile -t gens < <(gens_in "$CK")
    log "$what: generations now ${gens[*]:-none}; files: $(ls -A "$CK" | tr '\n' ' ')"
    [ "$prev" -eq 0 ] || [ -f "$(gen_file "$CK" "$prev")" ] ||
        stress_failure "$what: the previous generation $prev is gone after the kill ($(ls -A "$CK" | tr '\n' ' '))"
    for g in "${gens[@]}"; do
        [ "$g" -ge "$prev" ] || continue
        ck verify "$CK" --generation "$g"
        [ "$RC" -eq 0 ] || stress_failure "$what: generation $g does not verify after the kill (exit $RC): $(snip "$WORK/ck.err" 400)"
        if [ "$g" -gt "$prev" ]; then
            log "$what: generation $g was committed (before the kill took effect) and verifies"
            GLO[$g]=$req_step GHI[$g]=$kill_step
            if [ "$vname" = mpirun ]; then
                # the ranks' output goes through mpirun: lines they printed
                # before the commit may still have been in mpirun when it
                # was killed, lost to everyone (the restart resumes after
                # them). Their steps are unknown: no upper bound for the
                # resume, and the gap is taken from the plain run (the
                # final checksum line still covers the whole state).
                GHI[$g]=999999999
                LOSSY[$out]=1
            fi
        fi
    done
    ck ls "$CK"
    [ "$RC" -eq 0 ] || stress_failure "$what: ckptmpi ls $CK exited $RC after the kill: $(snip "$WORK/ck.err" 300)"
    if grep -q '\.tmp\.' "$WORK/ck.out"; then
        stress_failure "$what: ckptmpi ls lists a temporary: $(grep '\.tmp\.' "$WORK/ck.out" | head -n 2 | tr '\n' ' ')"
    fi
    tmps=$(stress_temps "$CK")
    [ -z "$tmps" ] || log "$what: temporaries of the killed writers: $(echo "$tmps" | tr '\n' ' ')"
    cur=$(mpi_latest_gen "$CK")
    [ "$cur" -gt 0 ] || fail "$what: no generation left to restart from"
    [ -n "${GLO[$cur]:-}" ] || fail "$what: the latest generation $cur is none the harness saw committed"
done
_kill_summary

# ---- the last restart runs to the end
tmps_before=$(stress_temps "$CK")
g=$(mpi_latest_gen "$CK")
mpi_check_generation "$CK" "$g" "$MPI_NP"
mpi_run "$WORK/run" "$WORK/last.out" CKPTMPI_DIR="$CK" CKPTMPI_RESTART=latest -- "${MPI_CKPTCMD[@]}"
OUTS+=("$WORK/last.out")
_mpi_check_resume "$WORK/last.out" "${GLO[$g]}" "${GHI[$g]}"
tmps=$(stress_temps "$CK")
[ -z "$tmps" ] ||
    stress_failure "temporaries of writers killed in earlier runs are still in $CK after a restart ran to its end: $(echo "$tmps" | tr '\n' ' ') (before the restart: $(echo "$tmps_before" | tr '\n' ' '))"
for ((k = 0; k + 1 < ${#OUTS[@]}; k++)); do
    [ -n "${LOSSY[${OUTS[$k]}]:-}" ] || continue
    last=$(last_step_of "${OUTS[$k]}")
    next=$(first_step_of "${OUTS[$((k + 1))]}")
    if [ "$next" -gt $((last + 1)) ]; then
        awk -v lo="$last" -v hi="$next" '{ s = $1 + 0 } $1 ~ /^[0-9]+$/ && s > lo && s < hi' \
            "$WORK/ref.out" >>"${OUTS[$k]}"
        log "steps $((last + 1))..$((next - 1)) were lost with the killed mpirun (printed before the commit of the generation the next run resumed from): taken from the plain run"
    fi
done
stress_merge_chain "$WORK/merged.out" "${OUTS[@]}"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout ($TRIES killed runs + the last restart, merged)" "the plain run"
_kill_summary
stress_finish
