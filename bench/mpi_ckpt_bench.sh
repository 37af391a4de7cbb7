#!/bin/bash
# Checkpoint and restart time of an MPI job (default 4 ranks x 512 MiB,
# non-zero data) against the raw bandwidth of the checkpoint directory,
# measured in the same run (write+fsync and read of the same number of
# bytes, after a warm-up pass).
#   bench/mpi_ckpt_bench.sh [BUILD_DIR] [FLAVOUR=mpich] [DIR=/tmp] [NP=4] [MIB=512]
# Not a test: it reports, it does not judge.
set -euo pipefail
B=$(cd "${1:-build}" && pwd); FL=${2:-mpich}; D=${3:-/tmp}; NP=${4:-4}; MIB=${5:-512}
[ -x "$B/bin/ckptmpi-runtime-$FL" ] || { echo "ckptmpi-runtime-$FL not built"; exit 1; }
case $FL in
	mpich) RUN=(mpirun.mpich -np "$NP"); CC=mpicc.mpich ;;
	openmpi) RUN=(mpirun.openmpi --oversubscribe -x CKPTMPI_DIR -x CKPTMPI_RESTART -x CKPTMPI_VERBOSE -np "$NP")
	         CC=mpicc.openmpi; [ "$(id -u)" -ne 0 ] || RUN+=(--allow-run-as-root) ;;
esac
W=$(mktemp -d "$D/ckptmpi-bench.XXXXXX"); trap 'pkill -f "$W/mem" 2>/dev/null || true; rm -rf "$W"' EXIT
$CC -O2 "$(dirname "$0")/mpi_mem.c" -o "$W/mem" \
	-L"$B/lib/ckptmpi/$FL" -Wl,-rpath,"$B/lib/ckptmpi/$FL" -lckptmpi
now() { date +%s.%N; }
BYTES=$((NP * MIB * 1048576))
# raw: write+fsync and read back the same number of bytes (second pass counts)
for pass in 1 2; do
	rm -f "$W/raw"
	raw_w=$("$B/bench/rawbw" write "$W/raw" $((BYTES >> 20)))
	raw_r=$("$B/bench/rawbw" read "$W/raw")
done
rm -f "$W/raw"

export CKPTMPI_DIR=$W/ck CKPTMPI_VERBOSE=1
mkdir -p "$CKPTMPI_DIR"
"${RUN[@]}" "$W/mem" "$MIB" 100000 100 >"$W/run.out" 2>"$W/run.err" &
job=$!
until grep -q '^2 ' "$W/run.out" 2>/dev/null; do sleep 0.2; done
t0=$(now); "$B/bin/ckptmpi" checkpoint "$CKPTMPI_DIR" >/dev/null; t1=$(now)
{ kill -9 $job; pkill -9 -f "$W/mem"; wait; } 2>/dev/null || true
ck=$(echo "$t1 - $t0" | bc -l)
# the longest pause of any rank
paused=$(grep -o 'paused [0-9.]* s' "$W/run.err" | awk '{print $2}' | sort -g | tail -1)
# each rank's breakdown of its pause, on stderr
grep -h "committed" "$W/run.err" >&2 || true
sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
: >"$W/rs.out"
t0=$(now)
CKPTMPI_VERBOSE=1 CKPTMPI_RESTART=latest "${RUN[@]}" "$W/mem" "$MIB" 100000 100 >"$W/rs.out" 2>"$W/rs.err" &
job=$!
until [ -s "$W/rs.out" ]; do sleep 0.05; done
t1=$(now)
{ kill -9 $job; pkill -9 -f "$W/mem"; wait; } 2>/dev/null || true
rs=$(echo "$t1 - $t0" | bc -l)
# a lazy restart (the default): when the last rank's program ran, its
# memory still coming in (its first MPI call waits for it)
runs=$(sed -n 's/^ckptmpi\[[0-9]*\]: \([0-9:.]*\) restart: the program runs.*/\1/p' "$W/rs.err" |
	sort | tail -1)
[ -z "$runs" ] || runs=$(echo "$(date -d "$runs" +%s.%N) - $t0" | bc -l)
size=$(stat -c %s "$CKPTMPI_DIR"/ckpt-*.h5)
printf '%s, %d ranks x %d MiB (%d MiB of data, file %d MiB) in %s\n' "$FL" "$NP" "$MIB" \
	$((BYTES >> 20)) $((size >> 20)) "$D"
printf '%-40s %8.2f s   x raw write+fsync (%.2f s): %.2f\n' "checkpoint (ckptmpi checkpoint)" \
	"$ck" "$raw_w" "$(echo "$ck / $raw_w" | bc -l)"
printf '%-40s %8.2f s\n' "  of which a rank was paused (longest)" "${paused:-0}"
[ -z "$runs" ] || printf '%-40s %8.2f s\n' "restart (mpirun to every rank running)" "$runs"
printf '%-40s %8.2f s   x raw read (%.2f s): %.2f\n' "restart (mpirun to first output)" \
	"$rs" "$raw_r" "$(echo "$rs / $raw_r" | bc -l)"
