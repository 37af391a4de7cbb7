#!/usr/bin/env bash
# job_sockets: two members talking over one socket (test/programs/sock_pair:
# numbered, checksummed records both ways, more sent than read each step,
# so bytes are in flight at any cut), checkpointed mid-run by
# `ckptmpi checkpoint DIR`, both SIGKILLed, the job restarted: the
# connection is made again (new port / new socket file), the bytes in
# flight come first, and both outputs are those of an uninterrupted run.
# Over TCP (loopback) and over a Unix stream socket (and a socketpair in a
# job of one process). The server keeps its
# listening socket: it is bound again on its port (its path) at restart.
source "$(dirname "${BASH_SOURCE[0]}")/job_lib.sh"
e2e_init
need_prog sock_pair

NSTEPS=60
for kind in tcp unix; do
    w=$WORK/$kind
    dir=$w/ckpt
    mkdirs "$w/refs" "$w/refc" "$w/s" "$w/c" "$dir"
    if [ $kind = tcp ]; then ra=$w/ref.port; a=$w/run.port; else ra=$w/ref.sock; a=$w/run.sock; fi
    plain_bg "$w/refs" "$w/ref0.out" -- "$PROGS/sock_pair" server $kind "$ra" $NSTEPS 40
    ref0=$REF_PID
    plain_bg "$w/refc" "$w/ref1.out" -- "$PROGS/sock_pair" client $kind "$ra" $NSTEPS 40
    ref1=$REF_PID
    # the server keeps listening: its listening socket is bound again on
    # its port (or socket file) at the restart
    export SOCK_PAIR_KEEP_LISTENER=1
    member_bg 0 "$w/s" "$w/run0.out" "$dir" 2 -- "$PROGS/sock_pair" server $kind "$a" $NSTEPS 40
    unset SOCK_PAIR_KEEP_LISTENER
    member_bg 1 "$w/c" "$w/run1.out" "$dir" 2 -- "$PROGS/sock_pair" client $kind "$a" $NSTEPS 40
    for k in 0 1; do wait_step "$w/run$k.out" 15 "${MEMBER_PID[$k]}"; done
    for k in 0 1; do before[$k]=$(last_step_of "$w/run$k.out"); done
    ckpt_joined "$dir"
    for k in 0 1; do after[$k]=$(last_step_of "$w/run$k.out"); done
    for k in 0 1; do wait_step "$w/run$k.out" "$((after[k] + 3))" "${MEMBER_PID[$k]}"; done
    verify_ok "$dir" --generation "$GEN"
    if [ $kind = tcp ]; then
        port=$(cat "$a")
        listening_port() { awk -v p="$(printf '%04X' "$port")" '$4 == "0A" && $2 ~ ":" p "$" { f = 1 } END { exit !f }' /proc/net/tcp; }
        listening_port || fail "the server's listening socket on port $port is not there before the kill"
    else
        [ -S "$a" ] || fail "the server's listening socket $a is not there before the kill"
    fi
    kill_members "${MEMBER_PID[0]}" "${MEMBER_PID[1]}"
    [ $kind = unix ] && rm -f "$a"  # a stale socket file is replaced anyway; this one is the user's
    restart_bg "$w" "$w/restart.log" "$dir"
    rpid=$JOB_PID
    # while the restarted job runs: the listening socket is back
    deadline=$((SECONDS + 20))
    until { [ $kind = tcp ] && listening_port; } || { [ $kind = unix ] && [ -S "$a" ]; }; do
        _alive "$rpid" || fail "the server's listening socket was not seen while the restarted job ran"
        [ "$SECONDS" -lt "$deadline" ] || fail "the server's listening socket did not come back"
        sleep 0.01
    done
    wait_exit "$rpid" "ckptmpi restart ($kind)"
    RESTART_OUT=$(sed -n 's/^  member 0: \(.*\)\/member-0\.out, .*/\1/p' "$w/restart.log.err")
    [ -n "$RESTART_OUT" ] || fail "ckptmpi restart did not say where the outputs are: $(snip "$w/restart.log.err")"
    case $RESTART_OUT in /*) ;; *) RESTART_OUT=$w/$RESTART_OUT ;; esac
    log "the server's listening socket was re-created"
    for k in 0 1; do
        check_resume "$RESTART_OUT/member-$k.out" "$((before[k] + 1))" "$((after[k] + 1))"
        merge_outputs "$w/run$k.out" "$RESTART_OUT/member-$k.out" "$w/merged$k.out"
    done
    wait_exit "$ref0" "reference server ($kind)"
    wait_exit "$ref1" "reference client ($kind)"
    same_file "$w/ref0.out" "$w/merged0.out" "$kind server's stdout (run + restart)"
    same_file "$w/ref1.out" "$w/merged1.out" "$kind client's stdout (run + restart)"
done

# a job of one whose two ends are in the same process (socket_user's
# socketpair, which a plain run refuses): made again at restart too
need_prog socket_user
w=$WORK/self
dir=$w/ckpt
mkdirs "$w/ref" "$w/ck" "$dir"
plain_bg "$w/ref" "$w/ref.out" -- "$PROGS/socket_user" 40 50 socket
ref=$REF_PID
member_bg 0 "$w/ck" "$w/run.out" "$dir" 1 -- "$PROGS/socket_user" 40 50 socket
wait_step "$w/run.out" 8 "${MEMBER_PID[0]}"
before=$(last_step_of "$w/run.out")
ckpt_joined "$dir"
after=$(last_step_of "$w/run.out")
wait_step "$w/run.out" $((after + 2)) "${MEMBER_PID[0]}"
kill_members "${MEMBER_PID[0]}"
job_restart_fg "$w" "$w/restart.log" "$dir"
check_resume "$RESTART_OUT/member-0.out" $((before + 1)) $((after + 1))
merge_outputs "$w/run.out" "$RESTART_OUT/member-0.out" "$w/merged.out"
wait_exit "$ref" "reference socket_user"
same_file "$w/ref.out" "$w/merged.out" "socket_user's stdout (a socketpair in a job of one)"
