#!/bin/bash
# ckptmpi's software verbs device (ibshadow) against baselines measured in
# the same run, reported as ratios (not a test: it reports, it does not
# judge):
#   - perftest on the device, server and client on this host: 8-byte
#     ib_send_lat (t_typical, one way), 1 MiB ib_write_bw and ib_read_bw
#     (average); each best of REPS runs
#   - MPICH shared memory, 2 ranks (bench/mpi_micro.c): 8-byte ping-pong
#     latency (one way) and 1 MiB bandwidth
#   - single-core memcpy of 1 MiB buffers (bench/verbs_memcpy.c), cached
#     (the target's baseline) and out of cache
#   - the shadow's own cost on the post/poll path (bench/verbs_postpoll.c,
#     one process): the device's functions called directly
#     (CKPTMPI_VERBS_DIRECT=1), the shadow as programs get it now, and the
#     shadow translating every request (CKPTMPI_VERBS_XLATE=1)
# Targets (issue 8): latency <= 2x MPICH shm, write bandwidth >= 0.5x
# memcpy, shadow cost < 2%.
#   bench/verbs_bench.sh [BUILD_DIR=build]
#   VERBS_BENCH_MODE=nockpt|preload|runtime (default: nockpt when
#   ckptmpi run --no-checkpoint works, else preload), REPS=3
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
B=$(cd "${1:-build}" && pwd)
LIB=$B/lib/libckptmpi-verbs.so
CKPTMPI=$B/bin/ckptmpi
REPS=${REPS:-3}
[ -f "$LIB" ] || { echo "verbs_bench: $LIB not built"; exit 1; }
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cc -O2 "$HERE/verbs_memcpy.c" -o "$W/memcpy"
cc -O2 "$HERE/verbs_postpoll.c" -o "$W/postpoll" -libverbs
MPICH=1
mpicc.mpich -O2 "$HERE/mpi_micro.c" -o "$W/micro" 2>/dev/null || MPICH=0

MODE=${VERBS_BENCH_MODE:-}
if [ -z "$MODE" ]; then
	if "$CKPTMPI" run --no-checkpoint -- /bin/true >/dev/null 2>&1; then MODE=nockpt; else MODE=preload; fi
fi
case $MODE in
	nockpt) PREFIX=("$CKPTMPI" run --no-checkpoint --) ;;
	preload) PREFIX=(env LD_PRELOAD="$LIB") ;;
	runtime) mkdir -p "$W/ck"; PREFIX=(env CKPTMPI_DIR="$W/ck" "$CKPTMPI" run --) ;;
	*) echo "VERBS_BENCH_MODE: nockpt, preload or runtime"; exit 1 ;;
esac
echo "# device: ${PREFIX[*]} PROGRAM; $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ)"

listening() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6
}

# perf TOOL COLUMN ARGS...: the client's first result row, field COLUMN
perf() {
	local tool=$1 col=$2 port spid i
	shift 2
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	timeout -s KILL 120 "${PREFIX[@]}" "$tool" -p "$port" -F "$@" >"$W/srv.out" 2>&1 &
	spid=$!
	for ((i = 0; i < 400; i++)); do listening "$port" && break; sleep 0.05; done
	timeout -s KILL 120 "${PREFIX[@]}" "$tool" -p "$port" -F "$@" 127.0.0.1 >"$W/cli.out" 2>&1 || true
	wait "$spid" 2>/dev/null || true
	awk -v c="$col" '$1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ && NF >= 5 && $c ~ /^[0-9.]+$/ { print $c; exit }' "$W/cli.out"
}

# REPS rounds, each measuring every figure once, device and baselines in
# turn (a noisy machine drifts); the best of each figure over the rounds
fig() { # FILE NAME: the figure's value in FILE
	awk -v m="$2" '$1 == m { print $2; exit }' "$1"
}
: >"$W/all"
for ((r = 0; r < REPS; r++)); do
	echo "lat $(perf ib_send_lat 5 -s 8 -n 20000)" >>"$W/all"
	echo "wbw $(perf ib_write_bw 4 -s 1048576 -n 2000)" >>"$W/all"
	echo "rbw $(perf ib_read_bw 4 -s 1048576 -n 2000)" >>"$W/all"
	"$W/memcpy" >"$W/memcpy.out"
	echo "mc $(fig "$W/memcpy.out" memcpy_1MiB_bandwidth)" >>"$W/all"
	echo "mcu $(fig "$W/memcpy.out" memcpy_1MiB_uncached_bandwidth)" >>"$W/all"
	if [ "$MPICH" = 1 ]; then
		mpirun.mpich -np 2 "$W/micro" 20000 >"$W/micro.out" 2>&1 || true
		echo "mlat $(fig "$W/micro.out" pingpong_8B_latency)" >>"$W/all"
		echo "mbw $(fig "$W/micro.out" pingpong_1MiB_bandwidth)" >>"$W/all"
	fi
