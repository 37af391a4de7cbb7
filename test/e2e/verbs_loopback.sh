#!/usr/bin/env bash
# verbs_loopback: one process holding verbs resources (verbs_user: two RC
# queue pairs of its own connected to each other on ckptmpi's software
# device, a message a step) is checkpointed mid-run, SIGKILLed and
# restarted: the device is re-created, the QPs walked back to RTS against
# their new numbers, and the program's output is that of an uninterrupted
# run (on the same device, without the runtime: `ckptmpi run
# --no-checkpoint`). A process alone is a job of one: its translation
# tables are its own.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog verbs_user
[ -f "$BUILD/lib/libckptmpi-verbs.so" ] || skip "libckptmpi-verbs.so not built"

dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$BUILD/bin/ckptmpi" run --no-checkpoint -- "$PROGS/verbs_user" 40 50
hold_arm
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "$PROGS/verbs_user" 40 50
job=$JOB_PID
wait_step "$WORK/run1.out" 8 "$job"
ckpt "$dir"
after=$(last_step_of "$WORK/run1.out")
wait_step "$WORK/run1.out" "$((after + 3))" "$job"
finished "$WORK/run1.out" 40 && fail "program finished before it could be killed"
kill_job "$job"
restart_fg "$WORK/ck" "$WORK/restart.out" "$dir"
check_resume "$WORK/restart.out" 9 "$((after + 1))"
wait_exit "$REF_PID" "reference run"
merge_outputs "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + restart)"
log "PASS"
