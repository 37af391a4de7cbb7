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
    # (read, not $(cat): no fork; a fork took 10 ms on a loaded host, and
    # the job helpers call this for every process of a job)
    { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1
    s=${s##*) }
    [ "${s%% *}" != Z ]
}

# PID and all its descendants, parents first.
_tree() {
    local pid=$1 c
    local t kids
    echo "$pid"
    for t in /proc/"$pid"/task/*/children; do
        kids=()
        { read -r -a kids <"$t"; } 2>/dev/null || true # (no newline at its end)
        for c in "${kids[@]}"; do
            _tree "$c"
        done
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
    HOLD_FILE=$WORK/hold/end
    mkdirs "$WORK/hold"
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
# free_port: a TCP port no socket uses now, below the kernel's range of
# ephemeral ports, so that no connection of a test running beside this one
# (an MPI job's) takes it before the program that is given it binds it
# (a port from that range, or one bind(0) gave and let go, made slurmctld
# fail with "Address already in use").
free_port() {
    local p lo=32768 _hi
    read -r lo _hi < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    [ "$lo" -gt 12000 ] || lo=32768
    for _ in $(seq 100); do
        p=$((10000 + RANDOM % (lo - 10000)))
        if ! ss -Htan "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    fail "no free TCP port below $lo"
}

mkdirs() {
    "${AS_USER[@]}" mkdir -p "$@"
}

# ---------------------------------------------------------------- the hold
#
# A run the test will kill after a checkpoint must still be running at the
# kill, however slow the machine: armed, the hold makes the test programs
# wait before their final line (test/programs/hold_end.h).  The runs that
# ckptmpi starts get CKPTMPI_TEST_HOLD=$HOLD_FILE (run_bg, mpi_start); a
# restart has the checkpointed environment, so the same.  hold_arm before
# starting a run that is to be killed; kill_job and mpi_kill_job release
# it, so what runs next goes to its end unless armed again.

hold_arm() {
    "${AS_USER[@]}" touch "$HOLD_FILE"
}

hold_release() {
    rm -f "$HOLD_FILE" "$HOLD_FILE.reached"
}

# hold_reached: has a held program printed all its steps and now waits?
hold_reached() {
    [ -e "$HOLD_FILE.reached" ]
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
    : >"$out"; : >"$out.err" # emptied now: the job's own redirection may come after the caller's first look
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
    : >"$out"; : >"$out.err" # emptied now: the job's own redirection may come after the caller's first look
    (cd "$cwd" && exec "${AS_USER[@]}" CKPTMPI_TEST_HOLD="$HOLD_FILE" "$CKPTMPI" run --dir "$dir" "${opts[@]}" -- "$@") \
        >"$out" 2>"$out.err" </dev/null &
    JOB_PID=$!
    _PIDS+=("$JOB_PID")
    show_on_failure "$out.err"
}

# damage_middle FILE: 512 bytes in the middle of FILE flipped (as the
# test's user), where a generation's page data lies
damage_middle() {
    "${AS_USER[@]}" perl -e '
        my $f = shift; my $size = -s $f; my $buf;
        open(my $h, "+<", $f) or die "$f: $!"; binmode $h;
        seek($h, int($size / 2), 0); read($h, $buf, 512) == 512 or die "short read";
        $buf ^= ("\x5a" x 512);
        seek($h, int($size / 2), 0); print $h $buf or die; close($h) or die;' "$1"
}

# restart_bg CWD OUT DIR [RESTART-OPTIONS...]: ckptmpi restart in the
# background.  Sets JOB_PID.
restart_bg() {
    local cwd=$1 out=$2 dir=$3
    shift 3
    log "ckptmpi restart $dir${*:+ $*} (background)"
    : >"$out"; : >"$out.err" # emptied now: the job's own redirection may come after the caller's first look
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
    if [ "$rc" -eq 137 ]; then
        # a hang: what each process still running was doing, and the
        # members' own logs (a job's restart writes them under DIR)
        ps -eo pid,ppid,stat,wchan:24,args | grep -E '[c]kptmpi|[i]bv_|[i]b_' >&2 || true
        show_on_failure "$dir"/restart-*/member-*.err
        fail "ckptmpi restart $dir${*:+ $*} did not finish within ${CMD_TIMEOUT}s"
    fi
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
    hold_release
}

# ---------------------------------------------------------------- steps

# Does OUT contain a line whose step number is >= K?
has_step() {
    awk -v k="$2" '$1 ~ /^[0-9]+$/ && $1 + 0 >= k { f = 1; exit } END { exit !f }' "$1" 2>/dev/null
}

# wait_step OUT K PID [TIMEOUT]: wait until OUT shows step K, or the
# program waits in the armed hold (all its steps out); fails if the
# process ends first or the timeout passes.
wait_step() {
    local out=$1 k=$2 pid=$3 t=${4:-$STEP_TIMEOUT}
    local deadline=$((SECONDS + t))
    until has_step "$out" "$k"; do
        if hold_reached; then
            log "held before its final line at step $(last_step_of "$out") (waited for step $k)"
            break
        fi
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
    ckpt_committed "$dir" "$out"
}

# ckpt_committed DIR OUTPUT: `ckptmpi checkpoint DIR` printed OUTPUT: GEN is
# the generation it names, which must exist.
ckpt_committed() {
    local dir=$1 out=$2 line
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

# refused_checkpoint DIR WHAT NEEDLE...: with the job (stderr in
# $WORK/run1.out.err) running, `ckptmpi checkpoint DIR` must be refused
# with one line naming every NEEDLE, the job's log must say why (the first
# NEEDLE), and DIR must hold no generation nor anything but the control
# socket. WHAT names what the program holds, for the messages.
refused_checkpoint() {
    local dir=$1 what=$2 n
    shift 2
    ck checkpoint "$dir"
    [ "$RC" -ne 0 ] || fail "checkpoint of a program holding $what succeeded; it must be refused"
    [ "$(grep -c . "$WORK/ck.err")" -eq 1 ] || fail "expected one line of error: $(snip "$WORK/ck.err" 600)"
    for n in "$@"; do
        grep -q "$n" "$WORK/ck.err" || fail "the error does not name $n: $(snip "$WORK/ck.err" 300)"
    done
    grep -q "$1" "$WORK/run1.out.err" || fail "the job's log does not say why: $(snip "$WORK/run1.out.err" 300)"
    [ -z "$(gens_in "$dir")" ] || fail "a generation was written anyway"
    [ -z "$(ls -A "$dir" | grep -v '^control.sock$' || true)" ] || fail "leftovers in $dir: $(ls -A "$dir" | tr '\n' ' ')"
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
    hold_arm
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

# ================================================================ MPI jobs
#
# Checkpoint/restart of whole MPI jobs started by mpirun (test/e2e/mpi_ckpt_*.sh).
# The test programs come in two builds per flavour (test/mpi/CMakeLists.txt):
# PROGRAM_FLAVOUR (plain) and PROGRAM_linked_FLAVOUR (linked with -lckptmpi).
#
#   mpi_setup FLAVOUR                 once per case: MPIRUN, cleanup of MPI jobs
#   mpi_ckpt_case [OPTIONS] FLAVOUR NP PROGRAM [ARGS...]
#       reference run (plain mpirun) -> run under ckptmpi -> checkpoint ->
#       SIGKILL of the whole job -> restart (CKPTMPI_RESTART=latest) -> the
#       merged output must equal the reference; verify + ls on the generation
#   mpi_chain_case [OPTIONS] FLAVOUR NP PROGRAM [ARGS...]
#       the same, twice: checkpoint, kill, restart, checkpoint, kill, restart
#   mpi_sigterm_case [OPTIONS] FLAVOUR NP PROGRAM [ARGS...]
#       SIGTERM to mpirun (checkpoint, then the job exits), then restart
#   mpi_hpcc_case [OPTIONS] NP N      Debian's hpcc (OpenMPI), unmodified
#   mpi_lammps_case [OPTIONS] NP STEPS  Debian's LAMMPS (OpenMPI), unmodified
#
# OPTIONS (each case):
#   --trigger mpirun|rank|command   how the checkpoint is requested: SIGUSR1
#           to mpirun (default), SIGUSR1 to the last rank's process only, or
#           "ckptmpi checkpoint DIR"
#   --runtime    run the plain build through "ckptmpi-runtime-FLAVOUR PROGRAM"
#           (an unmodified program) instead of the _linked_ build
#   --at K       request the checkpoint once step K is printed (default 3)
#   --more M     after the commit, let M more steps be printed before the
#           kill (default 2)
#
# PROGRAM is the name of a test program built for both flavours (mpi_p2p:
# $PROGS/mpi_p2p_FLAVOUR natively, $PROGS/mpi_p2p_linked_FLAVOUR under
# ckptmpi), a python script in $PROGS (run as /usr/bin/python3 SCRIPT,
# natively and through the runtime), or a command (absolute, or found in
# PATH: run through the runtime).  The programs print lines that begin with
# a step number (see test/mpi/ckpt_common.h); ARGS usually are NITER SLEEP_MS.
#
# Every process of a job carries CKPTMPI_E2E_JOB=<tag> in its environment:
# the job is "mpirun and its descendants, plus every process with that tag"
# (MPICH's ranks call setsid(), OpenMPI's setpgid(): neither a session nor a
# process group holds them all), so that a kill reaches every rank and a
# case can check that nothing survived.
#
# Environment: MPI_RUN_TIMEOUT (s for a whole run, default 120),
# MPI_CKPT_TIMEOUT (s for a checkpoint to commit, default 60),
# MPI_TERM_GRACE (see mpi_sigterm_case, default 5), MPI_CASE_TIMEOUT (s
# for the whole case, default 270: every wait is cut to what is left, so
# that a case fails, and cleans up, before ctest's TIMEOUT kills it).

MPI_FL=
MPI_NP=
MPIRUN=()
MPI_PID=
MPI_TAG=
MPI_TAG_BASE=
_MPI_RUNS=0
MPI_TRIGGER=mpirun
MPI_MODE=linked
MPI_AT=3
MPI_MORE=2
MPI_NATIVE=()
MPI_CKPTCMD=()
declare -A _MPI_RANK_PIDS=() # "TAG:RANK" -> pid (mpi_request_ckpt)
REQ_STEP=
CKPT_AFTER=
MPI_ENV=()
MPI_RUN_TIMEOUT=${MPI_RUN_TIMEOUT:-120}
MPI_CASE_TIMEOUT=${MPI_CASE_TIMEOUT:-270}
_MPI_DEADLINE=
MPI_CKPT_TIMEOUT=${MPI_CKPT_TIMEOUT:-60}
MPI_TERM_GRACE=${MPI_TERM_GRACE:-5}

_mpi_rc() { return "$1"; }

# _mpi_t T: T, or the seconds left of MPI_CASE_TIMEOUT if fewer (at least 1).
_mpi_t() {
    local left=$((_MPI_DEADLINE - SECONDS))
    [ "$left" -ge 1 ] || left=1
    [ "$1" -le "$left" ] && echo "$1" || echo "$left"
}

# EXIT trap of MPI cases: SIGKILL every process tagged by this case, then
# the usual cleanup (with the exit status preserved).
_mpi_on_exit() {
    local rc=$?
    trap - ERR
    [ -z "$MPI_TAG_BASE" ] || _mpi_kill_tagged "$MPI_TAG_BASE-" || true
    if [ "$rc" -eq 0 ]; then
        _cleanup
    else
        _mpi_rc "$rc" || _cleanup
    fi
}

# mpi_setup FLAVOUR: skip unless FLAVOUR (mpich, openmpi) is built and its
# mpirun installed; sets MPI_FL and MPIRUN.
mpi_setup() {
    MPI_FL=$1
    case $MPI_FL in
        mpich) MPIRUN=(mpirun.mpich) ;;
        openmpi) MPIRUN=(mpirun.openmpi --oversubscribe) ;;
        *) fail "mpi_setup: unknown MPI flavour '$MPI_FL' (mpich or openmpi)" ;;
    esac
    command -v "${MPIRUN[0]}" >/dev/null || skip "${MPIRUN[0]} not installed"
    [ -x "$BUILD/bin/ckptmpi-runtime-$MPI_FL" ] || skip "MPI flavour $MPI_FL not built"
    if [ -z "$MPI_TAG_BASE" ]; then
        _MPI_DEADLINE=$((SECONDS + MPI_CASE_TIMEOUT))
        MPI_TAG_BASE="$TEST_NAME-$$-$RANDOM"
        trap _mpi_on_exit EXIT
    fi
    mkdirs "$WORK/tmp"
}

