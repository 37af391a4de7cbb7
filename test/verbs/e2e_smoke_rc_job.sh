#!/usr/bin/env bash
# e2e_smoke_rc_job: the verbs checkpoint smoke test (issue 9, items 3 and
# 4). smoke_rc_job as a job of two members (ckptmpi run --dir DIR
# --job-size 2; out of band over TCP, kept open): every step an RDMA
# write, a send waiting at the sender for the receive its peer posts a
# few ms later, an answer, an RDMA read; the server sleeps in
# ibv_get_cq_event, the client polls. Checkpointed mid-run (`ckptmpi
# checkpoint DIR`), every member SIGKILLed, `ckptmpi restart DIR`: each
# member's output (run + restart) is that of an uninterrupted run, every
# byte checked by the program itself; every MR gets a new key at the
# restart, so the rkeys the client holds go through the translation
# tables. Then the restarted job is
# checkpointed and restarted once more (the translated path: virtual QP
# numbers that are not the device's any more). Prints the checkpoint and
# restart times.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/job_lib.sh"
e2e_init
orig=${CKPTMPI_BUILD:-$SRC_DIR/build}
[ -f "$BUILD/lib/libckptmpi-verbs.so" ] || cp -a "$orig/lib/libckptmpi-verbs.so" "$BUILD/lib/" 2>/dev/null || true
[ -f "$BUILD/lib/libckptmpi-verbs.so" ] || skip "the software verbs device is not built"
PROG=$BUILD/test/verbs/smoke_rc_job
if [ ! -x "$PROG" ] && [ -x "$orig/test/verbs/smoke_rc_job" ]; then
    mkdir -p "$BUILD/test/verbs"
    cp -a "$orig/test/verbs/smoke_rc_job" "$BUILD/test/verbs/"
    chmod -R a+rX "$BUILD/test"
fi
[ -x "$PROG" ] || fail "test program not built: $PROG"

STEPS=${STEPS:-600}
# the restarts give every MR a new key (the device would keep them): the
# rkeys the client received before the checkpoint reach the server's
# memory through the translation tables; the shadow says so at level 2
export CKPTMPI_TEST_VERBS_NEW_KEYS=1 CKPTMPI_VERBOSE=2
dir=$WORK/ckpt
port_ref=$(free_port)
port_run=$(free_port)
[ "$port_run" != "$port_ref" ] || port_run=$(free_port)
mkdirs "$dir" "$WORK/ref0" "$WORK/ref1" "$WORK/run0" "$WORK/run1"

plain_bg "$WORK/ref0" "$WORK/ref0.out" -- "$CKPTMPI" run --no-checkpoint -- "$PROG" server "$port_ref" "$STEPS"
ref0=$REF_PID
plain_bg "$WORK/ref1" "$WORK/ref1.out" -- "$CKPTMPI" run --no-checkpoint -- "$PROG" client "$port_ref" "$STEPS"
ref1=$REF_PID
member_bg 0 "$WORK/run0" "$WORK/run0.out" "$dir" 2 -- "$PROG" server "$port_run" "$STEPS"
member_bg 1 "$WORK/run1" "$WORK/run1.out" "$dir" 2 -- "$PROG" client "$port_run" "$STEPS"
for k in 0 1; do wait_step "$WORK/run$k.out" 40 "${MEMBER_PID[$k]}"; done

for k in 0 1; do before[$k]=$(last_step_of "$WORK/run$k.out"); done
t0=$(date +%s.%N)
ckpt "$dir"
t1=$(date +%s.%N)
for k in 0 1; do after[$k]=$(last_step_of "$WORK/run$k.out"); done
# the job runs on after the checkpoint
for k in 0 1; do wait_step "$WORK/run$k.out" "$((after[k] + 10))" "${MEMBER_PID[$k]}"; done
finished "$WORK/run1.out" "$STEPS" && fail "the job finished before it could be killed (raise STEPS)"
kill_members "${MEMBER_PID[@]}"

t2=$(date +%s.%N)
job_restart_fg "$WORK" "$WORK/restart.log" "$dir" --generation "$GEN"
t3=$(date +%s.%N)
for k in 0 1; do
    check_resume "$RESTART_OUT/member-$k.out" "$((before[k] + 1))" "$((after[k] + 1))"
    wait_exit "$([ "$k" = 0 ] && echo "$ref0" || echo "$ref1")" "reference run $k"
    merge_outputs "$WORK/run$k.out" "$RESTART_OUT/member-$k.out" "$WORK/merged$k.out"
    same_file "$WORK/ref$k.out" "$WORK/merged$k.out" "member $k's stdout (run + restart)"
done
for k in 0 1; do
    grep -q "MR lkey .* is .* on the device now" "$RESTART_OUT/member-$k.err" ||
        fail "member $k's MR kept its key at the restart (CKPTMPI_TEST_VERBS_NEW_KEYS): $(snip "$RESTART_OUT/member-$k.err")"
done
log "MEASURED checkpoint command $(echo "$t1 - $t0" | bc) s, restart to the end $(echo "$t3 - $t2" | bc) s"
grep -h "paused" "$WORK/run0.out.err" "$WORK/run1.out.err" | sed 's/^/  /' || true

# once more from the restarted job: its QPs' virtual numbers are not the
# device's any more (the translated path), a chained checkpoint
gen1=$GEN
restart_bg "$WORK" "$WORK/restart2.log" "$dir" --generation "$gen1"
rpid=$JOB_PID
out2=$dir/restart-$gen1.1
for _ in $(seq 600); do [ -s "$out2/member-1.out" ] && break; sleep 0.05; done
[ -s "$out2/member-1.out" ] || fail "the second restart printed nothing ($(snip "$WORK/restart2.log.err"))"
for k in 0 1; do
    s=$(first_step_of "$out2/member-$k.out")
    wait_step "$out2/member-$k.out" "$((s + 20))" "$rpid"
done
ckpt "$dir"
[ "$GEN" -gt "$gen1" ] || fail "the checkpoint of the restarted job made generation $GEN"
for k in 0 1; do b2[$k]=$(last_step_of "$out2/member-$k.out"); done
wait_exit "$rpid" "the restarted job, checkpointed again" 120
job_restart_fg "$WORK" "$WORK/restart3.log" "$dir" --generation "$GEN"
for k in 0 1; do
    check_resume "$RESTART_OUT/member-$k.out" "$((before[k] + 1))" "$((b2[k] + 1))"
    merge_outputs "$WORK/run$k.out" "$out2/member-$k.out" "$WORK/second$k.out"
    merge_outputs "$WORK/second$k.out" "$RESTART_OUT/member-$k.out" "$WORK/chain$k.out"
    same_file "$WORK/ref$k.out" "$WORK/chain$k.out" "member $k's stdout (run + restart of the restart)"
done
log "PASS"
