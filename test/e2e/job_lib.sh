# shellcheck shell=bash
# Helpers for the cases of jobs without MPI (test/e2e/job_*.sh): several
# processes started with `ckptmpi run --dir DIR --job-size N`, each member
# in a working directory of its own, checkpointed together.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
TEST_NAME=$(basename "$0" .sh)

MEMBER_PID=()

# member_bg K CWD OUT DIR N [RUN-OPTIONS...] -- PROGRAM [ARGS...]: member K
# of the N-member job DIR (--member K unless K is "auto"); MEMBER_PID[K].
member_bg() {
    local k=$1 cwd=$2 out=$3 dir=$4 n=$5
    shift 5
    local opts=(--job-size "$n")
    [ "$k" = auto ] || opts+=(--member "$k")
    run_bg "$cwd" "$out" "$dir" "${opts[@]}" "$@"
    [ "$k" = auto ] || MEMBER_PID[$k]=$JOB_PID
}

# wait_gen DIR WHAT: wait (30 s) until DIR holds a generation; GEN is the newest.
wait_gen() {
    local dir=$1 what=$2 deadline=$((SECONDS + 30))
    while [ -z "$(gens_in "$dir")" ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "no generation in $dir within 30 s of $what"
        sleep 0.05
    done
    GEN=$(gens_in "$dir" | tail -n 1)
    log "$what: generation $GEN"
}

# job_restart_fg CWD LOG DIR [OPTIONS...]: `ckptmpi restart DIR` of the
# whole job in the foreground; must exit 0. The members' outputs are in
# DIR/restart-G/member-K.out (RESTART_OUT is that directory).
job_restart_fg() {
    restart_fg "$@"
    RESTART_OUT=$(sed -n 's/^  member 0: \(.*\)\/member-0\.out, .*/\1/p' "$2.err")
    [ -n "$RESTART_OUT" ] || fail "ckptmpi restart did not say where the members' output goes: $(snip "$2.err")"
    case $RESTART_OUT in /*) ;; *) RESTART_OUT=$1/$RESTART_OUT ;; esac
}

# member_is DIR K PID: process PID holds membership K of job DIR.
member_is() {
    local p
    p=$(cat "$1/.member-$2" 2>/dev/null || true)
    [ "$p" = "$3" ] || fail "member $2 of job $1 is pid '${p}', expected $3"
}

# kill_members PID...: SIGKILL every member at once (a member whose peer
# died may end by itself right after), then reap them.
kill_members() {
    local p pids=() t
    for p in "$@"; do
        _alive "$p" || fail "member process $p is not running any more, cannot kill it mid-run"
        disown "$p" 2>/dev/null || true
        mapfile -t t < <(_tree "$p")
        pids+=("${t[@]}")
    done
    log "kill -9 $*"
    kill -KILL "${pids[@]}" 2>/dev/null || true
    for p in "$@"; do
        for _ in $(seq 100); do
            _alive "$p" || break
            sleep 0.05
        done
        { wait "$p" || true; } 2>/dev/null
    done
}

# ckpt_joined DIR: ckpt DIR once every member has joined the job: a job
# just started refuses a checkpoint, saying which members have joined
# ("... joined: no checkpoint until all have"), until the last one's
# runtime has found member 0 (its program may print before that). 10 s.
ckpt_joined() {
    local dir=$1 deadline=$((SECONDS + 10)) out
    until out=$(timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" "$CKPTMPI" checkpoint "$dir" \
                2>"$WORK/checkpoint.err"); do
        grep -q "joined: no checkpoint until all have" "$WORK/checkpoint.err" &&
            [ "$SECONDS" -lt "$deadline" ] ||
            fail "ckptmpi checkpoint $dir failed: $(snip "$WORK/checkpoint.err" 600)"
        sleep 0.2
    done
    ckpt_committed "$dir" "$out"
}
