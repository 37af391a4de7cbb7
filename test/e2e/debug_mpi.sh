#!/usr/bin/env bash
# debug_mpi: `ckptmpi bisect DIR --expr --rank R / --any-rank` and
# `ckptmpi debug --restart DIR --rank R` over the generations of an MPI job
# (FLAVOUR=mpich, the default, or openmpi). mpi_bisect is a stencil on 4
# ranks whose halos come through MPI_ANY_SOURCE receives; rank 1 alone
# makes cell 5 a NaN at step K (drawn here, told to no tool), before its
# `at_step` reaches K. Four checkpoints are requested at known steps, two
# before K and two after. Expected, from each generation's rank-1 image read
# by `debug --restart --rank 1` (`at_step`, and `me` = 1: the right slice): the
# first generation whose step is >= K. `bisect --rank 1` names it, with the
# backtrace at its cut, then restarts the whole job from the last false
# generation with rank 1 under a watchpoint and names the planted line;
# `--any-rank` names rank 1 first; `--rank 0` finds nothing for an
# expression never true. An inspected rank refuses to run on (`continue`);
# the job's directories are not touched; bad requests get clear errors.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/debug_lib.sh"
debug_init
FL=${FLAVOUR:-mpich}
mpi_setup "$FL"
need_prog "mpi_bisect_$FL"
MPI_NP=4
MPI_TRIGGER=rank
NSTEPS=50   # the last request, K + 8, may land 12 steps late: before the end
K=$((18 + RANDOM % 5))   # 18..22
dir=$WORK/ckpt
mkdirs "$WORK/run" "$dir"
log "rank 1 goes bad at step $K"
hold_arm # (the job waits at its end for the last request, then is released)
mpi_start "$WORK/run" "$WORK/job.out" CKPTMPI_DIR="$dir" CKPTMPI_INTERVAL=0 CKPTMPI_KEEP=100 -- \
    "$BUILD/bin/ckptmpi-runtime-$FL" "$PROGS/mpi_bisect_$FL" "$NSTEPS" "$K" 100
# (a cut lands up to 12 steps after the line its request waited for,
# seen: rank 0's output comes late through mpirun, and a request waits for
# the previous commit. Generation 2 must land before step K)
for at in 3 $((K - 12)) $((K + 2)) $((K + 8)); do
    mpi_wait_step "$WORK/job.out" "$at"
    mpi_request_ckpt "$dir" "$WORK/job.out"
done
hold_release
mpi_wait_gone "the job" "$(_mpi_t 60)"
[ "$RC" -eq 0 ] || fail "mpirun exited $RC: $(_mpi_first_error "$WORK/job.out.err")"
finished_at=$(last_step_of "$WORK/job.out")
[ "$finished_at" -eq "$NSTEPS" ] || fail "the job ended at step $finished_at, not $NSTEPS"
grep -q "^$((K - 1)) bad ranks 0\$" "$WORK/job.out" && grep -q "^$K bad ranks 1\$" "$WORK/job.out" ||
    fail "the program's own output does not show one bad rank from step $K on: $(snip "$WORK/job.out" 800)"
mapfile -t gens < <(gens_in "$dir")
log "generations: ${gens[*]}"
[ "${#gens[@]}" -eq 4 ] || fail "expected 4 generations, found ${#gens[@]}"
ls -l --time-style=full-iso "$WORK/run" "$dir" >"$WORK/ls.before"

# ---- the truth, one generation at a time: rank 1's step in its image
expect_first=""
expect_last=""
prev=0
for g in "${gens[@]}"; do
    dck debug --restart "$dir" --rank 1 --inspect --generation "$g" -batch -ex 'continue' \
        -ex 'echo @step\n' -ex 'print at_step' -ex 'echo @me\n' -ex 'print me' \
        -ex 'echo @bad\n' -ex 'print grid[5] != grid[5]'
    cp "$WORK/ck.out" "$WORK/inspect$g.out"
    cp "$WORK/ck.err" "$WORK/inspect$g.err"
    [ "$RC" -eq 0 ] || fail "debug --restart --rank 1 --generation $g exited $RC: $(snip "$WORK/ck.err" 800)"
    grep -q "rank 1 of the 4-rank $FL job" "$WORK/ck.err" ||
        fail "generation $g: no word of inspecting rank 1: $(snip "$WORK/ck.err" 800)"
    # an inspected rank does not run on: the values printed are the image's
    grep -q "cannot run on" "$WORK/ck.err" ||
        fail "generation $g: continue on an inspected rank was not refused: $(snip "$WORK/ck.err" 800)"
    s=$(out_value step)
    me=$(out_value me)
    b=$(out_value bad)
    log "generation $g, rank 1: at_step $s, me $me, bad $b"
    [ "$me" = 1 ] || fail "generation $g: me = '$me' in the image restored for rank 1 (another rank's slice?)"
    [[ $s =~ ^[0-9]+$ ]] && [ "$s" -ge 1 ] && [ "$s" -le "$NSTEPS" ] ||
        fail "generation $g: step = '$s', not a step of the run"
    [ "$s" -ge "$prev" ] || fail "generation $g: step $s is before the previous generation's ($prev)"
    prev=$s
    if [ "$s" -ge "$K" ]; then
        [ "$b" = 1 ] || fail "generation $g: step $s >= $K but bad = '$b'"
        [ -n "$expect_first" ] || expect_first=$g
    else
        [ "$b" = 0 ] || fail "generation $g: step $s < $K but bad = '$b'"
        expect_last=$g
    fi
