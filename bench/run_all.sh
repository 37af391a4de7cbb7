#!/bin/bash
# Every benchmark of bench/ in one command, each against its baseline
# measured in the same run (the raw device, the program without ckptmpi),
# its table printed and kept in OUT (default bench/results_all.md), its
# plots drawn into PLOTS (default bench/plots/, PNG with gnuplot). Not a
# test: it reports, it never judges. About 20-30 minutes on 2 cores.
#   bench/run_all.sh [BUILD_DIR=build] [SCRATCH=/tmp] (it works in a directory
#   of its own made there, and removes only that)
#   SIZES="256 512 1024 2048" (MiB of heap for checkpoint/restart against
#   size), ONLY="ckpt overhead incremental compress mpi verbs debug" (a
#   subset), and each script's own settings (REPS, ROUNDS, ...).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
B=$(cd "${1:-build}" && pwd)
SCRATCH=${2:-/tmp}
OUT=${OUT:-$here/results_all.md}
PLOTS=${PLOTS:-$here/plots}
SIZES=${SIZES:-256 512 1024 2048}
ONLY=${ONLY:-ckpt overhead incremental compress mpi verbs debug}
mkdir -p "$SCRATCH" "$PLOTS"
S=$(mktemp -d "$SCRATCH/ckptmpi-bench-all.XXXXXX")
trap 'rm -rf "$S"' EXIT
{
	echo "# ckptmpi benchmarks, $(date '+%F %T %Z')"
	echo
	echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
	     "load $(cut -d' ' -f1-3 /proc/loadavg) at the start; build $B; scratch $S ($(df -h "$S" | awk 'NR==2 {print $1}'))."
} > "$OUT"

# section NAME TITLE COMMAND...: run it, its output into OUT as a block
section() {
	local name=$1 title=$2 rc=0
	shift 2
	case " $ONLY " in *" $name "*) ;; *) return 0 ;; esac
	echo "== $title" >&2
	{ echo; echo "## $title"; echo; echo '```'; } >> "$OUT"
	"$@" 2>&1 | grep -v '^ckptmpi\[' | tee -a "$OUT" >&2 || rc=$?
	{ echo '```'; [ "$rc" -eq 0 ] || echo "(exited $rc)"; } >> "$OUT"
}

# shellcheck disable=SC2086
section ckpt "Checkpoint, pause and restart against image size, against the raw device" \
	env PLOT="$PLOTS/ckpt_restart.png" bash "$here/ckpt_bench.sh" "$B" "$S/ckpt" $SIZES
section overhead "Running cost on both MPIs, against native" \
	env PLOT="$PLOTS/overhead.png" bash "$here/overhead_bench.sh" "$B"
section incremental "Incremental generations against full ones" \
	bash "$here/incremental_bench.sh" "$B" "$S/incr"
section compress "Compression against the raw device" \
	env PLOT="$PLOTS/compress_rates.png" bash "$here/compress_bench.sh" "$B" "$S/compress"
section mpi "MPI job checkpoint and restart" bash "$here/mpi_ckpt_bench.sh" "$B"
section verbs "Verbs job checkpoint and restart" bash "$here/verbs_ckpt_bench.sh" "$B" "$S/verbs"
section debug "Reverse commands of ckptmpi debug" bash "$here/debug_bench.sh" "$B"
echo "tables: $OUT; plots: $PLOTS" >&2
