#!/usr/bin/env bash
# e2e_smoke_refuse_xrc: what the verbs cut cannot carry yet is refused,
# not faked. Debian's ibv_xsrq_pingpong (an XRC domain, XRC SRQs and QPs)
# as a job of two members: `ckptmpi checkpoint DIR` fails with a message
# naming the XRC resource, no generation is written, and both members run
# on to their own end ("success"). The run must outlast the request: 8000
# tests of 2 MiB (about 3 s here; of 256 KiB a quiet machine finished in
# under the 0.5 s before the request). -n sets the queue depths, which
# the device caps: SIZE is what makes the run longer.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/job_lib.sh"
e2e_init
orig=${CKPTMPI_BUILD:-$SRC_DIR/build}
[ -f "$BUILD/lib/libckptmpi-verbs.so" ] || cp -a "$orig/lib/libckptmpi-verbs.so" "$BUILD/lib/" 2>/dev/null || true
[ -f "$BUILD/lib/libckptmpi-verbs.so" ] || skip "the software verbs device is not built"
PP=$(command -v ibv_xsrq_pingpong || true)
[ -n "$PP" ] || skip "ibv_xsrq_pingpong (ibverbs-utils) is not installed"
ITERS=${ITERS:-8000}
SIZE=${SIZE:-2097152}
dir=$WORK/ckpt
port=$(free_port)
mkdirs "$dir" "$WORK/run0" "$WORK/run1"

member_bg 0 "$WORK/run0" "$WORK/run0.out" "$dir" 2 -- "$PP" -p "$port" -n "$ITERS" -s "$SIZE"
sleep 0.3
member_bg 1 "$WORK/run1" "$WORK/run1.out" "$dir" 2 -- "$PP" -p "$port" -n "$ITERS" -s "$SIZE" 127.0.0.1
sleep 0.5
for k in 0 1; do _alive "${MEMBER_PID[$k]}" || fail "member $k ended early (raise SIZE): $(snip "$WORK/run$k.out")"; done
ck checkpoint "$dir"
[ "$RC" -ne 0 ] || fail "the checkpoint of a job holding XRC resources succeeded; it must be refused"
grep -q "XRC" "$WORK/ck.err" || fail "the refusal does not name the XRC resource: $(snip "$WORK/ck.err")"
log "refused: $(head -n 1 "$WORK/ck.err")"
[ -z "$(gens_in "$dir")" ] || fail "a generation was written anyway"
for k in 0 1; do
    wait_exit "${MEMBER_PID[$k]}" "member $k after the refused checkpoint" 120
    grep -qx success "$WORK/run$k.out" || fail "member $k did not end with 'success': $(snip "$WORK/run$k.out")"
done
log "PASS"
