#!/usr/bin/env bash
# mpi_ckpt_harness: the MPI checkpoint harness of lib.sh (mpi_ckpt_case,
# mpi_chain_case, mpi_sigterm_case) run end to end on a fake checkpointable
# job (test/mpi/fake_ckpt_job.sh: bash under a real mpirun, that "commits"
# a generation on SIGUSR1/SIGTERM and resumes from it): the harness must
# pass a job that resumes correctly, fail one that resumes a step too late
# or prints something else after the restart, and leave no process behind.
# The generation check (ckptmpi verify / ls) is replaced by a stub: the
# fake generations are not HDF5.  No ckptmpi involved: this tests the test.
#
#   mpi_ckpt_harness.sh                      all the sub-cases below
#   mpi_ckpt_harness.sh --one FUNCTION ARGS  one (FAKE_BUG in the environment)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ "${1:-}" = --one ]; then
    shift
    e2e_init --no-ckptmpi
    FAKE=$PROGS/fake_ckpt_job.sh
    [ -f "$FAKE" ] || fail "not built: $FAKE"
    # test doubles: the fake job for any program, no HDF5 checks
    _mpi_program() {
        shift
        # (the plain run's pace is not what is tested: 1 ms a step)
        MPI_NATIVE=(/bin/bash "$FAKE" "$1" 1)
        MPI_CKPTCMD=(/bin/bash "$FAKE" "$@")
    }
    mpi_check_generation() {
        [ -f "$(gen_file "$1" "$2")" ] || fail "stub: generation $2 missing in $1"
        log "stub: generation $2 present ($3 ranks not checked: fake)"
    }
    # (the fake job keeps its state beside its generations)
    mpi_check_nothing_left() { log "stub: what the job leaves not checked (fake)"; }
    "$@"
    exit 0
fi

e2e_init --no-ckptmpi
command -v mpirun.mpich >/dev/null || command -v mpirun.openmpi >/dev/null || skip "no mpirun"
n=0
ran=0
# sub FAKE_BUG EXPECT(pass|NEEDLE) FUNCTION ARGS...
sub() {
    local bug=$1 expect=$2 rc=0 out
    shift 2
    n=$((n + 1))
    out=$WORK/sub$n.log
    FAKE_BUG=$bug bash "${BASH_SOURCE[0]}" --one "$@" >"$out" 2>&1 </dev/null || rc=$?
    if [ "$rc" = 77 ]; then
        log "skipped ($(grep -m 1 SKIP "$out" || true)): $*"
        return 0
    fi
    if [ "$expect" = pass ]; then
        [ "$rc" = 0 ] || { show_on_failure "$out"; fail "harness failed a correct fake job: $*: $(grep -m 1 FAIL "$out" || true)"; }
    else
        [ "$rc" != 0 ] || { show_on_failure "$out"; fail "harness passed a broken fake job (FAKE_BUG=$bug): $*"; }
        grep -q "FAIL.*$expect" "$out" || { show_on_failure "$out"; fail "FAKE_BUG=$bug: the harness failed without naming '$expect': $(grep -m 1 FAIL "$out" || true)"; }
    fi
    ran=$((ran + 1))
    log "ok ($expect): FAKE_BUG=$bug $*"
}
sub "" pass mpi_ckpt_case mpich 3 fake 14 80
sub "" pass mpi_ckpt_case --trigger rank openmpi 2 fake 14 80
sub "" pass mpi_chain_case openmpi 4 fake 16 80
sub "" pass mpi_sigterm_case mpich 2 fake 14 80
sub skip 'steps skipped\|differs' mpi_ckpt_case mpich 2 fake 14 80
sub wrong 'differs' mpi_ckpt_case openmpi 2 fake 14 80
[ "$ran" -gt 0 ] || skip "every sub-case skipped (no MPI flavour built?)"
# nothing of any sub-case may be left running
left=$(grep -lzF "CKPTMPI_E2E_JOB=mpi_ckpt_harness-" /proc/[0-9]*/environ 2>/dev/null || true)
[ -z "$left" ] || fail "processes of the sub-cases left running: $left"
