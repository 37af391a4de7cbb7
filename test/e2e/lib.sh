# shellcheck shell=bash
# shellcheck disable=SC2034  # globals set here (PYTHON, GEN, FIRST_STEP...) are read by the cases
# Shared helpers for the ckptmpi end-to-end tests.
#
# A case script does:
#     source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#     e2e_init
# and then uses the helpers below.  It exits 0 on pass, 1 on failure (with
# a "FAIL [case]: ..." message and the tails of the logs involved), and 77
# when a prerequisite that is allowed to be missing is missing (ctest
# reports that as skipped).
#
# Environment:
#   CKPTMPI_BUILD        build directory (set by ctest); default: <src>/build
#   CKPTMPI_TEST_KEEP=1  keep the work directory even on success
#   CKPTMPI_TEST_TMPDIR  where to create the work directory (default /tmp)
#   CKPTMPI_TEST_PYTHON  python3 executable (ELF) for compute.py
#   CKPTMPI_TEST_AS_ROOT=1  as root, do not drop to uid 65534 (debugging only)
#
# When run as root, every ckptmpi command and every test program runs as
# uid/gid 65534 (setpriv), in a work directory owned by that user: ckptmpi
# must work unprivileged.  As any other user, commands run directly.

set -euo pipefail
set -o errtrace

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$E2E_DIR/../.." && pwd)
TEST_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)

STEP_TIMEOUT=${STEP_TIMEOUT:-30}   # s to wait for a step to appear
CMD_TIMEOUT=${CMD_TIMEOUT:-60}     # s for one ckptmpi command / a restart

WORK=
BUILD=
CKPTMPI=
PROGS=
PYTHON=
AS_USER=()
TEST_UID=$(id -u)
TEST_GID=$(id -g)
_PIDS=()
_LOGS=()
JOB_PID=
REF_PID=
GEN=
RC=
FIRST_STEP=

# ---------------------------------------------------------------- messages

log() {
    printf '[%s %s] %s\n' "$TEST_NAME" "$(date +%H:%M:%S.%3N)" "$*" >&2
}

# Register a file whose tail is shown when the case fails.
show_on_failure() {
    _LOGS+=("$@")
}

_dump_logs() {
    local f
    for f in "${_LOGS[@]}"; do
        if [ -s "$f" ]; then
            printf -- '----- tail of %s -----\n' "$f" >&2
            tail -n 15 "$f" >&2 || true
        fi
    done
}

fail() {
    trap - ERR
    printf '\nFAIL [%s]: %s\n' "$TEST_NAME" "$*" >&2
    _dump_logs
    exit 1
}

skip() {
    trap - ERR
    printf 'SKIP [%s]: %s\n' "$TEST_NAME" "$*" >&2
    exit 77
}

_on_err() {
    local rc=$1 line=$2 cmd=$3
    fail "unexpected failure (exit $rc) at ${BASH_SOURCE[1]:-?}:$line: $cmd"
}

# ---------------------------------------------------------------- processes

# Is PID running (not gone, not a zombie)?
_alive() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    s=${s##*) }
    [ "${s%% *}" != Z ]
}

# PID and all its descendants, parents first.
_tree() {
    local pid=$1 c
    echo "$pid"
    for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null || true); do
        _tree "$c"
    done
}

# SIGKILL a process we started, and whatever it started, by pid.
_kill_tree() {
    local pids
    pids=$(_tree "$1")
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
}

_cleanup() {
    local rc=$? pid
    trap - ERR
    for pid in "${_PIDS[@]}"; do
        if _alive "$pid"; then
            disown "$pid" 2>/dev/null || true
            _kill_tree "$pid"
        fi
    done
    for pid in "${_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "${CKPTMPI_TEST_KEEP:-0}" = 1 ]; then
            log "work directory kept: $WORK"
        elif [ "$rc" -ne 0 ] && [ "$(du -sm "$WORK" 2>/dev/null | cut -f1)" -lt 200 ]; then
            log "work directory kept for inspection: $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    if [ "$rc" -eq 0 ]; then
        printf 'PASS [%s]\n' "$TEST_NAME" >&2
    fi
    exit "$rc"
}

# ---------------------------------------------------------------- setup

