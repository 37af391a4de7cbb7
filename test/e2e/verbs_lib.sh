# shellcheck shell=bash
# shellcheck disable=SC2034  # globals set here are read by the cases
# Helpers of the verbs end-to-end cases (test/e2e/verbs_*.sh): unmodified
# verbs programs (Debian's ibverbs-utils and perftest, test/verbs) run as
# two processes, server and client on 127.0.0.1, on ckptmpi's software
# verbs device (ibshadow, BUILD/lib/libckptmpi-verbs.so), as uid 65534
# (lib.sh), each under
#
#   MODE=nockpt    ckptmpi run --no-checkpoint -- PROGRAM   (the default;
#                  LD_PRELOAD as long as ckptmpi has no --no-checkpoint)
#   MODE=runtime   CKPTMPI_DIR=DIR ckptmpi run -- PROGRAM   (the checkpoint runtime)
#   MODE=preload   LD_PRELOAD=BUILD/lib/libckptmpi-verbs.so PROGRAM  (debugging)
#
# A case does:
#     source "$(dirname "${BASH_SOURCE[0]}")/verbs_lib.sh"
#     verbs_init                       # skips (77) when the device is not built
#     VSRV=(ibv_rc_pingpong -p "$port") VCLI=(ibv_rc_pingpong -p "$port" 127.0.0.1)
#     verbs_pair NAME [TIMEOUT]        # sets SRV_OUT CLI_OUT SRV_RC CLI_RC
# Nothing can hang: each pair is killed (whole process trees) after
# TIMEOUT s (default VERBS_PAIR_TIMEOUT=60) and the case fails.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODE=${MODE:-nockpt}
# the case's name (not this file's), with the mode
TEST_NAME=$(basename "${BASH_SOURCE[1]:-$0}" .sh)-$MODE
VERBS_LIB=
VPROGS=
VSRV=()
VCLI=()
SRV_OUT=
CLI_OUT=
SRV_RC=
CLI_RC=
VERBS_PAIR_TIMEOUT=${VERBS_PAIR_TIMEOUT:-60}
_VSEQ=0

# verbs_init: e2e_init, then find the device library; skip when it is not
# built or the mode cannot be had.
verbs_init() {
    e2e_init
    local orig=${CKPTMPI_BUILD:-$SRC_DIR/build}
    VERBS_LIB=$BUILD/lib/libckptmpi-verbs.so
    if [ ! -f "$VERBS_LIB" ] && [ -f "$orig/lib/libckptmpi-verbs.so" ]; then
        cp -a "$orig/lib/libckptmpi-verbs.so" "$BUILD/lib/" 2>/dev/null || true
    fi
    [ -f "$VERBS_LIB" ] || skip "the software verbs device is not built ($VERBS_LIB missing)"
    VPROGS=$BUILD/test/verbs
    if [ ! -d "$VPROGS" ] && [ -d "$orig/test/verbs" ]; then
        mkdir -p "$BUILD/test"
        cp -a "$orig/test/verbs" "$BUILD/test/"
        chmod -R a+rX "$BUILD/test/verbs"
    fi
    case $MODE in
        nockpt)
            if ! "${AS_USER[@]}" "$CKPTMPI" run --no-checkpoint -- /bin/true >"$WORK/nockpt-probe.out" 2>&1; then
                log "ckptmpi run --no-checkpoint does not work yet ($(snip "$WORK/nockpt-probe.out" 120)...): the device library is preloaded instead"
                MODE=preload
            fi ;;
        runtime | preload) ;;
        *) fail "MODE must be nockpt, runtime or preload, not '$MODE'" ;;
    esac
    log "mode $MODE, device library $VERBS_LIB"
}

# vcmd SIDE PROGRAM ARGS...: print nothing; set _VCMD to the command line
# that runs PROGRAM in MODE (SIDE names the checkpoint directory)
_vcmd() {
    local side=$1
    shift
    case $MODE in
        nockpt) _VCMD=("$CKPTMPI" run --no-checkpoint -- "$@") ;;
        runtime)
            mkdirs "$WORK/ck-$side"
            _VCMD=(env CKPTMPI_DIR="$WORK/ck-$side" "$CKPTMPI" run -- "$@") ;;
        preload) _VCMD=(env LD_PRELOAD="$VERBS_LIB" "$@") ;;
    esac
}

