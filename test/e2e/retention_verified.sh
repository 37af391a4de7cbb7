#!/usr/bin/env bash
# retention_verified: retention never removes the last generation that
# verifies. With CKPTMPI_KEEP=1, each new generation is read back before
# the older ones go; one that does not read back (made so here by
# CKPTMPI_TEST_FAULT=readback:2) leaves the older generation in place with
# a message, and the next good one prunes both. The job runs on to the
# same end as an uninterrupted run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap

dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/heap_mmap" 40 50 heap.log
# every generation full: an incremental one keeps its parents (e2e_incremental)
export CKPTMPI_KEEP=1 CKPTMPI_TEST_FAULT=readback:2 CKPTMPI_FULL_EVERY=1
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "$PROGS/heap_mmap" 40 50 heap.log
unset CKPTMPI_KEEP CKPTMPI_TEST_FAULT CKPTMPI_FULL_EVERY
job=$JOB_PID

wait_step "$WORK/run1.out" 4 "$job"
ckpt "$dir"
[ "$GEN" -eq 1 ] || fail "first checkpoint made generation $GEN"
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
wait_exit "$REF_PID" "reference run"
same_file "$WORK/ref.out" "$WORK/run1.out" "stdout of the job"
log "PASS"
