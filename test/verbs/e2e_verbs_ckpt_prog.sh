#!/usr/bin/env bash
# e2e_verbs_ckpt_prog: the program of the verbs checkpoint cases itself
# (ckpt_ops: every operation kind, every byte checked), no checkpoint: two
# members over TCP (sleeping, and member 0 spinning in ibv_poll_cq), one
# process with both sides (loop), and with 8 MiB registered per process
# (-m), each run once under `ckptmpi run --no-checkpoint` and once as a
# job under the runtime (`ckptmpi run --dir DIR --job-size N`): both
# finish without a FAIL line and print the same thing. What the
# checkpoint cases (e2e_verbs_ckpt_ops, _chain, _bad_input) compare
# against is therefore the program's own deterministic output.
source "$(dirname "${BASH_SOURCE[0]}")/e2e_verbs_ckpt_lib.sh"
vck_init
NSTEPS=${NSTEPS:-12}
MS=${MS:-10}

for form in pair busy big loop; do
    args=(-k "$KINDS" "$NSTEPS" "$MS")
    case $form in
        busy) args=(-b "${args[@]}") ;;
        big) args=(-m 8 "${args[@]}") ;;
    esac
    dir=$WORK/ck-$form
    if [ "$form" = loop ]; then
        mkdirs "$WORK/$form-ref0" "$WORK/$form-run0" "$dir"
        plain_bg "$WORK/$form-ref0" "$WORK/$form-ref0.out" -- "${NOCKPT[@]}" "$OPS" "${args[@]}" loop
        REF_PID_OF[0]=$REF_PID
        member_bg 0 "$WORK/$form-run0" "$WORK/$form-run0.out" "$dir" 1 -- "$OPS" "${args[@]}" loop
        members=(0)
    else
        vck_ref_pair "$form" "${args[@]}"
        vck_job_pair "$dir" "$form" -- "${args[@]}"
        members=(0 1)
    fi
    for k in "${members[@]}"; do
        wait_exit "${REF_PID_OF[$k]}" "$form: side $k without the runtime"
        wait_exit "${MEMBER_PID[$k]}" "$form: member $k under the runtime"
        vck_no_fail "$WORK/$form-ref$k.out" "$WORK/$form-run$k.out"
        finished "$WORK/$form-ref$k.out" "$NSTEPS" || fail "$form: side $k did not print its final line"
        same_file "$WORK/$form-ref$k.out" "$WORK/$form-run$k.out" "$form: member $k's stdout under the runtime" \
            "the run without it"
    done
done
