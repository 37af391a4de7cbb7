#!/usr/bin/env bash
# signal_trigger: SIGUSR1 to the job's process takes a checkpoint (a new,
# complete generation file appears and verifies), the program is not
# disturbed by the signal, and a restart from that generation finishes with
# the output of an uninterrupted run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap

NSTEPS=40
dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/heap_mmap" "$NSTEPS" 60 heap.log
ref_pid=$REF_PID
hold_arm
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "$PROGS/heap_mmap" "$NSTEPS" 60 heap.log
job=$JOB_PID

wait_step "$WORK/run1.out" 8 "$job"
[ -z "$(gens_in "$dir")" ] || fail "generations exist before any checkpoint was asked for: $(gens_in "$dir" | tr '\n' ' ')"
before=$(last_step_of "$WORK/run1.out")
log "kill -USR1 $job"
kill -USR1 "$job"

deadline=$((SECONDS + 30))
while [ -z "$(gens_in "$dir")" ]; do
    _alive "$job" || fail "the job ended after SIGUSR1 (killed by the signal?) before a generation appeared"
    [ "$SECONDS" -lt "$deadline" ] || fail "no generation file appeared in $dir within 30s of SIGUSR1"
    sleep 0.05
done
after=$(last_step_of "$WORK/run1.out")
gen=$(gens_in "$dir" | tail -n 1)
[ "$(gens_in "$dir" | wc -l)" -eq 1 ] || fail "one SIGUSR1 made several generations: $(gens_in "$dir" | tr '\n' ' ')"
log "SIGUSR1 produced generation $gen ($(gen_file "$dir" "$gen"))"

# The program must still be running normally after the signal.
wait_step "$WORK/run1.out" "$((after + 3))" "$job"
verify_ok "$dir" --generation "$gen"
kill_job "$job"

restart_fg "$WORK/ck" "$WORK/restart.out" "$dir"
check_resume "$WORK/restart.out" "$((before + 1))" "$((after + 1))"
wait_exit "$ref_pid" "reference run"
merge_outputs "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + restart)"
same_file "$WORK/ref/heap.log" "$WORK/ck/heap.log" "file heap.log"
