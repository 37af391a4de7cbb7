#!/usr/bin/env bash
# debug_restart: `ckptmpi debug --restart DIR --generation N` restarts a
# generation under GDB, stopped before the program runs on: the globals and
# the backtrace are the program's at the checkpoint (st.iteration and
# st.energy match the line the program printed for that iteration), the
# runtime's frames are hidden; `continue` runs the program to its end as
# the uninterrupted run did; the job's own file and checkpoint directory
# are not touched (the restart works on a scratch copy).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/debug_lib.sh"
debug_init

NSTEPS=25
dir=$WORK/ckpt
mkdirs "$WORK/run" "$dir"
run_bg "$WORK/run" "$WORK/run1.out" "$dir" -- "$PROGS/planted_stray" "$NSTEPS" 150 8
job=$JOB_PID
wait_step "$WORK/run1.out" 11 "$job"
ckpt "$dir"
wait_exit "$job" "ckptmpi run"
finished "$WORK/run1.out" "$NSTEPS" || fail "the run did not finish"
gens_before=$(gens_in "$dir" | tr '\n' ' ')
sum_before=$(md5sum <"$WORK/run/planted.log")
ls -l --time-style=full-iso "$WORK/run" "$dir" >"$WORK/ls.before"

cat >"$WORK/restart.gdb" <<'EOF'
echo @iteration\n
print st.iteration
echo @energy\n
print st.energy
echo @bt\n
bt
echo @threads\n
info threads
echo @continue\n
continue
EOF
chmod a+r "$WORK/restart.gdb"
dck debug --restart "$dir" --generation "$GEN" -batch -x "$WORK/restart.gdb"
[ "$RC" -eq 0 ] || fail "ckptmpi debug --restart exited $RC: $(snip "$WORK/ck.err" 1500)"
grep -q "generation $GEN (command, .*) restored: the program stopped before running on" "$WORK/ck.err" ||
    fail "no report of the restored generation on stderr: $(snip "$WORK/ck.err" 800)"

# state at the checkpoint: the iteration under way and its energy, as printed
it=$(out_value iteration)
[[ $it =~ ^[0-9]+$ ]] || fail "print st.iteration: '$it'"
{ [ "$it" -ge 11 ] && [ "$it" -le "$NSTEPS" ]; } ||
    fail "st.iteration at the checkpoint is $it, but the checkpoint came after step 11 was printed"
printed=$(awk -v k="$it" '$1 == k { sub(/^energy=/, "", $2); print $2; exit }' "$WORK/run1.out")
[ -n "$printed" ] || fail "the run printed no line for iteration $it"
energy=$(out_value energy)
awk -v a="$printed" -v b="$energy" 'BEGIN { exit !(a + 0 == b + 0 && b != "") }' ||
    fail "print st.energy at the checkpoint gives '$energy'; the program printed energy=$printed for iteration $it"
log "at the checkpoint: iteration $it, st.energy = $energy (the program printed energy=$printed)"

# the program's frames, none of the runtime's
awk '/^@bt$/{f=1;next} /^@/{f=0} f' "$WORK/ck.out" >"$WORK/bt"
grep -Eq '^#[0-9]+ +(0x[0-9a-f]+ in )?main \(argc=4, .*planted_stray\.c:[0-9]+' "$WORK/bt" ||
    fail "bt at the checkpoint has no frame of main: $(snip "$WORK/bt" 800)"
grep -Eq 'core/|restorer|park|runtime_main|<signal handler called>' "$WORK/bt" &&
    fail "bt at the checkpoint shows the runtime's frames: $(snip "$WORK/bt" 800)"
awk '/^@threads$/{f=1;next} /^@/{f=0} f' "$WORK/ck.out" >"$WORK/threads"
grep -Eq '^\* 1 +Thread .*"planted_stray"' "$WORK/threads" ||
    fail "info threads: the program's main thread: $(snip "$WORK/threads" 800)"

# continue: the program runs on from the checkpoint to the same end
awk '/^@continue$/{f=1;next} f && $1 ~ /^[0-9]+$/' "$WORK/ck.out" >"$WORK/cont.out"
first=$(first_step_of "$WORK/cont.out")
[ "$first" = $((it + 1)) ] || fail "after continue the program printed step '$first' first, expected $((it + 1))"
merge_outputs "$WORK/run1.out" "$WORK/cont.out" "$WORK/merged.out"
same_file "$WORK/run1.out" "$WORK/merged.out" "run + continue under debug --restart" "the run's own output"
grep -q '^\[Inferior 1 (process [0-9]*) exited normally\]' "$WORK/ck.out" ||
    fail "the program did not end normally under GDB: $(snip "$WORK/ck.out" 600)"

# the job's own files and directory are as they were
[ "$(md5sum <"$WORK/run/planted.log")" = "$sum_before" ] ||
    fail "debug --restart changed the program's own file planted.log"
[ "$(gens_in "$dir" | tr '\n' ' ')" = "$gens_before" ] ||
    fail "generations changed: before '$gens_before', after '$(gens_in "$dir" | tr '\n' ' ')'"
ls -l --time-style=full-iso "$WORK/run" "$dir" >"$WORK/ls.after"
same_file "$WORK/ls.before" "$WORK/ls.after" "listing of the run's directories" "before debug --restart"

# a program of several threads: every one is held on its own code (none in
# the runtime's restorer), the workers where the checkpoint found them
need_prog threads
dir2=$WORK/ckpt-threads
mkdirs "$WORK/run2" "$dir2"
run_bg "$WORK/run2" "$WORK/threads.out" "$dir2" -- "$PROGS/threads" 200 50
job=$JOB_PID
wait_step "$WORK/threads.out" 5 "$job"
ckpt "$dir2"
kill_job "$job"
dck debug --restart "$dir2" -batch -ex 'info threads' -ex 'thread apply all bt'
[ "$RC" -eq 0 ] || fail "ckptmpi debug --restart (threads) exited $RC: $(snip "$WORK/ck.err" 1500)"
nprog=$(grep -Ec '^[* ] +[0-9]+ +Thread .*"threads" ' "$WORK/ck.out" || true)
[ "$nprog" -eq 5 ] || fail "info threads shows $nprog threads of the program, expected 5: $(snip "$WORK/ck.out" 1500)"
grep -E '^[* ] +[0-9]+ +Thread .*"threads" ' "$WORK/ck.out" | grep -Eq 'restorer|core/' &&
    fail "a thread of the program is still in the runtime's restorer: $(grep -E 'restorer|core/' "$WORK/ck.out" | head -3)"
nworkers=$(grep -Ec '^#[0-9]+ +0x[0-9a-f]+ in worker \(.*threads\.c:[0-9]+' "$WORK/ck.out" || true)
[ "$nworkers" -eq 4 ] || fail "thread apply all bt: $nworkers backtraces through worker(), expected 4"
log "threads: the 5 threads of the program are held on their own code, 4 of them in worker()"

# a generation that is not there: one clear line
expect_error "no generation 999" debug --restart "$dir" --generation 999
log "debug --restart shows the program at the checkpoint and leaves the job's files alone"
