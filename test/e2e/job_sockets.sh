#!/usr/bin/env bash
# job_sockets: two members talking over one socket (test/programs/sock_pair:
# numbered, checksummed records both ways, more sent than read each step,
# so bytes are in flight at any cut), checkpointed mid-run by
# `ckptmpi checkpoint DIR`, both SIGKILLed, the job restarted: the
# connection is made again (new port / new socket file), the bytes in
# flight come first, and both outputs are those of an uninterrupted run.
# Over TCP (loopback) and over a Unix stream socket.
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
    member_bg 0 "$w/s" "$w/run0.out" "$dir" 2 -- "$PROGS/sock_pair" server $kind "$a" $NSTEPS 40
    member_bg 1 "$w/c" "$w/run1.out" "$dir" 2 -- "$PROGS/sock_pair" client $kind "$a" $NSTEPS 40
    for k in 0 1; do wait_step "$w/run$k.out" 15 "${MEMBER_PID[$k]}"; done
    for k in 0 1; do before[$k]=$(last_step_of "$w/run$k.out"); done
    ckpt "$dir"
    for k in 0 1; do after[$k]=$(last_step_of "$w/run$k.out"); done
    for k in 0 1; do wait_step "$w/run$k.out" "$((after[k] + 3))" "${MEMBER_PID[$k]}"; done
    verify_ok "$dir" --generation "$GEN"
    kill_members "${MEMBER_PID[0]}" "${MEMBER_PID[1]}"
    job_restart_fg "$w" "$w/restart.log" "$dir"
    for k in 0 1; do
        check_resume "$RESTART_OUT/member-$k.out" "$((before[k] + 1))" "$((after[k] + 1))"
        merge_outputs "$w/run$k.out" "$RESTART_OUT/member-$k.out" "$w/merged$k.out"
    done
    wait_exit "$ref0" "reference server ($kind)"
    wait_exit "$ref1" "reference client ($kind)"
    same_file "$w/ref0.out" "$w/merged0.out" "$kind server's stdout (run + restart)"
    same_file "$w/ref1.out" "$w/merged1.out" "$kind client's stdout (run + restart)"
done
