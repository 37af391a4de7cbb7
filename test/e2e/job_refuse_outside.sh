#!/usr/bin/env bash
# job_refuse_outside: a member whose TCP connection leads to a process
# outside the job (a python echo server not under ckptmpi): a checkpoint
# is refused with a message naming the socket (fd, both addresses), no
# generation appears, and the job runs on undisturbed (its output is that
# of an uninterrupted run).
source "$(dirname "${BASH_SOURCE[0]}")/job_lib.sh"
e2e_init
need_prog sock_pair heap_mmap
command -v python3 >/dev/null || skip "python3 is needed for the echo server"

dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/m0" "$WORK/m1" "$dir"
cat >"$WORK/echo.py" <<'PY'
import socket, sys, os
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1)
open(sys.argv[1] + ".tmp", "w").write("%d\n" % s.getsockname()[1])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
c, _ = s.accept()
while True:
    b = c.recv(65536)
    if not b:
        break
    c.sendall(b)
PY
chmod a+r "$WORK/echo.py"
echo_bg() {
    (exec "${AS_USER[@]}" python3 "$WORK/echo.py" "$1") >/dev/null 2>&1 </dev/null &
    _PIDS+=("$!")
}
echo_bg "$WORK/ref.port"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/sock_pair" client tcp "$WORK/ref.port" 40 40
ref=$REF_PID
echo_bg "$WORK/run.port"
member_bg 0 "$WORK/m0" "$WORK/run0.out" "$dir" 2 -- "$PROGS/sock_pair" client tcp "$WORK/run.port" 40 40
member_bg 1 "$WORK/m1" "$WORK/run1.out" "$dir" 2 -- "$PROGS/heap_mmap" 30 60 heap.log
wait_step "$WORK/run0.out" 8 "${MEMBER_PID[0]}"
wait_step "$WORK/run1.out" 3 "${MEMBER_PID[1]}"
port=$(cat "$WORK/run.port")

ck checkpoint "$dir"
[ "$RC" -eq 1 ] || fail "ckptmpi checkpoint exited $RC, expected 1 (refused): $(snip "$WORK/ck.err")"
grep -Eq "member 0: fd [0-9]+ \(TCP 127\.0\.0\.1:[0-9]+ -> 127\.0\.0\.1:$port\): its other end is not a member of job" "$WORK/ck.err" ||
    fail "the refusal does not name the socket to 127.0.0.1:$port: $(snip "$WORK/ck.err" 800)"
log "refused: $(snip "$WORK/ck.err" 300)"
[ -z "$(gens_in "$dir")" ] || fail "a generation appeared although the checkpoint was refused"
ls "$dir"/.ckpt-* >/dev/null 2>&1 && fail "a temporary was left in $dir: $(ls -a "$dir")"

wait_exit "${MEMBER_PID[0]}" "member 0 (after the refusal)"
wait_exit "${MEMBER_PID[1]}" "member 1 (after the refusal)"
wait_exit "$ref" "reference run"
same_file "$WORK/ref.out" "$WORK/run0.out" "member 0's stdout"
