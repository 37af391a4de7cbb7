#!/bin/bash
# Checkpoint and restart of a job whose processes drive verbs themselves
# (issue 9, item 8), against baselines measured in the same run. Not a
# test: it reports, it does not judge.
#   bench/verbs_ckpt_bench.sh [BUILD_DIR=build] [DIR=/tmp]
#   (it works in a directory of its own made in DIR, and removes only that)
#   MIB=512 (registered per process), REPS=3
#
# 1. A 2-process verbs job (test/verbs/ckpt_ops: every operation kind in
#    flight, plus MIB MiB registered per process and written by the peer,
#    -m), `ckptmpi checkpoint DIR` mid-run: seconds and MB/s of the
#    checkpoint, against a plain write + fsync of as many bytes to DIR
#    (bench/rawbw) right after; both SIGKILLed, the container evicted from
#    the page cache, `ckptmpi restart DIR`: seconds until both members run
#    their next step, against a plain read of as many bytes. ratio =
#    raw_s / seconds (1.0: as fast as the directory allows). The restarted
#    job runs on a few steps with every byte checked before it is killed.
#    The same job without verbs (ckpt_ops -k none: the same memory, not
#    registered) in turn with it, as the baseline of what verbs add.
# 2. perftest on ckptmpi_sw0 under the job's runtime, before and after a
#    restart: ib_write_bw --run_infinitely -D 1 (1 MiB; a row a second: the
#    median of the rows before the checkpoint against the median of the
#    rows after the restart, the first one after it, which holds the pause,
#    left out), and ib_send_lat -s 8 -n N: t_typical (the median
#    iteration) of a run checkpointed, killed and restarted at about a
#    tenth of its iterations, against a run of the same job left alone.
#    after/before must be about 1 (the restart must not degrade them).
set -euo pipefail
B=$(cd "${1:-build}" && pwd)
DIR=${2:-/tmp}
MIB=${MIB:-512}
REPS=${REPS:-3}
CK=$B/bin/ckptmpi
OPS=$B/test/verbs/ckpt_ops
RAW=$B/bench/rawbw
for f in "$CK" "$OPS" "$RAW" "$B/lib/libckptmpi-verbs.so"; do
	[ -e "$f" ] || { echo "verbs_ckpt_bench: $f not built"; exit 1; }
