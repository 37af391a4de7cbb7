#!/usr/bin/env bash
# debug_bisect: `ckptmpi bisect DIR --expr` and `--run` over a run
# checkpointed every second (CKPTMPI_INTERVAL, all generations kept) of
# planted_stray, whose stray write at iteration K (drawn here, told to no
# tool) makes `st.energy < 0` true for good. Expected: the first generation
# taken after iteration K, computed from the program's own output (each
# generation is restarted plainly, afterwards, to see which iteration it
# resumes at); the re-execution from the last false generation names the
# line of the stray write, in step() with i = K. Neither bisection touches
# the run's own file or its checkpoint directory.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/debug_lib.sh"
debug_init
export CKPTMPI_KEEP=100

NSTEPS=60
K=$((25 + RANDOM % 16))   # 25..40
dir=$WORK/ckpt
mkdirs "$WORK/run" "$dir"
log "the stray write comes at iteration $K"
run_bg "$WORK/run" "$WORK/run1.out" "$dir" --interval 1 -- "$PROGS/planted_stray" "$NSTEPS" 100 "$K"
wait_exit "$JOB_PID" "ckptmpi run --interval 1"
finished "$WORK/run1.out" "$NSTEPS" || fail "the run did not finish"
mapfile -t gens < <(gens_in "$dir")
log "generations: ${gens[*]}"
[ "${#gens[@]}" -ge 3 ] || fail "only ${#gens[@]} generations in a ~6 s run with --interval 1"
sum_before=$(md5sum <"$WORK/run/planted.log")
ls -l --time-style=full-iso "$WORK/run" "$dir" >"$WORK/ls.before"

# ---- bisect --expr
dck bisect "$dir" --expr 'st.energy < 0'
cp "$WORK/ck.out" "$WORK/expr.out"
cp "$WORK/ck.err" "$WORK/expr.err"
show_on_failure "$WORK/expr.out" "$WORK/expr.err"
[ "$RC" -eq "$BISECT_RC" ] || fail "ckptmpi bisect --expr exited $RC, expected $BISECT_RC: $(snip "$WORK/expr.err" 800) $(snip "$WORK/expr.out" 800)"
expr_first=$(sed -n 's/^first true: generation \([0-9]*\) .*/\1/p' "$WORK/expr.out")
expr_last=$(sed -n 's/^last false: generation \([0-9]*\) .*/\1/p' "$WORK/expr.out")
nprobes=$(grep -c '^probe generation ' "$WORK/expr.out" || true)
log "bisect --expr: first true $expr_first, last false $expr_last, $nprobes probes"

# ---- bisect --run: the program's own log at the checkpoint (rolled back
# to its size then) holds the line of iteration K: bad
dck bisect "$dir" --run "test -z \"\$(awk '\$1 == $K' planted.log)\""
cp "$WORK/ck.out" "$WORK/run.out"
show_on_failure "$WORK/run.out"
[ "$RC" -eq 0 ] || fail "ckptmpi bisect --run exited $RC: $(snip "$WORK/ck.err" 800) $(snip "$WORK/run.out" 800)"
run_first=$(sed -n 's/^first true: generation \([0-9]*\) .*/\1/p' "$WORK/run.out")
log "bisect --run: first bad $run_first"

# ---- nothing of the run's was touched
[ "$(md5sum <"$WORK/run/planted.log")" = "$sum_before" ] || fail "bisect changed the program's own file"
ls -l --time-style=full-iso "$WORK/run" "$dir" >"$WORK/ls.after"
same_file "$WORK/ls.before" "$WORK/ls.after" "listing of the run's directories" "before the bisections"

