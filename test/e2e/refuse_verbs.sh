#!/usr/bin/env bash
# refuse_verbs: a program holding verbs resources (verbs_user: two RC queue
# pairs on ckptmpi's software device, a message a step) cannot be
# checkpointed yet. `ckptmpi checkpoint` must fail with one line naming the
# verbs resources, write no generation, and leave the program running to
# the same end as an uninterrupted run (on the same device, without the
# runtime: `ckptmpi run --no-checkpoint`).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog verbs_user
[ -f "$BUILD/lib/libckptmpi-verbs.so" ] || skip "libckptmpi-verbs.so not built"

dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$BUILD/bin/ckptmpi" run --no-checkpoint -- "$PROGS/verbs_user" 30 50
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "$PROGS/verbs_user" 30 50
wait_step "$WORK/run1.out" 5 "$JOB_PID"
ck checkpoint "$dir"
[ "$RC" -ne 0 ] || fail "checkpoint of a program holding verbs resources succeeded; it must be refused"
[ "$(grep -c . "$WORK/ck.err")" -eq 1 ] || fail "expected one line of error: $(snip "$WORK/ck.err" 600)"
grep -q "verbs resource" "$WORK/ck.err" || fail "the error does not name the verbs resources: $(snip "$WORK/ck.err" 300)"
grep -q "ckptmpi_sw0" "$WORK/ck.err" || fail "the error does not name the device: $(snip "$WORK/ck.err" 300)"
grep -q "verbs resource" "$WORK/run1.out.err" || fail "the job's log does not say why: $(snip "$WORK/run1.out.err" 300)"
[ -z "$(gens_in "$dir")" ] || fail "a generation was written anyway"
[ -z "$(ls -A "$dir" | grep -v '^control.sock$' || true)" ] || fail "leftovers in $dir: $(ls -A "$dir" | tr '\n' ' ')"
wait_exit "$JOB_PID" "the job after the refused checkpoint"
wait_exit "$REF_PID" "reference run"
same_file "$WORK/ref.out" "$WORK/run1.out" "stdout of the job whose checkpoint was refused"
log "PASS"