# Pids (one a line) of live processes whose environment holds
# CKPTMPI_E2E_JOB=TAG (TAG ending in "-": every tag with that prefix).
_mpi_tagged() {
    local tag=$1 f p
    local pat="CKPTMPI_E2E_JOB=$tag"
    if [ "${tag%-}" != "$tag" ]; then
        f=$(grep -lzF -- "$pat" /proc/[0-9]*/environ 2>/dev/null || true)
    else
        f=$(grep -lzxF -- "$pat" /proc/[0-9]*/environ 2>/dev/null || true)
    fi
    for p in $f; do
        p=${p#/proc/}
        p=${p%/environ}
        [ "$p" != "$BASHPID" ] && _alive "$p" && echo "$p"
    done
    return 0
}

# Pids of the current job: mpirun's tree and everything with its tag.
_mpi_job_pids() {
    {
        if [ -n "$MPI_PID" ] && _alive "$MPI_PID"; then _tree "$MPI_PID"; fi
        [ -z "$MPI_TAG" ] || _mpi_tagged "$MPI_TAG"
    } | sort -un | while read -r p; do
        if _alive "$p"; then echo "$p"; fi
    done
    return 0
}

_mpi_describe() {
    local p
    for p in "$@"; do
        printf '%s(%s) ' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-80)"
    done
}

