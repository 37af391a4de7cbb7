#!/usr/bin/env bash
# bench/debug_bench.sh [BUILD_DIR] [PAD_MIB=50] [REPS=5]: how fast the
# reverse commands of `ckptmpi debug` answer (issue 10, item 6), for
# test/programs/reverse_demo holding PAD_MIB MiB of touched memory.
# Reported, never asserted. Baselines measured in the same run:
#   plain run     the program alone (no ckptmpi, no GDB), start to end
#   checkpoint    the session's own checkpoint at the first stop
#   restart       one restart of it under the same GDB session
# and then, each REPS times (median and max): reverse-next right after a
# next (one restart), reverse-next after an undo (a search: two), undo,
# reverse-step, reverse-continue; last, one `ckptmpi bisect --expr` probe
# (a generation restarted under GDB in batch mode: GDB's start included)
# and `ckptmpi restart` of the same generation outside GDB.
set -euo pipefail
BUILD=$(cd "${1:-$(dirname "$0")/../build}" && pwd)
MIB=${2:-50}
REPS=${3:-5}
PROG=$BUILD/test/programs/reverse_demo
CK=$BUILD/bin/ckptmpi
[ -x "$PROG" ] && [ -x "$CK" ] || { echo "build $BUILD first (reverse_demo, ckptmpi)" >&2; exit 2; }
command -v gdb >/dev/null || { echo "gdb is not installed" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/ckptmpi-debug-bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
SRC=$(cd "$(dirname "$0")/.." && pwd)
L_SUM=$(grep -n 'acc.sum += v;' "$SRC/test/programs/reverse_demo.c" | cut -d: -f1)

now() { date +%s.%N; }
# the program alone
t0=$(now)
echo 42 | "$PROG" 8 5 "$MIB" >/dev/null
plain=$(echo "$(now) - $t0" | bc)

cat >"$W/bench.py" <<PY
import time, gdb
def timed(cmd):
    t = time.time()
    gdb.execute(cmd, to_string=True)
    return time.time() - t
R = __import__("ckptmpi_reverse")
gdb.execute("break reverse_demo.c:$L_SUM", to_string=True)
gdb.execute("run", to_string=True)
ckpt = R._stats.get("checkpoint", 0)
gdb.execute("continue", to_string=True)
gdb.execute("continue", to_string=True)
gdb.execute("next", to_string=True)
gdb.execute("next", to_string=True)
res = {"reverse-next": [], "reverse-next-search": [], "undo": [], "reverse-step": [],
       "reverse-continue": [], "restart": []}
for _i in range($REPS):
    # right after a next: what the next noted gives the line (one restart)
    res["reverse-next"].append(timed("reverse-next"))
    res["restart"].append(R._stats.get("restart", 0))
    # after an undo: a search (re-execution to now, then to the line)
    res["undo"].append(timed("undo"))
    res["reverse-next-search"].append(timed("reverse-next"))
    gdb.execute("next", to_string=True)
    gdb.execute("next", to_string=True)
for _i in range($REPS):
    res["reverse-step"].append(timed("reverse-step"))
    res["undo"].append(timed("undo"))
    res["reverse-continue"].append(timed("reverse-continue"))
    gdb.execute("undo", to_string=True)
print("RESULT checkpoint %.3f" % ckpt)
for k, v in res.items():
    v = sorted(v)
    print("RESULT %s %.3f %.3f" % (k, v[len(v) // 2], v[-1]))
gdb.execute("kill", to_string=True)
PY
echo 42 | "$CK" debug --dir "$W/ck" -batch -ex "source $W/bench.py" -- "$PROG" 8 5 "$MIB" \
    >"$W/session.out" 2>"$W/session.err" || { tail -20 "$W/session.err" >&2; exit 1; }
grep -q '^RESULT reverse-next' "$W/session.out" || { tail -20 "$W/session.out" "$W/session.err" >&2; exit 1; }

# a generation of a plain run for bisect and ckptmpi restart: a checkpoint
# at main, taken by a debug session that then exits
echo 42 | "$CK" debug --dir "$W/gen" -batch -ex "break main" -ex run -- "$PROG" 8 5 "$MIB" \
    >/dev/null 2>&1 || true
ls "$W/gen"/ckpt-*.h5 >/dev/null 2>&1 || { echo "no generation for the bisect probe" >&2; exit 1; }
t0=$(now)
"$CK" bisect "$W/gen" --expr 'acc.sum < 0' --no-reexecute >"$W/bisect.out" 2>&1 || true
bis=$(echo "$(now) - $t0" | bc)
probes=$(sed -n 's/^probes: //p' "$W/bisect.out")
t0=$(now)
echo 42 | "$CK" restart "$W/gen" >/dev/null 2>&1 || true
rst=$(echo "$(now) - $t0" | bc)

printf '\nckptmpi debug, reverse_demo with %s MiB (%s, %s cores)\n' "$MIB" "$(date -u +%F)" "$(nproc)"
printf '%-34s %8s %8s\n' "" "median" "max"
printf '%-34s %8.3f\n' "plain run of the program (s)" "$plain"
awk '/^RESULT checkpoint/ { printf "%-34s %8.3f\n", "session checkpoint at a stop (s)", $3 }' "$W/session.out"
awk '/^RESULT / && $2 != "checkpoint" { printf "%-34s %8.3f %8.3f\n", $2 " (s)", $3, $4 }' "$W/session.out"
printf '%-34s %8.3f   (%s probe(s), GDB start included)\n' "ckptmpi bisect --expr, per probe" \
    "$(echo "$bis / ${probes:-1}" | bc -l)" "${probes:-?}"
printf '%-34s %8.3f   (restart and the rest of the run)\n' "ckptmpi restart, outside GDB" "$rst"
