#!/usr/bin/env bash
# security_shared_dir: a job checkpoints into a shared sticky directory
# (mode 1777) where another unprivileged user (the attacker, uid 65533)
# plants names.  Nothing planted may stop the victim's job (uid 65534),
# run as the victim, or remove the victim's generations:
#   - a fake control.sock server (of the attacker, and a socket file of
#     the victim's served by root): `ckptmpi checkpoint` must not believe
#     its "ok N", and the job must start anyway;
#   - generations of the attacker (a real one of its own program, a junk
#     file, a symbolic link to a file of the victim's) under higher and
#     lower numbers, and just above the victim's newest: restart (latest
#     and --generation N) never picks them, the numbering goes around them,
#     retention keeps the victim's own newest CKPTMPI_KEEP generations;
#   - symbolic links at the temporary names of the job's writer (host and
#     pid are predictable): checkpoints still work, the target is
#     untouched; a stale temporary of the victim's is removed at start,
#     the attacker's is not touched;
#   - the victim's socket is gone when its job ends;
#   - a world-writable directory without the sticky bit is refused.
# Needs root (two unprivileged users via setpriv); skipped otherwise.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap
[ "$(id -u)" = 0 ] && [ "${CKPTMPI_TEST_AS_ROOT:-0}" != 1 ] ||
    skip "needs root to act as two unprivileged users (victim 65534, attacker 65533)"
find_python

ATT_UID=65533
ATTACKER=(setpriv --reuid="$ATT_UID" --regid="$ATT_UID" --clear-groups -- env HOME=/)
host=$(hostname)
shared=$WORK/shared
mkdir "$shared"
chmod 1777 "$shared"
mkdir "$WORK/att" "$WORK/attw"
chown "$ATT_UID:$ATT_UID" "$WORK/att" "$WORK/attw"
mkdirs "$WORK/vw"
# a file of the victim's that a followed link would overwrite
"${AS_USER[@]}" sh -c "printf 'precious data of the victim\n' >'$WORK/precious'"
sum_precious=$(md5sum <"$WORK/precious")

# fake_server PATH REPLY [CHOWN-UID]: a Unix socket server answering
# REPLY to everything, as whoever runs it (prefix the command).
cat >"$WORK/fake_server.py" <<'EOF'
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
if len(sys.argv) > 3:
    os.chown(sys.argv[1], int(sys.argv[3]), int(sys.argv[3]))
s.listen(8)
while True:
    c, _ = s.accept()
    try:
        c.recv(64)
        c.sendall((sys.argv[2] + "\n").encode())
    finally:
        c.close()
EOF
chmod a+r "$WORK/fake_server.py"
start_fake() {   # start_fake USER-PREFIX... @ PATH REPLY [UID]; sets FAKE_PID
    local pre=()
    while [ "$1" != @ ]; do pre+=("$1"); shift; done
    shift
    "${pre[@]}" "$PYTHON" "$WORK/fake_server.py" "$@" >/dev/null 2>&1 </dev/null &
    FAKE_PID=$!
    _PIDS+=("$FAKE_PID")
    for _ in $(seq 100); do [ -S "$1" ] && break; sleep 0.05; done
    [ -S "$1" ] || fail "the fake server did not come up at $1"
    sleep 0.1   # chown after bind
}
stop_fake() { kill "$FAKE_PID" 2>/dev/null || true; wait "$FAKE_PID" 2>/dev/null || true; }

# ---- 1. a socket file of the victim's, served by another uid (root) ----
start_fake env @ "$shared/control.sock" "ok 99" "$TEST_UID"
ck checkpoint "$shared"
[ "$RC" -ne 0 ] || fail "ckptmpi checkpoint believed a server of uid 0: $(snip "$WORK/ck.out")"
grep -q 'generation 99' "$WORK/ck.out" && fail "ckptmpi checkpoint printed the fake reply"
grep -q 'control.sock: served by uid 0' "$WORK/ck.err" ||
    fail "no message naming the untrusted server: $(snip "$WORK/ck.err")"
stop_fake
rm -f "$shared/control.sock"
log "a victim-owned socket served by uid 0 was not trusted: $(snip "$WORK/ck.err" 200)"

# ---- 2. the attacker: a generation of its own program -------------------
log "attacker: a generation of its own program"
(cd "$WORK/attw" && exec "${ATTACKER[@]}" "$CKPTMPI" run --dir "$WORK/att" -- \
    "$PROGS/heap_mmap" 400 20 att.log) >"$WORK/att.out" 2>"$WORK/att.err" </dev/null &
att=$!
_PIDS+=("$att")
show_on_failure "$WORK/att.err"
wait_step "$WORK/att.out" 2 "$att"
out=$("${ATTACKER[@]}" "$CKPTMPI" checkpoint "$WORK/att" 2>&1) ||
    fail "the attacker's own checkpoint failed: $out"
kill_job "$att"
"${ATTACKER[@]}" cp "$(ls "$WORK"/att/ckpt-*.h5 | tail -n 1)" "$shared/ckpt-000050.h5"
"${ATTACKER[@]}" chmod 0644 "$shared/ckpt-000050.h5"   # readable: the victim could run it
"${ATTACKER[@]}" sh -c "echo junk >'$shared/ckpt-000001.h5'"
"${ATTACKER[@]}" ln -s "$WORK/precious" "$shared/ckpt-000002.h5"
start_fake "${ATTACKER[@]}" @ "$shared/control.sock" "ok 77"
att_fake=$FAKE_PID
# leftovers of dead writers: the victim's (removed at start), the attacker's
true &
dead=$!
wait "$dead"
"${AS_USER[@]}" dd if=/dev/zero of="$shared/.ckpt-000007.h5.tmp.$host.$dead" bs=1M count=2 status=none
"${ATTACKER[@]}" dd if=/dev/zero of="$shared/.ckpt-000008.h5.tmp.$host.$dead" bs=1k count=1 status=none