# ---- the truth, independently: where each generation resumes (a plain
# restart's first line is the iteration after the one under way at the
# checkpoint); expected = the first generation past iteration K
export CKPTMPI_INTERVAL=0
expect_first=""
expect_last=""
for g in "${gens[@]}"; do
    restart_bg "$WORK/run" "$WORK/r$g.out" "$dir" --generation "$g"
    wait_step "$WORK/r$g.out" 1 "$JOB_PID"
    if _alive "$JOB_PID"; then kill_job "$JOB_PID"; else wait "$JOB_PID" || true; fi
    # the killed job's socket watcher removes its control socket
    for _ in $(seq 100); do
        [ -e "$dir/control.sock" ] || break
        sleep 0.05
    done
    at=$(( $(first_step_of "$WORK/r$g.out") - 1 ))
    log "generation $g was taken during iteration $at"
    if [ "$at" -ge "$K" ]; then
        [ -n "$expect_first" ] || expect_first=$g
    else
        expect_last=$g
    fi
done
[ -n "$expect_first" ] || fail "no generation was taken after iteration $K (the test's assumption)"
[ -n "$expect_last" ] || fail "every generation was taken after iteration $K (the test's assumption)"
log "expected: first true generation $expect_first, last false $expect_last"

[ "$expr_first" = "$expect_first" ] ||
    fail "bisect --expr says the first true generation is '$expr_first', expected $expect_first"
[ "$expr_last" = "$expect_last" ] ||
    fail "bisect --expr says the last false generation is '$expr_last', expected $expect_last"
[ "$run_first" = "$expect_first" ] ||
    fail "bisect --run says the first bad generation is '$run_first', expected $expect_first"
max=$(awk -v n="${#gens[@]}" 'BEGIN { p = 2; while (2 ^ (p - 2) < n) p++; print p }')
[ "$nprobes" -le "$max" ] || fail "$nprobes probes for ${#gens[@]} generations (a binary search needs at most $max)"
grep -q "^probe generation $expect_first: st.energy < 0 = 1 (true) in main thread" "$WORK/expr.out" ||
    fail "no true probe of generation $expect_first"
grep -q "^first true: generation $expect_first (interval, created [0-9-]* [0-9:]*): st.energy < 0 = 1$" "$WORK/expr.out" ||
    fail "the report of the first true generation: $(grep '^first true' "$WORK/expr.out")"

# ---- the re-execution names the stray write
if ! reexec_refused "$WORK/expr.out" "$WORK/expr.err"; then
    grep -Eq "^became true at: .*/planted_stray\.c:$STRAY_LINE in step \(thread 1, re-executing from generation $expect_last\)$" "$WORK/expr.out" ||
        fail "the re-execution did not name planted_stray.c:$STRAY_LINE: $(grep -A2 '^became true' "$WORK/expr.out" || snip "$WORK/expr.out" 1200)"
    grep -q "^  $STRAY_LINE	.*the stray write when dst is &st.energy" "$WORK/expr.out" ||
        fail "the source line of the stray write is not shown"
    grep -q '^value: st.energy < 0 = 1$' "$WORK/expr.out" || fail "no value line"
    awk '/^backtrace:$/{f=1;next} /^locals of/{f=0} f' "$WORK/expr.out" >"$WORK/bt"
    grep -q "^#0  step (i=$K) at .*planted_stray.c:" "$WORK/bt" ||
        fail "the backtrace at the stray write is not step(i=$K): $(snip "$WORK/bt" 600)"
    grep -Eq '^#1 .* in main \(argc=4, .*planted_stray\.c:' "$WORK/bt" || fail "no main in the backtrace: $(snip "$WORK/bt" 600)"
    grep -Eq 'core/|runtime_main|restorer' "$WORK/bt" && fail "runtime frames in the backtrace: $(snip "$WORK/bt" 800)"
    grep -Eq '^  dst = 0x[0-9a-f]+ <st\+256>$' "$WORK/expr.out" ||
        fail "the locals at the stray write do not show dst pointing at st.energy: $(grep -A4 '^locals of' "$WORK/expr.out")"
    log "bisect names generation $expect_first and planted_stray.c:$STRAY_LINE (iteration $K)"
fi
