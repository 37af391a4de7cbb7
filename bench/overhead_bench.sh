#!/bin/bash
# Running cost of ckptmpi (issue 11 item 5): the same programs native and
# under ckptmpi, in the same run, interleaved, reported as ratios
# (ckptmpi / native; 1.00 = no cost). Not a test: it reports, never judges.
#
#   bench/overhead_bench.sh [BUILD_DIR=build] [FLAVOURS="mpich openmpi"]
#
# Per flavour, 2 ranks:
#   - bench/overhead_micro.c: 8-byte ping-pong latency, 8-byte Allreduce
#     latency, 1 MiB bandwidth, and 8-byte exchanges through requests the
#     program waits for (Irecv, Isend, Waitall) or polls (a Test loop): the
#     program started with MPI_Init (MPI_THREAD_SINGLE natively and under
#     ckptmpi, whose runtime reads that from the executable); the
#     *_multiple rows: the same started at MPI_THREAD_MULTIPLE on both
#     sides; the *_switch_floor rows: native runs of the MPI_Init program
#     with two wrfsbase around each MPI call and nothing else, the floor of
#     the split process (no shim can go below it: each call into MPI
#     switches to the lower half's TLS and back), against native. ROUNDS
#     runs of each side in turn
#     (native, ckptmpi, native, ...), each run many short repetitions; the
#     table gives the best repetition of all runs, the median of the
#     runs' medians, and the ratios: best over best, median over median,
#     and (ratio_p) the median of the ratios of the runs taken in turn,
#     pair by pair (a shared machine: its speed drifts between runs; the
#     plot shows the last two);
#   - real programs (Debian builds them for OpenMPI only): hpcc (N=HPCC_N,
#     1x2 grid), whole run time; LAMMPS (test/e2e/lammps_melt.in, 32000
#     atoms, LAMMPS_STEPS steps), whole run time and its own loop time;
#     best and median of ROUNDS;
#   - start-up: an MPI hello world (mpirun -np 2), and `ckptmpi run --
#     /bin/true` against /bin/true, best and median of ROUNDS;
#   - the shim's own instructions per call (bench/overhead_calls.c under
#     callgrind, if valgrind is installed): load-independent. BASE_BUILD=DIR
#     adds a column for another build (before a change).
# ROUNDS (5), REPS (100 repetitions per run) of ITERS (200) calls, HPCC_N (1500; 0: no hpcc),
# LAMMPS_STEPS (300; 0: no LAMMPS),
# PLOT=FILE.png (gnuplot: the ratios), ORDINARY=1 (the micro-benchmarks also
# under CKPTMPI_FASTPATH=0, the shim's ordinary path, rows *_ordinary).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
B=$(cd "${1:-build}" && pwd)
FLAVOURS=${2:-mpich openmpi}
ROUNDS=${ROUNDS:-5}
REPS=${REPS:-100}
ITERS=${ITERS:-200}
HPCC_N=${HPCC_N:-1500}
LAMMPS_STEPS=${LAMMPS_STEPS:-300}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
OUT=$W/table
: > "$OUT"