# verbs_run NAME [TIMEOUT] -- PROGRAM ARGS...: one process in MODE, to its
# end; sets RUN_OUT (stdout; stderr in RUN_OUT.err) and RUN_RC.
verbs_run() {
    local name=$1 t=${VERBS_PAIR_TIMEOUT}
    shift
    if [ "$1" != -- ]; then t=$1; shift; fi
    [ "${1:-}" = -- ] || fail "verbs_run: missing --"
    shift
    _vcmd "$name" "$@"
    RUN_OUT=$WORK/$name.out
    log "run ($MODE): $*"
    (cd "$WORK" && exec "${AS_USER[@]}" "${_VCMD[@]}") >"$RUN_OUT" 2>"$RUN_OUT.err" </dev/null &
    local pid=$! deadline=$((SECONDS + t))
    _PIDS+=("$pid")
    show_on_failure "$RUN_OUT.err"
    while _alive "$pid"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            _kill_tree "$pid"
            fail "$name: $* still running after ${t}s (killed)"
        fi
        sleep 0.05
    done
    RUN_RC=0
    wait "$pid" 2>/dev/null || RUN_RC=$?
}

# _listening PORT: does anything listen on PORT (IPv4 or IPv6)?
_listening() {
    local hex
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# verbs_pair NAME PORT [TIMEOUT]: the server (VSRV) in MODE, once it listens
# on PORT the client (VCLI) in MODE, both to their end. Sets SRV_OUT,
# CLI_OUT (stdout; stderr in *.err), SRV_RC, CLI_RC.
verbs_pair() {
    local name=$1 port=$2 t=${3:-$VERBS_PAIR_TIMEOUT}
    _VSEQ=$((_VSEQ + 1))
    SRV_OUT=$WORK/$name.srv.out
    CLI_OUT=$WORK/$name.cli.out
    show_on_failure "$SRV_OUT" "$SRV_OUT.err" "$CLI_OUT" "$CLI_OUT.err"
    local deadline=$((SECONDS + t)) spid cpid
    _vcmd "$name-srv" "${VSRV[@]}"
    log "$name ($MODE): server: ${VSRV[*]}"
    (cd "$WORK" && exec "${AS_USER[@]}" "${_VCMD[@]}") >"$SRV_OUT" 2>"$SRV_OUT.err" </dev/null &
    spid=$!
    _PIDS+=("$spid")
    until _listening "$port"; do
        if ! _alive "$spid"; then
            SRV_RC=0
            wait "$spid" 2>/dev/null || SRV_RC=$?
            fail "$name: the server exited ($SRV_RC) before listening on port $port: $(snip "$SRV_OUT.err" 600)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            _kill_tree "$spid"
            fail "$name: the server did not listen on port $port within ${t}s"
        fi
        sleep 0.05
    done
    _vcmd "$name-cli" "${VCLI[@]}"
    log "$name ($MODE): client: ${VCLI[*]}"
    (cd "$WORK" && exec "${AS_USER[@]}" "${_VCMD[@]}") >"$CLI_OUT" 2>"$CLI_OUT.err" </dev/null &
    cpid=$!
    _PIDS+=("$cpid")
    while _alive "$spid" || _alive "$cpid"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            _kill_tree "$spid"
            _kill_tree "$cpid"
            fail "$name: server and client still running after ${t}s (killed; hang?)"
        fi
        sleep 0.05
    done
    SRV_RC=0
    wait "$spid" 2>/dev/null || SRV_RC=$?
    CLI_RC=0
    wait "$cpid" 2>/dev/null || CLI_RC=$?
    log "$name: server exit $SRV_RC, client exit $CLI_RC"
}

# expect_rc NAME: both sides exited 0
expect_rc0() {
    [ "$SRV_RC" -eq 0 ] || fail "$1: the server exited $SRV_RC: $(snip "$SRV_OUT.err" 600)"
    [ "$CLI_RC" -eq 0 ] || fail "$1: the client exited $CLI_RC: $(snip "$CLI_OUT.err" 600)"
}