# SIGKILL everything tagged TAG (a prefix when it ends in "-"), until
# nothing is left (10 s); returns 1 if something survived.
_mpi_kill_tagged() {
    local tag=$1 pids i
    for i in $(seq 200); do
        pids=$(_mpi_tagged "$tag")
        [ -n "$pids" ] || return 0
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        sleep 0.05
    done
    # shellcheck disable=SC2086
    log "processes survived SIGKILL: $(_mpi_describe $pids)"
    return 1
}

# mpi_dump_stacks: what each process of a hung job is doing, to stderr
# (a hang that comes once in many runs is understood from this or not at
# all): each thread's state and kernel wait, then its user stack (gdb,
# when installed; ptrace as root or the same user).
mpi_dump_stacks() {
    local p t
    for p in $(_mpi_job_pids); do
        printf -- '----- %s -----\n' "$(_mpi_describe "$p")" >&2
        for t in /proc/"$p"/task/*; do
            printf '  thread %s %s: %s wchan=%s syscall=%s\n' "${t##*/}" \
                "$(cat "$t/comm" 2>/dev/null)" \
                "$(awk '{print $3}' "$t/stat" 2>/dev/null)" \
                "$(cat "$t/wchan" 2>/dev/null)" \
                "$(cut -d' ' -f1 "$t/syscall" 2>/dev/null)" >&2
        done
        if command -v gdb >/dev/null; then
            timeout -s KILL 30 gdb -q -nx -batch -p "$p" -ex 'thread apply all bt 20' \
                2>/dev/null | grep -E '^(Thread|#)' | head -n 120 >&2 || true
        fi
    done
}

# mpi_kill_job: SIGKILL mpirun and every process of the job at once, make
# sure none survives, reap mpirun.
mpi_kill_job() {
    local pids i
    log "kill -9 the job (mpirun $MPI_PID and its ranks): $(_mpi_job_pids | wc -l) processes"
    disown "$MPI_PID" 2>/dev/null || true
    for i in $(seq 200); do
        pids=$(_mpi_job_pids)
        [ -n "$pids" ] || break
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        sleep 0.05
    done
    pids=$(_mpi_job_pids)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || fail "processes of the job survived SIGKILL for 10 s: $(_mpi_describe $pids)"
    { wait "$MPI_PID" || true; } 2>/dev/null
    hold_release
}

# mpi_wait_gone WHAT TIMEOUT: wait until no process of the job is left
# (mpirun has exited and so has every rank); fails after TIMEOUT s, naming
# the processes still there.  Sets RC to mpirun's exit status.
mpi_wait_gone() {
    local what=$1 t=$2 deadline pids
    deadline=$((SECONDS + t))
    while pids=$(_mpi_job_pids) && [ -n "$pids" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            # shellcheck disable=SC2086
            fail "$what: still running after ${t}s: $(_mpi_describe $pids)"
        fi
        sleep 0.1
    done
    RC=0
    wait "$MPI_PID" 2>/dev/null || RC=$?
}

# mpi_start CWD OUT [VAR=VALUE...] -- COMMAND...: "mpirun -np $MPI_NP
# COMMAND" in the background as the test user, with the variables and a
# fresh CKPTMPI_E2E_JOB tag in its environment (both MPIs hand mpirun's
# environment to local ranks; a multi-host run would need -x / -genv),
# TMPDIR in the work directory (OpenMPI's session directory), stdout to
# OUT, stderr to OUT.err.  Sets MPI_PID and MPI_TAG.
mpi_start() {
    local cwd=$1 out=$2
    shift 2
    local envs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        envs+=("$1")
        shift
    done
    [ "${1:-}" = -- ] || fail "mpi_start: missing --"
    shift
    _MPI_RUNS=$((_MPI_RUNS + 1))
    MPI_TAG=$MPI_TAG_BASE-$_MPI_RUNS
    log "${envs[*]:+${envs[*]} }${MPIRUN[*]} -np $MPI_NP $*  (cwd $cwd, stdout $out)"
    : >"$out"; : >"$out.err" # emptied now: the job's own redirection may come after the caller's first look
    (cd "$cwd" && exec "${AS_USER[@]}" env CKPTMPI_E2E_JOB="$MPI_TAG" TMPDIR="$WORK/tmp" CKPTMPI_TEST_HOLD="$HOLD_FILE" \
        "${MPI_ENV[@]}" "${envs[@]}" "${MPIRUN[@]}" -np "$MPI_NP" "$@") \
        >"$out" 2>"$out.err" </dev/null &
    MPI_PID=$!
    _PIDS+=("$MPI_PID")
    show_on_failure "$out.err"
}

# mpi_run CWD OUT [VAR=VALUE...] -- COMMAND...: mpi_start, then wait for the
# whole job to end (MPI_RUN_TIMEOUT); fails unless mpirun exits 0.
mpi_run() {
    local out=$2
    mpi_start "$@"
    local t
    t=$(_mpi_t "$MPI_RUN_TIMEOUT")
    local deadline=$((SECONDS + t))
    while _alive "$MPI_PID"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            mpi_dump_stacks
            mpi_kill_job
            fail "mpirun did not finish within ${t}s ($out: last step $(last_step_of "$out"))"
        fi
        sleep 0.05
    done
    mpi_wait_gone "the job after mpirun exited" 10
    [ "$RC" -eq 0 ] ||
        fail "mpirun exited $RC ($out: last step $(last_step_of "$out")): $(_mpi_first_error "$out.err")"
    log "finished: $(wc -l <"$out") lines, last step $(last_step_of "$out")"
}

# mpi_rank_pid RANK: the pid of rank RANK of the current job (from
# OMPI_COMM_WORLD_RANK / PMI_RANK in the environment of the job's processes).
mpi_rank_pid() {
    local want=$1 p r kv
    for p in $(_mpi_job_pids); do
        r=
        while IFS= read -r -d '' kv; do
            case $kv in
                OMPI_COMM_WORLD_RANK=* | PMI_RANK=*) r=${kv#*=}; break ;;
            esac
        done 2>/dev/null <"/proc/$p/environ" || true
        if [ "$r" = "$want" ]; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# _mpi_first_error FILE: the first line of FILE that looks like an error
# (else its beginning), for messages.
_mpi_first_error() {
    local l
    l=$(grep -m 1 -iE 'check failed|error|abort|signal|killed|not supported' "$1" 2>/dev/null | cut -c1-400 || true)
    if [ -n "$l" ]; then echo "$l"; else snip "$1" 400; fi
}

# mpi_wait_step OUT K: wait until the running job (MPI_PID) has printed
# step K in OUT; fails, with the job's first error line, if it ends first.
mpi_wait_step() {
    local out=$1 k=$2 t deadline
    t=$(_mpi_t "$MPI_RUN_TIMEOUT")
    deadline=$((SECONDS + t))
    until has_step "$out" "$k"; do
        if hold_reached; then
            log "held before its final line at step $(last_step_of "$out") (waited for step $k)"
            break
        fi
        if ! _alive "$MPI_PID"; then
            has_step "$out" "$k" && break
            RC=0
            wait "$MPI_PID" 2>/dev/null || RC=$?
            fail "the job ended (mpirun status $RC) before printing step $k in $out (last step: $(last_step_of "$out")): $(_mpi_first_error "$out.err")"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            mpi_dump_stacks
            fail "timeout (${t}s) waiting for step $k in $out (last step: $(last_step_of "$out"))"
        fi
        sleep 0.02
    done
}

# _mpi_options ARGS...: parse the case options into MPI_TRIGGER, MPI_MODE,
# MPI_AT, MPI_MORE; sets _MPI_SHIFT to the number of words they took.
_mpi_options() {
    MPI_TRIGGER=mpirun MPI_MODE=linked MPI_AT=3 MPI_MORE=2
    _MPI_SHIFT=0
    while [ $# -gt 0 ]; do
        case $1 in
            --trigger)
                case ${2:-} in
                    mpirun | rank | command) MPI_TRIGGER=$2 ;;
                    *) fail "--trigger ${2:-}: expected mpirun, rank or command" ;;
                esac
                shift 2
                _MPI_SHIFT=$((_MPI_SHIFT + 2))
                ;;
            --runtime) MPI_MODE=runtime; shift; _MPI_SHIFT=$((_MPI_SHIFT + 1)) ;;
            --at) MPI_AT=$2; shift 2; _MPI_SHIFT=$((_MPI_SHIFT + 2)) ;;
            --more) MPI_MORE=$2; shift 2; _MPI_SHIFT=$((_MPI_SHIFT + 2)) ;;
            --*) fail "unknown option $1" ;;
            *) break ;;
        esac
    done
}

