#!/bin/bash
# MPI overhead of ckptmpi: the same programs with and without ckptmpi, in
# the same run, reported as ratios (ckptmpi / native; 1.00 = no overhead).
#   bench/mpi_bench.sh [BUILD_DIR] [FLAVOUR=mpich]
# Not a test: it reports, it does not judge.
set -euo pipefail
B=$(cd "${1:-build}" && pwd); FL=${2:-mpich}
[ -x "$B/bin/ckptmpi-runtime-$FL" ] || { echo "ckptmpi-runtime-$FL not built"; exit 1; }
case $FL in
	mpich) RUN=(mpirun.mpich); CC=mpicc.mpich ;;
	openmpi) RUN=(mpirun.openmpi --oversubscribe); CC=mpicc.openmpi
	         [ "$(id -u)" -ne 0 ] || RUN+=(--allow-run-as-root) ;;
esac
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
$CC -O2 "$(dirname "$0")/mpi_micro.c" -o "$W/micro"
run() { # label np prefix...
	local np=$1; shift
	local it=20000
	[ "$np" -le 2 ] || it=500 # oversubscribed ranks busy-poll: keep it short
	"${RUN[@]}" -np "$np" "$@" "$W/micro" "$it"
}
# the same thread level on both sides: LEVEL=single (the call path alone;
# MPI checkpoints are off at that level) or multiple (what checkpoints need)
LEVEL=${LEVEL:-multiple}
export MICRO_THREAD=$LEVEL
{ run 2; run 4 | grep allreduce; } > "$W/native"
# unmodified binary: the preloaded shim re-executes each rank through the runtime
SHIM=$B/lib/ckptmpi/$FL/libckptmpi.so
export CKPTMPI_MPI_THREAD=$LEVEL
{ run 2 env LD_PRELOAD="$SHIM"; run 4 env LD_PRELOAD="$SHIM" | grep allreduce; } > "$W/ckptmpi"
printf '%-32s %12s %12s %8s\n' metric native ckptmpi ratio
join <(sort "$W/native") <(sort "$W/ckptmpi") | while read -r name a unit b unit2; do
	awk -v n="$name" -v a="$a" -v b="$b" -v u="$unit" 'BEGIN{printf "%-32s %9.3f %-2s %9.3f %-2s %8.3f\n", n, a, u, b, u, b/a}'
done

# a real program: total run time of Debian's hpcc (N=2000, 1x2 grid), best of 3
if command -v hpcc >/dev/null && [ -f /usr/share/doc/hpcc/examples/_hpccinf.txt ] && [ "$FL" = openmpi ]; then
	mkdir -p "$W/hpcc"
	sed '6s/^[0-9]*/2000/; 8s/^[0-9]*/100/; 11s/^[0-9]*/1/; 12s/^[0-9]*/2/' \
		/usr/share/doc/hpcc/examples/_hpccinf.txt > "$W/hpcc/hpccinf.txt"
	best() { # prefix...
		local b=1e9 t0 t1
		for _ in 1 2 3; do
			t0=$(date +%s.%N)
			(cd "$W/hpcc" && "${RUN[@]}" -np 2 "$@" "$(command -v hpcc)" > /dev/null 2>&1)
			t1=$(date +%s.%N)
			b=$(awk -v a="$t0" -v c="$t1" -v b="$b" 'BEGIN{d=c-a; print (d<b)?d:b}')
		done
		echo "$b"
	}
	n=$(best); c=$(best "$B/bin/ckptmpi-runtime-$FL")
	awk -v n="$n" -v c="$c" 'BEGIN{printf "%-32s %9.3f s  %9.3f s  %8.3f\n", "hpcc_total_time_2ranks", n, c, c/n}'
fi
