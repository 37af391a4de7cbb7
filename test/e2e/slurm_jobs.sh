#!/usr/bin/env bash
# slurm_jobs: MPI jobs under a real Slurm (Debian's slurm-wlm and munge, a
# one-node cluster started and stopped here, see slurm_lib.sh), with the
# shipped batch scripts of examples/slurm/. MPICH, 2 ranks of mpi_p2p;
# every job runs as the test user. Each case ends with the output of an
# uninterrupted run:
#  (d) an orphan of a previous run (a live job of the user's on the
#      directory): every rank refuses, saying why, and the job ends at once;
#  (a) checkpoint-timelimit.sbatch (no --signal) hits its time limit:
#      Slurm's SIGTERMs (the batch shell, mpirun, the step's tasks; again
#      from srun and hydra) make the ranks checkpoint before SIGKILL;
#      the same script submitted again with LAUNCH="srun --mpi=pmi2"
#      resumes to the end; then (c) `ckptmpi restart DIR --generation G`
#      with CKPTMPI_MPIRUN="srun --mpi=pmi2" inside an allocation resumes
#      the same generation to the same end;
#      The time limit under OpenMPI's mpirun too (its ranks' own SIGTERM
#      and SIGKILL put off by OMPI_MCA_odls_base_sigkill_timeout);
#  (b) checkpoint-requeue.sbatch under mpirun (--signal=B:USR1@58
#      --time=1 --requeue): Slurm's USR1 checkpoints and requeues the job,
#      twice (or more); the last run resumes to the end. The same with
#      LAUNCH="srun --mpi=pmi2" (SLURM_REQUEUE_SRUN=0 leaves it out) and
#      OpenMPI's mpirun (SLURM_REQUEUE_OPENMPI=0) and OpenMPI under srun
#      --mpi=pmix (SLURM_REQUEUE_PMIX=0), all four side by side.
#
# Slurm enforces time limits and --signal from a check every 30 s (a fixed
# period of slurmctld's, from its start; a restarted slurmctld does not
# check at once): the jobs are submitted 9 s before such a check, and the
# time limit is brought to now by `scontrol update EndTime=` (as an
# administrator may): that check ends the job as its own limit would, and
# gives the requeue jobs their first USR1; their second comes 30 s later. A requeued job waits 120 s (Slurm's
# BeginTime); the test releases it (`scontrol update StartTime=now+2`).
# A run slower than expected (a loaded machine) is requeued once more:
# the case asks for two requeues at least.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/slurm_lib.sh"
e2e_init
MPI_NP=2
mpi_setup mpich
need_prog mpi_p2p_mpich mpi_p2p_linked_mpich
EX=$SRC_DIR/examples/slurm
for s in checkpoint-timelimit.sbatch checkpoint-requeue.sbatch; do
    [ -f "$EX/$s" ] || fail "$EX/$s missing"
done
# the jobs carry the case's tag (sbatch exports the environment): whatever
# is left of them is killed at the end
SLURM_ENV=(CKPTMPI_E2E_JOB="$MPI_TAG_BASE-slurm" TMPDIR="$WORK/tmp")
slurm_up
PROG=$PROGS/mpi_p2p_linked_mpich
REFA_DONE= REFB_DONE=
NA=120 NB=400 MS=100   # steps of the time-limit and of the requeue case, ms a step

# ---------------------------------------------------------------- helpers

# steps_of FILE: the program's step lines ("N ..."), nothing of the launchers'
steps_of() { grep -E '^[0-9]+ ' "$1" || true; }

# split_runs FILE PREFIX: the step lines of FILE (several runs appended)
# into PREFIX.1, PREFIX.2, ...: a run begins where the step does not grow.
# Prints the number of runs.
split_runs() {
    steps_of "$1" | awk -v p="$2" '
        { s = $1 + 0; if (NR == 1 || s <= last) n++; last = s; print > (p "." n) }
        END { print n + 0 }'
}

# merge_runs OUT FILE...: the runs merged in order (merge_steps checks each
# resumed where the previous generation was taken and repeats nothing else)
merge_runs() {
    local out=$1 f
    shift
    cp "$1" "$out"
    shift
    for f in "$@"; do
        merge_steps "$out" "$f" "$out.next"
        mv "$out.next" "$out"
    done
}