done
[ -n "$expect_first" ] && [ -n "$expect_last" ] ||
    fail "the generations do not straddle step $K (first true '$expect_first', last false '$expect_last')"
log "expected: first true generation $expect_first, last false $expect_last"

# ---- bisect --rank 1
# C's isnan, as a user writes it (the tools spell it for GDB)
NAN='isnan(grid[5])'
NAN_RE='isnan\(grid\[5\]\)'
PNAN='grid[5] != grid[5]'   # GDB's print
PLANTED=$(grep -nF '/* the planted bug */' "$SRC_DIR/test/programs/mpi_bisect.c" | cut -d: -f1)
dck bisect "$dir" --expr "$NAN" --rank 1
cp "$WORK/ck.out" "$WORK/rank1.out"
show_on_failure "$WORK/rank1.out"
[ "$RC" -eq "$BISECT_RC" ] ||
    fail "bisect --rank 1 exited $RC, expected $BISECT_RC: $(snip "$WORK/ck.err" 800) $(snip "$WORK/ck.out" 800)"
first=$(sed -n 's/^first true: generation \([0-9]*\) .*/\1/p' "$WORK/rank1.out")
last=$(sed -n 's/^rank 1: last false: generation \([0-9]*\) .*/\1/p' "$WORK/rank1.out")
[ "$first" = "$expect_first" ] || fail "bisect --rank 1: first true generation '$first', expected $expect_first"
[ "$last" = "$expect_last" ] || fail "bisect --rank 1: last false generation '$last', expected $expect_last"
out_has "^first true: generation $first .*: $NAN_RE on rank 1\$" "bisect --rank 1"
out_has "^rank 1 at the cut of generation $first: $NAN_RE = 1, in [a-z_]+ \\(mpi_bisect.c:[0-9]+\\)" \
    "bisect --rank 1: the place at the cut"
out_has "^#[0-9]+ .*main \\(.*mpi_bisect.c:[0-9]+" "bisect --rank 1: the backtrace"
# re-executed: the whole job restarted from the last false generation,
# rank 1 under a watchpoint: the planted line, at step K
if ! reexec_refused "$WORK/rank1.out" "$WORK/ck.err"; then
    out_has "^became true at: .*/mpi_bisect\\.c:$PLANTED in main \\(thread 1, re-executing from generation $last on rank 1 \\(the whole 4-rank job restarted\\)\\)\$" \
        "bisect --rank 1: the re-execution"
    out_has "^  s = $K\$" "bisect --rank 1: the step at the planted line"
fi
n=$(grep -c '^probe generation ' "$WORK/rank1.out" || true)
[ "$n" -le 4 ] || fail "bisect --rank 1 made $n probes over 4 generations"

# ---- debug --restart --rank 1 from the last false generation: the whole
# job runs on from it, rank 1 under GDB, stopped at its cut. Rank 1 stops
# at the planted line (step K), `next` makes the NaN, `reverse-next` takes
# it back (the job restarted from the generation again, replaying what
# MPI decided in the first run from there), `next` again, then the job
# runs to its end: its output from the cut on is the original run's.
# (MPICH only: the OpenMPI test restarts its job in bisect's re-execution)
if [ "$FL" = mpich ]; then
    dck debug --restart "$dir" --rank 1 --generation "$last" --job-output "$WORK/rerun.out" -batch \
        -ex "break mpi_bisect.c:$PLANTED" -ex continue -ex 'echo @s\n' -ex 'print s' \
        -ex next -ex 'echo @nan1\n' -ex "print $PNAN" -ex reverse-next -ex 'echo @nan0\n' \
        -ex "print $PNAN" -ex 'echo @s0\n' -ex 'print s' -ex next -ex 'echo @nan2\n' -ex "print $PNAN" \
        -ex delete -ex continue
    cp "$WORK/ck.out" "$WORK/whole.out"
    cp "$WORK/ck.err" "$WORK/whole.err"
    [ "$RC" -eq 0 ] || fail "debug --restart --rank 1 (the whole job) exited $RC: $(snip "$WORK/ck.err" 800)"
    grep -q "the whole 4-rank $FL job restarted from it" "$WORK/ck.err" ||
        fail "debug --restart --rank 1: no word of the job restarted: $(snip "$WORK/ck.err" 800)"
    for v in "s $K" "nan1 1" "nan0 0" "s0 $K" "nan2 1"; do
        got=$(out_value "${v% *}")
        [ "$got" = "${v#* }" ] || fail "debug --restart --rank 1: ${v% *} = '$got', expected ${v#* }: $(snip "$WORK/ck.out" 1500)"
    done
    grep -q "reverse-next" "$WORK/ck.err" && grep -q "diverged" "$WORK/ck.err" &&
        fail "the replay diverged: $(grep diverged "$WORK/ck.err" | head -3)"
    [ "$(last_step_of "$WORK/rerun.out")" -eq "$NSTEPS" ] ||
        fail "the job run on from generation $last did not reach step $NSTEPS: $(snip "$WORK/rerun.out" 600) $(snip "$WORK/rerun.out.err" 600)"
    while read -r line; do
        grep -qxF -- "$line" "$WORK/job.out" ||
            fail "the job run on from generation $last printed '$line', which the original run did not: $(snip "$WORK/rerun.out" 600)"
    done < <(grep -E '^[0-9]+ bad ranks' "$WORK/rerun.out")
    log "debug --restart --rank 1: the whole job ran on from generation $last, reverse-next and all"
