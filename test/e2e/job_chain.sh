#!/usr/bin/env bash
# job_chain: checkpoint -> kill -> restart -> checkpoint -> kill -> restart
# of two members talking over TCP (test/programs/sock_pair, bytes in flight
# at both cuts): the connection made again at the first restart is itself
# checkpointed and made again; both outputs (run + two restarts) are those
# of an uninterrupted run.
source "$(dirname "${BASH_SOURCE[0]}")/job_lib.sh"
e2e_init
need_prog sock_pair

NSTEPS=90
dir=$WORK/ckpt
mkdirs "$WORK/refs" "$WORK/refc" "$WORK/s" "$WORK/c" "$dir"
plain_bg "$WORK/refs" "$WORK/ref0.out" -- "$PROGS/sock_pair" server tcp "$WORK/ref.port" $NSTEPS 40
ref0=$REF_PID
plain_bg "$WORK/refc" "$WORK/ref1.out" -- "$PROGS/sock_pair" client tcp "$WORK/ref.port" $NSTEPS 40
ref1=$REF_PID
member_bg 0 "$WORK/s" "$WORK/run0.out" "$dir" 2 -- "$PROGS/sock_pair" server tcp "$WORK/run.port" $NSTEPS 40
member_bg 1 "$WORK/c" "$WORK/run1.out" "$dir" 2 -- "$PROGS/sock_pair" client tcp "$WORK/run.port" $NSTEPS 40
for k in 0 1; do wait_step "$WORK/run$k.out" 12 "${MEMBER_PID[$k]}"; done
ckpt_joined "$dir"
g1=$GEN
for k in 0 1; do wait_step "$WORK/run$k.out" 20 "${MEMBER_PID[$k]}"; done
kill_members "${MEMBER_PID[0]}" "${MEMBER_PID[1]}"

# first restart, in the background: checkpointed again mid-run, killed
restart_bg "$WORK" "$WORK/restart1.log" "$dir"
r1=$JOB_PID
deadline=$((SECONDS + 20))
until grep -q "^  member 1: " "$WORK/restart1.log.err" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "ckptmpi restart did not say where the outputs go"
    sleep 0.02
done
out1=$(sed -n 's/^  member 0: \(.*\)\/member-0\.out, .*/\1/p' "$WORK/restart1.log.err")
case $out1 in /*) ;; *) out1=$WORK/$out1 ;; esac
for k in 0 1; do
    wait_step "$out1/member-$k.out" 45 "$r1"
done
ckpt_joined "$dir"
[ "$GEN" -gt "$g1" ] || fail "the second checkpoint made generation $GEN after $g1"
for k in 0 1; do wait_step "$out1/member-$k.out" 55 "$r1"; done
kill_members "$r1"

job_restart_fg "$WORK" "$WORK/restart2.log" "$dir"
[ "$RESTART_OUT" != "$out1" ] || fail "the second restart wrote into the first one's output directory"
for k in 0 1; do
    merge_outputs "$WORK/run$k.out" "$out1/member-$k.out" "$WORK/m1_$k.out"
    merge_outputs "$WORK/m1_$k.out" "$RESTART_OUT/member-$k.out" "$WORK/merged$k.out"
done
wait_exit "$ref0" "reference server"
wait_exit "$ref1" "reference client"
same_file "$WORK/ref0.out" "$WORK/merged0.out" "server's stdout (run + 2 restarts)"
same_file "$WORK/ref1.out" "$WORK/merged1.out" "client's stdout (run + 2 restarts)"
