#!/usr/bin/env bash
# verbs_pingpong: Debian's ibv_rc_pingpong, ibv_uc_pingpong,
# ibv_ud_pingpong, ibv_srq_pingpong (all with -c: each side validates the
# data it receives) and ibv_rc_pingpong -e (sleeps on completion events),
# unmodified, server and client on 127.0.0.1, on ckptmpi's software device
# (MODE, verbs_lib.sh). Judged by their own output: both sides exit 0, print
# "N bytes in T seconds = R Mbit/sec" and "I iters in T seconds" with the
# right byte and iteration counts, and no "invalid data". And
# ibv_xsrq_pingpong (XRC: an XRC domain, XRC SRQs, XRC send and receive
# QPs): both sides print "success" and exit 0.
source "$(dirname "${BASH_SOURCE[0]}")/verbs_lib.sh"
verbs_init
ITERS=${VERBS_PP_ITERS:-200}

# check NAME SIZE ITERS FACTOR: both outputs; bytes = SIZE * ITERS * FACTOR
# (the tools count both directions: 2; srq counts ITERS over all its QPs)
check() {
    local name=$1 size=$2 iters=$3 factor=$4 f want
    expect_rc0 "$name"
    want=$((size * iters * factor))
    for f in "$SRV_OUT" "$CLI_OUT"; do
        grep -Eq "^$want bytes in [0-9.]+ seconds = [0-9.]+ Mbit/sec$" "$f" ||
            fail "$name: $(basename "$f"): no '$want bytes in ... seconds' line: $(snip "$f" 400)"
        grep -Eq "^$iters iters in [0-9.]+ seconds = [0-9.]+ usec/iter$" "$f" ||
            fail "$name: $(basename "$f"): no '$iters iters in ...' line: $(snip "$f" 400)"
        ! grep -qi 'invalid data' "$f" "$f.err" || fail "$name: $(basename "$f"): the tool found invalid data"
    done
    log "$name: $(grep -h 'iters in' "$CLI_OUT")"
}

port=$(free_port)
VSRV=(ibv_rc_pingpong -p "$port" -n "$ITERS" -c)
VCLI=("${VSRV[@]}" 127.0.0.1)
verbs_pair rc "$port"
check rc 4096 "$ITERS" 2

port=$(free_port)
VSRV=(ibv_uc_pingpong -p "$port" -n "$ITERS" -c)
VCLI=("${VSRV[@]}" 127.0.0.1)
verbs_pair uc "$port"
check uc 4096 "$ITERS" 2

port=$(free_port)
VSRV=(ibv_ud_pingpong -p "$port" -n "$ITERS" -s 1024 -c)
VCLI=("${VSRV[@]}" 127.0.0.1)
verbs_pair ud "$port"
check ud 1024 "$ITERS" 2

port=$(free_port)
VSRV=(ibv_srq_pingpong -p "$port" -n "$ITERS" -q 4 -c)
VCLI=("${VSRV[@]}" 127.0.0.1)
verbs_pair srq "$port"
check srq 4096 "$ITERS" 2

port=$(free_port)
VSRV=(ibv_rc_pingpong -p "$port" -n "$ITERS" -e -c)
VCLI=("${VSRV[@]}" 127.0.0.1)
verbs_pair rc_events "$port"
check rc_events 4096 "$ITERS" 2

port=$(free_port)
VSRV=(ibv_xsrq_pingpong -p "$port" -n 20)
VCLI=("${VSRV[@]}" 127.0.0.1)
verbs_pair xsrq "$port"
expect_rc0 xsrq
for f in "$SRV_OUT" "$CLI_OUT"; do
    grep -qx 'success' "$f" || fail "xsrq: $(basename "$f"): no 'success' line: $(snip "$f" 300) $(snip "$f.err" 300)"
done
log "xsrq: success on both sides"
