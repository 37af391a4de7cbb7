#!/usr/bin/env bash
# kill_during_checkpoint: a program with a 512 MiB touched heap is killed
# (SIGKILL) while "ckptmpi checkpoint" is writing a second generation.  The
# checkpoint command must return (non-zero, or zero if the generation had
# been committed), no partial generation may be visible (every
# ckpt-NNNNNN.h5 present verifies), "ckptmpi verify" passes, and the first
# generation restarts to the uninterrupted run's output.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog bigheap

MIB=${BIGHEAP_MIB:-512}
NSTEPS=100
SLEEP=40
dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/bigheap" "$NSTEPS" "$SLEEP" "$MIB"
ref_pid=$REF_PID
hold_arm
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "$PROGS/bigheap" "$NSTEPS" "$SLEEP" "$MIB"
job=$JOB_PID

wait_step "$WORK/run1.out" 3 "$job"
t0=$SECONDS
ckpt "$dir"
gen1=$GEN
log "generation $gen1 of a $MIB MiB heap took about $((SECONDS - t0)) s"
after=$(last_step_of "$WORK/run1.out")
wait_step "$WORK/run1.out" "$((after + 2))" "$job"

# Ask for a second checkpoint and kill the job while it is being written:
# as soon as a new file shows up in DIR (the generation being written), or
# after 0.3 s at the latest.
ls -A "$dir" | sort >"$WORK/dir.before"
log "ckptmpi checkpoint $dir (background), then kill -9 the job during it"
( exec timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" "$CKPTMPI" checkpoint "$dir" ) \
    >"$WORK/ckpt2.out" 2>"$WORK/ckpt2.err" </dev/null &
ck_pid=$!
_PIDS+=("$ck_pid")
show_on_failure "$WORK/ckpt2.out" "$WORK/ckpt2.err"
for _ in $(seq 15); do
    if [ -n "$(ls -A "$dir" | sort | comm -13 "$WORK/dir.before" - || true)" ]; then
        log "new file(s) in $dir: $(ls -A "$dir" | sort | comm -13 "$WORK/dir.before" - | tr '\n' ' ' || true)"
        sleep 0.05
        break
    fi
    sleep 0.02
done
_alive "$ck_pid" || log "note: ckptmpi checkpoint already returned before the kill (the kill may come too late)"
kill_job "$job"

# The checkpoint command must come back by itself and say what happened.
rc=0
deadline=$((SECONDS + 30))
while _alive "$ck_pid"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "ckptmpi checkpoint still running 30 s after the job was killed"
    sleep 0.05
done
wait "$ck_pid" || rc=$?
[ "$rc" -ne 137 ] || fail "ckptmpi checkpoint hung (killed by the ${CMD_TIMEOUT}s timeout)"
log "ckptmpi checkpoint exited $rc: $(snip "$WORK/ckpt2.out" 200) $(snip "$WORK/ckpt2.err" 300)"
if [ "$rc" -ne 0 ]; then
    [ "$(grep -c . "$WORK/ckpt2.err" || true)" -ge 1 ] ||
        fail "ckptmpi checkpoint failed (exit $rc) without a message on stderr"
fi

# Only complete generations are visible.
mapfile -t gens < <(gens_in "$dir")
log "generations now: ${gens[*]:-none}; all files: $(ls -A "$dir" | tr '\n' ' ' || true)"
found1=0
for g in "${gens[@]}"; do
    if [ "$g" -eq "$gen1" ]; then
        found1=1
    else
        [ "$g" -gt "$gen1" ] || fail "unexpected generation $g (older than $gen1) in $dir"
        log "generation $g was committed before the kill; it must be complete"
        verify_ok "$dir" --generation "$g"
    fi
done
[ "$found1" -eq 1 ] || fail "generation $gen1 is gone after the interrupted checkpoint"
leftovers=$(ls -A "$dir" | grep -Ev '^ckpt-[0-9]{6}\.h5$' || true)
[ -z "$leftovers" ] || log "note: other files left in $dir: $(echo "$leftovers" | tr '\n' ' ')"

verify_ok "$dir"
verify_ok "$dir" --generation "$gen1"
ck ls "$dir"
[ "$RC" -eq 0 ] || fail "ckptmpi ls $dir failed after the interrupted checkpoint: $(snip "$WORK/ck.err")"
ls_shows "$gen1" "$WORK/ck.out" || fail "ckptmpi ls does not show generation $gen1: $(snip "$WORK/ck.out")"

# The first generation restores and finishes like an uninterrupted run.
restart_fg "$WORK/ck" "$WORK/restart.out" "$dir" --generation "$gen1"
check_resume "$WORK/restart.out" 4 "$((after + 1))"
wait_exit "$ref_pid" "reference run"
merge_outputs "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + restart of generation $gen1)"
