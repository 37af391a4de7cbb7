#!/usr/bin/env bash
# debug_reverse: reverse execution in `ckptmpi debug` (issue 10, part 2).
# A scripted GDB session on reverse_demo, checkpoints every 3 commands:
# break, continue, next, then reverse-next (right after next: from what
# the next noted; then again: by a search), reverse-step (into the last
# line of the function called on the previous line), reverse-finish (back
# to the call), reverse-continue (the previous hit of the breakpoint, with
# that iteration's values), undo (forward again to where the last command
# started), reverse-watch (the planted write that made acc.sum negative,
# with its old and new values). Each answer is checked: the line, the
# function, the variables. The values the program read from its stdin
# (a pipe: gone once read) and the clock are those of the first execution
# after every re-execution (the replay library).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/debug_lib.sh"
debug_init
need_prog reverse_demo

L_CALL=$(demo_line 'long v = combine(i, seed);')
L_SUM=$(demo_line 'acc.sum += v;')
L_LAST=$(demo_line 'acc.last = v;')
L_IF=$(demo_line 'if (i == stray)')
L_STRAY=$(demo_line 'the planted bug')
L_COMBINE_END=$(( $(demo_line 'return v;') + 1 ))

cat >"$WORK/session.gdb" <<GDB
set ckptmpi-checkpoint-stops 3
break main
run
break reverse_demo.c:$L_SUM
continue
echo @seed1\n
print seed
echo @t01\n
print t0
continue
continue
echo @i3\n
print i
echo @el2\n
print elapsed[2]
next
next
echo @rn1\n
reverse-next
echo @rn1i\n
print i
echo @state1\n
info ckptmpi-reverse
echo @rn2\n
reverse-next
echo @state2\n
info ckptmpi-reverse
echo @rs\n
reverse-step
echo @rf\n
reverse-finish
echo @rc\n
reverse-continue
echo @rci\n
print i
echo @rcsum\n
print acc.sum
echo @seed2\n
print seed
echo @t02\n
print t0
echo @undo\n
undo
echo @undoi\n
print i
echo @el2b\n
print elapsed[2]
delete
break reverse_demo.c:$L_SUM if i == 6
continue
echo @rw\n
reverse-watch acc.sum
echo @rwi\n
print i
echo @state\n
info ckptmpi-reverse
delete
continue
GDB
chmod a+r "$WORK/session.gdb"
mkdirs "$WORK/run"
dck_pipe 42 debug --dir "$WORK/ck" -batch -x "$WORK/session.gdb" -- "$PROGS/reverse_demo" 8 5
log "gdb exited $RC"
[ "$RC" -eq 0 ] || fail "ckptmpi debug exited $RC: $(snip "$WORK/ck.err" 1500)"
grep -q 'Error in sourced command file' "$WORK/ck.err" &&
    fail "a command of the session failed: $(grep -A2 'Error in sourced' "$WORK/ck.err" | head -5)"

# block_has MARK REGEX WHAT
block_has() {
    out_block "$1" | grep -Eq -- "$2" ||
        fail "$3: expected /$2/ after @$1, got: $(out_block "$1" | head -5 | tr '\n' ' ')"
}

[ "$(out_value seed1)" = 42 ] || fail "seed read from stdin: '$(out_value seed1)', expected 42"
[ "$(out_value i3)" = 3 ] || fail "third hit of line $L_SUM: i = '$(out_value i3)', expected 3"

# reverse-next twice: from line L_IF back to L_LAST, then to L_SUM
block_has rn1 "^$L_LAST"$'\t' "reverse-next from line $L_IF"
[ "$(out_value rn1i)" = 3 ] || fail "reverse-next left iteration 3: i = '$(out_value rn1i)'"
block_has rn2 "^$L_SUM"$'\t' "reverse-next from line $L_LAST"
# reverse-step from L_SUM: the previous line called combine(): its last line
block_has rs "^#0  combine \(i=3, seed=42\) at .*reverse_demo\.c:$L_COMBINE_END$" "reverse-step into combine"
# reverse-finish: back in main, at the call of combine on line L_CALL
block_has rf "^#0  0x[0-9a-f]+ in main \(.*\) at .*reverse_demo\.c:$L_CALL$" "reverse-finish to the call"
# reverse-continue: the previous hit of the breakpoint, iteration 2
block_has rc "^Breakpoint 2, main \(.*\) at .*reverse_demo\.c:$L_SUM$" "reverse-continue"
[ "$(out_value rci)" = 2 ] || fail "reverse-continue: i = '$(out_value rci)', expected 2"
# sum after iteration 1: 1*1 + 42
[ "$(out_value rcsum)" = 43 ] || fail "reverse-continue: acc.sum = '$(out_value rcsum)', expected 43"

# replay: stdin (a pipe, consumed) and the clock give what they gave first
[ "$(out_value seed2)" = 42 ] || fail "after re-execution seed = '$(out_value seed2)', expected 42 (stdin replayed)"
t01=$(out_value t01); t02=$(out_value t02)
[ -n "$t01" ] && [ "$t01" = "$t02" ] || fail "after re-execution t0 = '$t02', first execution '$t01' (clock replayed)"

# undo: back where reverse-continue started (reverse-finish's stop), iteration 3
block_has undo "^#0  0x[0-9a-f]+ in main \(.*\) at .*reverse_demo\.c:$L_CALL$" "undo"
[ "$(out_value undoi)" = 3 ] || fail "undo: i = '$(out_value undoi)', expected 3"
el1=$(out_value el2); el2=$(out_value el2b)
[ -n "$el1" ] && [ "$el1" = "$el2" ] || fail "elapsed[2] was '$el1', after re-executing '$el2' (clock replayed)"

# reverse-watch: the planted write of iteration 5, old and new values
block_has rw "^reverse-watch acc\.sum: last changed at .*reverse_demo\.c:$L_STRAY in main$" "reverse-watch names the stray write"
block_has rw "^Old value = 265$" "reverse-watch old value (1+4+9+16+25 + 5*42)"
block_has rw "^New value = -1$" "reverse-watch new value"
[ "$(out_value rwi)" = 5 ] || fail "reverse-watch: i = '$(out_value rwi)', expected 5"
# a checkpoint at the first stop and one 3 commands later: reverse-next
# re-executed from the newer one
out_block state1 | grep -Eq '^checkpoints: 2$' ||
    fail "expected 2 checkpoints (every 3 commands): $(out_block state1 | head -4 | tr '\n' ' ')"
# the first reverse-next used what the two next noted (one restart), the
# second searched (after a reverse command nothing is noted): both right
out_block state1 | grep -q '^  last fast: True$' ||
    fail "reverse-next right after next did not use what next noted: $(out_block state1 | tr '\n' ' ')"
out_block state2 | grep -q '^  last fast: False$' ||
    fail "reverse-next after reverse-next did not search: $(out_block state2 | tr '\n' ' ')"

# the program runs on to its end from there
out_has '^done sum=' "the program's end"
out_has '^\[Inferior 1 \(process [0-9]+\) exited normally\]' "the program's end"
log "reverse-next/step/finish/continue, undo and reverse-watch land on the expected lines and values; $(out_block state | grep 'last command' || true)"
