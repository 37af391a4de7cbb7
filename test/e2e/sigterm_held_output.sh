#!/usr/bin/env bash
# sigterm_held_output: what a program writes to a launcher's pipe after a
# SIGTERM (before the checkpoint's cut stops it) is held and kept with the
# generation, not sent down the pipe that launchers stop reading (mpirun
# drops it); the restart writes it first, stdout and stderr each, so the
# run until the SIGTERM and the restart together print every line once.
# With no generation to keep it (the checkpoint cannot be taken), it goes
# down the pipe at the exit.  term_self raises the SIGTERM on its own
# thread with every other signal blocked, and writes before it unblocks
# them: those lines come after the SIGTERM and before the park, every time.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog term_self
N=30 K=8 M=20
PROG=$PROGS/term_self

# the lines an uninterrupted run would print (natively the SIGTERM ends it)
expected=$WORK/expected.out
{ for i in $(seq 1 $N); do
	echo "$i step"
	[ "$i" != $K ] || for j in $(seq 1 $M); do echo "$K.$j after the SIGTERM"; done
  done
  echo "$((N + 1)) final"; } > "$expected"
held_lines() { grep -E "^$K\.[0-9]+ " "$1" || true; }

# run1 DIR OUT [udp]: ckptmpi run with stdout and stderr each a pipe (as a
# launcher gives them), to the end; its status in RC
run1() {
	local dir=$1 out=$2 udp=${3:-}
	log "ckptmpi run --dir $dir -- term_self $N $K $M $udp, stdout and stderr through pipes"
	RC=0
	(cd "$WORK" && exec timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" "$CKPTMPI" run --dir "$dir" -- \
		"$PROG" $N $K $M $udp 2> >(cat > "$out.err") | cat > "$out") || RC=$?
	show_on_failure "$out.err"
}

# ---- a generation keeps them
dir=$WORK/ckpt
mkdirs "$dir"
run1 "$dir" "$WORK/run1.out"
[ "$RC" -eq 143 ] || fail "after its SIGTERM the job exited $RC, expected 143 (checkpoint, then exit)"
[ "$(gens_in "$dir" | wc -l)" -eq 1 ] || fail "expected one generation, found: $(gens_in "$dir" | tr '\n' ' ')"
[ -z "$(held_lines "$WORK/run1.out")" ] ||
	fail "lines written after the SIGTERM went down the pipe: $(held_lines "$WORK/run1.out" | head -3 | tr '\n' '|')"
grep -q "^$K step" "$WORK/run1.out" || fail "the run did not reach step $K: $(snip "$WORK/run1.out" 300)"
grep -q "^$K\.1 err" "$WORK/run1.out.err" &&
	fail "stderr written after the SIGTERM went down the pipe"

log "ckptmpi restart $dir (stdout and stderr through pipes)"
rc=0
(cd "$WORK" && exec timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" env CKPTMPI_VERBOSE=2 "$CKPTMPI" \
	restart "$dir" 2> >(cat > "$WORK/restart.out.err") | cat > "$WORK/restart.out") || rc=$?
show_on_failure "$WORK/restart.out.err"
[ "$rc" -eq 0 ] || fail "ckptmpi restart exited $rc"
[ "$(head -1 "$WORK/restart.out")" = "$K.1 after the SIGTERM" ] ||
	fail "the restart does not begin with the held lines: $(snip "$WORK/restart.out" 200)"
for j in 1 $M; do
	grep -q "^$K\.$j err" "$WORK/restart.out.err" || fail "stderr line $K.$j (held) not written at the restart"
done
grep -q "written again" "$WORK/restart.out.err" || fail "the restart did not say it wrote the held output"
cat "$WORK/run1.out" "$WORK/restart.out" > "$WORK/merged.out"
same_file "$expected" "$WORK/merged.out" "stdout (run until SIGTERM + restart)"

# ---- no generation (a UDP socket: the checkpoint is refused): they go
# down the pipe at the exit, after what came before them
dir2=$WORK/ckpt2
mkdirs "$dir2"
run1 "$dir2" "$WORK/run2.out" udp
[ "$RC" -eq 75 ] || fail "a SIGTERM with no checkpoint possible: the job exited $RC, expected 75"
[ -z "$(gens_in "$dir2")" ] || fail "a generation was made with a UDP socket open"
[ "$(held_lines "$WORK/run2.out" | wc -l)" -eq $M ] ||
	fail "without a generation the held lines were not written at the exit: $(snip "$WORK/run2.out" 300)"
# (the program may run on a little between the refusal and the exit)
head -n "$(wc -l < "$WORK/run2.out")" "$expected" | cmp -s - "$WORK/run2.out" ||
	fail "the run without a generation printed otherwise than expected: $(snip "$WORK/run2.out" 400)"
[ "$(grep -c "^$K\.[0-9]* err" "$WORK/run2.out.err")" -eq $M ] ||
	fail "without a generation the held stderr lines were not written at the exit"

# ---- terminals. A pty that is not the process's controlling terminal is
# a launcher's (Open MPI's orted gives its ranks' stdout one): held as a
# pipe is. The user's own terminal (the controlling one) is not: nothing
# drops what goes there, and the lines show at once.
# on_pty DIR OUT CONTROLLING: term_self through `ckptmpi run`, its stdout
# a pty (the controlling terminal of a session of its own when CONTROLLING
# is 1), copied to OUT without the pty's carriage returns; status in RC
on_pty() {
	local dir=$1 out=$2 ctl=$3
	log "ckptmpi run --dir $dir -- term_self $N $K $M, stdout a pty (controlling terminal: $ctl)"
	RC=0
	(cd "$WORK" && exec timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" python3 -c '
import os, pty, subprocess, sys
ctl, out, cmd = sys.argv[1] == "1", sys.argv[2], sys.argv[3:]
m, s = pty.openpty()
def child():
    if ctl:
        os.setsid()
        import fcntl, termios
        fcntl.ioctl(1, termios.TIOCSCTTY, 0)
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=s, stderr=subprocess.DEVNULL,
                     preexec_fn=child)
os.close(s)
data = b""
while True:
    try:
        b = os.read(m, 4096)
    except OSError:
        break
    if not b:
        break
    data += b
open(out, "wb").write(data.replace(b"\r\n", b"\n"))
rc = p.wait()
sys.exit(rc if rc >= 0 else 128 - rc)
' "$ctl" "$out" "$CKPTMPI" run --dir "$dir" -- "$PROG" $N $K $M) || RC=$?
}
dir3=$WORK/ckpt3
mkdirs "$dir3"
on_pty "$dir3" "$WORK/run3.out" 0
[ "$RC" -eq 143 ] || fail "on a launcher's pty: the job exited $RC, expected 143"
[ -z "$(held_lines "$WORK/run3.out")" ] ||
	fail "on a launcher's pty (not the controlling terminal) the lines after the SIGTERM were not held"
dir4=$WORK/ckpt4
mkdirs "$dir4"
on_pty "$dir4" "$WORK/run4.out" 1
[ "$RC" -eq 143 ] || fail "on the controlling terminal: the job exited $RC, expected 143"
[ "$(held_lines "$WORK/run4.out" | wc -l)" -eq $M ] ||
	fail "on the user's own terminal the lines after the SIGTERM were held: $(snip "$WORK/run4.out" 300)"
(cd "$WORK" && exec timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" "$CKPTMPI" restart "$dir4") \
	> "$WORK/restart4.out" 2> "$WORK/restart4.out.err" || fail "restart of the terminal's run failed"
cat "$WORK/run4.out" "$WORK/restart4.out" > "$WORK/merged4.out"
same_file "$expected" "$WORK/merged4.out" "stdout on the user's terminal (run until SIGTERM + restart)"
log "PASS"
