#!/usr/bin/env bash
# incremental: generations that store only the pages written since their
# parent (CKPTMPI_FULL_EVERY, docs/container.md "Incremental generations").
# bigheap (32 MiB of random words, a few hundred pages rewritten a step)
# is checkpointed three times (full, incremental, incremental) with
# CKPTMPI_KEEP=1, then killed:
# - the incremental generations name their parent and store a small
#   fraction of the full one's bytes (ls --json);
# - retention kept the generations the newest depends on;
# - verify passes; the restart of the newest reads through the chain and
#   the run ends exactly as an uninterrupted one;
# - with the middle generation's page data damaged, verify of the newest
#   names that generation and its file, and a restart falls back to the
#   full generation (the newest whose chain verifies) and again ends as
#   the uninterrupted run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog bigheap
PY=$(command -v python3) || skip "python3 not found"

NSTEPS=30
dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
# 32 MiB, 8192 pages; 128 words rewritten a step
args=("$PROGS/bigheap" "$NSTEPS" 80 32 128)
plain_bg "$WORK/ref" "$WORK/ref.out" -- "${args[@]}"
export CKPTMPI_KEEP=1 CKPTMPI_FULL_EVERY=4
hold_arm
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "${args[@]}"
unset CKPTMPI_KEEP CKPTMPI_FULL_EVERY
job=$JOB_PID

wait_step "$WORK/run1.out" 2 "$job"
req1=$(last_step_of "$WORK/run1.out")
ckpt "$dir"
g1=$GEN after1=$(last_step_of "$WORK/run1.out")
wait_step "$WORK/run1.out" $((after1 + 1)) "$job"
ckpt "$dir"
g2=$GEN
wait_step "$WORK/run1.out" $(($(last_step_of "$WORK/run1.out") + 1)) "$job"
req3=$(last_step_of "$WORK/run1.out")
ckpt "$dir"
g3=$GEN after3=$(last_step_of "$WORK/run1.out")
wait_step "$WORK/run1.out" $((after3 + 2)) "$job"
finished "$WORK/run1.out" "$NSTEPS" && fail "the program finished before it could be killed"
kill_job "$job"

[ "$(gens_in "$dir" | tr '\n' ' ')" = "$g1 $g2 $g3 " ] ||
    fail "CKPTMPI_KEEP=1 removed what generation $g3 depends on: the directory holds $(gens_in "$dir" | tr '\n' ' ') (expected $g1 $g2 $g3)"

ck ls "$dir" --json
[ "$RC" -eq 0 ] || fail "ckptmpi ls --json exited $RC: $(snip "$WORK/ck.err" 400)"
"$PY" - "$WORK/ck.out" "$g1" "$g2" "$g3" <<'EOF' || fail "ls --json: $(snip "$WORK/ck.out" 1500)"
import json, sys
gens = {g["generation"]: g for g in json.load(open(sys.argv[1]))}
g1, g2, g3 = (int(a) for a in sys.argv[2:5])
want = {g1: 0, g2: g1, g3: g2}
for g, parent in want.items():
    if gens[g]["pages_parent"] != parent:
        sys.exit(f"generation {g}: pages_parent {gens[g]['pages_parent']}, expected {parent}")
full = gens[g1]["memory_saved"]
for g in (g2, g3):
    part = gens[g]["memory_saved"]
    print(f"generation {g}: {part} bytes of pages against {full} in generation {g1} "
          f"({100.0 * part / full:.1f}%)")
    # a step rewrites at most 128 of 8192 pages; a few steps, the stack,
    # stdio: far below a quarter
    if not 0 < part < full / 4:
        sys.exit(f"generation {g} stored {part} bytes, generation {g1} {full}: not a small fraction")
EOF
log "$(cat "$WORK/ck.out" | "$PY" -c 'import json,sys; print(" ".join("%d:%d" % (g["generation"], g["memory_saved"]) for g in json.load(sys.stdin)))')"
verify_ok "$dir"
cp "$WORK/run1.out" "$WORK/run1.keep"

# the newest, through the chain
restart_fg "$WORK/ck" "$WORK/restart.out" "$dir"
check_resume "$WORK/restart.out" $((req3 + 1)) $((after3 + 1))
wait_exit "$REF_PID" "reference run"
merge_outputs "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + restart of incremental generation $g3)"

# the middle generation damaged: its page data, in the middle of the file
f2=$(gen_file "$dir" "$g2")
damage_middle "$f2"
ck verify "$dir" --generation "$g3"
[ "$RC" -eq 1 ] || fail "verify of generation $g3 over a damaged parent exited $RC, expected 1"
grep -q "generation $g3's pages depend on generation $g2 ($f2)" "$WORK/ck.err" ||
    fail "verify does not name the damaged parent: $(snip "$WORK/ck.err" 600)"
log "verify: $(head -c 300 "$WORK/ck.err")"

restart_fg "$WORK/ck" "$WORK/restart2.out" "$dir"
grep -q "restarting generation $g1 .*instead" "$WORK/restart2.out.err" ||
    fail "the restart did not fall back to generation $g1: $(snip "$WORK/restart2.out.err" 600)"
check_resume "$WORK/restart2.out" $((req1 + 1)) $((after1 + 1))
merge_outputs "$WORK/run1.keep" "$WORK/restart2.out" "$WORK/merged2.out"
same_file "$WORK/ref.out" "$WORK/merged2.out" "stdout (run 1 + restart of full generation $g1)"
log "PASS"
