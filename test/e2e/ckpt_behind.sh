#!/usr/bin/env bash
# ckpt_behind: a checkpoint is written behind the running program. The
# write is made slow (CKPTMPI_TEST_FAULT=slowwrite: 300 ms at each 64 MiB
# step), so the program must print several steps between the request and
# the commit; what was saved is the heap at the cut (the restart finishes
# with the uninterrupted run's checksum of the whole heap, which a copy
# torn by the program's writes during the save would not give). A second
# checkpoint is killed while its writer runs: the writer process dies
# with the job, no generation is added, and the first one restarts.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog bigheap

MIB=256
NSTEPS=150
SLEEP=40
dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/bigheap" "$NSTEPS" "$SLEEP" "$MIB"
ref_pid=$REF_PID
# every generation full, so the second write is as long as the first
export CKPTMPI_TEST_FAULT=slowwrite:300 CKPTMPI_VERBOSE=2 CKPTMPI_FULL_EVERY=1
hold_arm
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "$PROGS/bigheap" "$NSTEPS" "$SLEEP" "$MIB"
unset CKPTMPI_TEST_FAULT CKPTMPI_VERBOSE CKPTMPI_FULL_EVERY
job=$JOB_PID

wait_step "$WORK/run1.out" 3 "$job"
before=$(last_step_of "$WORK/run1.out")
ckpt "$dir"
gen1=$GEN
after=$(last_step_of "$WORK/run1.out")
log "generation $gen1: the program went from step $before to step $after while it was written"
[ $((after - before)) -ge 5 ] ||
    fail "the program did not run on while generation $gen1 was written (steps $before to $after)"
line=$(grep "generation $gen1 committed" "$WORK/run1.out.err" || true)
[[ $line == *"written behind the program"* ]] ||
    fail "generation $gen1 was not written behind the program: $(snip "$WORK/run1.out.err" 1500)"
log "${line#*committed }"

# the second checkpoint: the job is killed as soon as its writer runs
log "ckptmpi checkpoint $dir (background), then kill -9 the job while its writer runs"
( exec timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" "$CKPTMPI" checkpoint "$dir" ) \
    >"$WORK/ckpt2.out" 2>"$WORK/ckpt2.err" </dev/null &
ck_pid=$!
_PIDS+=("$ck_pid")
show_on_failure "$WORK/ckpt2.out" "$WORK/ckpt2.err"
writer=
for _ in $(seq 250); do
    writer=$(sed -n 's/.*checkpoint writer: pid \([0-9]*\) writes.*/\1/p' "$WORK/run1.out.err" | sed -n 2p)
    [ -z "$writer" ] || break
    sleep 0.02
done
[ -n "$writer" ] || fail "no writer started for the second checkpoint: $(snip "$WORK/run1.out.err" 1500)"
_alive "$writer" || fail "the second checkpoint's writer (pid $writer) ended before the kill"
kill_job "$job"
# gone, or a zombie nobody reaped yet (PID 1 of a container may not)
writer_gone() {
    local st
    st=$(ps -o stat= -p "$writer" 2>/dev/null || true)
    [ -z "$st" ] || [[ $st == Z* ]]
}
for _ in $(seq 100); do
    if writer_gone; then break; fi
    sleep 0.05
done
writer_gone || fail "the writer (pid $writer) outlived the job it wrote for"
log "the writer (pid $writer) ended with the job"
rc=0
wait "$ck_pid" || rc=$?
[ "$rc" -ne 0 ] || fail "ckptmpi checkpoint succeeded although the job was killed during the write"
[ "$rc" -ne 137 ] || fail "ckptmpi checkpoint hung after the job was killed"
log "ckptmpi checkpoint exited $rc: $(snip "$WORK/ckpt2.err" 300)"
[ "$(gens_in "$dir" | tr '\n' ' ')" = "$gen1 " ] ||
    fail "generations after the interrupted write: $(gens_in "$dir" | tr '\n' ' '), expected only $gen1"
verify_ok "$dir"

restart_fg "$WORK/ck" "$WORK/restart.out" "$dir"
check_resume "$WORK/restart.out" "$((before + 1))" "$((after + 1))"
wait_exit "$ref_pid" "reference run"
merge_outputs "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + restart of generation $gen1)"
