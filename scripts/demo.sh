#!/bin/bash
# The demo: a program, then a 4-rank MPI job, is checkpointed, killed with
# SIGKILL, and restarted; it resumes where it was and ends exactly as an
# uninterrupted run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
B=$PWD/build
W=$(mktemp -d /tmp/ckptmpi-demo.XXXXXX)
AS=()
if [ "$(id -u)" -eq 0 ]; then   # run the job as an unprivileged user
	chown 65534:65534 "$W"
	AS=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
fi
PROG=$B/test/programs/heap_mmap
echo "== uninterrupted run"
"${AS[@]}" "$PROG" 30 50 "$W/plain.log" | tail -n 3
echo "== run under ckptmpi"
"${AS[@]}" "$B/bin/ckptmpi" run --dir "$W/ck" -- "$PROG" 30 50 "$W/ck.log" >"$W/run.out" &
JOB=$!
until grep -q '^12 ' "$W/run.out" 2>/dev/null; do sleep 0.05; done
"${AS[@]}" "$B/bin/ckptmpi" checkpoint "$W/ck"
kill -9 $JOB; wait $JOB 2>/dev/null || true
echo "killed with SIGKILL after: $(tail -n 1 "$W/run.out")"
"${AS[@]}" "$B/bin/ckptmpi" ls "$W/ck"
echo "== restart"
"${AS[@]}" "$B/bin/ckptmpi" restart "$W/ck" > "$W/restart.out"
head -n 2 "$W/restart.out"; echo "..."; tail -n 3 "$W/restart.out"
if cmp -s "$W/plain.log" "$W/ck.log" && [ "$(tail -n 1 "$W/restart.out")" = "$("${AS[@]}" "$PROG" 30 0 /dev/null | tail -n 1)" ]; then
	echo "== resumed: final state and appended log identical to the uninterrupted run"
else
	echo "== MISMATCH"; exit 1
fi

# ---- an MPI job (MPICH, 4 ranks): a plain mpirun, checkpointed by
# `ckptmpi checkpoint`, every process SIGKILLed, the same mpirun with
# CKPTMPI_RESTART=latest resumes it
MPROG=$B/test/programs/mpi_basic_linked_mpich
if [ -x "$MPROG" ] && command -v mpirun.mpich >/dev/null; then
	echo "== MPI: uninterrupted run (4 ranks)"
	"${AS[@]}" mpirun.mpich -np 4 "$B/test/programs/mpi_basic_mpich" 40 100 > "$W/mpi.plain"
	tail -n 2 "$W/mpi.plain"
	echo "== MPI: run under ckptmpi (the program is linked with -lckptmpi)"
	(cd "$W" && exec "${AS[@]}" env CKPTMPI_DIR="$W/mck" mpirun.mpich -np 4 "$MPROG" 40 100 \
		> "$W/mpi.run" 2>"$W/mpi.err") &
	JOB=$!
	until grep -q '^10 ' "$W/mpi.run" 2>/dev/null; do sleep 0.05; done
	"${AS[@]}" "$B/bin/ckptmpi" checkpoint "$W/mck"
	sleep 0.5
	{ kill -9 $JOB; pkill -9 -f "$MPROG"; wait $JOB; } 2>/dev/null || true
	echo "killed every rank and mpirun with SIGKILL after: $(tail -n 1 "$W/mpi.run")"
	"${AS[@]}" "$B/bin/ckptmpi" ls "$W/mck"
	echo "== MPI: restart (the same mpirun command, CKPTMPI_RESTART=latest)"
	(cd "$W" && "${AS[@]}" env CKPTMPI_DIR="$W/mck" CKPTMPI_RESTART=latest \
		mpirun.mpich -np 4 "$MPROG" 40 100 > "$W/mpi.restart")
	head -n 1 "$W/mpi.restart"; echo "..."; tail -n 2 "$W/mpi.restart"
	n=$(wc -l < "$W/mpi.restart")
	if [ "$n" -gt 0 ] && tail -n "$n" "$W/mpi.plain" | cmp -s - "$W/mpi.restart"; then
		echo "== MPI job resumed: its output from the checkpoint on equals the uninterrupted run's"
	else
		echo "== MPI MISMATCH"; exit 1
	fi
fi
rm -rf "$W"