# _mpi_program PROGRAM ARGS...: set MPI_NATIVE (plain run) and MPI_CKPTCMD
# (run under ckptmpi) for the current flavour and MPI_MODE.
_mpi_program() {
    local prog=$1 rt=$BUILD/bin/ckptmpi-runtime-$MPI_FL path
    shift
    if [[ $prog == *.py ]]; then
        path=$prog
        [[ $path == /* ]] || path=$PROGS/$prog
        [ -f "$path" ] || fail "python script not found: $path"
        /usr/bin/python3 -c 'import mpi4py' 2>/dev/null || skip "python3-mpi4py not installed"
        MPI_NATIVE=(/usr/bin/python3 "$path" "$@")
        MPI_CKPTCMD=("$rt" /usr/bin/python3 "$path" "$@")
    elif [[ $prog != */* ]] && [ -e "$PROGS/${prog}_$MPI_FL" ]; then
        need_prog "${prog}_$MPI_FL" "${prog}_linked_$MPI_FL"
        MPI_NATIVE=("$PROGS/${prog}_$MPI_FL" "$@")
        # test/mpi's programs (ckpt_common.h: ITERATIONS MS) print the
        # same whatever their per-step sleep, which only paces the run a
        # checkpoint has to hit: the plain run that gives the expected
        # output sleeps 1 ms a step (not 0: ranks that never sleep poll
        # busily, and more ranks than cores then crawl)
        case $prog in
            mpi_p2p | mpi_colls | mpi_comms | mpi_types_ops | mpi_threads_ckpt)
                [ $# -lt 2 ] || MPI_NATIVE=("$PROGS/${prog}_$MPI_FL" "$1" 1 "${@:3}") ;;
        esac
        if [ "$MPI_MODE" = runtime ]; then
            MPI_CKPTCMD=("$rt" "$PROGS/${prog}_$MPI_FL" "$@")
        else
            MPI_CKPTCMD=("$PROGS/${prog}_linked_$MPI_FL" "$@")
        fi
    else
        path=$prog
        [[ $path == */* ]] || path=$(command -v "$prog" || true)
        if [ -z "$path" ] || [ ! -x "$path" ]; then
            fail "program not found: $prog (nor $PROGS/${prog}_$MPI_FL)"
        fi
        MPI_NATIVE=("$path" "$@")
        MPI_CKPTCMD=("$rt" "$path" "$@")
    fi
}

# Newest committed generation in DIR (0 if none): ckpt-NNNNNN.h5 only,
# never a temporary file.
mpi_latest_gen() {
    local g
    g=$(gens_in "$1" | tail -n 1)
    echo "${g:-0}"
}

# mpi_request_ckpt DIR OUT: ask the running job for a checkpoint
# (MPI_TRIGGER) and wait until a generation newer than the newest one in
# DIR is committed (MPI_CKPT_TIMEOUT).  Fails early when the job ends, or
# when the job reports an error and no generation follows within 5 s (the
# runtime prints only errors on stderr unless CKPTMPI_VERBOSE is set).
# Sets GEN, and REQ_STEP (the last step printed before the request).
mpi_request_ckpt() {
    local dir=$1 out=$2 before pid errsz deadline grace=0 line
    before=$(mpi_latest_gen "$dir")
    REQ_STEP=$(last_step_of "$out")
    errsz=$(stat -c %s "$out.err" 2>/dev/null || echo 0)
    case $MPI_TRIGGER in
        mpirun)
            log "checkpoint request: kill -USR1 mpirun ($MPI_PID) at step $REQ_STEP"
            kill -USR1 "$MPI_PID" || fail "cannot signal mpirun $MPI_PID"
            ;;
        rank)
            # the rank's pid, found once per run: a scan of /proc took
            # over a second on a loaded host, while the job ran on
            local key=$MPI_TAG:$((MPI_NP - 1))
            pid=${_MPI_RANK_PIDS[$key]:-}
            if [ -z "$pid" ] || ! _alive "$pid"; then
                # shellcheck disable=SC2046
                pid=$(mpi_rank_pid $((MPI_NP - 1))) ||
                    fail "no process of rank $((MPI_NP - 1)) found among $(_mpi_describe $(_mpi_job_pids))"
                _MPI_RANK_PIDS[$key]=$pid
            fi
            log "checkpoint request: kill -USR1 rank $((MPI_NP - 1)) only (pid $pid) at step $REQ_STEP"
            kill -USR1 "$pid" || fail "cannot signal rank process $pid"
            ;;
        command)
            log "checkpoint request: ckptmpi checkpoint $dir at step $REQ_STEP"
            ckpt "$dir"
            [ "$GEN" -gt "$before" ] || fail "ckptmpi checkpoint reported generation $GEN, not newer than $before"
            return 0
            ;;
    esac
    local t
    t=$(_mpi_t "$MPI_CKPT_TIMEOUT")
    deadline=$((SECONDS + t))
    while :; do
        GEN=$(mpi_latest_gen "$dir")
        [ "$GEN" -le "$before" ] || break
        _alive "$MPI_PID" ||
            fail "the job ended (last step $(last_step_of "$out")) without committing a checkpoint in $dir: $(tail -c +"$((errsz + 1))" "$out.err" | head -c 600 | tr '\n' ' ')"
        if [ "$grace" = 0 ] && [ "${CKPTMPI_VERBOSE:-0}" = 0 ]; then
            line=$(tail -c +"$((errsz + 1))" "$out.err" 2>/dev/null | grep -m 1 -E '^ckptmpi\[[0-9]+\]: ' || true)
            [ -z "$line" ] || grace=$((SECONDS + 5))
        fi
        [ "$grace" = 0 ] || [ "$SECONDS" -lt "$grace" ] ||
            fail "checkpoint request ($MPI_TRIGGER) answered with an error and no generation: $line"
        [ "$SECONDS" -lt "$deadline" ] ||
            fail "no committed generation in $dir ${t}s after the checkpoint request ($MPI_TRIGGER); $(ls "$dir" 2>/dev/null | tr '\n' ' ')"
        sleep 0.05
    done
    log "checkpoint committed: generation $GEN ($(gen_file "$dir" "$GEN"))"
}

# ls_ranks G FILE: the rank count that "ckptmpi ls" (output in FILE) shows
# for generation G: the value under the header's "ranks" column (right
# aligned), or a "ranks=N" / "N ranks" on G's line.
ls_ranks() {
    awk -v g="$1" '
        /(^| )generation( |$)/ && / ranks( |$)/ && !hdr { hdr = 1; e = index($0, " ranks") + 5; next }
        { x = $1; sub(/:$/, "", x) }
        x ~ /^[0-9]+$/ && x + 0 == g + 0 {
            if (hdr && e > 5) {
                s = substr($0, 1, e); n = split(s, w, " ")
                if (n && w[n] ~ /^[0-9]+$/) { print w[n]; exit }
            }
            if (match($0, /ranks[=: ]+[0-9]+/)) { s = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", s); print s; exit }
            if (match($0, /[0-9]+ ranks/)) { s = substr($0, RSTART, RLENGTH); gsub(/[^0-9]/, "", s); print s; exit }
        }' "$2"
}

# mpi_check_generation DIR G NP: "ckptmpi verify DIR --generation G"
# passes and "ckptmpi ls DIR" lists G with NP ranks.
mpi_check_generation() {
    local dir=$1 g=$2 np=$3 n
    verify_ok "$dir" --generation "$g"
    ck ls "$dir"
    [ "$RC" -eq 0 ] || fail "ckptmpi ls $dir exited $RC: $(snip "$WORK/ck.err")"
    ls_shows "$g" "$WORK/ck.out" || fail "ckptmpi ls does not list generation $g: $(snip "$WORK/ck.out")"
    n=$(ls_ranks "$g" "$WORK/ck.out")
    [ "$n" = "$np" ] ||
        fail "ckptmpi ls shows ${n:-no} ranks for generation $g, expected $np: $(snip "$WORK/ck.out" 800)"
    log "generation $g: verify passed, ls shows $np ranks"
}

# merge_steps RUN1 RESTART MERGED: RUN1 is the output of a run killed after
# a checkpoint, RESTART the output of the run restarted from it.  Lines
# begin with a step number; the restart resumes at the step after the
# checkpoint, F = its first line's step.  RUN1 printed some lines with
# step >= F too (between the checkpoint and the kill): those must be
# exactly the first lines of RESTART (same text, same order).  MERGED is
# then RUN1's lines with step < F (and any line of RUN1 without a step
# number, so that a comparison shows it) followed by all of RESTART.  An
# incomplete last line of RUN1 (no newline: the kill cut it) is dropped.
# Fails if RESTART is empty or does not begin with a step, if F is beyond
# RUN1's last step + 1 (steps missing), or if a duplicated line differs.
merge_steps() {
    local run1=$1 restart=$2 merged=$3 tmp rc=0 msg
    [ -s "$restart" ] || fail "merge: restart output $restart is empty"
    tmp=$merged.run1.$$
    cp "$run1" "$tmp"
    if [ -s "$tmp" ] && [ "$(tail -c 1 "$tmp" | od -An -tx1 | tr -d ' ')" != 0a ]; then
        log "merge: dropping the incomplete last line of $run1: '$(tail -n 1 "$tmp")'"
        sed -i '$d' "$tmp"
    fi
    msg=$(awk -v out="$merged.tmp.$$" '
        function step(l,   f) { f = l; sub(/ .*/, "", f); return f ~ /^[0-9]+$/ ? f + 0 : -1 }
        FNR == NR { a[++na] = $0; next }
        { r[++nr] = $0 }
        END {
            F = step(r[1])
            if (F < 0) { print "the restart output does not begin with a step number: \"" r[1] "\""; exit 2 }
            last = -1
            for (i = 1; i <= na; i++) {
                s = step(a[i])
                if (s > last) last = s
                if (s >= F) d[++nd] = a[i]; else keep[++nk] = a[i]
            }
            if (F > last + 1) {
                print "the restart resumed at step " F " but the first run printed only up to step " last ": steps " last + 1 ".." F - 1 " are missing"
                exit 3
            }
            if (nd > nr) {
                print "the first run printed " nd " lines of steps >= " F " but the restart printed only " nr " lines"
                exit 4
            }
            for (i = 1; i <= nd; i++)
                if (d[i] != r[i]) {
                    print "line " i " of step >= " F " differs between the first run and the restart: \"" d[i] "\" vs \"" r[i] "\""
                    exit 5
                }
            for (i = 1; i <= nk; i++) print keep[i] > out
            for (i = 1; i <= nr; i++) print r[i] > out
            close(out)
            print "merge: " nk + 0 " lines of the first run, then " nr + 0 " of the restart (" nd + 0 " printed by both, identical); resumed at step " F
        }' "$tmp" "$restart") || rc=$?
    rm -f "$tmp"
    if [ "$rc" -ne 0 ]; then
        rm -f "$merged.tmp.$$"
        fail "merge of $run1 and $restart: $msg"
    fi
    mv "$merged.tmp.$$" "$merged"
    log "$msg"
}