# ---- 3. the victim's job ------------------------------------------------
# every generation full: incremental ones keep their parents (e2e_incremental)
export CKPTMPI_KEEP=2 CKPTMPI_FULL_EVERY=1
hold_arm
run_bg "$WORK/vw" "$WORK/run1.out" "$shared" -- "$PROGS/heap_mmap" 200 30 heap.log
job=$JOB_PID
wait_step "$WORK/run1.out" 2 "$job"
log "the victim's job started despite the attacker's control.sock"
[ ! -e "$shared/.ckpt-000007.h5.tmp.$host.$dead" ] ||
    fail "the victim's stale temporary of a dead writer was not removed at start"
[ -e "$shared/.ckpt-000008.h5.tmp.$host.$dead" ] || fail "the attacker's temporary was removed"
# the writer's temporary names as the old scheme made them: host and pid
for g in $(seq 1 60); do
    "${ATTACKER[@]}" ln -s "$WORK/precious" "$(printf '%s/.ckpt-%06d.h5.tmp.%s.%s' "$shared" "$g" "$host" "$job")"
done

ckpt "$shared"
g1=$GEN
grep -q 'control.sock: a socket of uid 65533' "$WORK/checkpoint.err" ||
    fail "no message about the attacker's control.sock: $(snip "$WORK/checkpoint.err")"
wait_step "$WORK/run1.out" "$(($(last_step_of "$WORK/run1.out") + 2))" "$job"
ckpt "$shared"
g2=$GEN
[ "$g2" -gt "$g1" ] || fail "generation $g2 after $g1"
# numbers just above the victim's newest, planted
"${ATTACKER[@]}" sh -c "echo x >'$(gen_file "$shared" $((g2 + 1)))'; echo x >'$(gen_file "$shared" $((g2 + 2)))'"
wait_step "$WORK/run1.out" "$(($(last_step_of "$WORK/run1.out") + 2))" "$job"
lo=$(last_step_of "$WORK/run1.out")
ckpt "$shared"
g3=$GEN
hi=$(last_step_of "$WORK/run1.out")
log "the victim's generations: $g1 $g2 $g3 (KEEP=2)"
for g in "$g2" "$g3"; do
    f=$(gen_file "$shared" "$g")
    [ -f "$f" ] || fail "retention removed the victim's generation $g (attacker's numbers were planted above it)"
    [ "$(stat -c %u "$f")" = "$TEST_UID" ] || fail "$f is not the victim's"
done
[ ! -e "$(gen_file "$shared" "$g1")" ] || fail "retention kept 3 generations with CKPTMPI_KEEP=2"
for f in 000001 000002 000050; do
    [ -e "$shared/ckpt-$f.h5" ] || [ -L "$shared/ckpt-$f.h5" ] || fail "the attacker's ckpt-$f.h5 is gone"
done
[ "$(md5sum <"$WORK/precious")" = "$sum_precious" ] || fail "a symbolic link was followed: $WORK/precious changed"
kill_job "$job"

# ---- 4. restart: only the victim's own ----------------------------------
ck restart "$shared" --generation 50
[ "$RC" -ne 0 ] || fail "ckptmpi restart --generation 50 restarted the attacker's file"
grep -q 'ckpt-000050.h5: owned by uid 65533' "$WORK/ck.err" ||
    fail "no message naming the refused file: $(snip "$WORK/ck.err")"
log "--generation 50 refused: $(snip "$WORK/ck.err" 200)"
restart_fg "$WORK/vw" "$WORK/restart.out" "$shared"
check_resume "$WORK/restart.out" "$lo" "$((hi + 1))"
finished "$WORK/restart.out" 200 || fail "the restart did not run the victim's program to its end"
grep -q 'ckpt-000050.h5: owned by uid 65533.*skipped' "$WORK/restart.out.err" ||
    fail "no message naming the skipped generation: $(snip "$WORK/restart.out.err")"
[ "$(md5sum <"$WORK/precious")" = "$sum_precious" ] || fail "$WORK/precious changed"

# ---- 5. no socket of the victim's stays after its job -------------------
for _ in $(seq 40); do
    [ -z "$(find "$shared" -maxdepth 1 -type s -user "$TEST_UID")" ] && break
    sleep 0.05
done
[ -z "$(find "$shared" -maxdepth 1 -type s -user "$TEST_UID")" ] ||
    fail "the victim's socket stayed after the job ended: $(find "$shared" -maxdepth 1 -type s -user "$TEST_UID")"
FAKE_PID=$att_fake
stop_fake

# ---- 6. a directory anyone may replace files in -------------------------
mkdir "$WORK/open"
chmod 0777 "$WORK/open"
ck run --dir "$WORK/open" -- "$PROGS/heap_mmap" 2 1 x.log
[ "$RC" -ne 0 ] || fail "a job started in a world-writable directory without the sticky bit"
grep -q 'not sticky' "$WORK/ck.err" || fail "no message for the open directory: $(snip "$WORK/ck.err")"
log "PASS"
