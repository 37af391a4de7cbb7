#!/usr/bin/env bash
# restart_twice: one generation restarted twice, one after the other; both
# restarts print the same thing, and each gives the uninterrupted run's
# output and appended file (the second restart rolls the file back again).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap

NSTEPS=30
first_run "$NSTEPS" 8 0 4 -- "$PROGS/heap_mmap" "$NSTEPS" 50 heap.log
dir=$CKPT_DIR
gen=$GEN
after=$AFTER
wait_exit "$REF_PID" "reference run"

for i in 1 2; do
    restart_fg "$WORK/ck" "$WORK/restart$i.out" "$dir" --generation "$gen"
    check_resume "$WORK/restart$i.out" 9 "$((after + 1))"
    merge_outputs "$WORK/run1.out" "$WORK/restart$i.out" "$WORK/merged$i.out"
    same_file "$WORK/ref.out" "$WORK/merged$i.out" "stdout (run 1 + restart $i of generation $gen)"
    same_file "$WORK/ref/heap.log" "$WORK/ck/heap.log" "file heap.log after restart $i"
done
same_file "$WORK/restart1.out" "$WORK/restart2.out" "stdout of restart 2" "restart 1's"
[ "$(gens_in "$dir" | tr '\n' ' ')" = "$gen " ] ||
    fail "restarts changed the generations in $dir: $(gens_in "$dir" | tr '\n' ' ') (expected just $gen)"
