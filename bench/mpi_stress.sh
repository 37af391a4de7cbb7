#!/usr/bin/env bash
# mpi_stress.sh: the full figures of issue 7 ("A cut that never loses"),
# by the stress cases of test/e2e at full size, with a table of failures.
#
#   bench/mpi_stress.sh [BUILD] [LOGDIR]
#
#   storm   100 checkpoint requests 0.2-1 s apart (random trigger) on
#           mpi_p2p, mpi_colls, mpi_threads_ckpt, 4 ranks, no sleep, the
#           race-delays shim, MPICH and OpenMPI (test/e2e/mpi_stress_storm.sh)
#   cycles  50 checkpoint/SIGKILL/restart cycles of a 4-rank mpi_p2p job
#           and of mpi_heap (restarted lazily: 48 MiB a rank read behind
#           it), MPICH and OpenMPI, 100 of a single process
#           (test/e2e/mpi_stress_cycles.sh)
#   kill    SIGKILL of a random rank / mpirun at 50 random moments of a
#           checkpoint, mpi_p2p and mpi_heap, MPICH and OpenMPI
#           (test/e2e/mpi_stress_kill.sh)
#
# It does not stop at a failure: a case counts the failures it can go on
# after, and a case that had to stop (the job died, a restart did not
# resume where it should...) is run again for what is left of its count
# (at most RERUNS=5 times a scenario).  Every run's stderr is kept in
# LOGDIR (default ./mpi-stress-logs-DATE), with the work directory of a
# failed run (the cases keep it when it is under 200 MiB).
# Env: STORM_N (100), CYCLES_MPI (50), CYCLES_SINGLE (100), KILL_N (50),
# NP (4), FLAVOURS ("mpich openmpi"), PROGS ("mpi_p2p mpi_colls mpi_comms
# mpi_threads_ckpt"), RESTART_PROGS ("mpi_p2p mpi_heap"), DELAY_US (300),
# RERUNS (5), ONLY (a regex of the scenario names to run).
set -uo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-${CKPTMPI_BUILD:-$SRC/build}}
LOGDIR=${2:-$PWD/mpi-stress-logs-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$LOGDIR"
LOGDIR=$(cd "$LOGDIR" && pwd)
export CKPTMPI_BUILD=$BUILD
# a whole case at full size runs long
export MPI_CASE_TIMEOUT=${MPI_CASE_TIMEOUT:-7200}
STORM_N=${STORM_N:-100}
CYCLES_MPI=${CYCLES_MPI:-50}
CYCLES_SINGLE=${CYCLES_SINGLE:-100}
KILL_N=${KILL_N:-50}
NP=${NP:-4}
FLAVOURS=${FLAVOURS:-mpich openmpi}
PROGS=${PROGS:-mpi_p2p mpi_colls mpi_comms mpi_threads_ckpt}
# restarted in the cycles and kill scenarios: mpi_heap's 48 MiB a rank
# come in behind the program (a lazy restart, the default)
RESTART_PROGS=${RESTART_PROGS:-mpi_p2p mpi_heap}
DELAY_US=${DELAY_US:-300}
RERUNS=${RERUNS:-5}
ONLY=${ONLY:-.}

ROWS=()

# scenario NAME WHAT COUNTVAR TARGET SCRIPT VAR=VALUE...: run SCRIPT with
# COUNTVAR=what is left until TARGET attempts are done; one table row.
scenario() {
    local name=$1 what=$2 var=$3 target=$4 script=$5
    shift 5
    [[ $name =~ $ONLY ]] || return 0
    local done=0 fails=0 fatal=0 runs=0 secs=0 rc log res a f x s extra='' left skipped=0
    while [ "$done" -lt "$target" ] && [ "$runs" -lt "$RERUNS" ]; do
        runs=$((runs + 1))
        left=$((target - done))
        log=$LOGDIR/$name.run$runs.log
        printf '%s: run %d, %s=%d ...\n' "$name" "$runs" "$var" "$left" >&2
        rc=0
        env "$@" "$var=$left" bash "$SRC/test/e2e/$script.sh" >"$log.out" 2>"$log" </dev/null || rc=$?
        if [ "$rc" -eq 77 ]; then
            skipped=1
            break
        fi
        res=$(grep '^STRESS-RESULT ' "$log" | tail -n 1)
        if [ -z "$res" ]; then
            printf '%s: run %d exited %d without a result line (see %s)\n' "$name" "$runs" "$rc" "$log" >&2
            fails=$((fails + 1)) fatal=$((fatal + 1))
            continue
        fi
        a=$(sed -n 's/.* attempts=\([0-9]*\).*/\1/p' <<<"$res")
        f=$(sed -n 's/.* failures=\([0-9]*\).*/\1/p' <<<"$res")
        x=$(sed -n 's/.* fatal=\([0-9]*\).*/\1/p' <<<"$res")
        s=$(sed -n 's/.* seconds=\([0-9]*\).*/\1/p' <<<"$res")
        extra=$(sed -n 's/.* mean_pause=\([^ ]*\).*/\1/p' <<<"$res")
        [ "${a:-0}" -gt 0 ] || a=1 # a case that failed before its first attempt
        done=$((done + a)) fails=$((fails + ${f:-0})) fatal=$((fatal + ${x:-0})) secs=$((secs + ${s:-0}))
        printf '%s: run %d: %s\n' "$name" "$runs" "$(cat "$log.out")" >&2
        if [ "$rc" -ne 0 ]; then
            printf '%s: run %d FAILED (exit %d): %s; log %s\n' "$name" "$runs" "$rc" \
                "$(grep -m 3 -E '^(FAIL|FAILURE)' "$log" | cut -c1-300 | tr '\n' ' ')" "$log" >&2
        else
            # passed: its work directory is gone, its log stays small
            :
        fi
    done
    if [ "$skipped" = 1 ]; then
        ROWS+=("$(printf '%-28s %-34s %6s %8s %6s %7s %8s' "$name" "$what" - skipped - - -)")
    else
        ROWS+=("$(printf '%-28s %-34s %6d %8d %6d %7d %8s' "$name" "$what" "$done" "$fails" "$fatal" "$secs" "${extra:--}")")
    fi
}

for fl in $FLAVOURS; do
    for p in $PROGS; do
        scenario "storm-$fl-$p" "$STORM_N requests, $NP ranks, no sleep" NCKPT "$STORM_N" mpi_stress_storm \
            FLAVOUR="$fl" PROG="$p" NP="$NP" DELAY_US="$DELAY_US"
    done
done
for fl in $FLAVOURS; do
    for p in $RESTART_PROGS; do
        scenario "cycles-$fl-$p" "$CYCLES_MPI cycles, $NP ranks" CYCLES "$CYCLES_MPI" mpi_stress_cycles \
            FLAVOUR="$fl" PROG="$p" NP="$NP"
    done
done
scenario "cycles-single" "$CYCLES_SINGLE cycles, 1 process" CYCLES "$CYCLES_SINGLE" mpi_stress_cycles MODE=single
for fl in $FLAVOURS; do
    for p in $RESTART_PROGS; do
        scenario "kill-$fl-$p" "$KILL_N kills in a checkpoint, $NP ranks" TRIES "$KILL_N" mpi_stress_kill \
            FLAVOUR="$fl" PROG="$p" NP="$NP"
    done
done

{
    printf '\nissue 7 stress figures (%s, logs in %s)\n' "$(date '+%F %T')" "$LOGDIR"
    printf '%-28s %-34s %6s %8s %6s %7s %8s\n' scenario target 'done' failures fatal seconds "pause s"
    printf '%s\n' "${ROWS[@]}"
    printf '(done: requests / cycles / tries made; failures: counted + fatal; fatal: runs that had to stop; pause: mean of the last run)\n'
} | tee "$LOGDIR/table.txt"
total=0
for r in "${ROWS[@]}"; do
    f=$(awk '{ print $(NF-3) }' <<<"$r")
    [[ $f =~ ^[0-9]+$ ]] && total=$((total + f))
done
[ "$total" -eq 0 ]
