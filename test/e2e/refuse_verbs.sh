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
refused_checkpoint "$dir" "verbs resources" "verbs resource" "ckptmpi_sw0"
wait_exit "$JOB_PID" "the job after the refused checkpoint"
wait_exit "$REF_PID" "reference run"
same_file "$WORK/ref.out" "$WORK/run1.out" "stdout of the job whose checkpoint was refused"
log "PASS"
