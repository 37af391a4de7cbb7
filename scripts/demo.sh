#!/bin/bash
# The demo: a program is checkpointed, killed with SIGKILL, and restarted;
# it resumes where it was and ends exactly as an uninterrupted run.
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
rm -rf "$W"
