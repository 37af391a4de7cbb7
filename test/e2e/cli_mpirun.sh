#!/usr/bin/env bash
# cli_mpirun: `ckptmpi restart DIR` of an MPI job with CKPTMPI_MPIRUN. A
# stand-in for Slurm's srun, in a directory whose name has a space, records
# the arguments it is given and starts the job with mpirun.mpich: it must
# get them split as a shell would (a quoted argument with spaces whole),
# then the task count as srun's own `-n N`, then the runtime; the job then
# resumes and finishes. Launchers named mpiexec get `-n N`, mpirun
# `-np N`. Unbalanced quotes are refused (exit 2) before anything runs.
# Status of the running MPI job: rank 0's pid and the number of ranks.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
mpi_setup mpich
need_prog mpi_basic_mpich
MPI_NP=2
MPI_TRIGGER=command
RT=$BUILD/bin/ckptmpi-runtime-mpich
mkdirs "$WORK/run" "$WORK/my bin"
hold_arm
mpi_start "$WORK/run" "$WORK/run1.out" CKPTMPI_DIR="$WORK/ck" -- "$RT" "$PROGS/mpi_basic_mpich" 60 50
mpi_wait_step "$WORK/run1.out" 3
ck status "$WORK/ck"
[ "$RC" -eq 0 ] && grep -q "rank 0 of 2 (mpich)" "$WORK/ck.out" || fail "status of the MPI job: $RC $(snip "$WORK/ck.out")"
mpi_request_ckpt "$WORK/ck" "$WORK/run1.out"
at=$(last_step_of "$WORK/run1.out")
mpi_kill_job

# launchers that record their arguments (NUL-separated) in $FAKE_ARGV
cat >"$WORK/my bin/srun" <<'EOS'
#!/bin/bash
printf '%s\0' "$@" >"$FAKE_ARGV"
while [ $# -gt 0 ] && [ "$1" != -n ]; do shift; done
[ $# -ge 3 ] || { echo "srun (fake): no -n N" >&2; exit 2; }
n=$2
shift 2
exec mpirun.mpich -np "$n" "$@"
EOS
printf '#!/bin/sh\nfor a in "$@"; do printf "%%s\\0" "$a"; done >"$FAKE_ARGV"\n' >"$WORK/my bin/mpiexec"
cp "$WORK/my bin/mpiexec" "$WORK/my bin/mpirun"
chmod a+rx "$WORK/my bin"/*

# restart_with LAUNCHER OUT: ckptmpi restart with CKPTMPI_MPIRUN=LAUNCHER
restart_with() {
    RC=0
    (cd "$WORK/run" && exec timeout -s KILL 120 "${AS_USER[@]}" env TMPDIR="$WORK/tmp" \
        CKPTMPI_E2E_JOB="$MPI_TAG_BASE-restart" FAKE_ARGV="$WORK/argv" CKPTMPI_MPIRUN="$1" \
        "$CKPTMPI" restart "$WORK/ck") >"$2" 2>"$2.err" </dev/null || RC=$?
    show_on_failure "$2.err"
}
# argv_is WORD...: what the fake launcher recorded
argv_is() {
    local got=() w
    while IFS= read -r -d '' w; do got+=("$w"); done <"$WORK/argv"
    [ "${got[*]@Q}" = "${*@Q}" ] || fail "the launcher got ${got[*]@Q}, expected ${*@Q}"
    log "the launcher got ${got[*]@Q}"
}

restart_with "'$WORK/my bin/srun' --label --comment 'two words' --export=\"ALL\"" "$WORK/srun.out"
[ "$RC" -eq 0 ] || fail "the restart through srun exited $RC: $(snip "$WORK/srun.out.err" 600)"
argv_is --label --comment 'two words' --export=ALL -n 2 "$RT"
first=$(first_step_of "$WORK/srun.out")
[[ $first =~ ^[0-9]+$ ]] && [ "$first" -gt 3 ] && [ "$first" -le $((at + 1)) ] ||
    fail "the restarted job began at step '$first', the checkpoint came after step 3 (at most $at printed)"
grep -q '^61 final' "$WORK/srun.out" || fail "the restarted job did not finish: $(snip "$WORK/srun.out")"
grep -q "ckptmpi\[0\]: resumed generation $GEN of " "$WORK/srun.out.err" || fail "the restart does not say what it resumed"

restart_with "'$WORK/my bin/mpiexec' -hosts localhost" "$WORK/mpiexec.out"
[ "$RC" -eq 0 ] || fail "the restart through mpiexec exited $RC: $(snip "$WORK/mpiexec.out.err")"
argv_is -hosts localhost -n 2 "$RT"
restart_with "\"$WORK/my bin/mpirun\"" "$WORK/mpirun.out"
argv_is -np 2 "$RT"

rm -f "$WORK/argv"
restart_with "'$WORK/my bin/srun' 'unbalanced" "$WORK/bad.out"
[ "$RC" -eq 2 ] || fail "unbalanced quotes in CKPTMPI_MPIRUN: exit $RC, expected 2"
grep -q "CKPTMPI_MPIRUN=.*unbalanced quotes" "$WORK/bad.out.err" || fail "unclear refusal: $(snip "$WORK/bad.out.err")"
[ ! -e "$WORK/argv" ] || fail "the launcher ran anyway"
