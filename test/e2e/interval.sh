#!/usr/bin/env bash
# interval: "ckptmpi run --interval 1" checkpoints periodically without
# disturbing the program (its output equals an uninterrupted run's), and
# with CKPTMPI_KEEP=2 exactly the 2 newest generations remain; both verify,
# and the latest restarts to the same end.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap
# every generation full: incremental ones keep their parents (e2e_incremental)
export CKPTMPI_KEEP=2 CKPTMPI_FULL_EVERY=1

NSTEPS=70
SLEEP=80        # ~6 s of run time: about 5 periodic checkpoints
dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/heap_mmap" "$NSTEPS" "$SLEEP" heap.log
ref_pid=$REF_PID
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" --interval 1 -- "$PROGS/heap_mmap" "$NSTEPS" "$SLEEP" heap.log
job=$JOB_PID

# Watch the generations while it runs: never more than CKPTMPI_KEEP
# complete ones at a time (allowing one extra for the moment between a
# commit and the removal of the oldest).
max_seen=0
most=0
while _alive "$job"; do
    n=$(gens_in "$dir" | wc -l)
    [ "$n" -le 3 ] || fail "$n generations present at once with CKPTMPI_KEEP=2: $(gens_in "$dir" | tr '\n' ' ')"
    [ "$n" -le "$most" ] || most=$n
    g=$(gens_in "$dir" | tail -n 1)
    [ -z "$g" ] || [ "$g" -le "$max_seen" ] || max_seen=$g
    sleep 0.1
done
wait_exit "$job" "ckptmpi run --interval 1"
wait_exit "$ref_pid" "reference run"
same_file "$WORK/ref.out" "$WORK/run1.out" "stdout of the run with --interval 1"
same_file "$WORK/ref/heap.log" "$WORK/ck/heap.log" "file heap.log of the run with --interval 1"

mapfile -t gens < <(gens_in "$dir")
log "generations left: ${gens[*]:-none} (highest seen while running: $max_seen)"
[ "${#gens[@]}" -eq 2 ] || fail "expected exactly 2 generations with CKPTMPI_KEEP=2, found ${#gens[@]}: ${gens[*]:-none}"
latest=${gens[1]}
[ "$latest" -ge 3 ] || fail "only $latest generation(s) made in ~6 s with --interval 1, expected several"
[ "${gens[0]}" -eq $((latest - 1)) ] || fail "kept generations are ${gens[*]}, expected the 2 newest ($((latest - 1)) $latest)"
[ "$latest" -ge "$max_seen" ] || fail "generation $max_seen was seen but the newest left is $latest"
for g in "${gens[@]}"; do
    verify_ok "$dir" --generation "$g"
done

# The newest generation restarts and finishes the same way (the file was
# complete at the end of the run; the restart rolls it back and rewrites it).
restart_fg "$WORK/ck" "$WORK/restart.out" "$dir"
if [ ! -s "$WORK/restart.out" ]; then
    log "note: generation $latest was taken after the program's last line; nothing to compare"
else
    merge_outputs "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
    same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run + restart of generation $latest)"
fi
same_file "$WORK/ref/heap.log" "$WORK/ck/heap.log" "file heap.log after the restart"
