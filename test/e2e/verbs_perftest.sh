#!/usr/bin/env bash
# verbs_perftest: Debian's perftest (ib_send_lat, ib_send_bw, ib_write_lat,
# ib_write_bw, ib_read_lat, ib_read_bw over every size from 2 bytes to
# 8 MiB with -a; ib_atomic_lat, ib_atomic_bw: 8 bytes), unmodified, server
# and client on 127.0.0.1, on ckptmpi's software device (MODE,
# verbs_lib.sh). Judged by their own output: both sides exit 0, the
# client's results table has one row per size with the iteration count
# asked for and sane figures (latency: 0 < t_min <= t_typical <= t_max,
# t_avg > 0; bandwidth: average > 0), and neither side complains.
#   VERBS_PERF_TOOLS="ib_send_lat ..."   a subset
#   VERBS_PERF_SIZES="2 4096 ..."        those sizes, one run each, instead
#                                        of -a (all: -a, the default)
#   VERBS_PERF_ITERS=N                   iterations per size (default 5, the least perftest takes)
# (-a takes 0.3 to 0.8 s a size on 2 loaded cores -- perftest's own busy
# waits, and much more when other busy-polling jobs share the cores -- so
# ctest runs two sizes; -a by hand.)
source "$(dirname "${BASH_SOURCE[0]}")/verbs_lib.sh"
verbs_init
ITERS=${VERBS_PERF_ITERS:-5}
TOOLS=${VERBS_PERF_TOOLS:-ib_send_lat ib_send_bw ib_write_lat ib_write_bw ib_read_lat ib_read_bw ib_atomic_lat ib_atomic_bw}

# rows FILE: the result rows (first two fields integers, then numbers)
rows() {
    awk '$1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ && NF >= 5 && $3 ~ /^([0-9.]+|inf|-?nan)$/' "$1"
}

# judge TOOL FILE SIZES...: FILE's table has one sane row per size
judge() {
    local tool=$1 f=$2 kind=bw
    shift 2
    [[ $tool == *_lat ]] && kind=lat
    rows "$f" >"$f.rows"
    local got want
    got=$(awk '{ print $1 }' "$f.rows" | tr '\n' ' ')
    want="$* "
    [ "$got" = "$want" ] || fail "$tool: $(basename "$f"): result rows for sizes '$got', expected '$want' (output: $(snip "$f" 500))"
    [ "${NOCLOCK:-0}" = 0 ] || kind=noclock
    awk -v n="$ITERS" -v k="$kind" -v t="$tool" '
        $2 != n { printf "%s: size %s: %s iterations, expected %s\n", t, $1, $2, n; bad = 1 }
        k == "lat" && !($3 > 0 && $3 <= $5 + 0.005 && $5 <= $4 + 0.005 && $6 > 0) {
            printf "%s: size %s: t_min %s t_max %s t_typical %s t_avg %s\n", t, $1, $3, $4, $5, $6; bad = 1 }
        k == "bw" && !($4 > 0) { printf "%s: size %s: average bandwidth %s\n", t, $1, $4; bad = 1 }
        END { exit bad }' "$f.rows" >"$f.bad" || fail "$(head -n 3 "$f.bad" | tr '\n' ' ')"
}

all_sizes=$(for ((i = 1; i <= 23; i++)); do printf '%d ' $((1 << i)); done)
SIZES=${VERBS_PERF_SIZES:-all}
for tool in $TOOLS; do
    command -v "$tool" >/dev/null || fail "$tool not installed (perftest)"
    # one run with -a (every size), or one run a size
    case $tool:$SIZES in
        ib_atomic_*) runs=(8) ;;
        *:all) runs=(all) ;;
        *) read -r -a runs <<<"$SIZES" ;;
    esac
    for sz in "${runs[@]}"; do
        args=(-n "$ITERS" -F)
        case $tool:$sz in
            ib_atomic_*) sizes=(8) ;;
            *:all) read -r -a sizes <<<"$all_sizes"; args+=(-a) ;;
            *) sizes=("$sz"); args+=(-s "$sz") ;;
        esac
        name=$tool-$sz
        # perftest times with the TSC, calibrated against gettimeofday at
        # its start; on a loaded machine the calibration can fail
        # ("Correlation coefficient r^2: ... < 0.9") and every figure is
        # inf: not the device's doing, so run it again (3 tries), then
        # judge only the rows' sizes and counts
        for try in 1 2 3; do
            port=$(free_port)
            VSRV=("$tool" "${args[@]}" -p "$port")
            VCLI=("${VSRV[@]}" 127.0.0.1)
            verbs_pair "$name" "$port"
            expect_rc0 "$name"
            NOCLOCK=0
            grep -q 'Correlation coefficient' "$CLI_OUT.err" "$SRV_OUT.err" 2>/dev/null || break
            NOCLOCK=1
            log "$name: perftest could not calibrate its clock (machine loaded), try $try"
        done
        judge "$tool" "$CLI_OUT" "${sizes[@]}"
        # ib_send_lat and ib_write_lat (ping-pong) print the table on both
        # sides; the bandwidth tools' servers print the last row at most
        case $tool in
            ib_send_lat | ib_write_lat) judge "$tool" "$SRV_OUT" "${sizes[@]}" ;;
        esac
        for f in "$SRV_OUT" "$CLI_OUT"; do
            ! grep -Eiq "couldn't|failed|error" "$f" "$f.err" ||
                fail "$name: $(basename "$f"): $(grep -Eih "couldn't|failed|error" "$f" "$f.err" | head -n 2 | tr '\n' ' ')"
        done
        log "$name: $(wc -l <"$CLI_OUT.rows") sizes; $(head -n 1 "$CLI_OUT.rows" | tr -s ' \t' ' ')"
    done
done