# _mpi_check_resume RESTART_OUT LO HI [STRIDE]: the restart must resume at
# a step in [LO + 1, HI + STRIDE]: LO is the last step printed before the
# checkpoint was requested (printed before the cut, so not again: a
# restart that starts over fails), HI the last step printed when the
# commit was seen (the cut came before the commit, so the restart cannot
# begin later than the next line: one that skips steps fails). STRIDE:
# how far apart the printed steps are (default 1).
_mpi_check_resume() {
    local out=$1 lo=$2 hi=$3 stride=${4:-1} first
    first=$(first_step_of "$out")
    [[ $first =~ ^[0-9]+$ ]] ||
        fail "restart output $out does not begin with a step number: '$(head -n 1 "$out" 2>/dev/null || true)'"
    [ "$first" -gt "$lo" ] ||
        fail "the restart resumed at step $first, but step $lo had been printed before the checkpoint was requested (did it start over?)"
    [ "$first" -le $((hi + stride)) ] ||
        fail "the restart resumed at step $first, but the checkpoint was committed when step $hi was the last printed (steps skipped?)"
    log "restart resumed at step $first (in [$((lo + 1)), $((hi + stride))]: step $lo was out before the request, step $hi at the commit)"
}

# _mpi_reference: the plain run (cwd $WORK/ref, stdout $WORK/ref.out); must
# end with a "final" line.
_mpi_reference() {
    mkdirs "$WORK/ref"
    mpi_run "$WORK/ref" "$WORK/ref.out" -- "${MPI_NATIVE[@]}"
    grep -Eq '^[0-9]+ final' "$WORK/ref.out" ||
        fail "the reference run printed no 'final' line: $(tail -n 3 "$WORK/ref.out" | tr '\n' ' ')"
}

