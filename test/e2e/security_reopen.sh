#!/usr/bin/env bash
# security_reopen: a restart reopens the files the program had open by
# path.  The victim's program (uid 65534) appends to a log in a shared
# sticky directory; after the checkpoint the log is gone and the attacker
# (uid 65533) plants, under its name, a symbolic link to another file of
# the victim's, then a world-writable file of its own.  The restart must
# refuse both with a message naming the path, and leave the victim's other
# file and the attacker's file untouched (the old code followed the link,
# truncated the victim's file to the log's size and appended to it).  Then
# a restart with the log back in place completes, and after a job ends
# (normally, and by SIGTERM) its control socket is gone.
# Needs root (two unprivileged users via setpriv); skipped otherwise.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap
[ "$(id -u)" = 0 ] && [ "${CKPTMPI_TEST_AS_ROOT:-0}" != 1 ] ||
    skip "needs root to act as two unprivileged users (victim 65534, attacker 65533)"

ATT_UID=65533
ATTACKER=(setpriv --reuid="$ATT_UID" --regid="$ATT_UID" --clear-groups -- env HOME=/)
shared=$WORK/shared
mkdir "$shared"
chmod 1777 "$shared"
dir=$WORK/ck
mkdirs "$dir"
"${AS_USER[@]}" sh -c "seq 1 2000 >'$WORK/precious'"
sum_precious=$(md5sum <"$WORK/precious")

hold_arm
run_bg "$shared" "$WORK/run1.out" "$dir" -- "$PROGS/heap_mmap" 120 30 heap.log
job=$JOB_PID
wait_step "$WORK/run1.out" 10 "$job"
lo=$(last_step_of "$WORK/run1.out")
ckpt "$dir"
hi=$(last_step_of "$WORK/run1.out")
wait_step "$WORK/run1.out" $((hi + 3)) "$job"
kill_job "$job"
[ -S "$dir/control.sock" ] || log "note: the watcher removed the killed job's socket already"

# the victim cleans up its log; the attacker plants a link in its place
"${AS_USER[@]}" mv "$shared/heap.log" "$WORK/heap.log.saved"
"${ATTACKER[@]}" ln -s "$WORK/precious" "$shared/heap.log"
ck restart "$dir"
[ "$RC" -ne 0 ] || fail "the restart reopened heap.log through the attacker's symbolic link"
grep -q "$shared/heap.log: now a symbolic link" "$WORK/ck.err" ||
    fail "no message naming the planted link: $(snip "$WORK/ck.err")"
[ "$(md5sum <"$WORK/precious")" = "$sum_precious" ] ||
    fail "the restart followed the link: $WORK/precious changed"
log "planted link refused: $(grep -m1 'heap.log' "$WORK/ck.err")"

# a file of the attacker's, writable by anyone, in its place
"${ATTACKER[@]}" rm "$shared/heap.log"
"${ATTACKER[@]}" sh -c "umask 0; seq 1 3000 >'$shared/heap.log'"
sum_att=$(md5sum <"$shared/heap.log")
ck restart "$dir"
[ "$RC" -ne 0 ] || fail "the restart reopened the attacker's file as heap.log"
grep -q "$shared/heap.log: now owned by uid $ATT_UID" "$WORK/ck.err" ||
    fail "no message naming the attacker's file: $(snip "$WORK/ck.err")"
[ "$(md5sum <"$shared/heap.log")" = "$sum_att" ] || fail "the restart wrote into the attacker's file"
"${ATTACKER[@]}" rm "$shared/heap.log"

# the victim's own log back: the restart completes
"${AS_USER[@]}" mv "$WORK/heap.log.saved" "$shared/heap.log"
restart_fg "$shared" "$WORK/restart.out" "$dir"
check_resume "$WORK/restart.out" "$lo" "$((hi + 1))"
finished "$WORK/restart.out" 120 || fail "the restart did not run to the end"

no_socket() {   # no_socket DIR WHAT: the job's socket is gone (the watcher may take a moment)
    for _ in $(seq 40); do
        [ -z "$(find "$1" -maxdepth 1 -type s)" ] && return 0
        sleep 0.05
    done
    fail "$2: its control socket stayed: $(find "$1" -maxdepth 1 -type s | tr '\n' ' ')"
}
no_socket "$dir" "after the restarted job ended normally"

# SIGTERM: checkpoint, exit 143, no socket left
mkdirs "$WORK/ck2"
run_bg "$shared" "$WORK/run2.out" "$WORK/ck2" -- "$PROGS/heap_mmap" 200 30 heap2.log
job=$JOB_PID
wait_step "$WORK/run2.out" 3 "$job"
[ -S "$WORK/ck2/control.sock" ] || fail "the job has no control.sock in its own directory"
kill -TERM "$job"
rc=0
wait "$job" || rc=$?
[ "$rc" -eq 143 ] || fail "after SIGTERM the job exited $rc, expected 143"
no_socket "$WORK/ck2" "after SIGTERM"
log "PASS"