# merge_after_term OUT RUN1 RUN2 ERR1 GEN REF WHAT: RUN1 (ended by Slurm's
# SIGTERM after generation GEN) and RUN2 (resumed from it) merged into OUT
# and compared with REF, as merge_runs and same_file do, with one
# exception. mpirun (MPICH's and OpenMPI's alike) forwards nothing its
# ranks write after it got SIGTERM itself (a plain MPI program that prints
# in its SIGTERM handler loses those lines: README, limits), and Slurm
# signals mpirun and the ranks at once. What a rank writes from its own
# SIGTERM to the checkpoint's cut is held and written again by the restart
# (core/held_output.h); a step printed between mpirun's SIGTERM and the
# rank's (a fraction of a millisecond; the program prints every MS ms) is
# lost with mpirun. One step may be missing between RUN1's last step and
# RUN2's first, only when the ranks' own last words (the SIGTERM line,
# which goes out at once) were lost too; RUN1 and RUN2 must then each
# equal REF where they overlap it.
merge_after_term() {
    local out=$1 r1=$2 r2=$3 err=$4 gen=$5 ref=$6 what=$7 last first
    last=$(last_step_of "$r1")
    first=$(first_step_of "$r2")
    if [[ $first =~ ^[0-9]+$ ]] && [ "$first" -gt $((last + 1)) ] &&
       ! grep -q "SIGTERM: generation $gen committed" "$err"; then
        [ $((first - last - 1)) -le 1 ] ||
            fail "$what: steps $((last + 1))..$((first - 1)) are missing: the program's output after its SIGTERM was not held for the restart"
        log "$what: step $((last + 1)) was printed between mpirun's SIGTERM and the rank's, and mpirun does not forward it (the ranks' SIGTERM lines were lost too); compared without it"
        awk -v a=$((last + 1)) -v b=$((first - 1)) '!($1 ~ /^[0-9]+$/ && $1 + 0 >= a && $1 + 0 <= b)' \
            "$ref" >"$out.ref"
        cat "$r1" "$r2" >"$out"
        same_file "$out.ref" "$out" "$what (the steps mpirun dropped left out)"
        return
    fi
    merge_runs "$out" "$r1" "$r2"
    same_file "$ref" "$out" "$what"
}

# secs_to_tick: seconds until slurmctld's next check of time limits and
# signals (every 30 s from its start)
secs_to_tick() {
    local t0 now
    t0=$(date -d "$(sed -n 's/^\[\([^]]*\)\] Running as primary controller.*/\1/p' "$SLURM_DIR/slurmctld.log" | head -n 1)" +%s.%N)
    now=$(date +%s.%N)
    awk -v a="$t0" -v b="$now" 'BEGIN { printf "%.1f\n", 30 - (b - a) % 30 }'
}

# wait_tick_in S: sleep until the next check is S seconds away (or the
# one after, if it is nearer than that already)
wait_tick_in() {
    sleep "$(awk -v d="$(secs_to_tick)" -v s="$1" 'BEGIN { w = d - s; if (w < 0) w += 30; print w }')"
}

# wait_job_step JOBID OUT K: until OUT shows step K (the job still queued
# or running)
wait_job_step() {
    local id=$1 out=$2 k=$3 deadline=$((SECONDS + 30))
    until has_step "$out" "$k"; do
        [ -n "$(slurm_state "$id")" ] || fail "job $id ended before step $k in $out: $(snip "$out.err")"
        [ "$SECONDS" -lt "$deadline" ] || fail "job $id: no step $k in $out after 30 s (state $(slurm_state "$id")): $(snip "$out.err")"
        sleep 0.1
    done
}