# _mpi_ckpt_and_kill OUT: with the job (MPI_PID) running and writing OUT:
# wait for step MPI_AT (or 2 steps past the first step in OUT), request a
# checkpoint, wait for the commit, let MPI_MORE more steps pass, make sure
# the job has not finished, SIGKILL the whole job.  Sets GEN, REQ_STEP
# and CKPT_AFTER (the last step printed when the commit was seen).
_mpi_ckpt_and_kill() {
    local out=$1 at=$MPI_AT first after
    first=$(first_step_of "$out")
    if [[ $first =~ ^[0-9]+$ ]] && [ "$at" -lt $((first + 2)) ]; then at=$((first + 2)); fi
    mpi_wait_step "$out" "$at"
    mpi_request_ckpt "$WORK/ck" "$out"
    after=$(last_step_of "$out")
    CKPT_AFTER=$after
    mpi_wait_step "$out" $((after + MPI_MORE))
    grep -Eq '^[0-9]+ final' "$out" && fail "the job finished before it could be killed (give it more iterations)"
    mpi_kill_job
    log "killed at step $(last_step_of "$out") (checkpoint requested at step $REQ_STEP, committed by step $after)"
}

# mpi_ckpt_case [OPTIONS] FLAVOUR NP PROGRAM [ARGS...]  (see the top)
mpi_ckpt_case() {
    _mpi_options "$@"
    shift "$_MPI_SHIFT"
    [ $# -ge 3 ] || fail "usage: mpi_ckpt_case [OPTIONS] FLAVOUR NP PROGRAM [ARGS...]"
    mpi_setup "$1"
    MPI_NP=$2
    shift 2
    _mpi_program "$@"
    log "case: $MPI_FL, $MPI_NP ranks, $MPI_MODE, checkpoint by $MPI_TRIGGER: $*"
    mpi_ckpt_flow
}

# mpi_ckpt_flow: mpi_ckpt_case's run, for MPI_NATIVE and MPI_CKPTCMD set
# by the caller (after mpi_setup, with MPI_NP): the reference run, the
# run under ckptmpi checkpointed and killed, its restart, the outputs.
mpi_ckpt_flow() {
    _mpi_reference
    mkdirs "$WORK/run" "$WORK/ck"
    hold_arm
    mpi_start "$WORK/run" "$WORK/run1.out" CKPTMPI_DIR="$WORK/ck" -- "${MPI_CKPTCMD[@]}"
    _mpi_ckpt_and_kill "$WORK/run1.out"
    local g=$GEN lo=$REQ_STEP hi=$CKPT_AFTER left
    mpi_check_generation "$WORK/ck" "$g" "$MPI_NP"
    # the shared memory the killed ranks' MPI left (their ledgers list it)
    left=$(cat "$WORK/ck"/.shm.* 2>/dev/null | sort -u || true)
    mpi_run "$WORK/run" "$WORK/restart.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "${MPI_CKPTCMD[@]}"
    _mpi_check_resume "$WORK/restart.out" "$lo" "$hi"
    merge_steps "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
    same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + restart)" "the plain run"
    mpi_check_nothing_left "$WORK/ck" "$left"
}

# mpi_check_nothing_left DIR FILES: a job that ended normally leaves in DIR
# its generations only (no control socket, ledger or temporary), and the
# files FILES (what a killed run left in /dev/shm) are gone.
mpi_check_nothing_left() {
    local dir=$1 f extra
    for f in $2; do
        [ ! -e "$f" ] || fail "$f, left by the killed run, is still there after the restart"
    done
    [ -z "$2" ] || log "what the killed run left in /dev/shm is gone: $(echo "$2" | wc -l) file(s)"
    extra=$(cd "$dir" && ls -A | grep -Ev '^ckpt-[0-9]+\.h5$' || true)
    [ -z "$extra" ] || fail "the job ended, $dir still holds: $(echo "$extra" | tr '\n' ' ')"
}

# mpi_chain_case [OPTIONS] FLAVOUR NP PROGRAM [ARGS...]: checkpoint, kill,
# restart (in the background), checkpoint, kill, restart to the end; the
# three outputs merged must equal the reference.
mpi_chain_case() {
    _mpi_options "$@"
    shift "$_MPI_SHIFT"
    [ $# -ge 3 ] || fail "usage: mpi_chain_case [OPTIONS] FLAVOUR NP PROGRAM [ARGS...]"
    mpi_setup "$1"
    MPI_NP=$2
    shift 2
    _mpi_program "$@"
    log "chain case: $MPI_FL, $MPI_NP ranks, $MPI_MODE, checkpoint by $MPI_TRIGGER: $*"
    _mpi_reference
    mkdirs "$WORK/run" "$WORK/ck"
    hold_arm
    mpi_start "$WORK/run" "$WORK/run1.out" CKPTMPI_DIR="$WORK/ck" -- "${MPI_CKPTCMD[@]}"
    _mpi_ckpt_and_kill "$WORK/run1.out"
    local g1=$GEN lo1=$REQ_STEP hi1=$CKPT_AFTER
    mpi_check_generation "$WORK/ck" "$g1" "$MPI_NP"

    hold_arm
    mpi_start "$WORK/run" "$WORK/run2.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "${MPI_CKPTCMD[@]}"
    mpi_wait_step "$WORK/run2.out" 0
    _mpi_check_resume "$WORK/run2.out" "$lo1" "$hi1"
    _mpi_ckpt_and_kill "$WORK/run2.out"
    local g2=$GEN lo2=$REQ_STEP hi2=$CKPT_AFTER
    [ "$g2" -gt "$g1" ] || fail "the restarted job's checkpoint is generation $g2, not newer than $g1"
    mpi_check_generation "$WORK/ck" "$g2" "$MPI_NP"

    mpi_run "$WORK/run" "$WORK/restart.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "${MPI_CKPTCMD[@]}"
    _mpi_check_resume "$WORK/restart.out" "$lo2" "$hi2"
    merge_steps "$WORK/run1.out" "$WORK/run2.out" "$WORK/merged1.out"
    merge_steps "$WORK/merged1.out" "$WORK/restart.out" "$WORK/merged.out"
    same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + restart 1 + restart 2)" "the plain run"
}