# Close the file descriptors above 2 that this shell inherited (ctest passes
# its log file as fd 3, for one), so that the programs start with only
# 0, 1 and 2 open, as the reference runs do.  Bash's own (255) stays.
_close_inherited_fds() {
    local f fd
    for f in /proc/$BASHPID/fd/*; do
        fd=${f##*/}
        [[ $fd =~ ^[0-9]+$ ]] || continue
        [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ] || continue
        [ -e "$f" ] || [ -L "$f" ] || continue
        eval "exec $fd>&-" 2>/dev/null || true
    done
}

# e2e_init [--no-ckptmpi]: set up (the option: the case does not run ckptmpi).
e2e_init() {
    local need_ckptmpi=1
    [ "${1:-}" != --no-ckptmpi ] || need_ckptmpi=0
    trap '_on_err $? $LINENO "$BASH_COMMAND"' ERR
    trap _cleanup EXIT
    _close_inherited_fds

    BUILD=${CKPTMPI_BUILD:-$SRC_DIR/build}
    [ -d "$BUILD" ] || fail "build directory '$BUILD' not found (set CKPTMPI_BUILD)"
    BUILD=$(cd "$BUILD" && pwd)
    CKPTMPI=$BUILD/bin/ckptmpi
    PROGS=$BUILD/test/programs
    if [ "$need_ckptmpi" = 1 ]; then
        [ -x "$CKPTMPI" ] || fail "ckptmpi not built: $CKPTMPI"
        [ -x "$BUILD/bin/ckptmpi-runtime" ] || fail "ckptmpi-runtime not built: $BUILD/bin/ckptmpi-runtime"
    fi

    if [ "$(id -u)" = 0 ] && [ "${CKPTMPI_TEST_AS_ROOT:-0}" != 1 ]; then
        command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed to run the tests unprivileged"
    fi

    local tmp=${CKPTMPI_TEST_TMPDIR:-/tmp}
    WORK=$(mktemp -d "$tmp/ckptmpi-e2e-$TEST_NAME.XXXXXX")
    chmod 755 "$WORK"

    if [ "$(id -u)" = 0 ] && [ "${CKPTMPI_TEST_AS_ROOT:-0}" = 1 ]; then
        AS_USER=(env)
        log "WARNING: CKPTMPI_TEST_AS_ROOT=1: running ckptmpi as root"
    elif [ "$(id -u)" = 0 ]; then
        TEST_UID=65534
        TEST_GID=65534
        chown "$TEST_UID:$TEST_GID" "$WORK"
        AS_USER=(setpriv --reuid="$TEST_UID" --regid="$TEST_GID" --clear-groups --
                 env HOME="$WORK")
        log "running as root: ckptmpi and the programs run as uid $TEST_UID"
    else
        AS_USER=(env)
    fi
    if ! "${AS_USER[@]}" test -x "$BUILD/bin/ckptmpi"; then
        # the build tree is private (e.g. under /root): give the test user
        # a copy of what the tests run
        mkdir -p "$WORK/build/test"
        cp -a "$BUILD/bin" "$BUILD/lib" "$WORK/build/" 2>/dev/null || true
        cp -a "$PROGS" "$WORK/build/test/"
        chmod -R a+rX "$WORK/build"
        BUILD=$WORK/build
        CKPTMPI=$BUILD/bin/ckptmpi
        PROGS=$BUILD/test/programs
        log "build tree not reachable by uid $TEST_UID: using a copy in $BUILD"
    fi
    [ "$need_ckptmpi" = 0 ] || "${AS_USER[@]}" test -x "$CKPTMPI" ||
        fail "$CKPTMPI is not executable by uid $TEST_UID: the build directory must be reachable by that user (e.g. not under /root)"
    "${AS_USER[@]}" test -w "$WORK" || fail "work directory $WORK not writable by uid $TEST_UID"
    log "build $BUILD, work $WORK"
}

# need_prog NAME...: fail unless these test programs are in $PROGS.
need_prog() {
    local n
    for n in "$@"; do
        [ -f "$PROGS/$n" ] || fail "test program not built: $PROGS/$n"
        "${AS_USER[@]}" test -r "$PROGS/$n" || fail "$PROGS/$n not readable by uid $TEST_UID"
    done
}