# follow_requeues T JOBID...: until every job has ended (within T s),
# start each requeued run 2 s from now rather than in 120 s (Slurm's
# BeginTime of a requeued job). Not within the second the previous run
# ended: the node has revoked that run's credential, and Slurm compares in
# seconds ("Job credential revoked").
follow_requeues() {
    local t=$1 deadline id left info r
    local -A released=()
    shift
    deadline=$((SECONDS + t))
    while :; do
        left=0
        for id in "$@"; do
            info=$(scontrol -o show job "$id" 2>/dev/null || true)
            r=$(grep -o 'Restarts=[0-9]*' <<<"$info" || true)
            case $info in
                *JobState=PENDING*Reason=BeginTime*)
                    if [ "${released[$id]:-}" != "$r" ]; then
                        scontrol update JobId="$id" StartTime=now+2 || fail "cannot release requeued job $id"
                        released[$id]=$r
                        log "job $id requeued ($r), released"
                    fi
                    left=1 ;;
                *JobState=PENDING* | *JobState=RUNNING* | *JobState=REQUEUED* | *JobState=COMPLETING*) left=1 ;;
            esac
        done
        [ "$left" = 1 ] || return 0
        [ "$SECONDS" -lt "$deadline" ] || fail "the requeued jobs $* still run after ${t}s: $(squeue -h -o '%i %T %r' | tr '\n' ' ')"
        sleep 0.2
    done
}

# releaser_start T JOBID...: follow_requeues in the background (the other
# cases go on meanwhile); releaser_wait: its end, and its failure if any.
RELEASER=
releaser_start() {
    ( trap - EXIT ERR; follow_requeues "$@" ) 2>"$WORK/releaser.log" &
    RELEASER=$!
    _PIDS+=("$RELEASER")
    show_on_failure "$WORK/releaser.log"
}
releaser_wait() {
    local rc=0
    wait "$RELEASER" || rc=$?
    cat "$WORK/releaser.log" >&2
    [ "$rc" -eq 0 ] || fail "following the requeued jobs: $(grep -m 1 FAIL "$WORK/releaser.log" || true)"
}

# ---------------------------------------------------------------- cases
CASES=${SLURM_CASES:-orphan timelimit timelimit_openmpi requeue}
has_case() { [[ " $CASES " == *" $1 "* ]]; }
mkdirs "$WORK/ref" "$WORK/d" "$WORK/a" "$WORK/b" "$WORK/bs" "$WORK/bo" "$WORK/bp"
# the uninterrupted runs, plain MPICH (mpi_p2p prints the same under
# either MPI: one reference serves both)
if has_case timelimit || has_case timelimit_openmpi; then
    mpi_start "$WORK/ref" "$WORK/refA.out" -- "$PROGS/mpi_p2p_mpich" "$NA" "$MS"
    REFA=$MPI_PID
fi
if has_case timelimit_openmpi || { has_case requeue && [ "${SLURM_REQUEUE_OPENMPI:-1}" = 1 ]; }; then
    need_prog mpi_p2p_linked_openmpi
    command -v mpirun.openmpi >/dev/null || skip "mpirun.openmpi not installed"
fi
if has_case requeue; then
    mpi_start "$WORK/ref" "$WORK/refB.out" -- "$PROGS/mpi_p2p_mpich" "$NB" "$MS"
    REFB=$MPI_PID
fi

# (d) an orphan of a previous run holds the directory (its control socket
# answers): every rank refuses, the job ends at once, nothing is written
if has_case orphan; then
    t=$SECONDS
    ddir=$WORK/d/ckpt
    mkdirs "$ddir"
    run_bg "$WORK/d" "$WORK/orphan.out" "$ddir" -- "$PROGS/heap_mmap" 100000 100 heap.log
    orphan=$JOB_PID
    wait_step "$WORK/orphan.out" 1 "$orphan"
    slurm_submit "$WORK/d" "$WORK/d/job.out" CKPTMPI_DIR="$ddir" LAUNCH=mpirun.mpich \
        --ntasks=2 "$EX/checkpoint-timelimit.sbatch" "$PROG" "$NA" "$MS"
    slurm_wait_done "$JOBID" 20
    for r in 0 1; do
        grep -q "^ckptmpi\[$r\]: $ddir: another job is running with this directory" "$WORK/d/job.out.err" ||
            fail "rank $r does not say another job runs with $ddir: $(snip "$WORK/d/job.out.err" 800)"
    done
    [ -z "$(steps_of "$WORK/d/job.out")" ] || fail "the program ran beside the orphan: $(snip "$WORK/d/job.out")"
    [ -z "$(gens_in "$ddir")" ] || fail "a generation was written beside the orphan"
    _alive "$orphan" || fail "the orphan did not survive the refused job"
    kill_job "$orphan"
    log "(d) orphan: every rank refused, the job ended after $((SECONDS - t)) s (state $JOB_STATE)"
