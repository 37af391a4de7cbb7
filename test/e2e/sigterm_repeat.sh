#!/usr/bin/env bash
# sigterm_repeat: what schedulers do at a time limit.
#  1. Three SIGTERMs 50 ms apart (Slurm signals the batch shell and every
#     task, launchers forward): the checkpoint the first one asked for
#     completes, exactly one generation is written, the job exits 143
#     ("checkpointed, then stopped"), and the restart ends as a plain run.
#  2. SIGTERM when no checkpoint can be taken (a SIGEV_THREAD timer helper
#     that no signal stops): the job exits 75 ("stopped without a
#     checkpoint"), promptly, with a message, and writes nothing.
#  3. CKPTMPI_TERM=exit: SIGTERM ends the job at once (its default action),
#     no generation.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap socket_user

# 1 (sigterm.sh with three SIGTERMs)
TERMS=3 bash "$E2E_DIR/sigterm.sh" || fail "three SIGTERMs 50 ms apart (sigterm.sh with TERMS=3) failed"

# 2
dir2=$WORK/ckpt2
mkdirs "$WORK/ck2" "$dir2"
run_bg "$WORK/ck2" "$WORK/run2.out" "$dir2" -- "$PROGS/socket_user" 600 50 sigev_thread
job=$JOB_PID
wait_step "$WORK/run2.out" 3 "$job"
log "kill -TERM $job (its checkpoint will be refused)"
t0=$SECONDS
kill -TERM "$job"
sleep 0.05
kill -TERM "$job" 2>/dev/null || true
rc=0
wait "$job" || rc=$?
[ "$rc" -eq 75 ] || fail "SIGTERM with no checkpoint possible: exit $rc, expected 75: $(snip "$WORK/run2.out.err" 400)"
[ $((SECONDS - t0)) -lt 20 ] || fail "the job took $((SECONDS - t0)) s to stop"
grep -q "SIGTERM: no checkpoint" "$WORK/run2.out.err" || fail "no message says the job stopped without a checkpoint: $(snip "$WORK/run2.out.err" 400)"
[ -z "$(gens_in "$dir2")" ] || fail "a generation was written anyway"

# 3
dir3=$WORK/ckpt3
mkdirs "$WORK/ck3" "$dir3"
(cd "$WORK/ck3" && exec "${AS_USER[@]}" env CKPTMPI_TERM=exit "$CKPTMPI" run --dir "$dir3" -- "$PROGS/heap_mmap" 40 60 heap.log) \
	>"$WORK/run3.out" 2>"$WORK/run3.out.err" </dev/null &
job=$!
_PIDS+=("$job")
wait_step "$WORK/run3.out" 3 "$job"
kill -TERM "$job"
rc=0
wait "$job" || rc=$?
[ "$rc" -eq 143 ] || fail "CKPTMPI_TERM=exit: status $rc, expected death by SIGTERM (143)"
[ -z "$(gens_in "$dir3")" ] || fail "CKPTMPI_TERM=exit wrote a generation"
log "PASS"
