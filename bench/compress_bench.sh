#!/bin/bash
# Checkpoint rate per compressor and restart time, against the raw write and
# read bandwidth of the same directory measured in the same run. Not a
# test: it reports, it does not judge.
#   bench/compress_bench.sh [BUILD_DIR] [DIR=/tmp] [MIB] [KIND...]
#   (it works in a directory of its own made in DIR, and removes only that)
#     defaults: build /tmp/ckptmpi-bench 1024 field half
#   CODECS="none lz4 zstd ..." picks the CKPTMPI_COMPRESS values; REPS=N
#   (default 1) measures everything N times, interleaved, and keeps the best
#   of each (a machine shared with other work is noisy); PLOT=FILE.png draws
#   the rates with gnuplot (if installed); VERBOSE=1 prints every run.
# KIND is bench/touch_heap's heap: field (smooth, single-precision values held
# in doubles), field64 (the same in full precision), half (random bytes +
# zero pages).
# Columns: image_MiB = page data saved (zero pages are skipped), file_MiB =
# the generation's size; ckpt_s = `ckptmpi checkpoint` until committed;
# rate = image / ckpt_s; raw_w = write+fsync of as many image bytes, as a
# rate; x_raw = rate / raw_w (>1: faster than the device could store the
# image raw). rst_cold / rst_warm = restart (file evicted / in the page
# cache) less the program's own pass over its heap; raw_cold / raw_warm =
# plain read() of a file of the generation's size; x = raw / restart (1.0 =
# as fast as reading the bytes). cpu_s: CPU time the program's process
# (the writer and its threads) used during the checkpoint: on a machine
# shared with other work, what the checkpoint would take on idle cores.
set -euo pipefail
B=$(cd "${1:-build}" && pwd); DIR=${2:-/tmp}; MIB=${3:-1024}
shift 3 2>/dev/null || shift $#
KINDS=("$@"); [ ${#KINDS[@]} -gt 0 ] || KINDS=(field half)
read -r -a CODECS <<< "${CODECS:-none lz4 zstd zstd:3 deflate blosc blosc-lz4 blosc-zstd}"
REPS=${REPS:-1}
# a directory of its own in DIR, the only thing it removes
mkdir -p "$DIR"; D=$(mktemp -d "$DIR/ckptmpi-bench.XXXXXX")
trap 'rm -rf "$D"' EXIT
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b-a}'; }
# CPU seconds (all threads, user + system) process PID has used
cpu_of() {
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"
}
restart_s() {   # restart, less the program's pass; prints seconds
	local t0 t1 pass
	touch "$D/go"
	t0=$(now); "$B/bin/ckptmpi" restart "$D/ck" > "$D/restart.out" 2> "$D/restart.err"; t1=$(now)
	pass=$(sed -n 's/^checksum .* pass \([0-9.]*\)$/\1/p' "$D/restart.out")
	[ -n "$pass" ] || { echo "restart failed" >&2; cat "$D/restart.out" "$D/restart.err" >&2; exit 1; }
	sub "$pass" "$(sub "$t0" "$t1")"
}
DATA=$D/rates.dat; : > "$DATA"
printf '%-7s %-8s %9s %8s %7s %8s %8s %6s %8s %8s %8s %8s %5s %5s %6s\n' kind codec image_MiB \
	file_MiB ckpt_s rate raw_w x_raw rst_cold raw_cold rst_warm raw_warm x_c x_w cpu_s
# one_run KIND CODEC: one checkpoint and two restarts, with their raw
# baselines; prints "image bytes ckpt raw_w rst_cold raw_cold rst_warm raw_warm"
one_run() {
	local kind=$1 codec=$2 job t0 t1 c0 c1 f bytes image raw_w raw_c raw_h rc rw with
	# run.out too: a "ready" left from the run before would be taken
	# for this one's before its shell truncates the file
	rm -rf "$D/ck" "$D/go" "$D/raw" "$D/run.out"; mkdir -p "$D/ck"
	# none: unset, which builds older than CKPTMPI_COMPRESS=none read too
	if [ "$codec" = none ]; then with=(env -u CKPTMPI_COMPRESS); else with=(env "CKPTMPI_COMPRESS=$codec"); fi
	"${with[@]}" "$B/bin/ckptmpi" run --dir "$D/ck" -- "$B/bench/touch_heap" "$MIB" \
		"$D/go" "$kind" > "$D/run.out" 2> "$D/run.err" &
	job=$!
	until grep -q ready "$D/run.out" 2>/dev/null; do
		kill -0 $job 2>/dev/null || { cat "$D/run.err" >&2; exit 1; }
		sleep 0.05
	done
	# warm-up: on a VM the first writer pays for the host backing fresh
	# page-cache memory; give neither side that handicap
	"$B/bench/rawbw" write "$D/raw" "$MIB" > /dev/null; rm -f "$D/raw"
	sync
	c0=$(cpu_of $job)
	t0=$(now); "$B/bin/ckptmpi" checkpoint "$D/ck" > /dev/null; t1=$(now)
	c1=$(cpu_of $job)
	kill -9 $job; wait $job 2>/dev/null || true
	f=$(ls "$D"/ck/ckpt-*.h5); bytes=$(stat -c %s "$f")
	image=$("$B/bin/ckptmpi" verify "$D/ck" | sed -n 's/.*, \([0-9]*\) bytes of data verified.*/\1/p')
	[ -n "$image" ] || { echo "verify failed" >&2; exit 1; }
	raw_w=$("$B/bench/rawbw" write "$D/raw" $(( (image + 1048575) / 1048576 ))); rm -f "$D/raw"
	"$B/bench/rawbw" write "$D/raw" $(( (bytes + 1048575) / 1048576 )) > /dev/null
	raw_c=$("$B/bench/rawbw" read "$D/raw"); raw_h=$("$B/bench/rawbw" warm "$D/raw"); rm -f "$D/raw"
	"$B/bench/rawbw" evict "$f"
	rc=$(restart_s); rw=$(restart_s)
	echo "$image $bytes $(sub "$t0" "$t1") $raw_w $rc $raw_c $rw $raw_h $(sub "$c0" "$c1")"
}
for kind in "${KINDS[@]}"; do
	: > "$D/runs"
	for ((r = 0; r < REPS; r++)); do
		for codec in "${CODECS[@]}"; do
			out=$(one_run "$kind" "$codec")
			echo "$codec $out" >> "$D/runs"
		done
	done
	[ -z "${VERBOSE:-}" ] || sed 's/^/# /' "$D/runs"
	for codec in "${CODECS[@]}"; do
		# the best of the repetitions, each figure on its own
		awk -v c="$codec" -v k="$kind" '$1 == c {
			n++; if ($2 > i) i = $2; if ($3 > b) b = $3
			for (j = 4; j <= 10; j++) if (n == 1 || $j < m[j]) m[j] = $j
		} END {
			s = m[4]; w = m[5]
			printf "%-7s %-8s %9.0f %8.0f %7.3f %8.0f %8.0f %6.2f %8.3f %8.3f %8.3f %8.3f %5.2f %5.2f %6.2f\n",
				k, c, i/1048576, b/1048576, s, i/s/1e6, i/w/1e6, w/s, m[6], m[7], m[8], m[9],
				m[7]/m[6], m[9]/m[8], m[10] }' "$D/runs" | tee -a "$DATA"
	done
done
echo "rate, raw_w: MB/s of image bytes; restart excludes the program's own pass over its heap"
if [ -n "${PLOT:-}" ] && command -v gnuplot > /dev/null; then
	gnuplot <<GP
set terminal pngcairo size 900,500 noenhanced
set output "$PLOT"
set title "checkpoint rate (image bytes / time) per compressor, ${MIB} MiB, against raw write+fsync"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "MB/s"
set key outside right top
set xtics rotate by -30
plot "$DATA" using 6:xtic(sprintf("%s %s", stringcolumn(1), stringcolumn(2))) title "ckptmpi", \
     "" using 7 title "raw write"
GP
	echo "plot: $PLOT"
fi
