#!/usr/bin/env bash
# debug_replay: what a re-execution of `ckptmpi debug` sees of the outside
# world is what the first execution saw (libckptmpi-replay.so, replay/).
# reverse_demo reads its seed from stdin (a pipe: once read, gone) and the
# clock. A session goes forward four iterations, then reverse-continue
# re-executes from the checkpoint at main, before both reads: the seed,
# the start time and the times already stored are those of the first
# execution. Then the user changes the program (`set var extra = 3`: a
# getrandom() the recorded run did not make) and continues: the replay
# names the divergence (the call made and the one recorded) and the
# program runs on live. Without the replay library (CKPTMPI_REPLAY=off)
# the same reverse-continue cannot come back to the same execution (the
# pipe gives nothing the second time) and says so instead of showing
# another run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/debug_lib.sh"
debug_init
need_prog reverse_demo

L_SUM=$(demo_line 'acc.sum += v;')
cat >"$WORK/session.gdb" <<GDB
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
continue
echo @el2a\n
print elapsed[2]
echo @el3a\n
print elapsed[3]
reverse-continue
echo @i\n
print i
echo @seed2\n
print seed
echo @t02\n
print t0
echo @el2b\n
print elapsed[2]
set var extra = 3
continue
echo @diverged\n
info ckptmpi-reverse
delete
continue
GDB
chmod a+r "$WORK/session.gdb"

# ---- with the replay library (the default)
dck_pipe 42 debug --dir "$WORK/ck" -batch -x "$WORK/session.gdb" -- "$PROGS/reverse_demo" 8 0
log "gdb exited $RC"
[ "$RC" -eq 0 ] || fail "ckptmpi debug exited $RC: $(snip "$WORK/ck.err" 1500)"
grep -q 'Error in sourced command file' "$WORK/ck.err" &&
    fail "a command of the session failed: $(grep -A2 'Error in sourced' "$WORK/ck.err" | head -5)"
[ "$(out_value i)" = 3 ] || fail "reverse-continue from iteration 4: i = '$(out_value i)', expected 3"
[ "$(out_value seed1)" = 42 ] || fail "seed: '$(out_value seed1)', expected 42"
[ "$(out_value seed2)" = 42 ] ||
    fail "after re-execution seed = '$(out_value seed2)': stdin (a pipe) was not replayed"
t01=$(out_value t01); t02=$(out_value t02)
[ -n "$t01" ] && [ "$t01" = "$t02" ] ||
    fail "after re-execution t0 = '$t02', first execution '$t01': the clock was not replayed"
e1=$(out_value el2a); e2=$(out_value el2b)
[ -n "$e1" ] && [ "$e1" != 0 ] && [ "$e1" = "$e2" ] ||
    fail "elapsed[2] first '$e1', after re-execution '$e2': the clock was not replayed"
log "re-execution saw seed=$t02, t0 and elapsed[2] of the first execution"

# the divergence: named by the replay library and by the debugger
grep -Eq 'ckptmpi-replay: the re-execution diverged from the recorded run \(call [0-9]+: the program called getrandom\(1 bytes, flags 0\) where the recorded run called clock_gettime\(clock 1\)\)' "$WORK/ck.err" ||
    fail "no divergence message naming getrandom and clock_gettime: $(snip "$WORK/ck.err" 1200)"
grep -q 'ckptmpi: the program diverged from the recorded run' "$WORK/ck.err" ||
    fail "the debugger did not say that the program diverged: $(snip "$WORK/ck.err" 1200)"
grep -Eq "^#[0-9]+ +0x[0-9a-f]+ in main \(.*\) at .*reverse_demo\.c:$(demo_line 'getrandom(&b, 1, 0)')$" "$WORK/ck.out" ||
    fail "the program does not stop at its getrandom() call where it diverges: $(snip "$WORK/ck.out" 1500)"
out_block diverged | grep -q '^replay: 1 divergence' ||
    fail "info ckptmpi-reverse: $(out_block diverged | tr '\n' ' ')"
# it runs on live to its end
out_has '^done sum=' "the program's end after the divergence"
log "the divergence is named (getrandom where clock_gettime was recorded), the program runs on"

# ---- without the replay library: the re-execution is another one, and said so
cat >"$WORK/noreplay.gdb" <<GDB
break main
run
break reverse_demo.c:$L_SUM
continue
continue
reverse-continue
echo @after\n
print seed
GDB
chmod a+r "$WORK/noreplay.gdb"
AS_USER+=(CKPTMPI_REPLAY=off)
dck_pipe 42 debug --dir "$WORK/ck2" -batch -x "$WORK/noreplay.gdb" -- "$PROGS/reverse_demo" 8 0
grep -q 'did not retrace its steps\|diverged' "$WORK/ck.err" ||
    fail "without replay the re-execution reads EOF from the pipe and cannot come back; expected it said so: $(snip "$WORK/ck.err" 1200) $(snip "$WORK/ck.out" 600)"
[ "$(out_value after)" != 42 ] || fail "without replay the seed came back as 42: the test proves nothing"
log "without the replay library the re-execution is another execution, and it is said"
