#!/usr/bin/env bash
# mpi_ckpt_mismatch: a restart or a fresh start beside the job still
# running on DIR is refused on every rank; a generation of a 3-rank MPICH job is refused, with a
# message naming the mismatch, by a restart with another number of ranks
# and by one under another MPI; the generation stays restorable (a restart
# with the right job then completes the run, and so does `ckptmpi restart
# DIR`, which builds the mpirun command itself).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
mpi_setup mpich
[ -x "$BUILD/bin/ckptmpi-runtime-openmpi" ] || skip "OpenMPI flavour not built"
need_prog mpi_basic_mpich
MPI_NP=3
MPI_TRIGGER=mpirun
mkdirs "$WORK/run"
RT=$BUILD/bin/ckptmpi-runtime-mpich
hold_arm
mpi_start "$WORK/run" "$WORK/run1.out" CKPTMPI_DIR="$WORK/ck" -- "$RT" "$PROGS/mpi_basic_mpich" 60 50
mpi_wait_step "$WORK/run1.out" 3
mpi_request_ckpt "$WORK/ck" "$WORK/run1.out"

# the job still running holds the directory (an orphan, as a previous run
# Slurm lost track of): a restart and a fresh start beside it are refused
# on every rank, promptly, and nothing of the orphan's is touched
O_PID=$MPI_PID O_TAG=$MPI_TAG
gens_before=$(ls "$WORK/ck"/ckpt-*.h5)
for how in restart fresh; do
	if [ $how = restart ]; then
		mpi_start "$WORK/run" "$WORK/orphan-$how.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "$RT" "$PROGS/mpi_basic_mpich" 60 50
	else
		mpi_start "$WORK/run" "$WORK/orphan-$how.out" CKPTMPI_DIR="$WORK/ck" -- "$RT" "$PROGS/mpi_basic_mpich" 60 50
	fi
	t=$SECONDS
	mpi_wait_gone "a $how beside a running job" 30
	[ "$RC" -ne 0 ] || fail "a $how beside a running job on the same directory succeeded"
	for r in 0 1 2; do
		grep -q "^ckptmpi\[$r\]: .*$WORK/ck: another job is running with this directory" "$WORK/orphan-$how.out.err" ||
			fail "$how beside a running job: rank $r does not say so: $(snip "$WORK/orphan-$how.out.err" 600)"
	done
	# the program's lines start with its step; the launcher's own report of
	# the refusing ranks (hydra's BAD TERMINATION banner when it kills the
	# last ranks after the first exit) goes to stdout too and is no output
	! grep -qE '^[0-9]+ ' "$WORK/orphan-$how.out" ||
		fail "the program ran beside the running job ($how): $(snip "$WORK/orphan-$how.out")"
	log "$how beside a running job: refused on every rank in $((SECONDS - t)) s (exit $RC)"
done
MPI_PID=$O_PID MPI_TAG=$O_TAG
_alive "$MPI_PID" || fail "the running job did not survive the refused ones"
[ "$(ls "$WORK/ck"/ckpt-*.h5)" = "$gens_before" ] || fail "the generations changed beside the running job"
mpi_kill_job

# another number of ranks
MPI_NP=2
mpi_start "$WORK/run" "$WORK/np2.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "$RT" "$PROGS/mpi_basic_mpich" 60 50
mpi_wait_gone "restart with 2 ranks" 60
[ "$RC" -ne 0 ] || fail "a restart of a 3-rank job with 2 ranks succeeded"
grep -q '3-rank job cannot restart as 2 rank' "$WORK/np2.out.err" ||
	fail "unclear refusal of another rank count: $(snip "$WORK/np2.out.err" 400)"

# another MPI
MPIRUN=(mpirun.openmpi --oversubscribe)
MPI_NP=3
mpi_start "$WORK/run" "$WORK/ompi.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "$BUILD/bin/ckptmpi-runtime-openmpi" "$PROGS/mpi_basic_mpich" 60 50
mpi_wait_gone "restart under OpenMPI" 60
[ "$RC" -ne 0 ] || fail "a restart of an MPICH job under OpenMPI succeeded"
grep -q "written under MPI 'mpich'" "$WORK/ompi.out.err" ||
	fail "unclear refusal of another MPI: $(snip "$WORK/ompi.out.err" 400)"

# the generation is still good: the right job resumes and finishes
MPIRUN=(mpirun.mpich)
mpi_start "$WORK/run" "$WORK/ok.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest -- "$RT" "$PROGS/mpi_basic_mpich" 60 50
mpi_wait_gone "restart with the right job" 120
[ "$RC" -eq 0 ] || fail "the right restart failed (exit $RC): $(snip "$WORK/ok.out.err" 400)"
grep -q '^61 final' "$WORK/ok.out" || fail "the restarted job did not finish: $(snip "$WORK/ok.out")"

# `ckptmpi restart DIR` builds that mpirun command itself
(cd "$WORK/run" && exec timeout -s KILL 120 "${AS_USER[@]}" env TMPDIR="$WORK/tmp" \
	"$CKPTMPI" restart "$WORK/ck") >"$WORK/cmd.out" 2>"$WORK/cmd.err" </dev/null ||
	fail "ckptmpi restart failed: $(snip "$WORK/cmd.err" 400)"
grep -q 'mpirun.mpich -np 3 .*ckptmpi-runtime-mpich' "$WORK/cmd.err" ||
	fail "ckptmpi restart did not say the command it ran: $(snip "$WORK/cmd.err" 400)"
same_file "$WORK/ok.out" "$WORK/cmd.out" "output of the job restarted by ckptmpi restart"
log "PASS"
