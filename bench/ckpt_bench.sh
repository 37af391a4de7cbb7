#!/bin/bash
# Checkpoint and restart of a process with MIB of touched heap (half random,
# half zeros), against the raw write/read bandwidth of the same directory
# measured in the same run for the same number of bytes. Not a test: it
# reports, it does not judge.
#   bench/ckpt_bench.sh [BUILD_DIR] [DIR=/tmp] [MIB...]     (default 1024 4096)
#   (it works in a directory of its own made in DIR, and removes only that)
#   PLOT=FILE.png: draw checkpoint, pause and restart time against the
#   image size, beside the raw write and read of as many bytes (gnuplot)
# Columns: seconds and MB/s of ckptmpi; raw_s: plain write+fsync (read) of
# as many bytes as the checkpoint file holds; ratio = raw_s / seconds (1.0 =
# as fast as the storage allows); paused_s: how long the program was stopped.
# restart: read whole first (CKPTMPI_RESTART_LAZY=0); lazy_runs / lazy_in:
# the same generation restarted with
# CKPTMPI_RESTART_LAZY=1 (the default), seconds until the program runs and until its image
# is all in (ratio: of lazy_in against the raw read).
set -euo pipefail
B=$(cd "${1:-build}" && pwd); DIR=${2:-/tmp}; shift 2 2>/dev/null || true
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(1024 4096)
# a directory of its own in DIR, the only thing it removes
mkdir -p "$DIR"; D=$(mktemp -d "$DIR/ckptmpi-bench.XXXXXX")
trap 'rm -rf "$D" "$D.table" "$D.ck" "$D.rs" "$D.lz"' EXIT
TABLE=$D.table
: > "$TABLE"
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
printf '%-6s %-10s %8s %8s %12s %8s %6s %8s\n' MiB what seconds MB/s bytes raw_s ratio paused_s
for mib in "${SIZES[@]}"; do
	# run.out too: the run before's "ready" must not be taken for this one's
	rm -rf "$D/ck" "$D/go" "$D/raw" "$D/run.out"; mkdir -p "$D/ck"
	CKPTMPI_VERBOSE=1 "$B/bin/ckptmpi" run --dir "$D/ck" -- "$B/bench/touch_heap" "$mib" "$D/go" \
		> "$D/run.out" 2> "$D/run.err" &
	job=$!
	until grep -q ready "$D/run.out" 2>/dev/null; do
		kill -0 $job 2>/dev/null || { cat "$D/run.err"; exit 1; }
		sleep 0.05
	done
	# warm-up: on a VM the first writer pays for the host backing fresh
	# page-cache memory; give neither side that handicap
	"$B/bench/rawbw" write "$D/raw" "$mib" > /dev/null; rm -f "$D/raw"
	sync
	t0=$(now); "$B/bin/ckptmpi" checkpoint "$D/ck" > /dev/null; t1=$(now)
	kill -9 $job; wait $job 2>/dev/null || true
	f=$(ls "$D"/ck/ckpt-*.h5); bytes=$(stat -c %s "$f")
	paused=$(sed -n 's/.*paused \([0-9.]*\) s.*/\1/p' "$D/run.err" | tail -1)
	"$B/bench/rawbw" evict "$f"
	raw_w=$("$B/bench/rawbw" write "$D/raw" $(( (bytes + 1048575) / 1048576 )))
	raw_r=$("$B/bench/rawbw" read "$D/raw"); rm -f "$D/raw"
	touch "$D/go"
	t2=$(now); CKPTMPI_RESTART_LAZY=0 "$B/bin/ckptmpi" restart "$D/ck" > "$D/restart.out"; t3=$(now)
	pass=$(sed -n 's/^checksum .* pass \([0-9.]*\)$/\1/p' "$D/restart.out")
	[ -n "$pass" ] || { echo "restart failed"; cat "$D/restart.out"; exit 1; }
	ck=$(sub "$t0" "$t1"); rs=$(sub "$pass" "$(sub "$t2" "$t3")")
	# the same generation restarted lazily (CKPTMPI_RESTART_LAZY=1), cold
	# again: how soon the program runs, and when its image is all in
	"$B/bench/rawbw" evict "$f"
	t4=$(now)
	CKPTMPI_RESTART_LAZY=1 CKPTMPI_VERBOSE=1 "$B/bin/ckptmpi" restart "$D/ck" > "$D/lazy.out" 2> "$D/lazy.err"
	at() { date -d "$(sed -n "s/^ckptmpi\[0\]: \([0-9:.]*\) restart: $1.*/\1/p" "$D/lazy.err" | head -1)" +%s.%N 2>/dev/null; }
	lz_run=$(at "the program runs") lz_in=$(at "[0-9]* MiB read and checked behind")
	[ -n "$lz_run" ] && [ -n "$lz_in" ] || { echo "lazy restart failed"; cat "$D/lazy.err"; exit 1; }
	cmp -s <(grep -o '^checksum [0-9a-f]*' "$D/restart.out") <(grep -o '^checksum [0-9a-f]*' "$D/lazy.out") ||
		{ echo "the lazy restart's checksum differs"; cat "$D/restart.out" "$D/lazy.out"; exit 1; }
	for row in "checkpoint $ck $raw_w ${paused:-?}" "restart $rs $raw_r -" \
	           "lazy_runs $(sub "$t4" "$lz_run") $raw_r -" "lazy_in $(sub "$t4" "$lz_in") $raw_r -"; do
		set -- $row
		awk -v m="$mib" -v w="$1" -v s="$2" -v b="$bytes" -v r="$3" -v p="$4" \
			'BEGIN{printf "%-6s %-10s %8.3f %8.0f %12.0f %8.3f %6.2f %8s\n", m, w, s, b/s/1e6, b, r, r/s, p}' |
			tee -a "$TABLE"
	done
done
echo "restart excludes the program's own checksum pass over its heap"
echo "lazy (CKPTMPI_RESTART_LAZY=1, cold): lazy_runs, until the program runs (its system"
echo "calls wait for the image); lazy_in, until the image is all in and checked"
if [ -n "${PLOT:-}" ] && command -v gnuplot >/dev/null; then
	awk '$2 == "checkpoint" {print $1, $3, $6, ($8 == "?" ? "NaN" : $8)}' "$TABLE" > "$D.ck"
	awk '$2 == "restart" {print $1, $3, $6}' "$TABLE" > "$D.rs"
	awk '$2 == "lazy_runs" {r = $3} $2 == "lazy_in" {print $1, r, $3}' "$TABLE" > "$D.lz"
	gnuplot <<EOG
set terminal pngcairo size 900,560 font ",11"
set output "$PLOT"
set title "ckptmpi: one process, heap half random half zero (measured $(date +%F), $(nproc) cores)"
set xlabel "touched heap (MiB)"
set ylabel "seconds"
set key top left
set grid
plot "$D.ck" using 1:2 with linespoints lw 2 title "checkpoint", \
     "$D.ck" using 1:3 with lines dt 2 lw 2 title "raw write + fsync of the file's bytes", \
     "$D.ck" using 1:4 with linespoints lw 2 title "program paused", \
     "$D.rs" using 1:2 with linespoints lw 2 title "restart (cold cache)", \
     "$D.rs" using 1:3 with lines dt 2 lw 2 title "raw read of the file's bytes (cold)", \
     "$D.lz" using 1:2 with linespoints lw 2 title "lazy restart: program running", \
     "$D.lz" using 1:3 with linespoints lw 2 title "lazy restart: image all in and checked"
EOG
	echo "plot: $PLOT"
fi