fi

# the jobs of (a) and (b) begin 9 s before slurmctld's next check
if has_case timelimit || has_case timelimit_openmpi || has_case requeue; then
    wait_tick_in 9
fi
if has_case timelimit; then
    adir=$WORK/a/ckpt
    slurm_submit "$WORK/a" "$WORK/a/run1.out" CKPTMPI_DIR="$adir" LAUNCH=mpirun.mpich \
        --ntasks=2 --time=5 "$EX/checkpoint-timelimit.sbatch" "$PROG" "$NA" "$MS"
    A=$JOBID
fi
if has_case timelimit_openmpi; then
    odir=$WORK/o/ckpt
    mkdirs "$WORK/o"
    slurm_submit "$WORK/o" "$WORK/o/run1.out" CKPTMPI_DIR="$odir" LAUNCH=mpirun.openmpi \
        --ntasks=2 --time=5 "$EX/checkpoint-timelimit.sbatch" "$PROGS/mpi_p2p_linked_openmpi" "$NA" "$MS"
    O=$JOBID
fi
if has_case requeue; then
    # USR1 58 s before a limit of 1 minute: at the first check 2 s after
    # each start
    slurm_submit "$WORK/b" "$WORK/b/job.out" CKPTMPI_DIR="$WORK/b/ckpt" LAUNCH=mpirun.mpich \
        --ntasks=2 --time=1 --signal=B:USR1@58 "$EX/checkpoint-requeue.sbatch" "$PROG" "$NB" "$MS"
    B=$JOBID
    BS=
    if [ "${SLURM_REQUEUE_SRUN:-1}" = 1 ]; then
        slurm_submit "$WORK/bs" "$WORK/bs/job.out" CKPTMPI_DIR="$WORK/bs/ckpt" LAUNCH="srun --mpi=pmi2" \
            --ntasks=2 --time=1 --signal=B:USR1@58 "$EX/checkpoint-requeue.sbatch" "$PROG" "$NB" "$MS"
        BS=$JOBID
    fi
    BO=
    if [ "${SLURM_REQUEUE_OPENMPI:-1}" = 1 ]; then
        slurm_submit "$WORK/bo" "$WORK/bo/job.out" CKPTMPI_DIR="$WORK/bo/ckpt" LAUNCH=mpirun.openmpi \
            --ntasks=2 --time=1 --signal=B:USR1@58 "$EX/checkpoint-requeue.sbatch" \
            "$PROGS/mpi_p2p_linked_openmpi" "$NB" "$MS"
        BO=$JOBID
    fi
    BP=
    if [ "${SLURM_REQUEUE_PMIX:-1}" = 1 ]; then
        slurm_submit "$WORK/bp" "$WORK/bp/job.out" CKPTMPI_DIR="$WORK/bp/ckpt" LAUNCH="srun --mpi=pmix" \
            --ntasks=2 --time=1 --signal=B:USR1@58 "$EX/checkpoint-requeue.sbatch" \
            "$PROGS/mpi_p2p_linked_openmpi" "$NB" "$MS"
        BP=$JOBID
    fi
    # shellcheck disable=SC2086  # BS, BO, BP: empty without the srun, OpenMPI, PMIx job
    releaser_start 150 "$B" $BS $BO $BP
fi

# (a) the time limit, no --signal: SIGTERM from Slurm, checkpoint, exit
# at the next check; (b) USR1 at that check too (due 2 s after the start)
if has_case timelimit; then
    wait_job_step "$A" "$WORK/a/run1.out" 3
    scontrol update JobId="$A" EndTime="$(date -d '+1 sec' +%FT%T)" || fail "cannot move job $A's end"
fi
if has_case timelimit_openmpi; then
    wait_job_step "$O" "$WORK/o/run1.out" 3
    scontrol update JobId="$O" EndTime="$(date -d '+1 sec' +%FT%T)" || fail "cannot move job $O's end"
fi
if has_case requeue; then
    wait_job_step "$B" "$WORK/b/job.out" 3
    [ -z "$BS" ] || wait_job_step "$BS" "$WORK/bs/job.out" 3
    [ -z "$BO" ] || wait_job_step "$BO" "$WORK/bo/job.out" 3
