#!/usr/bin/env bash
# lazy_restart: CKPTMPI_RESTART_LAZY=1, the program runs again before its
# memory is all in. bigheap (a 192 MiB heap) checkpointed twice (the
# second generation incremental over the first), killed, restarted
# lazily: the runtime must say the program ran with its heap still coming
# in, and that it was all read and checked. It is checkpointed again
# while it runs (an incremental generation: the write tracking must hold
# every write since the lazy restart), killed, and that generation
# restarted: the outputs merged equal a plain run's (the last line
# checksums the whole heap). Then a chunk of the newest generation's page
# data is damaged: the lazy restart finds it behind the program, restarts
# whole, and falls back to the older generation, saying so, with the
# output again as a plain run's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog bigheap

NSTEPS=60
args=("$NSTEPS" 60 192)
dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/bigheap" "${args[@]}"
hold_arm
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "$PROGS/bigheap" "${args[@]}"
job=$JOB_PID
wait_step "$WORK/run1.out" 3 "$job"
ckpt "$dir"
g1=$GEN
after1=$(last_step_of "$WORK/run1.out")
wait_step "$WORK/run1.out" $((after1 + 3)) "$job"
ckpt "$dir"
g2=$GEN
after2=$(last_step_of "$WORK/run1.out")
wait_step "$WORK/run1.out" $((after2 + 2)) "$job"
finished "$WORK/run1.out" "$NSTEPS" && fail "the program finished before it could be killed"
kill_job "$job"
wait_exit "$REF_PID" "reference run"

# the newest, read behind the running program; checkpointed again while
# it runs (incremental: the tracking must have seen every write made
# since), killed, and that generation restarted as usual
hold_arm
CKPTMPI_RESTART_LAZY=1 CKPTMPI_VERBOSE=1 restart_bg "$WORK/ck" "$WORK/lazy.out" "$dir"
job=$JOB_PID
err=$WORK/lazy.out.err
wait_step "$WORK/lazy.out" $((after2 + 4)) "$job"
grep -Eq "restart: the program runs; [0-9]+ MiB come in behind it" "$err" ||
    fail "the restart did not run the program before its memory was in: $(snip "$err" 800)"
grep -Eq "restart: [0-9]+ MiB read and checked behind the program in" "$err" ||
    fail "the restart did not say its memory was all read and checked: $(snip "$err" 800)"
log "$(grep -E "come in behind|read and checked behind" "$err" | tr '\n' ' ')"
grep -q "restored generation $g2 " "$err" || fail "generation $g2 was not the one resumed"
check_resume "$WORK/lazy.out" 4 $((after2 + 1))
ckpt "$dir"
g3=$GEN
after3=$(last_step_of "$WORK/lazy.out")
wait_step "$WORK/lazy.out" $((after3 + 2)) "$job"
finished "$WORK/lazy.out" "$NSTEPS" && fail "the program finished before it could be killed"
kill_job "$job"
restart_fg "$WORK/ck" "$WORK/restart3.out" "$dir"
check_resume "$WORK/restart3.out" 4 $((after3 + 1))
merge_outputs "$WORK/run1.out" "$WORK/lazy.out" "$WORK/merged1.out"
merge_outputs "$WORK/merged1.out" "$WORK/restart3.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" \
    "stdout (run 1 + lazy restart of generation $g2 + restart of generation $g3)"

# the newest damaged in its page data: found behind the program
f3=$(gen_file "$dir" "$g3")
damage_middle "$f3"
CKPTMPI_RESTART_LAZY=1 CKPTMPI_VERBOSE=1 restart_fg "$WORK/ck" "$WORK/bad.out" "$dir"
err=$WORK/bad.out.err
log "restart said: $(snip "$err" 800)"
grep -q "$f3: checksum mismatch .*(generation $g3, read behind the program): restarting it read whole" "$err" ||
    fail "the lazy restart did not find the damaged chunk behind the program: $(snip "$err" 800)"
grep -q "ckptmpi: $f3: checksum mismatch .*: restarting generation $g2 of .* instead, the newest that verifies" "$err" ||
    fail "the restart does not say it falls back to generation $g2: $(snip "$err" 800)"
check_resume "$WORK/bad.out" 4 $((after2 + 1))
merge_outputs "$WORK/run1.out" "$WORK/bad.out" "$WORK/merged2.out"
same_file "$WORK/ref.out" "$WORK/merged2.out" "stdout (run 1 + restart from generation $g2)"
log "ok"