done
best() { # MIN|MAX KEY
	awk -v k="$2" -v how="$1" '$1 == k && $2 ~ /^[0-9.]+$/ {
		if (!n++ || (how == "MIN" ? $2 < b : $2 > b)) b = $2 } END { if (n) print b }' "$W/all"
}
lat=$(best MIN lat)
wbw=$(best MAX wbw)
rbw=$(best MAX rbw)
[ -n "$lat" ] || echo "# ib_send_lat gave no result: $(tail -n 3 "$W/cli.out" | tr '\n' ' ')"
# perftest's MB is 2^20 bytes
gbs() { [ -n "$1" ] && awk -v v="$1" 'BEGIN { printf "%.3f", v * 1048576 / 1e9 }'; }
wbw=$(gbs "$wbw" || true)
rbw=$(gbs "$rbw" || true)
mc=$(best MAX mc)
mcu=$(best MAX mcu)
mlat=$(best MIN mlat)
mbw=$(best MAX mbw)
[ -z "$mbw" ] || mbw=$(awk -v v="$mbw" 'BEGIN { printf "%.3f", v / 1000 }')

row() { # metric value unit baseline-name baseline ratio-direction target
	awk -v m="$1" -v v="$2" -v u="$3" -v bn="$4" -v b="$5" -v tg="$6" 'BEGIN {
		r = (v != "" && b != "" && b + 0 > 0) ? sprintf("%.2f", v / b) : "n/a"
		printf "%-26s %10s %-5s %-30s %10s %7s  %s\n", m, (v == "" ? "n/a" : v), u, bn, (b == "" ? "n/a" : b), r, tg }'
}
printf '%-26s %10s %-5s %-30s %10s %7s  %s\n' metric device unit baseline value ratio target
row send_lat_8B_typical "$lat" us mpich_shm_pingpong_8B "$mlat" "<= 2.00"
row write_bw_1MiB "$wbw" GB/s memcpy_1MiB_single_core "$mc" ">= 0.50"
row read_bw_1MiB "$rbw" GB/s memcpy_1MiB_single_core "$mc" ""
row write_bw_1MiB "$wbw" GB/s memcpy_1MiB_uncached "$mcu" ""
row write_bw_1MiB "$wbw" GB/s mpich_shm_1MiB_bandwidth "$mbw" ""

# the shadow's own cost: the same program with the shadow's data path
# bypassed (CKPTMPI_VERBS_DIRECT=1: the ops call the device), as programs
# get it now (every translation the identity: handed on after one load),
# and translating every WR and completion (CKPTMPI_VERBS_XLATE=1: the cost
# after a restart). The three in turn, REPS rounds; the best of each.
: >"$W/pp.direct.all"
: >"$W/pp.shadow.all"
: >"$W/pp.xlate.all"
have_direct=0 have_xlate=0
grep -q CKPTMPI_VERBS_DIRECT "$LIB" 2>/dev/null && have_direct=1
grep -q CKPTMPI_VERBS_XLATE "$LIB" 2>/dev/null && have_xlate=1
[ "$have_direct" = 1 ] || echo "# the library has no CKPTMPI_VERBS_DIRECT bypass: the shadow's cost is not measured"
for ((r = 0; r < REPS; r++)); do
	[ "$have_direct" = 0 ] || CKPTMPI_VERBS_DIRECT=1 LD_PRELOAD="$LIB" "$W/postpoll" 200000 >>"$W/pp.direct.all" 2>>"$W/pp.err" || true
	LD_PRELOAD="$LIB" "$W/postpoll" 200000 >>"$W/pp.shadow.all" 2>>"$W/pp.err" || true
	[ "$have_xlate" = 0 ] || CKPTMPI_VERBS_XLATE=1 LD_PRELOAD="$LIB" "$W/postpoll" 200000 >>"$W/pp.xlate.all" 2>>"$W/pp.err" || true
done
for k in direct shadow xlate; do
	awk '{ if (!($1 in b) || $2 < b[$1]) b[$1] = $2 } END { for (k in b) print k, b[k] }' "$W/pp.$k.all" >"$W/pp.$k"
done
echo
printf '%-24s %11s %11s %11s %9s %9s\n' post_poll_path direct shadow translating shadow/d transl/d
for m in postpoll_empty_poll postpoll_post_write8 postpoll_write8_round; do
	d=$(awk -v m="$m" '$1 == m { print $2 }' "$W/pp.direct")
	a=$(awk -v m="$m" '$1 == m { print $2 }' "$W/pp.shadow")
	x=$(awk -v m="$m" '$1 == m { print $2 }' "$W/pp.xlate")
	awk -v m="$m" -v d="$d" -v a="$a" -v x="$x" 'function r(v) { return (v != "" && d != "" && d + 0 > 0) ? sprintf("%.3f", v / d) : "n/a" }
		function n(v) { return v == "" ? "n/a" : v " ns" }
		BEGIN { printf "%-24s %11s %11s %11s %9s %9s\n", m, n(d), n(a), n(x), r(a), r(x) }'
done
[ -s "$W/pp.shadow" ] || echo "# verbs_postpoll failed: $(head -c 300 "$W/pp.err")"