fi
log "slurmctld's next check in $(secs_to_tick) s"
if has_case timelimit; then
    slurm_wait_done "$A" 60
    steps_of "$WORK/a/run1.out" >"$WORK/a/run1.steps"
    grep -q ' final ' "$WORK/a/run1.steps" && fail "job $A finished before its time limit"
    [ "$JOB_STATE" = TIMEOUT ] || fail "job $A ended $JOB_STATE, not at its time limit: $(snip "$WORK/a/run1.out.err" 800)"
    ga=$(mpi_latest_gen "$adir")
    [ "$ga" -gt 0 ] || fail "job $A hit its time limit without a checkpoint: $(snip "$WORK/a/run1.out.err" 1200)"
    grep -q "SIGTERM: generation $ga committed, exiting" "$WORK/a/run1.out.err" ||
        log "(the ranks' last words were lost with mpirun: $(snip "$WORK/a/run1.out.err" 300))"
    grep -q "DUE TO TIME LIMIT" "$WORK/a/run1.out.err" || fail "job $A: Slurm does not say it ended at the time limit"
    log "(a) job $A: TIMEOUT at step $(last_step_of "$WORK/a/run1.steps"), generation $ga"
    # the same script again, the ranks started by srun: resumes to the end
    slurm_submit "$WORK/a" "$WORK/a/run2.out" CKPTMPI_DIR="$adir" LAUNCH="srun --mpi=pmi2" \
        --ntasks=2 "$EX/checkpoint-timelimit.sbatch" "$PROG" "$NA" "$MS"
    slurm_wait_done "$JOBID" 60
    [ "$JOB_STATE" = COMPLETED ] || fail "the resubmitted job $JOBID ended $JOB_STATE: $(snip "$WORK/a/run2.out.err" 800)"
    grep -q "resumed generation $ga of " "$WORK/a/run2.out.err" ||
        fail "the resubmitted job does not say it resumed generation $ga: $(snip "$WORK/a/run2.out.err")"
    steps_of "$WORK/a/run2.out" >"$WORK/a/run2.steps"
    wait_exit "$REFA" "reference run A"
    steps_of "$WORK/refA.out" >"$WORK/refA.steps"
    REFA_DONE=1
    merge_after_term "$WORK/a/merged" "$WORK/a/run1.steps" "$WORK/a/run2.steps" "$WORK/a/run1.out.err" \
        "$ga" "$WORK/refA.steps" "(a) time limit + resubmitted job under srun"

    # (c) ckptmpi restart with CKPTMPI_MPIRUN=srun inside an allocation
    slurm_submit "$WORK/a" "$WORK/a/run3.out" --ntasks=2 \
        --wrap="CKPTMPI_MPIRUN='srun --mpi=pmi2' exec ckptmpi restart '$adir' --generation $ga"
    slurm_wait_done "$JOBID" 60
    [ "$JOB_STATE" = COMPLETED ] || fail "ckptmpi restart under srun: job $JOBID ended $JOB_STATE: $(snip "$WORK/a/run3.out.err" 800)"
    grep -q "restarting a 2-rank mpich job: srun --mpi=pmi2 -n 2 " "$WORK/a/run3.out.err" ||
        fail "ckptmpi restart did not start srun with -n 2: $(snip "$WORK/a/run3.out.err")"
    steps_of "$WORK/a/run3.out" >"$WORK/a/run3.steps"
    merge_after_term "$WORK/a/merged3" "$WORK/a/run1.steps" "$WORK/a/run3.steps" "$WORK/a/run1.out.err" \
        "$ga" "$WORK/refA.steps" "(c) ckptmpi restart of generation $ga under srun"
fi

