# shellcheck shell=bash
# shellcheck disable=SC2034,SC2012  # globals set here are read by the cases; ls only for messages
# Helpers of the stress proofs of issue 7 ("A cut that never loses"):
# test/e2e/mpi_stress_storm.sh, mpi_stress_cycles.sh, mpi_stress_kill.sh
# (and bench/mpi_stress.sh, which runs them at full size).  On top of
# lib.sh ("MPI jobs" in particular); a case does
#     source "$(dirname "${BASH_SOURCE[0]}")/stress_lib.sh"
#     stress_init SCENARIO
#
# Failures are of two kinds.  A counted failure (stress_failure) is noted,
# with its evidence, in $WORK/failures.txt and the case goes on (a request
# that made no generation, or two; a generation that does not verify...);
# the case fails at its end if any was counted.  A fatal failure (lib.sh's
# fail: the job died, a restart did not resume where it should...) ends
# the case at once.  Either way the case prints, on exit, to stderr
#     STRESS-RESULT scenario=S attempts=A failures=F fatal=0|1 ...
# (A = requests / cycles / tries done, the failing one included), which
# bench/mpi_stress.sh adds up, and its one-line summary to stdout.
#
# Randomness comes from bash's RANDOM, seeded by STRESS_SEED (printed at
# the start: STRESS_SEED=N reproduces the choices, not the timing).

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# lib.sh named the case after its caller: this file
TEST_NAME=$(basename "$0" .sh)

STRESS_SCENARIO=
STRESS_ATTEMPTS=0
STRESS_FAILS=0
STRESS_FINAL=0
STRESS_SUMMARY=
STRESS_EXTRA=
STRESS_T0=$SECONDS
STRESS_SHIM=

# stress_init SCENARIO: e2e_init, the seed, the exit hook.
stress_init() {
    STRESS_SCENARIO=$1
    # shellcheck disable=SC2119
    e2e_init
    STRESS_SEED=${STRESS_SEED:-$(($(date +%s%N) % 32768))}
    RANDOM=$STRESS_SEED
    log "scenario $STRESS_SCENARIO, random seed $STRESS_SEED (STRESS_SEED=$STRESS_SEED repeats the choices)"
    trap _stress_on_exit EXIT
}

# stress_mpi_setup FLAVOUR: mpi_setup (which installs its own exit trap:
# ours goes back on top, and calls it).
stress_mpi_setup() {
    mpi_setup "$1"
    trap _stress_on_exit EXIT
    STRESS_SHIM=$BUILD/lib/ckptmpi/$MPI_FL/race-delays/libckptmpi.so
}

# stress_race_env DELAY_US: MPI_ENV for the runs under ckptmpi: the
# race-delays shim preloaded into the application by the runtime
# (CKPTMPI_PRELOAD) with CKPTMPI_RACE_DELAY_US=DELAY_US (0: the normal
# shim, no delays), and CKPTMPI_VERBOSE=1 (the commit lines).
stress_race_env() {
    local us=$1
    MPI_ENV=(CKPTMPI_VERBOSE="${CKPTMPI_VERBOSE:-1}")
    if [ "$us" -gt 0 ]; then
        [ -f "$STRESS_SHIM" ] || fail "the race-delays shim is not built: $STRESS_SHIM"
        "${AS_USER[@]}" test -r "$STRESS_SHIM" || fail "$STRESS_SHIM not readable by uid $TEST_UID"
        MPI_ENV+=(CKPTMPI_PRELOAD="$STRESS_SHIM" CKPTMPI_RACE_DELAY_US="$us")
        log "runs under ckptmpi: race-delays shim $STRESS_SHIM, CKPTMPI_RACE_DELAY_US=$us"
    fi
}

