#!/bin/bash
# Checkpoint and restart of a process with MIB of touched heap (half random,
# half zeros), against the raw write/read bandwidth of the same directory
# measured in the same run.  Not a test: it reports, it does not judge.
#   bench/ckpt_bench.sh [BUILD_DIR] [DIR] [MIB...]     (default 1024 4096)
set -euo pipefail
B=$(cd "${1:-build}" && pwd); D=${2:-/tmp/ckptmpi-bench}; shift 2 2>/dev/null || true
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(1024 4096)
mkdir -p "$D"
now() { date +%s.%N; }
printf '%-6s %-10s %9s %9s %12s %9s %9s %9s %9s\n' MiB what seconds MB/s bytes raw_s ratio paused_s note
for mib in "${SIZES[@]}"; do
	rm -rf "$D/ck" "$D/go" "$D/raw"; mkdir -p "$D/ck"
	raw_w=$("$B/bench/rawbw" write "$D/raw" "$mib")
	raw_r=$("$B/bench/rawbw" read "$D/raw"); rm -f "$D/raw"
	CKPTMPI_VERBOSE=1 "$B/bin/ckptmpi" run --dir "$D/ck" -- "$B/bench/touch_heap" "$mib" "$D/go" \
		> "$D/run.out" 2> "$D/run.err" &
	job=$!
	until grep -q ready "$D/run.out" 2>/dev/null; do
		kill -0 $job 2>/dev/null || { cat "$D/run.err"; exit 1; }
		sleep 0.05
	done
	t0=$(now); "$B/bin/ckptmpi" checkpoint "$D/ck" > /dev/null; t1=$(now)
	kill -9 $job; wait $job 2>/dev/null || true
	f=$(ls "$D"/ck/ckpt-*.h5); bytes=$(stat -c %s "$f")
	paused=$(sed -n 's/.*paused \([0-9.]*\) s.*/\1/p' "$D/run.err" | tail -1)
	"$B/bench/rawbw" evict "$f"
	touch "$D/go"
	t2=$(now); "$B/bin/ckptmpi" restart "$D/ck" > "$D/restart.out"; t3=$(now)
	grep -q checksum "$D/restart.out" || { echo "restart failed"; exit 1; }
	ck=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}'); rs=$(awk -v a="$t2" -v b="$t3" 'BEGIN{print b-a}')
	awk -v m="$mib" -v s="$ck" -v b="$bytes" -v r="$raw_w" -v p="${paused:-?}" 'BEGIN{printf "%-6s %-10s %9.3f %9.0f %12d %9.3f %9.2f %9s %s\n", m, "checkpoint", s, b/s/1e6, b, r*b/(m*1048576), (r*b/(m*1048576))/s, p, "raw = write of the same bytes"}'
	awk -v m="$mib" -v s="$rs" -v b="$bytes" -v r="$raw_r" 'BEGIN{printf "%-6s %-10s %9.3f %9.0f %12d %9.3f %9.2f %9s %s\n", m, "restart", s, b/s/1e6, b, r*b/(m*1048576), (r*b/(m*1048576))/s, "-", "incl. program checksum pass"}'
done
rm -rf "$D"