done
# a directory of its own in DIR, the only thing it removes
mkdir -p "$DIR"; D=$(mktemp -d "$DIR/ckptmpi-bench.XXXXXX")
PIDS=()
tree() { # PID and its descendants
	local c
	echo "$1"
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null || true); do tree "$c"; done
}
killtree() {
	local p all=()
	for p in "$@"; do mapfile -t -O "${#all[@]}" all < <(tree "$p"); done
	[ "${#all[@]}" = 0 ] || kill -KILL "${all[@]}" 2>/dev/null || true
	for p in "$@"; do wait "$p" 2>/dev/null || true; done
}
cleanup() {
	[ "${#PIDS[@]}" = 0 ] || killtree "${PIDS[@]}"
	rm -rf "$D"
}
trap cleanup EXIT
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
laststep() { awk 'BEGIN { m = -1 } $1 ~ /^[0-9]+$/ && $1 + 0 > m { m = $1 + 0 } END { print m }' "$1" 2>/dev/null || echo -1; }
die() { echo "verbs_ckpt_bench: $*"; for f in "$D"/*.err "$D"/restart-*/member-*.err; do [ -s "$f" ] && { echo "--- $f"; tail -n 5 "$f"; }; done; exit 1; }
# waitstep FILE K PID: until FILE shows step K (60 s)
waitstep() {
	local i
	for ((i = 0; i < 1200; i++)); do
		[ "$(laststep "$1")" -ge "$2" ] && return 0
		[ -z "${3:-}" ] || kill -0 "$3" 2>/dev/null || die "$1: ended before step $2: $(tail -n 2 "$1" | tr '\n' ' ')"
		sleep 0.05
	done
	die "$1: no step $2 within 60 s"
}
listening() {
	local hex
	hex=$(printf '%04X' "$1")
	awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6
}
freeport() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# job J ARGS...: members 0 (ARGS server ...) and 1 (ARGS client ...) of job $D/J,
# run through `ckptmpi run --dir`; M0, M1 their pids
member() { # J K OUT CMD...
	local j=$1 k=$2 out=$3
	shift 3
	mkdir -p "$D/$j"
	(cd "$D" && exec "$CK" run --dir "$D/$j" --job-size 2 --member "$k" -- "$@") >"$out" 2>"$out.err" </dev/null &
	PIDS+=($!)
}
# restart J: `ckptmpi restart $D/J` in the background; R its pid, RO its output directory
restart() {
	local j=$1 i
	(cd "$D" && exec "$CK" restart "$D/$j") >"$D/$j.restart" 2>"$D/$j.restart.err" </dev/null &
	R=$!
	PIDS+=("$R")
	for ((i = 0; i < 600; i++)); do
		RO=$(sed -n 's/^  member 0: \(.*\)\/member-0\.out, .*/\1/p' "$D/$j.restart.err" 2>/dev/null || true)
		[ -n "$RO" ] && break
		kill -0 "$R" 2>/dev/null || die "ckptmpi restart $D/$j ended: $(tr '\n' ' ' <"$D/$j.restart.err")"
		sleep 0.01
	done
	[ -n "$RO" ] || die "ckptmpi restart $D/$j did not say where the outputs go"
	case $RO in /*) ;; *) RO=$D/$RO ;; esac
}
ckpt() { # J: ckptmpi checkpoint, must succeed
	"$CK" checkpoint "$D/$1" >"$D/$1.ckpt" 2>"$D/$1.ckpt.err" || die "ckptmpi checkpoint $D/$1: $(tr '\n' ' ' <"$D/$1.ckpt.err")"
}

echo "# $(nproc) cores; $(date -u +%Y-%m-%dT%H:%MZ); DIR $D ($(df -T "$D" | awk 'NR == 2 { print $2 }'))"

# ---------------------------------------------------------------- 1. checkpoint and restart time
# round J LABEL OPS-ARGS...: one job of ckpt_ops OPS-ARGS, checkpointed,
# killed, restarted; prints its two rows
round() {
	local j=$1 label=$2 m0 m1 t0 t1 t2 t3 a0 f bytes raw_w raw_r k row
	shift 2
	member "$j" 0 "$D/$j.0" "$OPS" "$@" 100000 20 server "$D/$j.port"
	m0=${PIDS[-1]}
	member "$j" 1 "$D/$j.1" "$OPS" "$@" 100000 20 client "$D/$j.port"
	m1=${PIDS[-1]}
	waitstep "$D/$j.0" 3 "$m0"
	waitstep "$D/$j.1" 3 "$m1"
	# warm-up: the first writer on a VM pays for fresh page-cache memory
	"$RAW" write "$D/raw" "$MIB" >/dev/null
	rm -f "$D/raw"
	sync
	t0=$(now)
	ckpt "$j"
	t1=$(now)
	a0=$(laststep "$D/$j.0")
	waitstep "$D/$j.0" $((a0 + 2)) "$m0"
	killtree "$m0" "$m1"
	f=$(ls "$D/$j"/ckpt-*.h5)
	bytes=$(stat -c %s "$f")
	"$RAW" evict "$f"
	raw_w=$("$RAW" write "$D/raw" $(((bytes + 1048575) / 1048576)))
	raw_r=$("$RAW" read "$D/raw")
	rm -f "$D/raw"
	sync
	"$RAW" evict "$f"
	t2=$(now)
	restart "$j"
	# resumed: both members print a step
	for k in 0 1; do waitstep "$RO/member-$k.out" 0 "$R"; done
	t3=$(now)
	for k in 0 1; do waitstep "$RO/member-$k.out" $(($(laststep "$RO/member-$k.out") + 3)) "$R"; done
	grep -h ' FAIL ' "$RO"/member-*.out && die "the restarted job found wrong data"
	killtree "$R"
	for row in "checkpoint $(sub "$t0" "$t1") $raw_w" "restart $(sub "$t2" "$t3") $raw_r"; do
		# shellcheck disable=SC2086
		set -- $row
		awk -v l="$label" -v w="$1" -v s="$2" -v b="$bytes" -v raw="$3" \
			'BEGIN { printf "%-7s %-10s %8.3f %8.0f %12.0f %8.3f %6.2f\n", l, w, s, b / s / 1e6, b, raw, raw / s }'
	done
	rm -rf "${D:?}/$j" "$D/$j".* "$RO"
}
printf '%-7s %-10s %8s %8s %12s %8s %6s\n' job what seconds MB/s bytes raw_s ratio
for ((r = 0; r < REPS; r++)); do
	round "verbs$r" verbs -m "$MIB"
	round "plain$r" plain -k none -m "$MIB"
done
echo "(2 members x $MIB MiB each; verbs: ckpt_ops with every operation kind in flight and the $MIB MiB registered;"
echo " plain: the same program and memory without verbs; checkpoint: ckptmpi checkpoint's wall time;"
echo " restart: from ckptmpi restart, container out of the page cache, to both members' next step)"

# ---------------------------------------------------------------- 2. perftest before and after a restart
echo
# perf J OUT0 TOOL ARGS...: the tool's server (member 0) and client (member 1) of job J
perf() {
	local j=$1 port i
	shift
	port=$(freeport)
	member "$j" 0 "$D/$j.0" "$@" -p "$port" -F
	P0=${PIDS[-1]}
	for ((i = 0; i < 600; i++)); do listening "$port" && break; sleep 0.05; done
	member "$j" 1 "$D/$j.1" "$@" -p "$port" -F 127.0.0.1
	P1=${PIDS[-1]}
}
rows_of() { # FILE: the bandwidth rows' average column (MB/s)
	awk '$1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ && NF >= 5 && $4 ~ /^[0-9.]+$/ { print $4 }' "$@" 2>/dev/null
}
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
nrows() { rows_of "$1" | wc -l; }
waitrows() { # FILE N PID
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(nrows "$1")" -ge "$2" ] && return 0
		kill -0 "$3" 2>/dev/null || die "$1: ended with $(nrows "$1") rows"
		sleep 0.05
	done
	die "$1: not $2 rows within 30 s"
}

lat_n=${LAT_N:-300000}
: >"$D/perf.all"
for ((r = 0; r < REPS; r++)); do
	perf "wbw$r" ib_write_bw --run_infinitely -D 1 -s 1048576
	waitrows "$D/wbw$r.1" 5 "$P1"
	ckpt "wbw$r"
	echo "wbw_before $(rows_of "$D/wbw$r.1" | tail -n +2 | median)" >>"$D/perf.all"
	killtree "$P0" "$P1"
	restart "wbw$r"
	waitrows "$RO/member-1.out" 6 "$R"
	echo "wbw_after $(rows_of "$RO/member-1.out" | tail -n +2 | median)" >>"$D/perf.all"
	killtree "$R"

	perf "lat0$r" ib_send_lat -s 8 -n "$lat_n"
	wait "$P1" || true
	wait "$P0" || true
	echo "lat_before $(awk '$1 == 8 && $2 ~ /^[0-9]+$/ { print $5 }' "$D/lat0$r.1")" >>"$D/perf.all"
	perf "lat1$r" ib_send_lat -s 8 -n "$lat_n"
	# early in the run (it takes about 5 s on 2 loaded cores)
	sleep "${LAT_CKPT_S:-0.7}"
	ckpt "lat1$r"
	killtree "$P0" "$P1"
	restart "lat1$r"
	wait "$R" || die "the restarted ib_send_lat failed: $(tail -n 3 "$RO"/member-1.err | tr '\n' ' ')"
	echo "lat_after $(awk '$1 == 8 && $2 ~ /^[0-9]+$/ { print $5 }' "$RO/member-1.out")" >>"$D/perf.all"
done
best() { # MIN|MAX KEY: the best of the rounds
	awk -v k="$2" -v how="$1" '$1 == k && $2 ~ /^[0-9.]+$/ {
		if (!n++ || (how == "MIN" ? $2 < b : $2 > b)) b = $2 } END { if (n) print b }' "$D/perf.all"
}
before=$(best MAX wbw_before)
after=$(best MAX wbw_after)
lat_before=$(best MIN lat_before)
lat_after=$(best MIN lat_after)
printf '%-34s %10s %10s %7s\n' perftest_on_ckptmpi_sw0 before after ratio
awk -v b="$before" -v a="$after" 'BEGIN { printf "%-34s %10.0f %10.0f %7.2f\n", "ib_write_bw_1MiB_MB/s (median row)", b, a, (b > 0 ? a / b : 0) }'
awk -v b="$lat_before" -v a="$lat_after" 'BEGIN { printf "%-34s %10.2f %10.2f %7.2f\n", "ib_send_lat_8B_t_typical_us", b, a, (b > 0 ? a / b : 0) }'
for k in wbw_before wbw_after lat_before lat_after; do
	printf '  %-12s %s\n' "$k" "$(awk -v k="$k" '$1 == k { printf "%s ", $2 }' "$D/perf.all")"
done
echo "(best of $REPS rounds, each round's figure listed; write_bw: median of the rows before the checkpoint vs after the restart;"
echo " send_lat: the median iteration of a run left alone vs one restarted early in its run)"
