#!/usr/bin/env bash
# e2e_verbs_ckpt_tools: unmodified programs nobody here wrote, run as a job
# of two members (server member 0, client member 1, TCP on 127.0.0.1 for
# their own out-of-band exchange, which perftest keeps open all along) on
# ckptmpi's software device, checkpointed in the middle of their transfer
# (`ckptmpi checkpoint DIR`), both SIGKILLed, the job restarted: each must
# finish and print its result without an error.
#   ibv_rc_pingpong -c, ibv_rc_pingpong -e -c (sleeping on completion events),
#   ibv_ud_pingpong -c, ibv_srq_pingpong -c (ibverbs-utils; -c: each side
#   checks the data it receives): both sides print
#   "BYTES bytes in ..." and "ITERS iters in ..." with the counts asked for,
#   and no "invalid data"
#   ib_write_bw, ib_send_bw, ib_read_bw (perftest): the client's result row
#   has the size and iteration count asked for and a bandwidth > 0
#   VCK_TOOLS="rc rc_ev ud srq write_bw send_bw read_bw"   a subset
#   VCK_AFTER=S   seconds after both QPs exist before the checkpoint (default 0.3)
source "$(dirname "${BASH_SOURCE[0]}")/e2e_verbs_ckpt_lib.sh"
vck_init
TOOLS=${VCK_TOOLS:-rc rc_ev ud srq write_bw send_bw read_bw}
AFTER=${VCK_AFTER:-0.3}
CMD_TIMEOUT=${CMD_TIMEOUT:-90}

# the command of each (2 to 3 s on the device, unloaded; 5 times that on 2
# cores shared with other busy jobs)
tool_cmd() {
    case $1 in
        rc) cmd=(ibv_rc_pingpong -n 300000 -c) ;;
        rc_ev) cmd=(ibv_rc_pingpong -n 120000 -e -c) ;;
        ud) cmd=(ibv_ud_pingpong -n 400000 -s 1024 -c) ;;
        srq) cmd=(ibv_srq_pingpong -n 1000000 -q 4 -c) ;;
        write_bw) cmd=(ib_write_bw -n 200000 -s 65536 -F) ;;
        send_bw) cmd=(ib_send_bw -n 200000 -s 65536 -F) ;;
        read_bw) cmd=(ib_read_bw -n 200000 -s 65536 -F) ;;
        *) fail "unknown tool '$1' (rc rc_ev ud srq write_bw send_bw read_bw)" ;;
    esac
    command -v "${cmd[0]}" >/dev/null || fail "${cmd[0]} not installed (scripts/install-deps.sh: ibverbs-utils, perftest)"
}

# judge NAME FILE0 FILE1 ERRFILES...: the tool's own verdict, both
# members' outputs (run + restart) and their stderr
judge() {
    local name=$1 f0=$2 f1=$3 f n=${cmd[2]} size want
    shift 3
    for f in "$f0" "$f1" "$@"; do
        # the tool's own lines (the runtime's are "ckptmpi[K]: ...")
        if grep -v '^ckptmpi' "$f" 2>/dev/null | grep -Eiq "invalid data|couldn't|failed|error"; then
            fail "$name: $(basename "$f"): $(grep -v '^ckptmpi' "$f" | grep -Ei "invalid data|couldn't|failed|error" | head -n 3 | tr '\n' ' ')"
        fi
    done
    case $name in
        rc | rc_ev | ud | srq)
            size=4096
            [ "$name" != ud ] || size=1024
            want=$((size * n * 2))
            for f in "$f0" "$f1"; do
                grep -Eq "^$want bytes in [0-9.]+ seconds = [0-9.]+ Mbit/sec$" "$f" ||
                    fail "$name: $(basename "$f"): no '$want bytes in ... seconds' line: $(snip "$f" 400)"
                grep -Eq "^$n iters in [0-9.]+ seconds = [0-9.]+ usec/iter$" "$f" ||
                    fail "$name: $(basename "$f"): no '$n iters in ...' line: $(snip "$f" 400)"
            done
            log "$name: $(grep -h 'iters in' "$f1")" ;;
        *)
            awk -v n="$n" '$1 == 65536 && $2 == n && $4 + 0 > 0 { f = 1 } END { exit !f }' "$f1" ||
                fail "$name: the client's result table has no row '65536 $n ...' with a bandwidth: $(snip "$f1" 600)"
            log "$name: $(awk -v n="$n" '$1 == 65536 && $2 == n' "$f1" | tr -s ' \t' ' ')" ;;
    esac
}

for t in $TOOLS; do
    tool_cmd "$t"
    dir=$WORK/ck-$t
    port=$(free_port)
    # (verbose: the runtime says when the verbs cut is taken)
    CKPTMPI_VERBOSE=2 vck_tool_pair "$dir" "$t" "$port" -- "${cmd[@]}" -p "$port"
    # the transfer starts once both QPs exist (the tools exchange their
    # numbers right after): time counts from there, not from the start,
    # which a quiet machine and a loaded one reach seconds apart
    deadline=$((SECONDS + 60))
    until grep -q "verbs: QP .* created" "$WORK/$t-run0.out.err" 2>/dev/null &&
        grep -q "verbs: QP .* created" "$WORK/$t-run1.out.err" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$t: the members made no QP within 60 s"
        sleep 0.02
    done
    sleep "$AFTER"
    for k in 0 1; do _alive "${MEMBER_PID[$k]}" || fail "$t: member $k ended before the checkpoint: $(snip "$WORK/$t-run$k.out.err" 400)"; done
    ckpt "$dir"
    for k in 0 1; do
        grep -q "verbs: cut taken" "$WORK/$t-run$k.out.err" ||
            fail "$t: member $k was checkpointed before it held verbs resources (no 'verbs: cut taken' in its log)"
    done
    for k in 0 1; do
        _alive "${MEMBER_PID[$k]}" || fail "$t: member $k finished before it could be killed (run longer): $(snip "$WORK/$t-run$k.out" 300)"
    done
    vck_kill "${MEMBER_PID[0]}" "${MEMBER_PID[1]}"
    job_restart_fg "$WORK" "$WORK/restart-$t.log" "$dir"
    for k in 0 1; do cat "$WORK/$t-run$k.out" "$RESTART_OUT/member-$k.out" >"$WORK/$t-all$k.out"; done
    judge "$t" "$WORK/$t-all0.out" "$WORK/$t-all1.out" "$WORK/$t-run0.out.err" "$WORK/$t-run1.out.err" \
        "$RESTART_OUT/member-0.err" "$RESTART_OUT/member-1.err"
done
