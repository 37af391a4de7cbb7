# shellcheck shell=bash
# shellcheck disable=SC2034  # globals set here are read by the cases
# Helpers of the verbs checkpoint cases (test/verbs/e2e_verbs_ckpt_*.sh):
# jobs whose processes drive verbs themselves on ckptmpi's software device
# (ckptmpi_sw0), started as `ckptmpi run --dir DIR --job-size N --member K`,
# checkpointed, SIGKILLed, restarted with `ckptmpi restart DIR`, as uid
# 65534 (test/e2e/lib.sh, job_lib.sh). The uninterrupted reference runs go
# through `ckptmpi run --no-checkpoint` (the same device, no runtime).
#
#   source "$(dirname "${BASH_SOURCE[0]}")/e2e_verbs_ckpt_lib.sh"
#   vck_init                          # skips (77) without the device library
#   vck_ref_pair NAME ARGS...         # ckpt_ops server/client, reference
#   vck_job_pair DIR NAME ARGS...     # ckpt_ops server (member 0) / client (member 1)
#   vck_trigger DIR HOW               # command | signal (SIGUSR1 to member 1)
#   vck_restart_bg DIR LOG [OPTS]     # sets RESTART_PID, RESTART_OUT
# VCK_KINDS: the kinds ckpt_ops runs (-k; default all of them). VCK_KINDS=none
# runs it without verbs: the cases' own plumbing on a job without verbs.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/job_lib.sh"
TEST_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)

VPROGS=
OPS=
NOCKPT=()
REF_PID_OF=()
VCK_NAME=
KINDS=${VCK_KINDS:-send,write,imm,read,atomic,ud,srq,chan}
RESTART_PID=
RESTART_OUT=

vck_init() {
    e2e_init
    local orig=${CKPTMPI_BUILD:-$SRC_DIR/build}
    if [ ! -f "$BUILD/lib/libckptmpi-verbs.so" ] && [ -f "$orig/lib/libckptmpi-verbs.so" ]; then
        cp -a "$orig/lib/libckptmpi-verbs.so" "$BUILD/lib/" 2>/dev/null || true
    fi
    [ -f "$BUILD/lib/libckptmpi-verbs.so" ] || skip "the software verbs device is not built"
    VPROGS=$BUILD/test/verbs
    if [ ! -d "$VPROGS" ] && [ -d "$orig/test/verbs" ]; then
        mkdir -p "$BUILD/test"
        cp -a "$orig/test/verbs" "$BUILD/test/"
        chmod -R a+rX "$BUILD/test/verbs"
    fi
    OPS=$VPROGS/ckpt_ops
    [ -x "$OPS" ] || fail "test program not built: $OPS"
    NOCKPT=("$CKPTMPI" run --no-checkpoint --)
}

# vck_ref_pair NAME ARGS...: the uninterrupted run of ckpt_ops ARGS as
# server and client (stdout $WORK/NAME-ref0.out and -ref1.out, port file
# $WORK/NAME-ref.port); REF_PID_OF[0], [1]
vck_ref_pair() {
    local name=$1
    shift
    mkdirs "$WORK/$name-ref0" "$WORK/$name-ref1"
    plain_bg "$WORK/$name-ref0" "$WORK/$name-ref0.out" -- "${NOCKPT[@]}" "$OPS" "$@" server "$WORK/$name-ref.port"
    REF_PID_OF[0]=$REF_PID
    plain_bg "$WORK/$name-ref1" "$WORK/$name-ref1.out" -- "${NOCKPT[@]}" "$OPS" "$@" client "$WORK/$name-ref.port"
    REF_PID_OF[1]=$REF_PID
}

# vck_job_pair DIR NAME [RUN-OPTIONS...] -- ARGS...: ckpt_ops ARGS server as
# member 0, client as member 1 of job DIR (stdout $WORK/NAME-run0.out,
# -run1.out); MEMBER_PID[0], [1]
vck_job_pair() {
    local dir=$1 name=$2 opts=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        opts+=("$1")
        shift
    done
    shift
    VCK_NAME=$name
    mkdirs "$dir" "$WORK/$name-run0" "$WORK/$name-run1"
    member_bg 0 "$WORK/$name-run0" "$WORK/$name-run0.out" "$dir" 2 "${opts[@]}" -- \
        "$OPS" "$@" server "$WORK/$name-run.port"
    member_bg 1 "$WORK/$name-run1" "$WORK/$name-run1.out" "$dir" 2 "${opts[@]}" -- \
        "$OPS" "$@" client "$WORK/$name-run.port"
}

