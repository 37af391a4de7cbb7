#!/usr/bin/env bash
# api_checkpoint: ckptmpi_checkpoint() from the program takes a checkpoint at
# that exact point (reason "api") and returns "resumed"; a restart of that
# generation returns from the same call with "restarted" and then prints
# exactly what the first run printed after it. Without ckptmpi the call
# reports it is unavailable.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog api_checkpoint

dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/api_checkpoint" 20 20 8
wait_exit "$REF_PID" "plain run"
grep -qx '8 checkpoint=unavailable' "$WORK/ref.out" ||
    fail "without ckptmpi, line 8 should say unavailable: $(snip "$WORK/ref.out" 300)"

run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "$PROGS/api_checkpoint" 20 20 8
wait_exit "$JOB_PID" "run under ckptmpi"
grep -qx '8 checkpoint=resumed' "$WORK/run1.out" ||
    fail "under ckptmpi, line 8 should say resumed: $(snip "$WORK/run1.out" 300)"
[ "$(gens_in "$dir" | wc -l)" -eq 1 ] || fail "expected one generation, found: $(gens_in "$dir" | tr '\n' ' ')"
ck ls "$dir"
grep -q ' api ' "$WORK/ck.out" || fail "ckptmpi ls does not show reason api: $(snip "$WORK/ck.out" 400)"

restart_fg "$WORK/ck" "$WORK/restart.out" "$dir"
[ "$(head -n 1 "$WORK/restart.out")" = '8 checkpoint=restarted' ] ||
    fail "a restart should resume inside ckptmpi_checkpoint() and say restarted: $(snip "$WORK/restart.out" 300)"
diff <(sed -n '9,$p' "$WORK/run1.out") <(sed -n '2,$p' "$WORK/restart.out") >"$WORK/diff" ||
    fail "after the checkpoint, the restart printed something else than the first run: $(snip "$WORK/diff" 800)"
diff <(grep -v checkpoint= "$WORK/ref.out") <(grep -v checkpoint= "$WORK/run1.out") >"$WORK/diff" ||
    fail "the run under ckptmpi differs from the plain run: $(snip "$WORK/diff" 800)"
log "PASS"
