#!/usr/bin/env bash
# e2e_verbs_ckpt_ops: ckpt_ops (test/verbs/ckpt_ops.c: RC send/receive,
# RDMA write, write with immediate, RDMA read, fetch-and-add and
# compare-and-swap, UD, an SRQ under two QPs, a completion channel with a
# thread sitting in ibv_get_cq_event; every byte checked) checkpointed
# mid-run with requests in flight (sends waiting for receives, receives
# posted, completions not polled), every process SIGKILLed, the job
# restarted: each output (run + restart) equals the uninterrupted run's,
# final checksum included. The restarted program goes on with the QP
# numbers, rkeys and addresses it exchanged before the checkpoint.
#   FORM=pair   two members over TCP, both sleeping between posting and
#               polling (default)
#   FORM=busy   the same, member 0 spinning in ibv_poll_cq at the cut
#   FORM=loop   a job of one: both sides in one process, their QPs
#               connected to each other
#   VCK_KINDS=send,write,...   a subset (ckpt_ops -k; default all)
#   TRIGGER=command|signal|interval  ckptmpi checkpoint DIR (default),
#               SIGUSR1 to member 1, or --interval 1 (CKPTMPI_INTERVAL): the
#               latest generation when the job is killed is restarted
source "$(dirname "${BASH_SOURCE[0]}")/e2e_verbs_ckpt_lib.sh"
FORM=${FORM:-pair}
TEST_NAME=$TEST_NAME-$FORM
vck_init
TRIGGER=${TRIGGER:-command}
NSTEPS=${NSTEPS:-50}
MS=${MS:-40}
AT=${AT:-10}
args=(-k "$KINDS" "$NSTEPS" "$MS")
[ "$FORM" != busy ] || args=(-b "${args[@]}")
dir=$WORK/ckpt

runopts=()
[ "$TRIGGER" != interval ] || runopts=(--interval 1)
case $FORM in
pair | busy)
    vck_ref_pair ops "${args[@]}"
    vck_job_pair "$dir" ops "${runopts[@]}" -- "${args[@]}"
    members=(0 1) ;;
loop)
    mkdirs "$WORK/ops-ref0" "$WORK/ops-run0" "$dir"
    plain_bg "$WORK/ops-ref0" "$WORK/ops-ref0.out" -- "${NOCKPT[@]}" "$OPS" "${args[@]}" loop
    REF_PID_OF[0]=$REF_PID
    member_bg 0 "$WORK/ops-run0" "$WORK/ops-run0.out" "$dir" 1 "${runopts[@]}" -- "$OPS" "${args[@]}" loop
    members=(0) ;;
*) fail "FORM must be pair, busy or loop, not '$FORM'" ;;
esac

for k in "${members[@]}"; do wait_step "$WORK/ops-run$k.out" "$AT" "${MEMBER_PID[$k]}"; done
for k in "${members[@]}"; do before[k]=$(last_step_of "$WORK/ops-run$k.out"); done
[ "$FORM" = loop ] && [ "$TRIGGER" = signal ] && fail "TRIGGER=signal needs a member 1"
if [ "$TRIGGER" = interval ]; then
    wait_gen "$dir" "--interval 1"
    # a generation may have been taken before step AT: any step will do
    for k in "${members[@]}"; do before[k]=0; done
else
    vck_trigger "$dir" "$TRIGGER"
fi
for k in "${members[@]}"; do after[k]=$(last_step_of "$WORK/ops-run$k.out"); done
# the job goes on after the checkpoint, with the same resources
for k in "${members[@]}"; do wait_step "$WORK/ops-run$k.out" "$((after[k] + 4))" "${MEMBER_PID[$k]}"; done
vck_no_fail "$WORK"/ops-run*.out
for k in "${members[@]}"; do finished "$WORK/ops-run$k.out" "$NSTEPS" && fail "member $k finished before it could be killed"; done
vck_kill "${MEMBER_PID[@]}"
# --interval: a later generation may have been taken before the kill
[ "$TRIGGER" != interval ] || for k in "${members[@]}"; do after[k]=$(last_step_of "$WORK/ops-run$k.out"); done

job_restart_fg "$WORK" "$WORK/restart.log" "$dir"
for k in "${members[@]}"; do
    vck_no_fail "$RESTART_OUT/member-$k.out"
    check_resume "$RESTART_OUT/member-$k.out" "$((before[k] + 1))" "$((after[k] + 1))"
    merge_outputs "$WORK/ops-run$k.out" "$RESTART_OUT/member-$k.out" "$WORK/merged$k.out"
done
for k in "${members[@]}"; do
    wait_exit "${REF_PID_OF[$k]}" "reference run, side $k"
    vck_no_fail "$WORK/ops-ref$k.out"
    finished "$WORK/ops-ref$k.out" "$NSTEPS" || fail "the reference run of side $k did not finish"
    same_file "$WORK/ops-ref$k.out" "$WORK/merged$k.out" "member $k's stdout (run + restart)"
done