# (a) with OpenMPI's mpirun: SIGTERM to mpirun and the ranks at once;
# mpirun's own SIGTERM to the ranks and its SIGKILL come
# odls_base_sigkill_timeout s later (the script sets 20): the ranks
# checkpoint first; the same script again resumes to the end (under
# mpirun again: see README, a generation of OpenMPI's mpirun is refused
# under srun --mpi=pmix)
if has_case timelimit_openmpi; then
    slurm_wait_done "$O" 60
    steps_of "$WORK/o/run1.out" >"$WORK/o/run1.steps"
    grep -q ' final ' "$WORK/o/run1.steps" && fail "job $O finished before its time limit"
    [ "$JOB_STATE" = TIMEOUT ] || fail "job $O ended $JOB_STATE, not at its time limit: $(snip "$WORK/o/run1.out.err" 800)"
    go=$(mpi_latest_gen "$odir")
    [ "$go" -gt 0 ] || fail "job $O (OpenMPI) hit its time limit without a checkpoint: $(snip "$WORK/o/run1.out.err" 1200)"
    log "(a) OpenMPI job $O: TIMEOUT at step $(last_step_of "$WORK/o/run1.steps"), generation $go"
    slurm_submit "$WORK/o" "$WORK/o/run2.out" CKPTMPI_DIR="$odir" LAUNCH=mpirun.openmpi \
        --ntasks=2 "$EX/checkpoint-timelimit.sbatch" "$PROGS/mpi_p2p_linked_openmpi" "$NA" "$MS"
    slurm_wait_done "$JOBID" 60
    [ "$JOB_STATE" = COMPLETED ] || fail "the resubmitted OpenMPI job $JOBID ended $JOB_STATE: $(snip "$WORK/o/run2.out.err" 800)"
    grep -q "resumed generation $go of " "$WORK/o/run2.out.err" ||
        fail "the resubmitted OpenMPI job does not say it resumed generation $go: $(snip "$WORK/o/run2.out.err")"
    steps_of "$WORK/o/run2.out" >"$WORK/o/run2.steps"
    [ -n "$REFA_DONE" ] || { wait_exit "$REFA" "reference run A"; steps_of "$WORK/refA.out" >"$WORK/refA.steps"; REFA_DONE=1; }
    merge_after_term "$WORK/o/merged" "$WORK/o/run1.steps" "$WORK/o/run2.steps" "$WORK/o/run1.out.err" \
        "$go" "$WORK/refA.steps" "(a) OpenMPI: time limit + resubmitted job"
fi

# (b) --signal=B:USR1 --requeue: checkpoint, requeue, resume, twice
if has_case requeue; then
    releaser_wait
    for j in "$B:b:mpirun" ${BS:+"$BS:bs:srun --mpi=pmi2"} ${BO:+"$BO:bo:OpenMPI's mpirun"} ${BP:+"$BP:bp:OpenMPI under srun --mpi=pmix"}; do
        id=${j%%:*} d=${j#*:}
        how=${d#*:} d=$WORK/${d%%:*}
        slurm_wait_done "$id" 60
        [ "$JOB_STATE" = COMPLETED ] || fail "requeued job $id ($how) ended $JOB_STATE: $(snip "$d/job.out.err" 800)"
        # a run begins where the steps do not grow (or, resumed exactly
        # after the last step printed, goes on as the same piece)
        pieces=$(split_runs "$d/job.out" "$d/run")
        runs=$(($(grep -c 'resumed generation ' "$d/job.out.err" || true) + 1))
        [ "$runs" -ge 3 ] || fail "job $id ($how) ran $runs times, expected 3 (requeued twice): $(snip "$d/job.out.err" 800)"
        gens=$(grep -c '^generation [0-9]*$' "$d/job.out.err" || true)
        [ "$gens" -eq $((runs - 1)) ] ||
            fail "job $id ($how): $gens generations by the USR1 trap for $runs runs: $(snip "$d/job.out.err" 800)"
        [ "$(grep -c 'starts fresh' "$d/job.out.err")" -eq 1 ] ||
            fail "job $id ($how): not one fresh start: $(snip "$d/job.out.err" 800)"
        grep -q SIGTERM "$d/job.out.err" && fail "job $id ($how): the requeue's SIGTERM was taken for a checkpoint"
        [ -n "$REFB_DONE" ] || { wait_exit "$REFB" "reference run B"; steps_of "$WORK/refB.out" >"$WORK/refB.steps"; REFB_DONE=1; }
        files=()
        for k in $(seq "$pieces"); do files+=("$d/run.$k"); done
        merge_runs "$d/merged" "${files[@]}"
        same_file "$WORK/refB.steps" "$d/merged" "(b) $how, requeued $((runs - 1)) times"
    done
fi
