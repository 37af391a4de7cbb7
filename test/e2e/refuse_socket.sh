#!/usr/bin/env bash
# refuse_socket: a program holding a socket it opened itself (or, with
# MODE=sigev_thread, a SIGEV_THREAD timer) cannot be checkpointed yet.
# `ckptmpi checkpoint` must fail with a one-line message naming the cause,
# write no generation, and leave the program running to the same end as an
# uninterrupted run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog socket_user
MODE=${MODE:-socket}
NEEDLE=socket
[ "$MODE" = socket ] || NEEDLE=SIGEV_THREAD

dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/socket_user" 30 50 "$MODE"
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "$PROGS/socket_user" 30 50 "$MODE"
wait_step "$WORK/run1.out" 5 "$JOB_PID"
refused_checkpoint "$dir" "a $MODE" "$NEEDLE"
wait_exit "$JOB_PID" "the job after the refused checkpoint"
wait_exit "$REF_PID" "reference run"
same_file "$WORK/ref.out" "$WORK/run1.out" "stdout of the job whose checkpoint was refused"
log "PASS"