now() { date +%s.%N; }
# best and median of numbers on stdin
stats() { sort -g | awk '{v[NR]=$1} END {if (!NR) {print "nan nan"; exit}
	printf "%s %s\n", v[1], (NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
# median of the ratios of runs taken in turn: the K-th figure of file B
# over the K-th of file A (A over B if HIB, a rate); a host whose speed
# drifts moves both runs of a pair
paired() { # A B higher_is_better
	paste -d' ' "$1" "$2" | awk -v hib="$3" 'NF == 2 && $1 > 0 && $2 > 0 {print hib ? $1/$2 : $2/$1}' |
		stats | cut -d' ' -f2
}
row() { # flavour metric unit native_best native_med ck_best ck_med higher_is_better [paired]
	awk -v f="$1" -v m="$2" -v u="$3" -v nb="$4" -v nm="$5" -v cb="$6" -v cm="$7" -v hib="$8" \
	    -v rp="${9:-nan}" \
	'BEGIN{rb = hib ? nb/cb : cb/nb; rm = hib ? nm/cm : cm/nm;
	 printf "%-8s %-26s %-4s %11.4g %11.4g %11.4g %11.4g %7.3f %7.3f %7.3f\n", f, m, u, nb, nm, cb, cm, rb, rm, rp}' \
	| tee -a "$OUT"
}

printf '%-8s %-26s %-4s %11s %11s %11s %11s %7s %7s %7s\n' MPI metric unit native_best native_med \
	ckpt_best ckpt_med ratio_b ratio_m ratio_p
for FL in $FLAVOURS; do
	[ -x "$B/bin/ckptmpi-runtime-$FL" ] || { echo "$FL: ckptmpi-runtime-$FL not built" >&2; continue; }
	case $FL in
	mpich) RUN=(mpirun.mpich -np 2); CC=mpicc.mpich; PC=mpich ;;
	openmpi) RUN=(mpirun.openmpi --oversubscribe -np 2); CC=mpicc.openmpi; PC=ompi-c
	         [ "$(id -u)" -ne 0 ] || RUN+=(--allow-run-as-root) ;;
	esac
	SHIM=$B/lib/ckptmpi/$FL/libckptmpi.so
	RT=$B/bin/ckptmpi-runtime-$FL
	$CC -O2 -DMICRO_PLAIN_INIT "$here/overhead_micro.c" -o "$W/micro_$FL"
	$CC -O2 "$here/overhead_micro.c" -o "$W/micromt_$FL"
	# the split process's floor: native, with two writes of the thread
	# pointer around each call (where the kernel allows wrfsbase)
	floor=0
	grep -qw fsgsbase /proc/cpuinfo &&
		$CC -O2 -DMICRO_PLAIN_INIT -DMICRO_SWITCH_FLOOR "$here/overhead_micro.c" -o "$W/floor_$FL" &&
		"${RUN[@]}" "$W/floor_$FL" 2 2 > /dev/null 2>&1 && floor=1
	printf '#include <mpi.h>\nint main(int c, char **v) { MPI_Init(&c, &v); MPI_Finalize(); return 0; }\n' \
		> "$W/hello.c"
	$CC -O2 "$W/hello.c" -o "$W/hello_$FL"
	unset CKPTMPI_MPI_THREAD

	# micro-benchmarks, interleaved; m_/mc_: the program at
	# MPI_THREAD_MULTIPLE, native and under ckptmpi
	: > "$W/n_$FL"; : > "$W/c_$FL"; : > "$W/o_$FL"; : > "$W/m_$FL"; : > "$W/mc_$FL"; : > "$W/f_$FL"
	for _ in $(seq "$ROUNDS"); do
		"${RUN[@]}" "$W/micro_$FL" "$REPS" "$ITERS" >> "$W/n_$FL"
		[ "$floor" = 0 ] || "${RUN[@]}" "$W/floor_$FL" "$REPS" "$ITERS" >> "$W/f_$FL"
		"${RUN[@]}" "$RT" "$W/micro_$FL" "$REPS" "$ITERS" >> "$W/c_$FL"
		"${RUN[@]}" "$W/micromt_$FL" "$REPS" "$ITERS" >> "$W/m_$FL"
		"${RUN[@]}" "$RT" "$W/micromt_$FL" "$REPS" "$ITERS" >> "$W/mc_$FL"
		[ "${ORDINARY:-0}" = 0 ] ||
			CKPTMPI_FASTPATH=0 "${RUN[@]}" "$RT" "$W/micro_$FL" "$REPS" "$ITERS" >> "$W/o_$FL"
	done
	# pair BASE SIDE SUFFIX METRICS...: rows of SIDE's runs against BASE's
	pair() {
		local base=$1 side=$2 suffix=$3 m hib u nb cb nm cm
		shift 3
		for m in "$@"; do
			hib=0; [ "$m" = pingpong_1MiB_bandwidth ] && hib=1
			u=$(awk -v m=$m '$1==m {print $4; exit}' "$W/${base}_$FL")
			if [ $hib = 1 ]; then
				nb=$(awk -v m=$m '$1==m {print $2}' "$W/${base}_$FL" | sort -g | tail -1)
				cb=$(awk -v m=$m '$1==m {print $2}' "$W/${side}_$FL" | sort -g | tail -1)
			else
				nb=$(awk -v m=$m '$1==m {print $2}' "$W/${base}_$FL" | stats | cut -d' ' -f1)
				cb=$(awk -v m=$m '$1==m {print $2}' "$W/${side}_$FL" | stats | cut -d' ' -f1)
			fi
			nm=$(awk -v m=$m '$1==m {print $3}' "$W/${base}_$FL" | stats | cut -d' ' -f2)
			cm=$(awk -v m=$m '$1==m {print $3}' "$W/${side}_$FL" | stats | cut -d' ' -f2)
			awk -v m=$m '$1==m {print $3}' "$W/${base}_$FL" > "$W/pa"
			awk -v m=$m '$1==m {print $3}' "$W/${side}_$FL" > "$W/pb"
			row "$FL" "$m$suffix" "$u" "$nb" "$nm" "$cb" "$cm" $hib "$(paired "$W/pa" "$W/pb" $hib)"
		done
	}
	all=(pingpong_8B_latency allreduce_8B_latency pingpong_1MiB_bandwidth waitall_8B_exchange
	     test_loop_8B_exchange)
	pair n c "" "${all[@]}"
	[ "$floor" = 0 ] || pair n f _switch_floor "${all[@]}"
	[ "${ORDINARY:-0}" = 0 ] || pair n o _ordinary "${all[@]}"
	pair m mc _multiple "${all[@]}"

	# a real program: hpcc (Debian builds it against OpenMPI only)
	if [ "$FL" = openmpi ] && [ "$HPCC_N" != 0 ] && command -v hpcc > /dev/null &&
	   [ -f /usr/share/doc/hpcc/examples/_hpccinf.txt ]; then
		mkdir -p "$W/hpcc"
		sed "6s/^[0-9]*/$HPCC_N/; 8s/^[0-9]*/100/; 11s/^[0-9]*/1/; 12s/^[0-9]*/2/" \
			/usr/share/doc/hpcc/examples/_hpccinf.txt > "$W/hpcc/hpccinf.txt"
		: > "$W/hn"; : > "$W/hc"
		for _ in $(seq "$ROUNDS"); do
			for side in n c; do
				pre=(); [ $side = c ] && pre=("$RT")
				t0=$(now)
				(cd "$W/hpcc" && "${RUN[@]}" "${pre[@]}" "$(command -v hpcc)" > /dev/null 2>&1)
				t1=$(now)
				awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}' >> "$W/h$side"
			done
		done
		read -r nb nm < <(stats < "$W/hn"); read -r cb cm < <(stats < "$W/hc")
		row "$FL" "hpcc_N${HPCC_N}_run_time" s "$nb" "$nm" "$cb" "$cm" 0 "$(paired "$W/hn" "$W/hc" 0)"
	fi

	# a real program: LAMMPS (molecular dynamics, as CoMD is; Debian builds
	# it against OpenMPI only), test/e2e/lammps_melt.in: 32000 atoms; the
	# whole run, and LAMMPS's own loop time (the time steps, without the
	# start-up)
	if [ "$FL" = openmpi ] && [ "$LAMMPS_STEPS" != 0 ] && command -v lmp > /dev/null; then
		: > "$W/ln"; : > "$W/lc"; : > "$W/lln"; : > "$W/llc"
		for _ in $(seq "$ROUNDS"); do
			for side in n c; do
				pre=(); [ $side = c ] && pre=("$RT")
				t0=$(now)
				(cd "$W" && "${RUN[@]}" "${pre[@]}" "$(command -v lmp)" -in "$src/test/e2e/lammps_melt.in" \
					-var steps "$LAMMPS_STEPS" -log none > "$W/lammps.out" 2>&1)
				t1=$(now)
				awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}' >> "$W/l$side"
				awk '/^Loop time of/ {print $4}' "$W/lammps.out" >> "$W/ll$side"
			done
		done
		read -r nb nm < <(stats < "$W/ln"); read -r cb cm < <(stats < "$W/lc")
		row "$FL" "lammps_${LAMMPS_STEPS}steps_run_time" s "$nb" "$nm" "$cb" "$cm" 0 "$(paired "$W/ln" "$W/lc" 0)"
		read -r nb nm < <(stats < "$W/lln"); read -r cb cm < <(stats < "$W/llc")
		row "$FL" "lammps_${LAMMPS_STEPS}steps_loop_time" s "$nb" "$nm" "$cb" "$cm" 0 "$(paired "$W/lln" "$W/llc" 0)"
	fi

	# start-up: an MPI hello world
	: > "$W/sn"; : > "$W/sc"
	for _ in $(seq "$ROUNDS"); do
		for side in n c; do
			pre=(); [ $side = c ] && pre=("$RT")
			t0=$(now); "${RUN[@]}" "${pre[@]}" "$W/hello_$FL" > /dev/null 2>&1; t1=$(now)
			awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}' >> "$W/s$side"
		done
	done
	read -r nb nm < <(stats < "$W/sn"); read -r cb cm < <(stats < "$W/sc")
	row "$FL" mpi_hello_startup s "$nb" "$nm" "$cb" "$cm" 0 "$(paired "$W/sn" "$W/sc" 0)"

	# the shim's instructions per call
	if command -v valgrind > /dev/null && [ -f /usr/include/valgrind/callgrind.h ]; then
		npre=0
		[ -f "$B/pmpi/$FL/predefined.c" ] &&
			npre=$(sed -n 's/.*ckpt_predef_count = \([0-9]*\);.*/\1/p' "$B/pmpi/$FL/predefined.c")
		cc -O2 -g -I"$src" -I"$B/pmpi/$FL" $(pkg-config --cflags $PC) "$here/overhead_calls.c" \
			-o "$W/calls_$FL" -ldl
		for op in send recv sendrecv allreduce isend_wait exchange test_exchange test_pending comm_rank; do
			cols=""
			for b in ${BASE_BUILD:+"$BASE_BUILD"} "$B"; do
				rm -f "$W"/cg.out*
				if OVERHEAD_NPREDEF=$npre valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" \
					"$W/calls_$FL" "$b/lib/ckptmpi/$FL/libckptmpi.so" $op 20000 > /dev/null 2>&1; then
					cols+=" $(python3 "$here/overhead_callgrind.py" "$W/cg.out.1" 20000)"
				else
					cols+=" failed"
				fi
			done
			printf '%-8s %-26s instructions/call:%s\n' "$FL" "shim_$op" "$cols" | tee -a "$OUT"
		done
	fi
