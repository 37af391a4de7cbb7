#!/bin/bash
# fake_ckpt_job.sh: a stand-in for a checkpointable MPI program, to test
# the harness of test/e2e/mpi_ckpt_*.sh (mpi_ckpt_harness.sh) without
# ckptmpi: run under mpirun as "bash fake_ckpt_job.sh NITER SLEEP_MS".
# Rank 0 prints "0 ...", one line per step, then "NITER+1 final ...", like
# the real test programs.  With CKPTMPI_DIR set, SIGUSR1 to rank 0 (mpirun
# forwards it) saves the next step and commits a fake generation
# DIR/ckpt-NNNNNN.h5 (written as .tmp, then renamed); SIGTERM does the same
# and exits 143; CKPTMPI_RESTART set resumes at the saved step.  The other
# ranks just sleep as long; SIGUSR1 to one of them is passed on to rank 0
# through a file (DIR/fake-request) that rank 0 looks for every step.  FAKE_BUG=skip resumes one step too late,
# FAKE_BUG=wrong prints a wrong value after a restart (the harness must
# catch both).
n=${1:-20} ms=${2:-100}
rank=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}
nap=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
i=1
restarted=0

commit() {
	local g=1 f
	while [ -e "$(printf '%s/ckpt-%06d.h5' "$CKPTMPI_DIR" "$g")" ]; do g=$((g + 1)); done
	f=$(printf '%s/ckpt-%06d.h5' "$CKPTMPI_DIR" "$g")
	echo "$((i + 1))" >"$CKPTMPI_DIR/fake-state"
	echo "fake generation $g" >"$f.tmp"
	sleep 0.2
	mv "$f.tmp" "$f"
}

if [ "$rank" != 0 ]; then
	if [ -n "${CKPTMPI_DIR:-}" ]; then trap ': >"$CKPTMPI_DIR/fake-request"' USR1; else trap '' USR1; fi
	trap 'exit 143' TERM
	for ((k = 0; k < n; k++)); do sleep "$nap"; done
	exit 0
fi
if [ -n "${CKPTMPI_RESTART:-}" ]; then
	i=$(cat "$CKPTMPI_DIR/fake-state")
	restarted=1
	[ "${FAKE_BUG:-}" != skip ] || i=$((i + 1))
else
	echo "0 fake_ckpt_job niter=$n"
fi
if [ -n "${CKPTMPI_DIR:-}" ]; then
	trap commit USR1
	trap 'commit; exit 143' TERM
fi
for (( ; i <= n; i++)); do
	v=$((i * i + 7))
	[ "$restarted" = 0 ] || [ "${FAKE_BUG:-}" != wrong ] || v=$((v + 1))
	echo "$i v=$v"
	sleep "$nap"
	if [ -e "${CKPTMPI_DIR:-/nonexistent}/fake-request" ]; then
		rm -f "$CKPTMPI_DIR/fake-request"
		commit
	fi
done
echo "$((n + 1)) final $((n * 7))"
