#!/usr/bin/env bash
# job_independent: three processes that do not talk to each other, started
# as one job (ckptmpi run --job-size 3: member 2 by --member, the others
# numbered in the order they join), checkpointed together by SIGUSR1 to
# member 1 (one generation, three slices: ls and verify show them), then
# by `ckptmpi checkpoint DIR` through another member's own socket (member 0's out
# of reach, as from another host), all
# SIGKILLed, restarted by one `ckptmpi restart DIR`: every member's output
# (first run + restart) and file are those of an uninterrupted run.
source "$(dirname "${BASH_SOURCE[0]}")/job_lib.sh"
e2e_init
need_prog heap_mmap

dir=$WORK/ckpt
steps=(70 74 78)   # each member its own run: outputs differ
mkdirs "$dir"
for k in 0 1 2; do
    mkdirs "$WORK/ref$k" "$WORK/ck$k"
    plain_bg "$WORK/ref$k" "$WORK/ref$k.out" -- "$PROGS/heap_mmap" "${steps[$k]}" 60 heap.log
    refs[$k]=$REF_PID
done

member_bg 2 "$WORK/ck2" "$WORK/run2.out" "$dir" 3 -- "$PROGS/heap_mmap" "${steps[2]}" 60 heap.log
wait_step "$WORK/run2.out" 1 "${MEMBER_PID[2]}"
member_bg auto "$WORK/ck0" "$WORK/run0.out" "$dir" 3 -- "$PROGS/heap_mmap" "${steps[0]}" 60 heap.log
MEMBER_PID[0]=$JOB_PID
wait_step "$WORK/run0.out" 1 "${MEMBER_PID[0]}"
member_bg auto "$WORK/ck1" "$WORK/run1.out" "$dir" 3 -- "$PROGS/heap_mmap" "${steps[1]}" 60 heap.log
MEMBER_PID[1]=$JOB_PID
for k in 0 1 2; do wait_step "$WORK/run$k.out" 8 "${MEMBER_PID[$k]}"; done
for k in 0 1 2; do member_is "$dir" "$k" "${MEMBER_PID[$k]}"; done

# a fourth process cannot join a job of three, nor be a live member twice
expect_error "all 3 members are running already" run --dir "$dir" --job-size 3 -- "$PROGS/heap_mmap" 3 10 x.log
expect_error "member 1 is running already" run --dir "$dir" --job-size 3 --member 1 -- "$PROGS/heap_mmap" 3 10 x.log

[ -z "$(gens_in "$dir")" ] || fail "a generation exists before any checkpoint was asked for"
for k in 0 1 2; do before[$k]=$(last_step_of "$WORK/run$k.out"); done
log "kill -USR1 member 1 (pid ${MEMBER_PID[1]})"
kill -USR1 "${MEMBER_PID[1]}"
wait_gen "$dir" "SIGUSR1 to member 1"
for k in 0 1 2; do after[$k]=$(last_step_of "$WORK/run$k.out"); done
[ "$(gens_in "$dir" | wc -l)" -eq 1 ] || fail "one signal made several generations"
for k in 0 1 2; do wait_step "$WORK/run$k.out" "$((after[k] + 3))" "${MEMBER_PID[$k]}"; done

ck ls "$dir"
[ "$RC" -eq 0 ] || fail "ckptmpi ls failed: $(snip "$WORK/ck.err")"
awk -v g="$GEN" '$1 == g && $8 == 3 { f = 1 } END { exit !f }' "$WORK/ck.out" ||
    fail "ckptmpi ls does not show generation $GEN with 3 members: $(snip "$WORK/ck.out" 800)"
verify_ok "$dir" --generation "$GEN"
grep -q "generation $GEN: ok, 3 member(s)" "$WORK/ck.out" || fail "verify did not check 3 members: $(snip "$WORK/ck.out")"

# member 0's control socket out of reach (as from another host): the
# command goes through another member's own socket, and is answered
sig_gen=$GEN
"${AS_USER[@]}" mv "$dir/control.sock" "$dir/away.sock"
ckpt_joined "$dir"
[ "$GEN" -gt "$sig_gen" ] || fail "the checkpoint through a member's socket made generation $GEN after $sig_gen"
"${AS_USER[@]}" mv "$dir/away.sock" "$dir/control.sock"
GEN=$sig_gen

kill_members "${MEMBER_PID[@]}"
job_restart_fg "$WORK" "$WORK/restart.log" "$dir" --generation "$GEN"
for k in 0 1 2; do
    grep -q "member $k (pid [0-9]*) exited with status 0" "$WORK/restart.log.err" ||
        fail "ckptmpi restart does not report member $k's end: $(snip "$WORK/restart.log.err" 800)"
    check_resume "$RESTART_OUT/member-$k.out" "$((before[k] + 1))" "$((after[k] + 1))"
    wait_exit "${refs[$k]}" "reference run $k"
    merge_outputs "$WORK/run$k.out" "$RESTART_OUT/member-$k.out" "$WORK/merged$k.out"
    same_file "$WORK/ref$k.out" "$WORK/merged$k.out" "member $k's stdout (run + restart)"
    same_file "$WORK/ref$k/heap.log" "$WORK/ck$k/heap.log" "member $k's heap.log"
done
