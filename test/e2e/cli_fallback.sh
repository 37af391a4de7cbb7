#!/usr/bin/env bash
# cli_fallback: a restart resumes the newest generation that verifies.
# With the newest of two generations damaged (page data: bytes flipped in
# the middle of the file), `ckptmpi restart DIR` names it, says it falls
# back, and resumes the previous one; with the newest truncated,
# CKPTMPI_RESTART=latest does the same (the runtime reads every rank's
# tables first). Both runs end as the uninterrupted run, and the damaged
# files are left as they were.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap

NSTEPS=30
dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/heap_mmap" "$NSTEPS" 40 heap.log
hold_arm
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "$PROGS/heap_mmap" "$NSTEPS" 40 heap.log
job=$JOB_PID
wait_step "$WORK/run1.out" 3 "$job"
ckpt "$dir"
g1=$GEN
after1=$(last_step_of "$WORK/run1.out")
wait_step "$WORK/run1.out" $((after1 + 3)) "$job"
ckpt "$dir"
g2=$GEN
wait_step "$WORK/run1.out" $(($(last_step_of "$WORK/run1.out") + 2)) "$job"
finished "$WORK/run1.out" "$NSTEPS" && fail "the program finished before it could be killed"
kill_job "$job"
wait_exit "$REF_PID" "reference run"

f2=$(gen_file "$dir" "$g2")
cp "$f2" "$WORK/pristine.h5"
damage_middle "$f2"
ck verify "$dir" --generation "$g2"
[ "$RC" -eq 1 ] || fail "verify of the damaged generation exited $RC, expected 1"
sum=$(sha256sum <"$f2")

# ckptmpi restart: falls back to g1, saying so
restart_fg "$WORK/ck" "$WORK/restart.out" "$dir"
log "restart said: $(snip "$WORK/restart.out.err" 800)"
grep -q "ckptmpi: $f2: checksum mismatch .*: restarting generation $g1 of .* instead, the newest that verifies" "$WORK/restart.out.err" ||
    fail "the restart does not say it falls back to generation $g1: $(snip "$WORK/restart.out.err" 800)"
grep -q "resumed generation $g1 " "$WORK/restart.out.err" || fail "the restart did not resume generation $g1"
check_resume "$WORK/restart.out" 4 $((after1 + 1))
merge_outputs "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + restart from generation $g1)"
same_file "$WORK/ref/heap.log" "$WORK/ck/heap.log" "file heap.log"
[ "$(sha256sum <"$f2")" = "$sum" ] || fail "the restart changed the damaged generation"

# CKPTMPI_RESTART=latest: the newest truncated (its tables unreadable)
"${AS_USER[@]}" truncate -s $(($(stat -c %s "$f2") / 3)) "$f2"
sum=$(sha256sum <"$f2")
RC=0
(cd "$WORK/ck" && exec timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" env CKPTMPI_DIR="$dir" CKPTMPI_RESTART=latest \
    "$BUILD/bin/ckptmpi-runtime") >"$WORK/latest.out" 2>"$WORK/latest.out.err" </dev/null || RC=$?
[ "$RC" -eq 0 ] || fail "CKPTMPI_RESTART=latest exited $RC: $(snip "$WORK/latest.out.err" 800)"
log "CKPTMPI_RESTART=latest said: $(snip "$WORK/latest.out.err" 800)"
grep -q "$f2: .*: passed over: restarting $(gen_file "$dir" "$g1"), the newest generation that reads back" "$WORK/latest.out.err" ||
    fail "CKPTMPI_RESTART=latest does not say it falls back: $(snip "$WORK/latest.out.err" 800)"
grep -q "$(basename "$f2")" <(head -n 1 "$WORK/latest.out.err") || fail "the first line does not name the damaged file"
merge_outputs "$WORK/run1.out" "$WORK/latest.out" "$WORK/merged2.out"
same_file "$WORK/ref.out" "$WORK/merged2.out" "stdout (run 1 + CKPTMPI_RESTART=latest from generation $g1)"
same_file "$WORK/ref/heap.log" "$WORK/ck/heap.log" "file heap.log"
[ "$(sha256sum <"$f2")" = "$sum" ] || fail "the restart changed the damaged generation"