# mpi_sigterm_case [OPTIONS] FLAVOUR NP PROGRAM [ARGS...]: SIGTERM to
# mpirun once step --at is printed: the ranks checkpoint, then exit;
# every process of the job must be gone within MPI_CKPT_TIMEOUT + 2 *
# MPI_TERM_GRACE s, a generation must be committed, and the restart must
# complete the run (merged output = reference).  OpenMPI's mpirun, on SIGTERM, sends the
# ranks SIGCONT at once, SIGTERM odls_base_sigkill_timeout s later and
# SIGKILL as long again after that (default 1 s: a rank has 1 s to
# checkpoint); the case sets that timeout to MPI_TERM_GRACE (default 5;
# MPI_TERM_GRACE=1 tests OpenMPI's default), so the program must still be
# running 2 * MPI_TERM_GRACE s after the SIGTERM.  MPICH's mpiexec
# forwards SIGTERM and waits.  Launcher messages printed after the last
# step (MPICH's "BAD TERMINATION" banner) are dropped from run 1's output.
mpi_sigterm_case() {
    _mpi_options "$@"
    shift "$_MPI_SHIFT"
    [ $# -ge 3 ] || fail "usage: mpi_sigterm_case [OPTIONS] FLAVOUR NP PROGRAM [ARGS...]"
    mpi_setup "$1"
    MPI_NP=$2
    shift 2
    _mpi_program "$@"
    log "SIGTERM case: $MPI_FL, $MPI_NP ranks, $MPI_MODE: $*"
    _mpi_reference
    mkdirs "$WORK/run" "$WORK/ck"
    local extra=()
    [ "$MPI_FL" != openmpi ] || extra=(OMPI_MCA_odls_base_sigkill_timeout="$MPI_TERM_GRACE")
    hold_arm # (SIGTERM, not the end, must stop it)
    mpi_start "$WORK/run" "$WORK/run1.out" CKPTMPI_DIR="$WORK/ck" "${extra[@]}" -- "${MPI_CKPTCMD[@]}"
    mpi_wait_step "$WORK/run1.out" "$MPI_AT"
    local lo
    lo=$(last_step_of "$WORK/run1.out")
    local errsz t deadline grace=0 line pids g
    errsz=$(stat -c %s "$WORK/run1.out.err" 2>/dev/null || echo 0)
    log "kill -TERM mpirun ($MPI_PID) at step $lo"
    kill -TERM "$MPI_PID"
    if [ "${MPI_TERM_REPEAT:-0}" = 1 ]; then
        # as Slurm at a time limit: the batch shell and every task, again
        sleep 0.05
        # (OpenMPI's mpirun takes a second signal within 5 s as "forcibly
        # terminate": there only the ranks get it again)
        local again
        again=$(_mpi_job_pids | { if [ "$MPI_FL" = openmpi ]; then grep -vx "$MPI_PID"; else cat; fi; } || true)
        log "kill -TERM again: $(echo "$again" | wc -w) processes of the job"
        # shellcheck disable=SC2086
        kill -TERM $again 2>/dev/null || true
    fi
    t=$(_mpi_t $((MPI_CKPT_TIMEOUT + 2 * MPI_TERM_GRACE)))
    deadline=$((SECONDS + t))
    while pids=$(_mpi_job_pids) && [ -n "$pids" ]; do
        if [ "$grace" = 0 ] && [ "${CKPTMPI_VERBOSE:-0}" = 0 ]; then
            line=$(tail -c +"$((errsz + 1))" "$WORK/run1.out.err" 2>/dev/null | grep -m 1 -E '^ckptmpi\[[0-9]+\]: ' || true)
            [ -z "$line" ] || grace=$((SECONDS + 5))
        fi
        if [ "$grace" != 0 ] && [ "$SECONDS" -ge "$grace" ] && [ "$(mpi_latest_gen "$WORK/ck")" = 0 ]; then
            fail "SIGTERM answered with an error and no generation: $line"
        fi
        # shellcheck disable=SC2086
        [ "$SECONDS" -lt "$deadline" ] || fail "the job still runs ${t}s after SIGTERM: $(_mpi_describe $pids)"
        sleep 0.1
    done
    RC=0
    wait "$MPI_PID" 2>/dev/null || RC=$?
    hold_release
    log "the job exited (mpirun status $RC) at step $(last_step_of "$WORK/run1.out")"
    g=$(mpi_latest_gen "$WORK/ck")
    [ "$g" -gt 0 ] ||
        fail "no committed generation in $WORK/ck after SIGTERM (the job's stderr: $(_mpi_first_error "$WORK/run1.out.err"))"
    grep -Eq '^[0-9]+ final' "$WORK/run1.out" && fail "the job ran to its end despite SIGTERM"
    mpi_check_generation "$WORK/ck" "$g" "$MPI_NP"
    # launcher messages after the last step line are not the program's
    awk '{ l[++n] = $0; if ($1 ~ /^[0-9]+$/) last = n } END { for (i = 1; i <= last; i++) print l[i] }' \
        "$WORK/run1.out" >"$WORK/run1.steps"
    if ! cmp -s "$WORK/run1.out" "$WORK/run1.steps"; then
        log "dropped from run 1's output after its last step: $(tail -n +"$(($(wc -l <"$WORK/run1.steps") + 1))" "$WORK/run1.out" | head -c 300 | tr '\n' ' ')"
    fi
    mpi_run "$WORK/run" "$WORK/restart.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "${MPI_CKPTCMD[@]}"
    _mpi_check_resume "$WORK/restart.out" "$lo" "$(last_step_of "$WORK/run1.steps")"
    merge_steps "$WORK/run1.steps" "$WORK/restart.out" "$WORK/merged.out"
    same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 until SIGTERM + restart)" "the plain run"
}