done

# start-up without MPI
: > "$W/tn"; : > "$W/tc"; mkdir -p "$W/ck"
for _ in $(seq "$ROUNDS"); do
	t0=$(now); /bin/true; t1=$(now); awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}' >> "$W/tn"
	# (a real run: with its checkpoint directory; until 2026-12-01 this
	# timed the CLI refusing to run without one)
	t0=$(now); "$B/bin/ckptmpi" run --dir "$W/ck" -- /bin/true > /dev/null; t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}' >> "$W/tc"
done
read -r nb nm < <(stats < "$W/tn"); read -r cb cm < <(stats < "$W/tc")
row - run_bin_true s "$nb" "$nm" "$cb" "$cm" 0 "$(paired "$W/tn" "$W/tc" 0)"

if [ -n "${PLOT:-}" ] && command -v gnuplot > /dev/null; then
	grep -v "instructions/call\|run_bin_true\|startup" "$OUT" | awk '{print $1"_"$2, $9, $10}' > "$W/plot"
	gnuplot <<GP
set terminal pngcairo size 1100,600 noenhanced
set output "$PLOT"
set title "ckptmpi running cost: time under ckptmpi / native (2 ranks, same run)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8
set yrange [0:*]
set key outside top center horizontal
set bmargin 13
set rmargin 14
set xtics rotate by -45 font ",9"
set ylabel "ratio (1.00 = no cost)"
plot "$W/plot" using 2:xtic(1) title "medians' ratio", "" using 3 title "median of the pairs' ratios", 1 notitle lw 2 lc "black"
GP
	echo "plot: $PLOT"
fi
