#!/usr/bin/env bash
# e2e_smoke_pingpong: Debian's unmodified ibv_rc_pingpong (ibverbs-utils)
# with buffer validation (-c), as a job of two members (ckptmpi run --dir
# DIR --job-size 2; its TCP connection between them kept open), is
# checkpointed mid-run, every member SIGKILLed, `ckptmpi restart DIR`:
# both finish all their iterations and print their result without an
# error, as an uninterrupted run does.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/job_lib.sh"
e2e_init
orig=${CKPTMPI_BUILD:-$SRC_DIR/build}
[ -f "$BUILD/lib/libckptmpi-verbs.so" ] || cp -a "$orig/lib/libckptmpi-verbs.so" "$BUILD/lib/" 2>/dev/null || true
[ -f "$BUILD/lib/libckptmpi-verbs.so" ] || skip "the software verbs device is not built"
PP=$(command -v ibv_rc_pingpong || true)
[ -n "$PP" ] || skip "ibv_rc_pingpong (ibverbs-utils) is not installed"
ITERS=${ITERS:-600000}  # 2.8 s on a quiet machine: 150000 were done before the kill there
dir=$WORK/ckpt
port=$(free_port)
mkdirs "$dir" "$WORK/run0" "$WORK/run1"

member_bg 0 "$WORK/run0" "$WORK/run0.out" "$dir" 2 -- "$PP" -p "$port" -c -n "$ITERS"
sleep 0.3
member_bg 1 "$WORK/run1" "$WORK/run1.out" "$dir" 2 -- "$PP" -p "$port" -c -n "$ITERS" 127.0.0.1
# into the run: both sides have exchanged their addresses and go (40000
# iterations take about 1.5 s on an idle machine)
sleep 0.8
for k in 0 1; do _alive "${MEMBER_PID[$k]}" || fail "member $k ended early: $(snip "$WORK/run$k.out.err")"; done
ckpt "$dir"
sleep 0.3
for k in 0 1; do _alive "${MEMBER_PID[$k]}" || fail "member $k ended before the kill (raise ITERS)"; done
kill_members "${MEMBER_PID[@]}"
job_restart_fg "$WORK" "$WORK/restart.log" "$dir" --generation "$GEN"
for k in 0 1; do
    out=$RESTART_OUT/member-$k.out
    grep -q "^$ITERS iters in " "$out" ||
        fail "member $k did not report its $ITERS iterations: $(snip "$out") $(snip "$RESTART_OUT/member-$k.err")"
    if grep -v '^ckptmpi' "$RESTART_OUT/member-$k.err" | grep -q .; then
        fail "member $k printed errors: $(snip "$RESTART_OUT/member-$k.err")"
    fi
    log "member $k: $(grep ' iters in ' "$out")"
done
log "PASS"
