#!/usr/bin/env bash
# verbs_programs: the verbs test programs of test/verbs (plain libibverbs,
# each a server and a client exchanging LIDs, QP numbers and rkeys over
# TCP on 127.0.0.1) on ckptmpi's software device (MODE, verbs_lib.sh):
# every operation kind's data and completion fields (vt_rc_ops), UC, UD
# and SRQ (vt_uc_ud_srq), error completions and bad input (vt_errors: its
# server is killed on purpose, mid-transfer), completion channels
# (vt_channels), the limits the device reports honoured (vt_limits).
# Each program prints a line per check ("ok ROLE NAME" / "FAIL ROLE NAME:
# why"); a FAIL line, a missing final line or a nonzero exit fails the
# case. Then each program once more in its one-process form
# (it forks its two roles, a socketpair between them), as one job.
#   VERBS_PROGRAMS="vt_rc_ops ..."   a subset
source "$(dirname "${BASH_SOURCE[0]}")/verbs_lib.sh"
verbs_init
PROGRAMS=${VERBS_PROGRAMS:-vt_rc_ops vt_uc_ud_srq vt_channels vt_limits vt_errors}

for p in $PROGRAMS; do
    [ -x "$VPROGS/$p" ] || fail "test program not built: $VPROGS/$p"
    port=$(free_port)
    VSRV=("$VPROGS/$p" server "$port")
    VCLI=("$VPROGS/$p" client "$port")
    verbs_pair "$p" "$port"
    for f in "$SRV_OUT" "$CLI_OUT"; do
        if grep -q '^FAIL' "$f"; then
            fail "$p: $(grep -c '^FAIL' "$f") checks failed: $(grep '^FAIL' "$f" | head -n 4 | tr '\n' ' ')"
        fi
    done
    grep -Eq '^done A: [0-9]+ checks, 0 failed$' "$CLI_OUT" || fail "$p: the client did not finish (exit $CLI_RC)"
    [ "$CLI_RC" -eq 0 ] || fail "$p: the client exited $CLI_RC"
    if [ "$p" = vt_errors ]; then
        # the server kills itself in the middle of RDMA writes
        [ "$SRV_RC" -eq 137 ] || [ "$SRV_RC" -eq 0 ] ||
            fail "$p: the server exited $SRV_RC (expected SIGKILL, 137)"
        grep -q '^ok B peer_death.dying' "$SRV_OUT" || fail "$p: the server did not reach the peer-death check"
    else
        grep -Eq '^done B: [0-9]+ checks, 0 failed$' "$SRV_OUT" || fail "$p: the server did not finish (exit $SRV_RC)"
        [ "$SRV_RC" -eq 0 ] || fail "$p: the server exited $SRV_RC"
    fi
    log "$p: $(grep -c '^ok' "$CLI_OUT") client checks and $(grep -c '^ok' "$SRV_OUT") server checks passed"
done

# the one-process form: PROGRAM forks role B, then role A, and waits
for p in $PROGRAMS; do
    verbs_run "$p-fork" -- "$VPROGS/$p"
    if grep -q '^FAIL' "$RUN_OUT"; then
        fail "$p (forked roles): $(grep -c '^FAIL' "$RUN_OUT") checks failed: $(grep '^FAIL' "$RUN_OUT" | head -n 4 | tr '\n' ' ')"
    fi
    [ "$RUN_RC" -eq 0 ] || fail "$p (forked roles) exited $RUN_RC: $(snip "$RUN_OUT.err" 300)"
    grep -Eq '^done A: [0-9]+ checks, 0 failed$' "$RUN_OUT" || fail "$p (forked roles): role A did not finish"
    [ "$p" = vt_errors ] || grep -Eq '^done B: [0-9]+ checks, 0 failed$' "$RUN_OUT" ||
        fail "$p (forked roles): role B did not finish"
    log "$p (forked roles): $(grep -c '^ok' "$RUN_OUT") checks passed"
done
