#!/usr/bin/env bash
# lazy_restart: CKPTMPI_RESTART_LAZY=1, the program runs again before its
# memory is all in. bigheap (a 192 MiB heap) checkpointed twice (the
# second generation incremental over the first), killed, restarted
# lazily: the runtime must say the program ran with its heap still coming
# in, and that it was all read and checked; the output merged with the
# killed run's equals a plain run's. Then a chunk of the newest
# generation's page data is damaged: the lazy restart finds it behind the
# program, restarts whole, and falls back to the older generation, saying
# so, with the output again as a plain run's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog bigheap

NSTEPS=40
args=("$NSTEPS" 60 192)
dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/bigheap" "${args[@]}"
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

# the newest, read behind the running program
CKPTMPI_RESTART_LAZY=1 CKPTMPI_VERBOSE=1 restart_fg "$WORK/ck" "$WORK/lazy.out" "$dir"
err=$WORK/lazy.out.err
grep -Eq "restart: the program runs; [0-9]+ MiB come in behind it" "$err" ||
    fail "the restart did not run the program before its memory was in: $(snip "$err" 800)"
grep -Eq "restart: [0-9]+ MiB read and checked behind the program in" "$err" ||
    fail "the restart did not say its memory was all read and checked: $(snip "$err" 800)"
log "$(grep -E "come in behind|read and checked behind" "$err" | tr '\n' ' ')"
grep -q "resumed generation $g2 \|restored generation $g2 " "$err" || fail "generation $g2 was not the one resumed"
check_resume "$WORK/lazy.out" 4 $((after2 + 1))
merge_outputs "$WORK/run1.out" "$WORK/lazy.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + lazy restart of generation $g2)"

# the newest damaged in its page data: found behind the program
f2=$(gen_file "$dir" "$g2")
damage_middle "$f2"
CKPTMPI_RESTART_LAZY=1 restart_fg "$WORK/ck" "$WORK/bad.out" "$dir"
err=$WORK/bad.out.err
log "restart said: $(snip "$err" 800)"
grep -q "$f2: checksum mismatch .*(generation $g2, read behind the program): restarting it read whole" "$err" ||
    fail "the lazy restart did not find the damaged chunk behind the program: $(snip "$err" 800)"
grep -q "ckptmpi: $f2: checksum mismatch .*: restarting generation $g1 of .* instead, the newest that verifies" "$err" ||
    fail "the restart does not say it falls back to generation $g1: $(snip "$err" 800)"
check_resume "$WORK/bad.out" 4 $((after1 + 1))
merge_outputs "$WORK/run1.out" "$WORK/bad.out" "$WORK/merged2.out"
same_file "$WORK/ref.out" "$WORK/merged2.out" "stdout (run 1 + restart from generation $g1)"
log "ok"
