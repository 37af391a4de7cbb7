#!/usr/bin/env bash
# chain: run -> checkpoint -> kill, then three times restart -> checkpoint
# -> kill, then a last restart to the end; the merged output and the
# appended file equal an uninterrupted run's.  Generation numbers increase.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap

NSTEPS=60
first_run "$NSTEPS" 6 0 3 -- "$PROGS/heap_mmap" "$NSTEPS" 50 heap.log
dir=$CKPT_DIR
ref_pid=$REF_PID
prev_gen=$GEN
ckpt_step=6
after=$AFTER
cp "$WORK/run1.out" "$WORK/merged.out"

for i in 1 2 3; do
    out=$WORK/restart$i.out
    hold_arm
    restart_bg "$WORK/ck" "$out" "$dir"
    job=$JOB_PID
    wait_step "$out" 0 "$job"            # its first line
    check_resume "$out" "$((ckpt_step + 1))" "$((after + 1))"
    wait_step "$out" "$((FIRST_STEP + 2))" "$job"
    ckpt_step=$(last_step_of "$out")
    ckpt "$dir"
    [ "$GEN" -gt "$prev_gen" ] || fail "restart $i: checkpoint made generation $GEN after generation $prev_gen"
    prev_gen=$GEN
    after=$(last_step_of "$out")
    wait_step "$out" "$((after + 2))" "$job"
    finished "$out" "$NSTEPS" && fail "program finished before restart $i could be killed"
    kill_job "$job"
    merge_outputs "$WORK/merged.out" "$out" "$WORK/merged.out"
done

restart_fg "$WORK/ck" "$WORK/restart4.out" "$dir"
check_resume "$WORK/restart4.out" "$((ckpt_step + 1))" "$((after + 1))"
merge_outputs "$WORK/merged.out" "$WORK/restart4.out" "$WORK/merged.out"
wait_exit "$ref_pid" "reference run"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + 4 restarts)"
same_file "$WORK/ref/heap.log" "$WORK/ck/heap.log" "file heap.log"