# mpi_hpcc_case [--trigger T] NP N: Debian's hpcc (built against OpenMPI),
# unmodified, as "mpirun -np NP ckptmpi-runtime-openmpi hpcc", HPL size N
# (the other tests size themselves from it; pick N so that the run lasts
# several seconds), on an NP = P x Q grid.  The checkpoint is requested
# once hpccoutf.txt shows the first section begun (+1 s), the job is
# killed 0.5 s after the commit, restarted, and hpccoutf.txt judged as
# mpi_unmodified.sh does: Success=1, no FAILED, some PASSED, no failed
# residual check, the same sections completed as natively.  (hpcc appends
# to hpccoutf.txt section by section; a section written between the
# checkpoint and the kill appears twice unless the file was open at the
# checkpoint, and is rolled back: reported, not failed.)
mpi_hpcc_case() {
    _mpi_options "$@"
    shift "$_MPI_SHIFT"
    [ $# -eq 2 ] || fail "usage: mpi_hpcc_case [--trigger T] NP N"
    MPI_NP=$1
    local n=$2 hpcc p q d deadline
    mpi_setup openmpi
    hpcc=$(command -v hpcc || true)
    [ -n "$hpcc" ] || skip "hpcc not installed"
    [ -f /usr/share/doc/hpcc/examples/_hpccinf.txt ] || skip "hpcc's example input is missing"
    p=1
    for ((d = 1; d * d <= MPI_NP; d++)); do [ $((MPI_NP % d)) -ne 0 ] || p=$d; done
    q=$((MPI_NP / p))
    log "hpcc case: $MPI_NP ranks ($p x $q), N=$n, checkpoint by $MPI_TRIGGER"
    for d in ref run; do
        mkdirs "$WORK/$d"
        cp /usr/share/doc/hpcc/examples/_hpccinf.txt "$WORK/$d/hpccinf.txt"
        sed -i "6s/^[0-9]*/$n/; 8s/^[0-9]*/50/; 11s/^[0-9]*/$p/; 12s/^[0-9]*/$q/" "$WORK/$d/hpccinf.txt"
        chmod a+r "$WORK/$d/hpccinf.txt"
    done
    mkdirs "$WORK/ck"
    mpi_run "$WORK/ref" "$WORK/ref.out" -- "$hpcc"
    grep -q '^Success=1' "$WORK/ref/hpccoutf.txt" ||
        fail "hpcc did not succeed natively: $(snip "$WORK/ref/hpccoutf.txt" 600)"

    local rt=$BUILD/bin/ckptmpi-runtime-openmpi out=$WORK/run/hpccoutf.txt
    mpi_start "$WORK/run" "$WORK/run1.out" CKPTMPI_DIR="$WORK/ck" -- "$rt" "$hpcc"
    deadline=$((SECONDS + $(_mpi_t "$MPI_RUN_TIMEOUT")))
    until grep -q '^Begin of ' "$out" 2>/dev/null; do
        _alive "$MPI_PID" || fail "hpcc ended before it began a section: $(snip "$WORK/run1.out.err" 600)"
        [ "$SECONDS" -lt "$deadline" ] || fail "hpcc began no section in time"
        sleep 0.1
    done
    sleep 1
    mpi_request_ckpt "$WORK/ck" "$WORK/run1.out"
    local g=$GEN at_ckpt
    at_ckpt=$(grep -c '^End of .* section' "$out" || true)
    sleep 0.5
    grep -q 'End of HPC Challenge tests' "$out" &&
        fail "hpcc finished before it could be killed: raise N (now $n)"
    _alive "$MPI_PID" || fail "hpcc ended before it could be killed: $(snip "$WORK/run1.out.err" 600)"
    log "killing hpcc: $(grep -c '^End of .* section' "$out" || true) sections done ($at_ckpt at the commit)"
    mpi_kill_job
    mpi_check_generation "$WORK/ck" "$g" "$MPI_NP"
    mpi_run "$WORK/run" "$WORK/restart.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "$rt" "$hpcc"

    grep -q '^Success=1' "$out" || fail "hpcc restarted from a checkpoint did not succeed: $(snip "$out" 600)"
    ! grep -q FAILED "$out" || fail "an hpcc check FAILED after the restart: $(grep FAILED "$out" | head -n 3 | tr '\n' ' ')"
    grep -q PASSED "$out" || fail "hpcc after the restart passed no check"
    if grep 'tests completed and failed residual checks' "$out" | grep -qv '^ *0 '; then
        fail "hpcc residual checks failed after the restart"
    fi
    _hpcc_sections() { grep -E '^(Begin|End) of .* section' "$1" | sort -u; }
    diff <(_hpcc_sections "$WORK/ref/hpccoutf.txt") <(_hpcc_sections "$out") >"$WORK/sections.diff" ||
        fail "hpcc completed other sections after the restart than natively: $(snip "$WORK/sections.diff" 600)"
    local dup
    dup=$(grep -E '^Begin of .* section' "$out" | sort | uniq -d | tr '\n' ' ')
    [ -z "$dup" ] || log "note: sections written twice in hpccoutf.txt (re-executed after the restart): $dup"
    log "hpcc: Success=1 after checkpoint, kill and restart, the same $(_hpcc_sections "$out" | wc -l) section lines as natively"
}

# mpi_lammps_case [--trigger T] [--at K] [--more M] NP STEPS: Debian's
# LAMMPS (lmp, C++, built against OpenMPI), unmodified, as "mpirun -np NP
# ckptmpi-runtime-openmpi lmp", on test/e2e/lammps_melt.in for STEPS
# steps (a thermo row every 10).  mpi_ckpt_case's flow (checkpoint at step
# K, default 50; kill M steps after the commit, default 20; restart) with
# the thermo rows as the steps: those of the first run and the restart,
# merged, must be exactly the native run's, and the restart must finish
# the run.  (LAMMPS's other lines carry timings and are not compared.)
mpi_lammps_case() {
    _mpi_options --at 50 --more 20 "$@" # (the caller's options after these defaults)
    shift $((_MPI_SHIFT - 4))
    [ $# -eq 2 ] || fail "usage: mpi_lammps_case [OPTIONS] NP STEPS"
    MPI_NP=$1
    local steps=$2 lmp input=$WORK/melt.in f rows
    mpi_setup openmpi
    lmp=$(command -v lmp || true)
    [ -n "$lmp" ] || skip "lammps (lmp) not installed"
    cp "$E2E_DIR/lammps_melt.in" "$input"
    chmod a+r "$input"
    MPI_NATIVE=("$lmp" -in "$input" -var steps "$steps" -log none)
    MPI_CKPTCMD=("$BUILD/bin/ckptmpi-runtime-openmpi" "${MPI_NATIVE[@]}")
    log "lammps case: $MPI_NP ranks, $steps steps, checkpoint by $MPI_TRIGGER at step $MPI_AT"
    _lammps_rows() { grep -E '^[0-9]+ [-0-9]' "$1" >"$2" || true; }

    mkdirs "$WORK/ref" "$WORK/run" "$WORK/ck"
    mpi_run "$WORK/ref" "$WORK/ref.out" -- "${MPI_NATIVE[@]}"
    _lammps_rows "$WORK/ref.out" "$WORK/ref.rows"
    rows=$(wc -l <"$WORK/ref.rows")
    [ "$rows" -eq $((steps / 10 + 1)) ] ||
        fail "the native LAMMPS run printed $rows thermo rows, expected $((steps / 10 + 1)): $(snip "$WORK/ref.out.err" 600)"

    mpi_start "$WORK/run" "$WORK/run1.out" CKPTMPI_DIR="$WORK/ck" -- "${MPI_CKPTCMD[@]}"
    mpi_wait_step "$WORK/run1.out" "$MPI_AT"
    mpi_request_ckpt "$WORK/ck" "$WORK/run1.out"
    local g=$GEN lo=$REQ_STEP hi
    hi=$(last_step_of "$WORK/run1.out")
    mpi_wait_step "$WORK/run1.out" $((hi + MPI_MORE))
    ! grep -q '^Loop time' "$WORK/run1.out" ||
        fail "LAMMPS finished before it could be killed (give it more steps than $steps)"
    mpi_kill_job
    log "killed at step $(last_step_of "$WORK/run1.out") (checkpoint requested at step $lo, committed by step $hi)"
    mpi_check_generation "$WORK/ck" "$g" "$MPI_NP"
    mpi_run "$WORK/run" "$WORK/restart.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "${MPI_CKPTCMD[@]}"
    grep -q '^Loop time of .* for '"$steps"' steps' "$WORK/restart.out" ||
        fail "the restarted LAMMPS did not finish its $steps steps: $(tail -n 3 "$WORK/restart.out" | tr '\n' ' ') $(snip "$WORK/restart.out.err" 400)"
    for f in run1 restart; do _lammps_rows "$WORK/$f.out" "$WORK/$f.rows"; done
    _mpi_check_resume "$WORK/restart.rows" "$lo" "$hi" 10 # (a thermo row every 10 steps)
    merge_steps "$WORK/run1.rows" "$WORK/restart.rows" "$WORK/merged.rows"
    same_file "$WORK/ref.rows" "$WORK/merged.rows" "LAMMPS thermo rows (run 1 + restart)" "the native run"
    mpi_check_nothing_left "$WORK/ck" ""
}