_stress_on_exit() {
    local rc=$? fatal=0
    trap - ERR
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ "$STRESS_FINAL" != 1 ]; then
        fatal=1
        STRESS_FAILS=$((STRESS_FAILS + 1))
    fi
    if [ "$rc" -ne 77 ] && [ -n "$STRESS_SCENARIO" ]; then
        printf 'STRESS-RESULT scenario=%s attempts=%s failures=%s fatal=%s seconds=%s seed=%s work=%s %s\n' \
            "$STRESS_SCENARIO" "$STRESS_ATTEMPTS" "$STRESS_FAILS" "$fatal" "$((SECONDS - STRESS_T0))" \
            "${STRESS_SEED:-}" "$WORK" "$STRESS_EXTRA" >&2
        [ -z "$STRESS_SUMMARY" ] || printf '%s\n' "$STRESS_SUMMARY"
    fi
    local f=_cleanup
    [ -z "$MPI_TAG_BASE" ] || f=_mpi_on_exit
    # they read the status from $?
    if [ "$rc" -eq 0 ]; then
        true
        "$f"
    else
        _mpi_rc "$rc" || "$f"
    fi
}

# stress_failure MESSAGE: a counted failure; the case goes on.
stress_failure() {
    STRESS_FAILS=$((STRESS_FAILS + 1))
    printf '\nFAILURE %d [%s]: %s\n' "$STRESS_FAILS" "$TEST_NAME" "$*" >&2
    printf 'FAILURE %d: %s\n' "$STRESS_FAILS" "$*" >>"$WORK/failures.txt"
}

# stress_finish: fail if any failure was counted (the exit hook prints the
# summary).
stress_finish() {
    STRESS_FINAL=1
    if [ "$STRESS_FAILS" -gt 0 ]; then
        fail "$STRESS_FAILS failure(s): $(cut -c1-300 "$WORK/failures.txt" | tr '\n' ' ')"
    fi
}

# rand_int VAR LO HI: VAR = a random integer in [LO, HI] (not in a
# $(...): a subshell's RANDOM does not advance ours).
rand_int() {
    printf -v "$1" '%d' $(($2 + (RANDOM * 32768 + RANDOM) % ($3 - $2 + 1)))
}

# ms_to_s MS: "S.mmm"
ms_to_s() {
    printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000))
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# stress_commits FILE: the generations whose commit the runtime logged in
# FILE (CKPTMPI_VERBOSE=1), distinct, ascending.
stress_commits() {
    sed -n 's/^ckptmpi\[[0-9]*\]: \([0-9:.]* \)\{0,1\}generation \([0-9][0-9]*\) committed .*/\2/p' "$@" 2>/dev/null |
        sort -un
}

