#!/usr/bin/env bash
# sigterm: SIGTERM (a batch system's time limit or preemption) makes the
# job checkpoint and exit with status 143; the generation's reason is
# "sigterm", and a restart finishes with the output of an uninterrupted run.
# TERMS=N: N SIGTERMs 50 ms apart (what schedulers send), still exactly one
# generation.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap

dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/heap_mmap" 40 60 heap.log
ref_pid=$REF_PID
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "$PROGS/heap_mmap" 40 60 heap.log
job=$JOB_PID
wait_step "$WORK/run1.out" 10 "$job"
before=$(last_step_of "$WORK/run1.out")
log "kill -TERM $job (${TERMS:-1} time(s), 50 ms apart)"
kill -TERM "$job"
for _ in $(seq 2 "${TERMS:-1}"); do
	sleep 0.05
	kill -TERM "$job" 2>/dev/null || true
done
rc=0
wait "$job" || rc=$?
[ "$rc" -eq 143 ] || fail "after SIGTERM the job exited $rc, expected 143 (checkpoint, then exit)"
after=$(last_step_of "$WORK/run1.out")
[ "$(gens_in "$dir" | wc -l)" -eq 1 ] || fail "expected one generation after SIGTERM, found: $(gens_in "$dir" | tr '\n' ' ')"
ck ls "$dir"
grep -q ' sigterm ' "$WORK/ck.out" || fail "the generation's reason is not sigterm: $(snip "$WORK/ck.out" 400)"
finished "$WORK/run1.out" 40 && fail "the job ran to its end instead of stopping at SIGTERM"

restart_fg "$WORK/ck" "$WORK/restart.out" "$dir"
check_resume "$WORK/restart.out" "$((before + 1))" "$((after + 1))"
wait_exit "$ref_pid" "reference run"
merge_outputs "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run until SIGTERM + restart)"
same_file "$WORK/ref/heap.log" "$WORK/ck/heap.log" "file heap.log"
log "PASS"
