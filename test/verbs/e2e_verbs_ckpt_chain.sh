#!/usr/bin/env bash
# e2e_verbs_ckpt_chain: ckpt_ops (every operation kind in flight, every byte
# checked; two members over TCP) checkpointed by SIGUSR1 to member 1,
# killed, restarted; the restarted job checkpointed again (`ckptmpi
# checkpoint DIR`: its resources are the ones re-created at the first
# restart), killed, restarted: both outputs (run + 2 restarts) equal the
# uninterrupted run's. Then the first image restarted a second time
# (`--generation G1`, after the second generation was written): the same
# outputs again.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_verbs_ckpt_lib.sh"
vck_init
NSTEPS=${NSTEPS:-80}
MS=${MS:-40}
args=(-k "$KINDS" "$NSTEPS" "$MS")
dir=$WORK/ckpt

vck_ref_pair ops "${args[@]}"
vck_job_pair "$dir" ops -- "${args[@]}"
for k in 0 1; do wait_step "$WORK/ops-run$k.out" 10 "${MEMBER_PID[$k]}"; done
for k in 0 1; do b1[k]=$(last_step_of "$WORK/ops-run$k.out"); done
vck_trigger "$dir" signal
g1=$GEN
for k in 0 1; do a1[k]=$(last_step_of "$WORK/ops-run$k.out"); done
for k in 0 1; do wait_step "$WORK/ops-run$k.out" "$((a1[k] + 3))" "${MEMBER_PID[$k]}"; done
vck_kill "${MEMBER_PID[0]}" "${MEMBER_PID[1]}"

# first restart: checkpointed again mid-run, killed
vck_restart_bg "$dir" "$WORK/restart1.log"
out1=$RESTART_OUT
r1=$RESTART_PID
for k in 0 1; do wait_step "$out1/member-$k.out" "$((a1[k] + 10))" "$r1"; done
for k in 0 1; do b2[k]=$(last_step_of "$out1/member-$k.out"); done
ckpt "$dir"
g2=$GEN
[ "$g2" -gt "$g1" ] || fail "the second checkpoint made generation $g2 after $g1"
for k in 0 1; do a2[k]=$(last_step_of "$out1/member-$k.out"); done
for k in 0 1; do wait_step "$out1/member-$k.out" "$((a2[k] + 3))" "$r1"; done
vck_no_fail "$out1"/member-*.out
for k in 0 1; do finished "$out1/member-$k.out" "$NSTEPS" && fail "member $k finished before the second kill"; done
vck_kill "$r1"

# second restart, to the end
job_restart_fg "$WORK" "$WORK/restart2.log" "$dir"
out2=$RESTART_OUT
[ "$out2" != "$out1" ] || fail "the second restart wrote into the first one's output directory"
for k in 0 1; do wait_exit "${REF_PID_OF[$k]}" "reference run, side $k"; done
for k in 0 1; do
    vck_no_fail "$WORK/ops-ref$k.out" "$out2/member-$k.out"
    check_resume "$out1/member-$k.out" "$((b1[k] + 1))" "$((a1[k] + 1))"
    check_resume "$out2/member-$k.out" "$((b2[k] + 1))" "$((a2[k] + 1))"
    merge_outputs "$WORK/ops-run$k.out" "$out1/member-$k.out" "$WORK/m1_$k.out"
    merge_outputs "$WORK/m1_$k.out" "$out2/member-$k.out" "$WORK/merged$k.out"
    same_file "$WORK/ops-ref$k.out" "$WORK/merged$k.out" "member $k's stdout (run + 2 restarts)"
done

# the first image once more
job_restart_fg "$WORK" "$WORK/restart3.log" "$dir" --generation "$g1"
out3=$RESTART_OUT
for k in 0 1; do
    vck_no_fail "$out3/member-$k.out"
    check_resume "$out3/member-$k.out" "$((b1[k] + 1))" "$((a1[k] + 1))"
    merge_outputs "$WORK/ops-run$k.out" "$out3/member-$k.out" "$WORK/again$k.out"
    same_file "$WORK/ops-ref$k.out" "$WORK/again$k.out" "member $k's stdout (run + generation $g1 restarted again)"
done
