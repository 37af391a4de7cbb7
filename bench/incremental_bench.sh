#!/bin/bash
# Incremental generations (CKPTMPI_FULL_EVERY): the second checkpoint of a
# program that changed PCT % of its pages, against the first (full) one
# and against a full second checkpoint of the same state
# (CKPTMPI_FULL_EVERY=1) measured in the same run; and the restart of the
# incremental generation (read through its chain) against the restart of
# the full one. Not a test: it reports, it does not judge.
#   bench/incremental_bench.sh [BUILD_DIR] [DIR=/tmp] [MIB] [PCT]
#   (it works in a directory of its own made in DIR, and removes only that)
#     defaults: build /tmp/ckptmpi-incr-bench 1024 1
#   REPS=N (default 2): the runs interleaved N times, the best of each
#   figure kept (a machine shared with other work is noisy).
# Columns: ckpt_s = `ckptmpi checkpoint` until committed; MiB = page data
# stored (ls --json memory_saved); file_MiB = the generation's file;
# x_first = this / the first (full) checkpoint of the same run.
# restart: ckptmpi restart until the program printed its checksum, less
# its own pass over the heap; warm = files in the page cache, cold =
# evicted first (bench/rawbw evict). The checksums of both restarts must
# agree (the same state, read two ways).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
B=$(cd "${1:-build}" && pwd); DIR=${2:-/tmp}; MIB=${3:-1024}; PCT=${4:-1}
REPS=${REPS:-2}
# a directory of its own in DIR, the only thing it removes
mkdir -p "$DIR"; D=$(mktemp -d "$DIR/ckptmpi-bench.XXXXXX")
trap 'rm -rf "$D"' EXIT
cc -O2 -o "$D/incremental_heap" "$SRC/bench/incremental_heap.c"
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
wait_line() { # FILE PATTERN PID
	until grep -q "$2" "$1" 2>/dev/null; do
		kill -0 "$3" 2>/dev/null || { echo "the program ended" >&2; cat "$1.err" >&2; exit 1; }
		sleep 0.02
	done
}
saved() { # DIR GEN: memory_saved of generation GEN
	"$B/bin/ckptmpi" ls "$1" --json | python3 -c '
import json, sys
g = [x for x in json.load(sys.stdin) if x["generation"] == int(sys.argv[1])][0]
print(g["memory_saved"], g["pages_parent"])' "$2"
}
# run K: a run with CKPTMPI_FULL_EVERY=K, checkpointed before and after
# the change; prints "ckpt1 bytes1 file1 ckpt2 bytes2 file2 parent2"
run() {
	local k=$1 ck=$D/ck$1 job t0 t1 t2 t3 s1 s2
	rm -rf "$ck" "$D/change" "$D/go" "$D/run$k.out"; mkdir -p "$ck"
	CKPTMPI_FULL_EVERY=$k "$B/bin/ckptmpi" run --dir "$ck" -- "$D/incremental_heap" "$MIB" \
		"$PCT" "$D" > "$D/run$k.out" 2> "$D/run$k.out.err" &
	job=$!
	wait_line "$D/run$k.out" ready $job
	sync
	t0=$(now); "$B/bin/ckptmpi" checkpoint "$ck" > /dev/null; t1=$(now)
	touch "$D/change"
	wait_line "$D/run$k.out" changed $job
	sync
	t2=$(now); "$B/bin/ckptmpi" checkpoint "$ck" > /dev/null; t3=$(now)
	kill -9 $job; wait $job 2>/dev/null || true
	read -r s1 _ < <(saved "$ck" 1)
	read -r s2 p2 < <(saved "$ck" 2)
	echo "$(sub "$t0" "$t1") $s1 $(stat -c %s "$ck/ckpt-000001.h5") $(sub "$t2" "$t3") $s2" \
		"$(stat -c %s "$ck/ckpt-000002.h5") $p2"
}
# restart K cold|warm: restart of generation 2 of run K; prints "seconds checksum"
restart() {
	local k=$1 ck=$D/ck$1 t0 t1 pass sum
	if [ "$2" = cold ]; then
		for f in "$ck"/ckpt-*.h5; do "$B/bench/rawbw" evict "$f"; done
	else
		cat "$ck"/ckpt-*.h5 > /dev/null
	fi
	touch "$D/go"
	t0=$(now); "$B/bin/ckptmpi" restart "$ck" --generation 2 > "$D/restart.out" 2> "$D/restart.err"; t1=$(now)
	pass=$(sed -n 's/^checksum .* pass \([0-9.]*\)$/\1/p' "$D/restart.out")
	sum=$(sed -n 's/^checksum \([0-9a-f]*\) .*/\1/p' "$D/restart.out")
	[ -n "$pass" ] || { echo "restart failed" >&2; cat "$D/restart.out" "$D/restart.err" >&2; exit 1; }
	echo "$(sub "$pass" "$(sub "$t0" "$t1")") $sum"
}
: > "$D/runs"
for ((r = 0; r < REPS; r++)); do
	for k in 8 1; do
		echo "run $k $(run $k)" >> "$D/runs"
	done
	for k in 8 1; do
		for how in warm cold; do
			echo "restart $k $how $(restart $k $how)" >> "$D/runs"
		done
	done
done
[ -z "${VERBOSE:-}" ] || sed 's/^/# /' "$D/runs"
# the same state read two ways: one checksum
[ "$(awk '$1 == "restart" { print $5 }' "$D/runs" | sort -u | wc -l)" -eq 1 ] ||
	{ echo "restarts disagree:" >&2; cat "$D/runs" >&2; exit 1; }
awk -v mib="$MIB" -v pct="$PCT" '
function min(a, b) { return a == "" || b < a ? b : a }
$1 == "run" { k = $2; c1[k] = min(c1[k], $3); b1[k] = $4; f1[k] = $5
              c2[k] = min(c2[k], $6); b2[k] = $7; f2[k] = $8; p2[k] = $9 }
$1 == "restart" { rs[$2 " " $3] = min(rs[$2 " " $3], $4) }
END {
	printf "heap %d MiB of random bytes, %s %% of its pages changed between the checkpoints\n\n", mib, pct
	printf "| checkpoint | ckpt_s | page data MiB | file MiB | time x first | bytes x first |\n"
	printf "| --- | --- | --- | --- | --- | --- |\n"
	printf "| first (full) | %.3f | %.1f | %.1f | 1 | 1 |\n", c1[8], b1[8]/1048576, f1[8]/1048576
	printf "| second, incremental (parent %d) | %.3f | %.1f | %.1f | %.4f | %.4f |\n", p2[8], c2[8],
		b2[8]/1048576, f2[8]/1048576, c2[8]/c1[8], b2[8]/b1[8]
	printf "| second, full (CKPTMPI_FULL_EVERY=1) | %.3f | %.1f | %.1f | %.4f | %.4f |\n", c2[1],
		b2[1]/1048576, f2[1]/1048576, c2[1]/c1[8], b2[1]/b1[8]
	printf "\n| restart of generation 2 | warm s | cold s |\n| --- | --- | --- |\n"
	printf "| full | %.3f | %.3f |\n", rs["1 warm"], rs["1 cold"]
	printf "| incremental, through its chain | %.3f | %.3f |\n", rs["8 warm"], rs["8 cold"]
	printf "| ratio incremental / full | %.2f | %.2f |\n", rs["8 warm"]/rs["1 warm"], rs["8 cold"]/rs["1 cold"]
}' "$D/runs"
