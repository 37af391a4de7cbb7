#!/usr/bin/env bash
# retention_verified: retention never removes the last generation that
# verifies. With CKPTMPI_KEEP=1, each new generation is read back before
# the older ones go; one that does not read back (made so here by
# CKPTMPI_TEST_FAULT=readback:2) leaves the older generation in place with
# a message, and the next good one prunes both. The job runs on to the
# same end as an uninterrupted run.
# A program that ends while its newest generation is read back (made slow
# here: CKPTMPI_TEST_FAULT=readback_slow:2) leaves CKPTMPI_KEEP
# generations, not one more: the read-back comes before the commit and
# the pruning right after it (it came after the commit, and an exit
# during it left KEEP + 1 generations: e2e_interval, CI 2026-12-01).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap

# job_with_first_gen N FAULT SLEEP_MS: a plain run (ref$N) and a run
# under ckptmpi (run$N.out, checkpoints in ckpt$N) of heap_mmap 40
# SLEEP_MS with CKPTMPI_KEEP=1 and CKPTMPI_TEST_FAULT=FAULT, generation 1
# taken at step 4. Sets dir, job, ref.
job_with_first_gen() {
    dir=$WORK/ckpt$1
    mkdirs "$WORK/ref$1" "$WORK/ck$1" "$dir"
    plain_bg "$WORK/ref$1" "$WORK/ref$1.out" -- "$PROGS/heap_mmap" 40 "$3" heap.log
    ref=$REF_PID
    # every generation full: an incremental one keeps its parents (e2e_incremental)
    export CKPTMPI_KEEP=1 CKPTMPI_TEST_FAULT=$2 CKPTMPI_FULL_EVERY=1
    run_bg "$WORK/ck$1" "$WORK/run$1.out" "$dir" -- "$PROGS/heap_mmap" 40 "$3" heap.log
    unset CKPTMPI_KEEP CKPTMPI_TEST_FAULT CKPTMPI_FULL_EVERY
    job=$JOB_PID
    wait_step "$WORK/run$1.out" 4 "$job"
    ckpt "$dir"
    [ "$GEN" -eq 1 ] || fail "first checkpoint of job $1 made generation $GEN"
}

job_with_first_gen 1 readback:2 50
wait_step "$WORK/run1.out" "$(($(last_step_of "$WORK/run1.out") + 2))" "$job"
ckpt "$dir"
[ "$GEN" -eq 2 ] || fail "second checkpoint made generation $GEN"
[ "$(gens_in "$dir" | tr '\n' ' ')" = "1 2 " ] ||
    fail "generation 2 did not read back, yet the directory holds: $(gens_in "$dir" | tr '\n' ' ') (expected 1 2)"
grep -q "generation 2 does not read back" "$WORK/run1.out.err" ||
    fail "no message about generation 2: $(snip "$WORK/run1.out.err" 400)"
wait_step "$WORK/run1.out" "$(($(last_step_of "$WORK/run1.out") + 2))" "$job"
ckpt "$dir"
[ "$GEN" -eq 3 ] || fail "third checkpoint made generation $GEN"
[ "$(gens_in "$dir" | tr '\n' ' ')" = "3 " ] ||
    fail "generation 3 read back, CKPTMPI_KEEP=1, yet the directory holds: $(gens_in "$dir" | tr '\n' ' ')"
verify_ok "$dir"
wait_exit "$job" "the job"
wait_exit "$ref" "reference run"
same_file "$WORK/ref1.out" "$WORK/run1.out" "stdout of the job"

job_with_first_gen 2 readback_slow:2 120
# the second checkpoint 3.6 s before the end: written and committed in
# well under that (a slow fsync aside), but its read-back takes 10 s more,
# and the program ends during it
wait_step "$WORK/run2.out" 10 "$job"
"${AS_USER[@]}" "$CKPTMPI" checkpoint "$dir" > "$WORK/ck2.out" 2>&1 &
late=$!
wait_exit "$job" "the second job"
wait "$late" 2>/dev/null || true
left=$(gens_in "$dir" | tr '\n' ' ')
log "the program ended during generation 2's read-back; generations left: $left ($(snip "$WORK/ck2.out" 200))"
[ "$(gens_in "$dir" | wc -l)" -le 1 ] ||
    fail "the program ended during the read-back of generation 2 and CKPTMPI_KEEP=1, yet the directory holds: $left"
[ -n "$left" ] || fail "no generation left at all"
verify_ok "$dir"
wait_exit "$ref" "second reference run"
same_file "$WORK/ref2.out" "$WORK/run2.out" "stdout of the second job"
log "PASS"
