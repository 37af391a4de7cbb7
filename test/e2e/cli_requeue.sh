#!/usr/bin/env bash
# cli_requeue: the shipped batch script examples/slurm/checkpoint-requeue.sbatch
# run as Slurm would run it, with a stand-in `scontrol` (no Slurm here):
#  1. the first run starts the program fresh (CKPTMPI_RESTART=latest finds
#     no generation, and says so);
#  2. SIGUSR1 to the batch shell (--signal=B:USR1@...) checkpoints the
#     program and requeues the job; the requeue's SIGTERM to every process
#     of the job ends the program at once (CKPTMPI_TERM=exit): no second
#     generation, nothing left running;
#  3. the requeued run (the same script) resumes that generation, says so,
#     and ends as the uninterrupted run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap
SCRIPT=$SRC_DIR/examples/slurm/checkpoint-requeue.sbatch
[ -f "$SCRIPT" ] || fail "$SCRIPT missing"

NSTEPS=40
dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/job" "$WORK/fakebin"
# scontrol requeue: noted, then SIGTERM to the job's processes (the batch
# shell's process group, where the stand-in itself runs)
cat >"$WORK/fakebin/scontrol" <<'EOS'
#!/bin/sh
echo "$*" >>"$FAKE_SCONTROL_LOG"
kill -TERM 0
EOS
chmod a+rx "$WORK/fakebin/scontrol"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/heap_mmap" "$NSTEPS" 60 heap.log

# batch_start OUT: the script, as sbatch starts it (its own process group)
batch_start() {
    local out=$1
    (cd "$WORK/job" && exec setsid "${AS_USER[@]}" env PATH="$WORK/fakebin:$BUILD/bin:$PATH" \
        SLURM_JOB_ID=4242 SLURM_JOB_NAME=example CKPTMPI_DIR="$dir" \
        FAKE_SCONTROL_LOG="$WORK/scontrol.log" bash "$SCRIPT" "$PROGS/heap_mmap" "$NSTEPS" 60 heap.log) \
        >"$out" 2>"$out.err" </dev/null &
    JOB_PID=$!
    _PIDS+=("$JOB_PID")
    show_on_failure "$out.err"
}

batch_start "$WORK/run1.out"
job=$JOB_PID
wait_step "$WORK/run1.out" 4 "$job"
grep -q "no generation in $dir: .*heap_mmap starts fresh" "$WORK/run1.out.err" ||
    fail "the first run does not say it starts fresh: $(snip "$WORK/run1.out.err")"
log "kill -USR1 the batch shell ($job), as --signal=B:USR1 does"
kill -USR1 "$job"
deadline=$((SECONDS + 30))
while _alive "$job"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the batch job did not end after its requeue"
    sleep 0.05
done
RC=0
wait "$job" 2>/dev/null || RC=$?
log "the batch shell ended with status $RC"
[ "$(cat "$WORK/scontrol.log" 2>/dev/null)" = "requeue 4242" ] ||
    fail "scontrol was called with '$(cat "$WORK/scontrol.log" 2>/dev/null)', expected 'requeue 4242'"
grep -Eq '^generation [0-9]+$' "$WORK/run1.out.err" || fail "the trap's checkpoint did not commit: $(snip "$WORK/run1.out.err")"
g=$(sed -n 's/^generation \([0-9]*\)$/\1/p' "$WORK/run1.out.err")
[ "$(gens_in "$dir")" = "$g" ] || fail "generations after the requeue: $(gens_in "$dir" | tr '\n' ' '), expected only $g"
grep -q "SIGTERM" "$WORK/run1.out.err" && fail "the requeue's SIGTERM was taken for a checkpoint: $(snip "$WORK/run1.out.err")"
[ -z "$(pgrep -f "$PROGS/heap_mmap $NSTEPS 60 heap.log" | grep -v "^$REF_PID\$" || true)" ] ||
    fail "a process of the job survived the requeue"
finished "$WORK/run1.out" "$NSTEPS" && fail "the program finished before the requeue"

# the requeued job: the same script resumes the generation, to the end
batch_start "$WORK/run2.out"
wait_exit "$JOB_PID" "the requeued batch job"
grep -q "resumed generation $g of " "$WORK/run2.out.err" || fail "the requeued run does not say it resumed: $(snip "$WORK/run2.out.err")"
wait_exit "$REF_PID" "reference run"
merge_outputs "$WORK/run1.out" "$WORK/run2.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + requeued run)"
same_file "$WORK/ref/heap.log" "$WORK/job/heap.log" "file heap.log"
