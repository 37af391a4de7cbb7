#!/bin/bash
# The collective container writer against the raw bandwidth of the
# directory: NP ranks each write MIB MiB of non-zero pseudo-random pages
# through container_write_mpi + container_commit_mpi (one generation, one
# shared file), per MPI flavour and per road for /memory (placed directly,
# or collective H5Dwrite with CKPTMPI_MPIO_DIRECT=0), and a single writer
# writes and fsyncs as many bytes as the file holds (bench/rawbw) into the
# same directory, in the same run. Not a test: it reports.
#   bench/storage_mpi_bench.sh [BUILD_DIR] [DIR] [NP] [MIB] [REPS]
#   (defaults: build /tmp/ckptmpi-bench 4 512 3)
# Every kind of run has a warm-up pass first (on a VM the first writer
# pays for the host backing fresh page-cache memory), then the kinds take
# turns, REPS times. Columns: best and median seconds, MB/s of the best,
# raw_s: best raw write+fsync of the same bytes, ratio = raw_s / best
# (1.0 = as fast as the directory allows).
set -euo pipefail
B=$(cd "${1:-build}" && pwd); D=${2:-/tmp/ckptmpi-bench}; NP=${3:-4}; MIB=${4:-512}; REPS=${5:-3}
mkdir -p "$D"
D=$(cd "$D" && pwd)
trap 'rm -f "$D"/raw "$D"/ckpt-*.h5 "$D"/.ckpt-*' EXIT
if [ "$(id -u)" = 0 ]; then
	export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

# run FLAVOUR ROAD: one timed write, prints "seconds bytes road"
run() {
	local fl=$1 direct=1
	[ "$2" = h5dwrite ] && direct=0
	case $fl in
		openmpi) CKPTMPI_MPIO_DIRECT=$direct mpirun.openmpi --oversubscribe -x CKPTMPI_MPIO_DIRECT \
				-np "$NP" "$B/bench/storage_mpi_bench_openmpi" "$D" "$MIB" ;;
		mpich) CKPTMPI_MPIO_DIRECT=$direct mpirun.mpich -np "$NP" \
				"$B/bench/storage_mpi_bench_mpich" "$D" "$MIB" ;;
	esac
}
raw() { "$B/bench/rawbw" write "$D/raw" "$1"; rm -f "$D/raw"; }
stats() { sort -n | awk '{ v[NR] = $1 } END { printf "%.3f %.3f\n", v[1], v[int((NR + 1) / 2)] }'; }

printf '%-8s %-9s %8s %8s %8s %12s %8s %6s\n' flavour road best_s median_s MB/s bytes raw_s ratio
for fl in openmpi mpich; do
	[ -x "$B/bench/storage_mpi_bench_$fl" ] || { echo "$fl: not built" >&2; continue; }
	for road in direct h5dwrite; do
		out=$(run "$fl" "$road") || { echo "$fl $road: the write failed" >&2; continue; }
		set -- $out
		bytes=$2 got=$3
		[ "$got" = "$road" ] || echo "note: $fl asked for $road, wrote $got" >&2
		mib=$(( (bytes + 1048575) / 1048576 ))
		raw "$mib" > /dev/null
		ck=() rw=()
		for _ in $(seq "$REPS"); do
			rw+=("$(raw "$mib")")
			out=$(run "$fl" "$road") || { echo "$fl $road: the write failed" >&2; continue 2; }
			set -- $out
			ck+=("$1")
		done
		read -r ck_best ck_med < <(printf '%s\n' "${ck[@]}" | stats)
		read -r rw_best _ < <(printf '%s\n' "${rw[@]}" | stats)
		awk -v f="$fl" -v r="$road" -v b="$ck_best" -v m="$ck_med" -v n="$bytes" -v w="$rw_best" \
			'BEGIN { printf "%-8s %-9s %8.3f %8.3f %8.0f %12.0f %8.3f %6.2f\n", f, r, b, m, n / b / 1e6, n, w, w / b }'
	done
done
echo "$NP ranks x $MIB MiB into $D; $REPS runs each after a warm-up, $(nproc) CPUs"