# vck_trigger DIR HOW: a checkpoint of job DIR, asked by `ckptmpi
# checkpoint DIR` (command) or by SIGUSR1 to member 1 (signal); sets GEN
vck_trigger() {
    local dir=$1 how=$2 before
    case $how in
        command) ckpt "$dir" ;;
        signal)
            before=$(gens_in "$dir" | tail -n 1)
            log "kill -USR1 member 1 (pid ${MEMBER_PID[1]})"
            kill -USR1 "${MEMBER_PID[1]}"
            local deadline=$((SECONDS + 30))
            while [ "$(gens_in "$dir" | tail -n 1)" = "$before" ]; do
                [ "$SECONDS" -lt "$deadline" ] || fail "no new generation in $dir within 30 s of SIGUSR1 to member 1: $(snip "$WORK/$VCK_NAME-run1.out.err" 400)"
                sleep 0.05
            done
            GEN=$(gens_in "$dir" | tail -n 1)
            log "SIGUSR1 to member 1: generation $GEN" ;;
        *) fail "vck_trigger: command or signal, not '$how'" ;;
    esac
}

# vck_restart_bg DIR LOG [RESTART-OPTIONS...]: `ckptmpi restart DIR` in the
# background; once it has said where the members' outputs go, RESTART_OUT
# is that directory and RESTART_PID the restart's pid
vck_restart_bg() {
    local dir=$1 logf=$2
    shift 2
    restart_bg "$WORK" "$logf" "$dir" "$@"
    RESTART_PID=$JOB_PID
    local deadline=$((SECONDS + 30))
    until grep -q "^  member 1: " "$logf.err" 2>/dev/null; do
        _alive "$RESTART_PID" || break
        [ "$SECONDS" -lt "$deadline" ] || fail "ckptmpi restart did not say where the outputs go: $(snip "$logf.err")"
        sleep 0.02
    done
    RESTART_OUT=$(sed -n 's/^  member 0: \(.*\)\/member-0\.out, .*/\1/p' "$logf.err")
    [ -n "$RESTART_OUT" ] || fail "ckptmpi restart did not say where the members' output goes: $(snip "$logf.err" 800)"
    case $RESTART_OUT in /*) ;; *) RESTART_OUT=$WORK/$RESTART_OUT ;; esac
    show_on_failure "$RESTART_OUT/member-0.out" "$RESTART_OUT/member-1.out"
}

# vck_no_fail FILE...: no "FAIL" line of ckpt_ops in these outputs
vck_no_fail() {
    local f
    for f in "$@"; do
        if grep -q ' FAIL ' "$f" 2>/dev/null; then
            fail "$(basename "$f"): the program found an error: $(grep -m 3 ' FAIL ' "$f" | tr '\n' ' ')"
        fi
    done
}

# vck_listening PORT: does anything listen on PORT (IPv4 or IPv6)?
vck_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# vck_tool_pair DIR NAME PORT -- TOOL ARGS...: an unmodified tool's server
# (TOOL ARGS, member 0) and, once it listens on PORT, its client (TOOL ARGS
# 127.0.0.1, member 1) as job DIR (stdout $WORK/NAME-run0.out, -run1.out)
vck_tool_pair() {
    local dir=$1 name=$2 port=$3 deadline
    shift 4
    VCK_NAME=$name
    mkdirs "$dir" "$WORK/$name-run0" "$WORK/$name-run1"
    member_bg 0 "$WORK/$name-run0" "$WORK/$name-run0.out" "$dir" 2 -- "$@"
    deadline=$((SECONDS + 30))
    until vck_listening "$port"; do
        _alive "${MEMBER_PID[0]}" || fail "$name: the server ended before listening on port $port: $(snip "$WORK/$name-run0.out.err" 600)"
        [ "$SECONDS" -lt "$deadline" ] || fail "$name: the server does not listen on port $port after 30 s"
        sleep 0.05
    done
    member_bg 1 "$WORK/$name-run1" "$WORK/$name-run1.out" "$dir" 2 -- "$@" 127.0.0.1
}

# vck_kill PID...: SIGKILL these processes and their descendants as
# kill_members does, after stopping them all (SIGSTOP): one kill at a time,
# a member that outlives its peer by a moment sees the peer's QPs vanish
# (IBV_WC_RETRY_EXC_ERR, "Completion with error") and says so in the output
# of a run that is being killed anyway; a stopped peer is only slow
vck_kill() {
    local p all=()
    for p in "$@"; do
        _alive "$p" || fail "process $p is not running any more, cannot kill it mid-run"
        mapfile -t -O "${#all[@]}" all < <(_tree "$p")
    done
    kill -STOP "${all[@]}" 2>/dev/null || true
    kill_members "$@"
}
