#!/bin/bash
# fake_ckpt_job.sh: a stand-in for a checkpointable MPI program, to test
# the harness of test/e2e/mpi_ckpt_*.sh (mpi_ckpt_harness.sh) without
# ckptmpi: run under mpirun as "bash fake_ckpt_job.sh NITER SLEEP_MS".
# Rank 0 prints "0 ...", one line per step, then "NITER+1 final ...", like
# the real test programs.  With CKPTMPI_DIR set, SIGUSR1 to rank 0 (mpirun
# forwards it) saves the next step and commits a fake generation
# DIR/ckpt-NNNNNN.h5 (written as .tmp, then renamed); SIGTERM does the same
# and exits 143; CKPTMPI_RESTART set resumes at the saved step.  The other
# ranks wait (as long as rank 0 sleeps, without CKPTMPI_DIR); SIGUSR1 to one
# of them is passed on to rank 0 through a file (DIR/fake-request) that
# rank 0 looks for every step; they end when rank 0 is done
# (DIR/fake-done.<job tag>).
# Each step's value folds in the one before (as the real programs' running
# checksums do), so a step not computed changes every later line.
# FAKE_BUG=skip resumes one step too late, FAKE_BUG=wrong prints a wrong
# value after a restart (the harness must catch both, whatever the timing:
# a skip is caught by the resume check or, when the first run printed the
# skipped step, by the values that follow).
n=${1:-20} ms=${2:-100}
rank=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}
nap=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
i=1
next=1 # the step a commit resumes at
v=0
restarted=0

commit() {
	local g=1 f
	while [ -e "$(printf '%s/ckpt-%06d.h5' "$CKPTMPI_DIR" "$g")" ]; do g=$((g + 1)); done
	f=$(printf '%s/ckpt-%06d.h5' "$CKPTMPI_DIR" "$g")
	echo "$next $v" >"$CKPTMPI_DIR/fake-state"
	echo "fake generation $g" >"$f.tmp"
	sleep 0.2
	mv "$f.tmp" "$f"
}

# a request another rank passed on: commit
serve_request() {
	if [ -e "${CKPTMPI_DIR:-/nonexistent}/fake-request" ]; then
		rm -f "$CKPTMPI_DIR/fake-request"
		commit
	fi
}

if [ "$rank" != 0 ]; then
	if [ -n "${CKPTMPI_DIR:-}" ]; then trap ': >"$CKPTMPI_DIR/fake-request"' USR1; else trap '' USR1; fi
	trap 'exit 143' TERM
	if [ -n "${CKPTMPI_DIR:-}" ] && [ -n "${CKPTMPI_E2E_JOB:-}" ]; then
		# alive until rank 0 is done (or 300 s): a rank that had slept
		# only as long could end first when rank 0 started late
		for ((k = 0; k < 15000; k++)); do
			[ ! -e "$CKPTMPI_DIR/fake-done.$CKPTMPI_E2E_JOB" ] || exit 0
			sleep 0.02
		done
		exit 0
	fi
	for ((k = 0; k < n; k++)); do sleep "$nap"; done
	exit 0
fi
if [ -n "${CKPTMPI_RESTART:-}" ]; then
	read -r i v <"$CKPTMPI_DIR/fake-state"
	restarted=1
	[ "${FAKE_BUG:-}" != skip ] || i=$((i + 1))
	next=$i
else
	echo "0 fake_ckpt_job niter=$n"
fi
if [ -n "${CKPTMPI_DIR:-}" ]; then
	trap commit USR1
	trap 'commit; exit 143' TERM
fi
for (( ; i <= n; i++)); do
	v=$(((v * 31 + i * i + 7) % 1000000007))
	shown=$v
	[ "$restarted" = 0 ] || [ "${FAKE_BUG:-}" != wrong ] || shown=$((v + 1))
	echo "$i v=$shown"
	next=$((i + 1))
	sleep "$nap"
	serve_request
done
# the harness's hold at the end (test/programs/hold_end.h)
if [ -n "${CKPTMPI_TEST_HOLD:-}" ] && [ -e "$CKPTMPI_TEST_HOLD" ]; then
	: >"$CKPTMPI_TEST_HOLD.reached"
	while [ -e "$CKPTMPI_TEST_HOLD" ]; do
		sleep 0.02
		serve_request
	done
fi
echo "$((n + 1)) final $v"
[ -z "${CKPTMPI_DIR:-}" ] || [ -z "${CKPTMPI_E2E_JOB:-}" ] || : >"$CKPTMPI_DIR/fake-done.$CKPTMPI_E2E_JOB"
