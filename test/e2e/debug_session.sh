#!/usr/bin/env bash
# debug_session: `ckptmpi debug -- PROGRAM` is GDB on the program, not on
# the runtime. A scripted session in batch mode on planted_stray: a
# breakpoint on main (the program's, not the runtime's own main) and one on
# a source line, next, print of locals and globals, bt with the program's
# frames only, info threads (the runtime's threads named as such), a
# watchpoint on a global with its exact old and new values.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/debug_lib.sh"
debug_init

mkdirs "$WORK/run"
CALL_LINE=$(grep -n 'double moved = step(i);' "$SRC_DIR/test/programs/planted_stray.c" | cut -d: -f1)
ENTRY_LINE=$(grep -n 'double moved = 0.0;' "$SRC_DIR/test/programs/planted_stray.c" | cut -d: -f1)
cat >"$WORK/session.gdb" <<EOF
break main
break planted_stray.c:$STRAY_LINE
run
echo @where-main\n
bt
next
next
echo @nsteps\n
print nsteps
echo @sleep_ms\n
print sleep_ms
until $CALL_LINE
echo @step\n
step
continue
echo @where-stray\n
bt
echo @i\n
print i
echo @energy-before\n
print st.energy
next
echo @dst-cell\n
print *dst
echo @dst-is-cell\n
print dst == &st.cells[1]
echo @threads\n
info threads
watch st.energy
continue
echo @after-watch\n
info line *\$pc
delete
continue
EOF
chmod a+r "$WORK/session.gdb"
dck debug --dir "$WORK/ck" -batch -x "$WORK/session.gdb" -- \
    "$PROGS/planted_stray" 3 10 2 "$WORK/run/planted.log"
log "gdb exited $RC"
[ "$RC" -eq 0 ] || fail "ckptmpi debug exited $RC: $(snip "$WORK/ck.err" 1500)"

# the first stop is the program's main, not the runtime's
out_has '^Thread 1 "planted_stray" hit Breakpoint 1(\.[0-9]+)?, main \(argc=5, .*planted_stray\.c:[0-9]+' "break main"
grep -E 'hit Breakpoint|^Breakpoint [0-9.]+, ' "$WORK/ck.out" | grep -q 'runtime_main\.c' &&
    fail "the session stopped in the runtime's main: $(grep -m3 runtime_main "$WORK/ck.out")"
# bt at main: the program's frames, none of the runtime's (core/, the lower half)
awk '/^@where-main$/{f=1;next} /^@/{f=0} f' "$WORK/ck.out" >"$WORK/bt-main"
grep -q '^#0  main (argc=5' "$WORK/bt-main" || fail "bt at main: $(snip "$WORK/bt-main" 600)"
grep -Eq 'core/|ckptmpi-runtime|loader\.c|runtime_main' "$WORK/bt-main" &&
    fail "bt at main shows runtime frames: $(snip "$WORK/bt-main" 800)"
[ "$(out_value nsteps)" = 3 ] || fail "print nsteps after two next: '$(out_value nsteps)', expected 3"
[ "$(out_value sleep_ms)" = 10 ] || fail "print sleep_ms: '$(out_value sleep_ms)', expected 10"

# until the call, then step into it
awk '/^@step$/{f=1;next} /^@|hit Breakpoint/{f=0} f' "$WORK/ck.out" >"$WORK/step"
grep -Eq "^step \(i=1\) at .*planted_stray\.c:$ENTRY_LINE$" "$WORK/step" ||
    fail "step into step(): $(snip "$WORK/step" 400) (expected step (i=1) at planted_stray.c:$ENTRY_LINE)"

# the source-line breakpoint, in step() called from main
out_has "^Thread 1 \"planted_stray\" hit Breakpoint 2, step \(i=1\) at .*planted_stray\.c:$STRAY_LINE$" "break planted_stray.c:$STRAY_LINE"
awk '/^@where-stray$/{f=1;next} /^@/{f=0} f' "$WORK/ck.out" >"$WORK/bt-stray"
grep -q "^#0  step (i=1) at .*planted_stray.c:$STRAY_LINE" "$WORK/bt-stray" ||
    fail "bt at the stray line, frame 0: $(snip "$WORK/bt-stray" 600)"
grep -Eq '^#1  0x[0-9a-f]+ in main \(argc=5, .*planted_stray\.c:[0-9]+' "$WORK/bt-stray" ||
    fail "bt at the stray line, frame 1: $(snip "$WORK/bt-stray" 600)"
grep -Eq 'core/|runtime_main|loader\.c' "$WORK/bt-stray" &&
    fail "bt shows runtime frames: $(snip "$WORK/bt-stray" 800)"
[ "$(out_value i)" = 1 ] || fail "print i: '$(out_value i)', expected 1"
[ "$(out_value energy-before)" = 0 ] || fail "print st.energy: '$(out_value energy-before)', expected 0"
# `next` executed the write: cell 1 of the ring holds -1000 - i
[ "$(out_value dst-cell)" = -1001 ] || fail "print *dst after next: '$(out_value dst-cell)', expected -1001"
[ "$(out_value dst-is-cell)" = 1 ] || fail "dst is not &st.cells[1] at i=1"

# info threads: the program's thread by its name, the runtime's marked
awk '/^@threads$/{f=1;next} /^@|^Hardware/{f=0} f' "$WORK/ck.out" >"$WORK/threads"
grep -Eq '^\* 1 +Thread .*"planted_stray" +step \(i=1\)' "$WORK/threads" ||
    fail "info threads: the program's thread: $(snip "$WORK/threads" 800)"
n=$(grep -c '"ckptmpi-runtime (lower half)"' "$WORK/threads" || true)
[ "$n" -ge 1 ] || fail "info threads: the runtime's threads are not marked: $(snip "$WORK/threads" 800)"
log "info threads: the program's thread and $n runtime thread(s), marked"

# the watchpoint: st.energy goes from 0 to 1 at the line after the write
# (GDB's software watchpoint where the hardware's do not fire: debug_lib.sh)
WP="Hardware watchpoint"
[ "$HW_WATCH" = yes ] || WP="Watchpoint"
out_has "^$WP 3: st\.energy$" "watch st.energy"
grep -A4 "hit $WP 3: st.energy\$" "$WORK/ck.out" | tail -n +2 | tr '\n' ' ' >"$WORK/wp"
grep -q 'Old value = 0 *New value = 1' "$WORK/wp" ||
    fail "watchpoint values: $(snip "$WORK/wp" 400) (expected Old value = 0, New value = 1)"
out_has "^Line $((STRAY_LINE + 2)) of \".*planted_stray\.c\"" "the watchpoint stops after the += 1.0 (line $((STRAY_LINE + 1)))"

# the program ran to its end under GDB: iteration 2 is the stray one
out_has '^\[Inferior 1 \(process [0-9]+\) exited normally\]' "the program's end"
out_has '^2 energy=-1001\.0 ' "the program's own output"
log "breakpoints, next, print, bt, info threads and a watchpoint behave as in plain gdb"
