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
#   VERBS_PERF_SIZE=N                    one size (N bytes) instead of -a
#   VERBS_PERF_ITERS=N                   iterations per size (default 5, the least perftest takes)
source "$(dirname "${BASH_SOURCE[0]}")/verbs_lib.sh"
verbs_init
ITERS=${VERBS_PERF_ITERS:-5}
TOOLS=${VERBS_PERF_TOOLS:-ib_send_lat ib_send_bw ib_write_lat ib_write_bw ib_read_lat ib_read_bw ib_atomic_lat ib_atomic_bw}

# rows FILE: the result rows (first two fields integers, then numbers)
rows() {
    awk '$1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ && NF >= 5 && $3 ~ /^[0-9.]+$/' "$1"
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
    awk -v n="$ITERS" -v k="$kind" -v t="$tool" '
        $2 != n { printf "%s: size %s: %s iterations, expected %s\n", t, $1, $2, n; bad = 1 }
        k == "lat" && !($3 > 0 && $3 <= $5 + 0.005 && $5 <= $4 + 0.005 && $6 > 0) {
            printf "%s: size %s: t_min %s t_max %s t_typical %s t_avg %s\n", t, $1, $3, $4, $5, $6; bad = 1 }
        k == "bw" && !($4 > 0) { printf "%s: size %s: average bandwidth %s\n", t, $1, $4; bad = 1 }
        END { exit bad }' "$f.rows" >"$f.bad" || fail "$(head -n 3 "$f.bad" | tr '\n' ' ')"
}

all_sizes=$(for ((i = 1; i <= 23; i++)); do printf '%d ' $((1 << i)); done)
for tool in $TOOLS; do
    command -v "$tool" >/dev/null || fail "$tool not installed (perftest)"
    port=$(free_port)
    args=(-n "$ITERS" -p "$port" -F)
    # shellcheck disable=SC2206
    sizes=($all_sizes)
    case $tool in
        ib_atomic_*) sizes=(8) ;;
        *) if [ -n "${VERBS_PERF_SIZE:-}" ]; then
               sizes=("$VERBS_PERF_SIZE")
               args+=(-s "$VERBS_PERF_SIZE")
           else
               args+=(-a)
           fi ;;
    esac
    VSRV=("$tool" "${args[@]}")
    VCLI=("$tool" "${args[@]}" 127.0.0.1)
    verbs_pair "$tool" "$port"
    expect_rc0 "$tool"
    judge "$tool" "$CLI_OUT" "${sizes[@]}"
    # ib_send_lat and ib_write_lat (ping-pong) print the table on both
    # sides; the bandwidth tools' servers print the last row at most
    case $tool in
        ib_send_lat | ib_write_lat) judge "$tool" "$SRV_OUT" "${sizes[@]}" ;;
    esac
    for f in "$SRV_OUT" "$CLI_OUT"; do
        ! grep -Eiq "couldn't|failed|error" "$f" "$f.err" ||
            fail "$tool: $(basename "$f"): $(grep -Eih "couldn't|failed|error" "$f" "$f.err" | head -n 2 | tr '\n' ' ')"
    done
    log "$tool: $(wc -l <"$CLI_OUT.rows") sizes; $(head -n 1 "$CLI_OUT.rows" | tr -s ' \t' ' ')"
done