# Set PYTHON to an ELF python3 the test user can run (compute.py is run as
# "python3 compute.py": ckptmpi runs ELF executables, not scripts).
find_python() {
    local c r
    for c in "${CKPTMPI_TEST_PYTHON:-}" /usr/bin/python3 /usr/local/bin/python3 \
             "$(command -v python3 || true)"; do
        [ -n "$c" ] || continue
        r=$(readlink -f "$c" 2>/dev/null) || continue
        [ -f "$r" ] || continue
        [ "$(head -c 4 "$r" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
        "${AS_USER[@]}" test -x "$r" || continue
        PYTHON=$r
        return 0
    done
    fail "no python3 ELF executable usable by uid $TEST_UID (set CKPTMPI_TEST_PYTHON)"
}

# Make directories (as the test user).
mkdirs() {
    "${AS_USER[@]}" mkdir -p "$@"
}

gen_file() {
    printf '%s/ckpt-%06d.h5' "$1" "$((10#$2))"
}

# Print the generation numbers present in DIR, ascending, one a line.
gens_in() {
    local f n
    for f in "$1"/ckpt-[0-9][0-9][0-9][0-9][0-9][0-9].h5; do
        [ -e "$f" ] || continue
        n=${f##*/ckpt-}
        n=${n%.h5}
        echo "$((10#$n))"
    done | sort -n
}

# ---------------------------------------------------------------- running

# plain_bg CWD OUT -- PROGRAM [ARGS...]: uninterrupted reference run, in the
# background, without ckptmpi.  Sets REF_PID.
plain_bg() {
    local cwd=$1 out=$2
    shift 2
    [ "${1:-}" = -- ] || fail "plain_bg: missing --"
    shift
    log "reference: $* (cwd $cwd)"
    (cd "$cwd" && exec "${AS_USER[@]}" "$@") >"$out" 2>"$out.err" </dev/null &
    REF_PID=$!
    _PIDS+=("$REF_PID")
    show_on_failure "$out.err"
}

# run_bg CWD OUT DIR [RUN-OPTIONS...] -- PROGRAM [ARGS...]:
# ckptmpi run --dir DIR [RUN-OPTIONS] -- PROGRAM ARGS, in the background,
# stdout to OUT, stderr to OUT.err.  Sets JOB_PID (the program's process).
run_bg() {
    local cwd=$1 out=$2 dir=$3
    shift 3
    local opts=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        opts+=("$1")
        shift
    done
    [ "${1:-}" = -- ] || fail "run_bg: missing --"
    shift
    log "ckptmpi run --dir $dir${opts[*]:+ ${opts[*]}} -- $*"
    (cd "$cwd" && exec "${AS_USER[@]}" "$CKPTMPI" run --dir "$dir" "${opts[@]}" -- "$@") \
        >"$out" 2>"$out.err" </dev/null &
    JOB_PID=$!
    _PIDS+=("$JOB_PID")
    show_on_failure "$out.err"
}

# restart_bg CWD OUT DIR [RESTART-OPTIONS...]: ckptmpi restart in the
# background.  Sets JOB_PID.
restart_bg() {
    local cwd=$1 out=$2 dir=$3
    shift 3
    log "ckptmpi restart $dir${*:+ $*} (background)"
    (cd "$cwd" && exec "${AS_USER[@]}" "$CKPTMPI" restart "$dir" "$@") \
        >"$out" 2>"$out.err" </dev/null &
    JOB_PID=$!
    _PIDS+=("$JOB_PID")
    show_on_failure "$out.err"
}

# restart_fg CWD OUT DIR [RESTART-OPTIONS...]: ckptmpi restart in the
# foreground, to the program's end; fails unless it exits 0.
restart_fg() {
    local cwd=$1 out=$2 dir=$3
    shift 3
    log "ckptmpi restart $dir${*:+ $*} (foreground)"
    show_on_failure "$out.err"
    local rc=0
    (cd "$cwd" && exec timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" "$CKPTMPI" restart "$dir" "$@") \
        >"$out" 2>"$out.err" </dev/null || rc=$?
    [ "$rc" -ne 137 ] || fail "ckptmpi restart $dir${*:+ $*} did not finish within ${CMD_TIMEOUT}s"
    [ "$rc" -eq 0 ] || fail "ckptmpi restart $dir${*:+ $*} exited $rc (stderr: $(snip "$out.err" 600))"
    log "restart finished: $(wc -l <"$out" || true) lines of output"
}

# wait_exit PID WHAT [TIMEOUT]: wait for a background process to finish by
# itself; fails unless it exits 0.
wait_exit() {
    local pid=$1 what=$2 t=${3:-$CMD_TIMEOUT}
    local deadline=$((SECONDS + t))
    while _alive "$pid"; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$what (pid $pid) still running after ${t}s"
        sleep 0.05
    done
    RC=0
    wait "$pid" 2>/dev/null || RC=$?
    [ "$RC" -eq 0 ] || fail "$what (pid $pid) exited with status $RC"
}

# kill_job PID: SIGKILL the job (and anything it started) and reap it.
kill_job() {
    local pid=$1
    _alive "$pid" || fail "process $pid is not running any more, cannot kill it mid-run"
    log "kill -9 $pid"
    disown "$pid" 2>/dev/null || true     # no "Killed" job notice from bash
    _kill_tree "$pid"
    for _ in $(seq 100); do
        _alive "$pid" || break
        sleep 0.05
    done
    { wait "$pid" || true; } 2>/dev/null
}

# ---------------------------------------------------------------- steps

# Does OUT contain a line whose step number is >= K?
has_step() {
    awk -v k="$2" '$1 ~ /^[0-9]+$/ && $1 + 0 >= k { f = 1; exit } END { exit !f }' "$1" 2>/dev/null
}

# wait_step OUT K PID [TIMEOUT]: wait until OUT shows step K; fails if the
# process ends first or the timeout passes.
wait_step() {
    local out=$1 k=$2 pid=$3 t=${4:-$STEP_TIMEOUT}
    local deadline=$((SECONDS + t))
    until has_step "$out" "$k"; do
        if ! _alive "$pid"; then
            has_step "$out" "$k" && break
            fail "process $pid ended before printing step $k in $out (last step: $(last_step_of "$out"))"
        fi
        [ "$SECONDS" -lt "$deadline" ] ||
            fail "timeout (${t}s) waiting for step $k in $out (last step: $(last_step_of "$out"))"
        sleep 0.02
    done
}

# Print the highest step number in OUT (-1 if none).
last_step_of() {
    awk 'BEGIN { m = -1 } $1 ~ /^[0-9]+$/ && $1 + 0 > m { m = $1 + 0 } END { print m }' "$1" 2>/dev/null ||
        echo -1
}

# Print the step number of the first line of OUT (empty if none).
first_step_of() {
    awk 'NF { print $1; exit }' "$1" 2>/dev/null || true
}

# Print at most N (default 600) bytes of FILE, never failing; for messages.
snip() {
    head -c "${2:-600}" "$1" 2>/dev/null | tr '\n' ' ' || true
}

# check_resume OUT LO HI: the restart's output must begin with a step in
# [LO, HI] (it resumed at the checkpoint, not from the start or elsewhere).
check_resume() {
    local out=$1 lo=$2 hi=$3 first
    [ -s "$out" ] || fail "restart printed nothing to stdout ($out)"
    first=$(first_step_of "$out")
    [[ $first =~ ^[0-9]+$ ]] ||
        fail "restart output $out does not begin with a step number: '$(head -n 1 "$out" 2>/dev/null || true)'"
    if [ "$first" -lt "$lo" ] || [ "$first" -gt "$hi" ]; then
        fail "restart resumed at step $first, expected a step in [$lo, $hi] (checkpoint point)"
    fi
    FIRST_STEP=$first
    log "restart resumed at step $first (expected within [$lo, $hi])"
}

# finished OUT NSTEPS: has the program printed its final line?
finished() {
    has_step "$1" "$(($2 + 1))"
}

# ---------------------------------------------------------------- ckptmpi

# ckpt DIR: ckptmpi checkpoint DIR; must print "generation N", exit 0, and
# the file must exist.  Sets GEN.
ckpt() {
    local dir=$1 out rc=0
    out=$(timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" "$CKPTMPI" checkpoint "$dir" \
          2>"$WORK/checkpoint.err") || rc=$?
    [ "$rc" -eq 0 ] ||
        fail "ckptmpi checkpoint $dir exited $rc: $(snip "$WORK/checkpoint.err" 600)"
    local line
    line=$(printf '%s\n' "$out" | grep -E '^generation [0-9]+$' | tail -n 1 || true)
    [ -n "$line" ] || fail "ckptmpi checkpoint $dir printed '$out', expected 'generation N'"
    GEN=$((10#${line#generation }))
    [ -f "$(gen_file "$dir" "$GEN")" ] ||
        fail "checkpoint reported generation $GEN but $(gen_file "$dir" "$GEN") does not exist"
    log "checkpoint committed: generation $GEN"
}

# ck CMD...: run a ckptmpi subcommand as the test user (with a timeout);
# stdout and stderr to $WORK/ck.out and $WORK/ck.err; sets RC.
ck() {
    RC=0
    timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" "$CKPTMPI" "$@" \
        >"$WORK/ck.out" 2>"$WORK/ck.err" </dev/null || RC=$?
    [ "$RC" -ne 137 ] || fail "ckptmpi $* did not finish within ${CMD_TIMEOUT}s"
}

# verify_ok DIR [ARGS...]: ckptmpi verify must pass.
verify_ok() {
    ck verify "$@"
    [ "$RC" -eq 0 ] ||
        fail "ckptmpi verify $* failed (exit $RC): $(snip "$WORK/ck.err" 800) $(snip "$WORK/ck.out" 400)"
    log "ckptmpi verify $* passed"
}

# expect_error NEEDLE ARGS...: "ckptmpi ARGS" must fail cleanly: non-zero
# exit (not a crash, not a hang), exactly one line on stderr, containing
# NEEDLE (when NEEDLE is not empty), and no program output on stdout.
expect_error() {
    local needle=$1 n
    shift
    ck "$@"
    [ "$RC" -ne 0 ] || fail "ckptmpi $* succeeded on bad input, expected an error"
    [ "$RC" -lt 128 ] || fail "ckptmpi $* died of signal $((RC - 128)) instead of reporting an error"
    n=$(grep -c . "$WORK/ck.err" || true)
    [ "$n" -eq 1 ] ||
        fail "ckptmpi $* printed $n lines on stderr, expected exactly one: $(snip "$WORK/ck.err" 1000)"
    if [ -n "$needle" ] && ! grep -qF -- "$needle" "$WORK/ck.err"; then
        fail "ckptmpi $*: the error does not name '$needle': $(snip "$WORK/ck.err")"
    fi
    if grep -Eq '^[0-9]+ ' "$WORK/ck.out"; then
        fail "ckptmpi $*: the program ran anyway: $(snip "$WORK/ck.out" 300)"
    fi
    log "ok, exit $RC: ckptmpi $* -> $(snip "$WORK/ck.err" 300)"
}

# ls_shows G FILE: does the output of "ckptmpi ls" in FILE show generation
# G?  Either its file name, a line whose first field is G (zero-padded or
# not, optionally followed by ':'), or the words "generation G".
ls_shows() {
    local g=$1 f=$2 name
    name=$(printf 'ckpt-%06d.h5' "$g")
    grep -qF "$name" "$f" && return 0
    awk -v g="$g" '{ x = $1; sub(/:$/, "", x) } x ~ /^[0-9]+$/ && x + 0 == g { f = 1 } END { exit !f }' "$f" &&
        return 0
    grep -Eiq "generation[ :=#]*0*$g([^0-9]|$)" "$f"
}

# ---------------------------------------------------------------- comparing

# merge_outputs RUN1 RESTART MERGED: the lines of RUN1 whose step is lower
# than the first step RESTART printed, then all of RESTART.  (Lines of RUN1
# without a step number are kept, so that the diff shows them.)  Restarts
# of a restart are merged by applying this again to the previous result.
merge_outputs() {
    local run1=$1 restart=$2 merged=$3 first tmp
    [ -s "$restart" ] || fail "restart output $restart is empty"
    first=$(first_step_of "$restart")
    [[ $first =~ ^[0-9]+$ ]] ||
        fail "restart output $restart does not begin with a step number: '$(head -n 1 "$restart" 2>/dev/null || true)'"
    tmp=$merged.tmp.$$
    awk -v f="$first" '!($1 ~ /^[0-9]+$/) || $1 + 0 < f' "$run1" >"$tmp"
    cat "$restart" >>"$tmp"
    mv "$tmp" "$merged"
}

# same_file EXPECTED ACTUAL WHAT [AGAINST]: fail with a diff unless identical.
same_file() {
    local exp=$1 act=$2 what=$3
    [ -f "$exp" ] || fail "$what: expected file $exp missing"
    [ -f "$act" ] || fail "$what: file $act missing"
    if ! cmp -s "$exp" "$act"; then
        printf -- '----- diff -u %s %s (first 60 lines) -----\n' "$exp" "$act" >&2
        diff -u "$exp" "$act" | head -n 60 >&2 || true
        fail "$what differs from ${4:-the uninterrupted run}"
    fi
    log "$what identical to ${4:-the uninterrupted run} ($(wc -l <"$exp" || true) lines)"
}

# ---------------------------------------------------------------- a whole case

# basic_case NSTEPS CKPT_STEP KILL_STEP FILE -- PROGRAM [ARGS...]
# Reference run in $WORK/ref; checkpointed run in $WORK/ck: checkpoint once
# step CKPT_STEP has been printed, SIGKILL once KILL_STEP has (and at least
# 3 steps after the checkpoint), restart the
# latest generation in the foreground, and compare stdout (merged) and FILE
# (a path relative to the program's cwd that the program writes; "-" for
# none) with the reference run's.
# first_run NSTEPS CKPT_STEP KILL_AT MORE -- PROGRAM [ARGS...]: start the
# uninterrupted reference run (cwd $WORK/ref, stdout $WORK/ref.out) and the
# same program under ckptmpi (cwd $WORK/ck, stdout $WORK/run1.out, DIR
# $WORK/ckpt); checkpoint once step CKPT_STEP is out, let the job run to
# step max(KILL_AT, AFTER + MORE), check it has not finished its NSTEPS,
# and SIGKILL it. Sets CKPT_DIR, REF_PID, GEN, and AFTER (the last step
# printed when the checkpoint was committed).
first_run() {
    local nsteps=$1 ckpt_step=$2 kill_at=$3 more=$4
    shift 4
    [ "${1:-}" = -- ] || fail "first_run: missing --"
    shift
    CKPT_DIR=$WORK/ckpt
    mkdirs "$WORK/ref" "$WORK/ck" "$CKPT_DIR"

    plain_bg "$WORK/ref" "$WORK/ref.out" -- "$@"
    run_bg "$WORK/ck" "$WORK/run1.out" "$CKPT_DIR" -- "$@"
    local job=$JOB_PID

    wait_step "$WORK/run1.out" "$ckpt_step" "$job"
    ckpt "$CKPT_DIR"
    AFTER=$(last_step_of "$WORK/run1.out")
    # let it run on past the checkpoint for a few steps before the kill
    [ "$kill_at" -gt $((AFTER + more)) ] || kill_at=$((AFTER + more))
    wait_step "$WORK/run1.out" "$kill_at" "$job"
    finished "$WORK/run1.out" "$nsteps" && fail "program finished before it could be killed"
    kill_job "$job"
}

basic_case() {
    local nsteps=$1 ckpt_step=$2 kill_step=$3 file=$4
    shift 4
    [ "${1:-}" = -- ] || fail "basic_case: missing --"
    shift
    first_run "$nsteps" "$ckpt_step" "$kill_step" 3 -- "$@"

    restart_fg "$WORK/ck" "$WORK/restart.out" "$CKPT_DIR"
    check_resume "$WORK/restart.out" "$((ckpt_step + 1))" "$((AFTER + 1))"

    wait_exit "$REF_PID" "reference run"
    merge_outputs "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
    same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + restart)"
    if [ "$file" != - ]; then
        same_file "$WORK/ref/$file" "$WORK/ck/$file" "file $file"
    fi
}