# stress_pauses FILE...: "MEAN MAX N" of the checkpoint pauses logged in
# FILE(s) ("generation G committed (...): ... paused X s"); a generation's
# pause is the longest of its ranks'.
stress_pauses() {
    [ $# -gt 0 ] || { echo "- - 0"; return 0; }
    sed -n 's/^ckptmpi\[[0-9]*\]: \([0-9:.]* \)\{0,1\}generation \([0-9][0-9]*\) committed .* paused \([0-9.]*\) s.*/\2 \3/p' "$@" 2>/dev/null |
        awk '{ if (!($1 in m) || $2 > m[$1]) m[$1] = $2 }
             END { for (g in m) { s += m[g]; n++; if (m[g] > x) x = m[g] }
                   if (n) printf "%.3f %.3f %d\n", s / n, x, n; else print "- - 0" }'
}

# stress_temps DIR: the temporaries of writers in DIR, one a line.
stress_temps() {
    local f
    for f in "$1"/.ckpt-[0-9]*.h5.tmp.*; do
        [ ! -e "$f" ] || echo "${f##*/}"
    done
}

# stress_wait_new_gen DIR BEFORE T: wait (T s) until DIR holds a generation
# newer than BEFORE, while the job (MPI_PID, else JOB_PID) lives; sets GEN.
# Returns 1 on timeout, 2 if the job ended first.
stress_wait_new_gen() {
    local dir=$1 before=$2 t=$3 deadline pid=${MPI_PID:-$JOB_PID}
    deadline=$((SECONDS + t))
    while :; do
        GEN=$(mpi_latest_gen "$dir")
        [ "$GEN" -le "$before" ] || return 0
        _alive "$pid" || { GEN=$(mpi_latest_gen "$dir"); [ "$GEN" -le "$before" ] || return 0; return 2; }
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.02
    done
}

# stress_no_second DIR G WHAT: 0.3 s after generation G appeared, no newer
# one may be there (a request that made two generations); a counted
# failure otherwise.
stress_no_second() {
    local dir=$1 g=$2 what=$3 now
    sleep 0.3
    now=$(mpi_latest_gen "$dir")
    if [ "$now" -ne "$g" ]; then
        stress_failure "$what: generation $g, then generation $now within 0.3 s: one request made several generations ($(gens_in "$dir" | tr '\n' ' '))"
        return 1
    fi
}

# stress_merge_chain OUT RUN1 RUN2... RUNK: merge_steps, pairwise, from
# the last run back: M = RUNK; M = merge_steps(RUN(K-1), M); ... into OUT.
# (From the first run on would not do: a run killed soon after its own
# checkpoint may print fewer of the steps after its predecessor's cut than
# the predecessor did; the runs after it print them, and are compared.)
stress_merge_chain() {
    local out=$1 i acc
    shift
    local runs=("$@")
    i=$((${#runs[@]} - 1))
    acc=$out.acc$i
    cp "${runs[$i]}" "$acc"
    while [ "$i" -gt 0 ]; do
        i=$((i - 1))
        merge_steps "${runs[$i]}" "$acc" "$out.acc$i"
        acc=$out.acc$i
    done
    cp "$acc" "$out"
}

# stress_strip_trailer OUT: drop the lines without a step number after
# OUT's last step line (a launcher's banner when a rank was killed).
stress_strip_trailer() {
    local out=$1 last total
    last=$(awk '$1 ~ /^[0-9]+$/ { last = NR } END { print last + 0 }' "$out")
    total=$(awk 'END { print NR }' "$out")
    if [ "$total" -gt "$last" ]; then
        log "dropped from $out after its last step: $(tail -n +"$((last + 1))" "$out" | head -c 300 | tr '\n' ' ')"
        head -n "$last" "$out" >"$out.steps"
        cp "$out.steps" "$out"
    fi
}

# stress_calibrate N PROGRAM: a run of PROGRAM N 0 (no sleep) on MPI_NP
# ranks under ckptmpi (MPI_CKPTCMD, MPI_ENV; no CKPTMPI_DIR: no
# checkpoint), which is not as fast as a plain run (MPICH's ranks poll
# busily when plain); sets STEP_MS to the milliseconds a step took, from
# its step 1 line to its final line (startup left out).
stress_calibrate() {
    local n=$1 prog=$2 out=$WORK/calib.out t1='' t2 deadline
    mkdirs "$WORK/calib"
    _mpi_program "$prog" "$n" 0
    mpi_start "$WORK/calib" "$out" -- "${MPI_CKPTCMD[@]}"
    deadline=$((SECONDS + $(_mpi_t "$MPI_RUN_TIMEOUT")))
    while _alive "$MPI_PID"; do
        [ -n "$t1" ] || ! has_step "$out" 1 || t1=$(now_ms)
        [ "$SECONDS" -lt "$deadline" ] || { mpi_kill_job; fail "the calibration run did not end in time"; }
        sleep 0.02
    done
    t2=$(now_ms)
    mpi_wait_gone "the calibration run" 10
    [ "$RC" -eq 0 ] || fail "the calibration run ($prog $n 0) exited $RC: $(_mpi_first_error "$out.err")"
    [ -n "$t1" ] || t1=$t2
    STEP_MS=$(((t2 - t1) / n))
    [ "$STEP_MS" -ge 1 ] || STEP_MS=1
    log "calibration: $prog without sleep takes about $STEP_MS ms a step on $MPI_NP ranks"
}