fi

# ---- bisect --any-rank: rank 1 only
if [ "$FL" = mpich ]; then   # (the same code on OpenMPI: not twice)
    # (the NaN reaches the cell 5 of ranks 0 and 2 at step K + 15: 11 cells
    # to rank 1's edge, one step across, 4 more cells. Generation 3, asked
    # for at K + 2, comes before it; generation 4 may not: up to the third
    # only, and the --no-reexecute search only)
    dck bisect "$dir" --expr "$NAN" --any-rank --no-reexecute --to "${gens[2]}"
    cp "$WORK/ck.out" "$WORK/any.out"
    show_on_failure "$WORK/any.out"
    [ "$RC" -eq 0 ] || fail "bisect --any-rank exited $RC: $(snip "$WORK/ck.err" 800)"
    out_has "^first true: generation $expect_first .*: $NAN_RE on rank 1\$" "bisect --any-rank"
    for r in 0 2 3; do
        out_has "^rank $r: never true" "bisect --any-rank (rank $r)"
    done
    ! grep -q '^became true' "$WORK/any.out" || fail "bisect --no-reexecute re-executed"
fi

# ---- bisect --rank 0: never true (exit 1), one probe (the newest)
dck bisect "$dir" --expr 'at_step > 1000' --rank 0
[ "$RC" -eq 1 ] || fail "bisect --rank 0 exited $RC, expected 1 (never true): $(snip "$WORK/ck.out" 800)"
out_has "^never true: " "bisect --rank 0"
out_has "^probes: 1\$" "bisect --rank 0"

# ---- bisect --run over the whole job (MPICH only: the OpenMPI test runs
# the same code): each probe restarts every rank from the generation for
# 1 s, then the command judges the job's own output: the first step it
# printed after the restart had no bad rank = good
if [ "$FL" = mpich ]; then
    cat >"$WORK/judge.sh" <<'EOF'
#!/bin/sh
first=$(grep -m1 ' bad ranks ' "$CKPTMPI_BISECT_OUTPUT") || exit 125
case "$first" in *" bad ranks 0") exit 0 ;; *) exit 1 ;; esac
EOF
    chmod a+rx "$WORK/judge.sh"
    # (over the two generations around K: the two probes cost 3 s each)
    dck bisect "$dir" --run "$WORK/judge.sh" --for 1 --from "$expect_last" --to "$expect_first"
    cp "$WORK/ck.out" "$WORK/run.out"
    [ "$RC" -eq 0 ] || fail "bisect --run exited $RC: $(snip "$WORK/ck.err" 800) $(snip "$WORK/ck.out" 800)"
    first=$(sed -n 's/^first true: generation \([0-9]*\) .*/\1/p' "$WORK/run.out")
    [ "$first" = "$expect_first" ] || fail "bisect --run: first bad generation '$first', expected $expect_first: $(snip "$WORK/run.out" 800)"
    ! grep -q 'exited 125' "$WORK/run.out" || fail "bisect --run: a restarted job printed nothing in 1 s: $(snip "$WORK/run.out" 800)"
fi

# ---- bad requests
g1=$(basename "$(gen_file "$dir" "${gens[0]}")")
expect_error "$g1: a 4-rank $FL job: give the rank to inspect" bisect "$dir" --expr "$NAN"
expect_error "$g1: --rank 4, but the job has 4 rank(s)" bisect "$dir" --expr "$NAN" --rank 4
expect_error "--rank 7, but the job has 4 rank(s)" debug --restart "$dir" --rank 7 -batch
expect_error "--rank and --any-rank are for --expr" bisect "$dir" --run true --rank 1

# ---- nothing of the job's was touched
ls -l --time-style=full-iso "$WORK/run" "$dir" >"$WORK/ls.after"
same_file "$WORK/ls.before" "$WORK/ls.after" "listing of the job's directories" "before inspecting"
log "PASS: bisect names generation $expect_first and mpi_bisect.c:$PLANTED (rank 1's NaN at step $K)"
