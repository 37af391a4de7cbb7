#!/usr/bin/env bash
# mpi_merge_steps: the output merge of the MPI checkpoint cases
# (merge_steps and _mpi_check_resume in lib.sh) on hand-made fixtures:
# what it must accept, and each way it must refuse.  No MPI, no ckptmpi.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init --no-ckptmpi

F=$WORK/fx
mkdir -p "$F"

# the uninterrupted run: steps 0..10 and a final line
ref() {
    echo "0 prog np=4 niter=10"
    for i in $(seq 1 10); do echo "$i x=$((i * i)) h=$((i * 7919 % 1000))"; done
    echo "11 final 42"
}
ref >"$F/ref"
lines() { sed -n "$1,$2p" "$F/ref"; } # 1-based line numbers: step k is line k+1

# expect_merge NAME RUN1 RESTART: must merge to the reference
expect_merge() {
    local name=$1
    merge_steps "$2" "$3" "$F/$name.merged"
    cmp -s "$F/ref" "$F/$name.merged" ||
        fail "$name: merged output differs from the reference: $(diff "$F/ref" "$F/$name.merged" | head -n 8 | tr '\n' '|')"
    log "ok: $name"
}

# expect_refused NAME NEEDLE CMD...: CMD (a merge_steps or _mpi_check_resume
# call) must fail, naming NEEDLE
expect_refused() {
    local name=$1 needle=$2 rc=0
    shift 2
    ("$@") 2>"$F/$name.err" >/dev/null || rc=$?
    [ "$rc" -ne 0 ] || fail "$name: accepted, expected a refusal naming '$needle'"
    grep -qF -- "$needle" "$F/$name.err" ||
        fail "$name: refused without naming '$needle': $(snip "$F/$name.err" 400)"
    log "ok: $name refused: $(grep -m 1 FAIL "$F/$name.err" | cut -c1-160)"
}

# 1. killed after step 7 in the middle of step 8's line; restart resumes at 6
lines 1 8 >"$F/r1.a"
printf '8 x=6' >>"$F/r1.a"
lines 7 12 >"$F/rs.a"
expect_merge partial_last_line "$F/r1.a" "$F/rs.a"

# 2. no overlap: the restart begins right after the first run's last step
lines 1 5 >"$F/r1.b"
lines 6 12 >"$F/rs.b"
expect_merge no_overlap "$F/r1.b" "$F/rs.b"

# 3. overlap of one line, the first run's output ending with a newline
lines 1 9 >"$F/r1.c"
lines 9 12 >"$F/rs.c"
expect_merge overlap_one "$F/r1.c" "$F/rs.c"

# 4. a chain: the merge of a merge
lines 1 4 >"$F/r1.d"
lines 3 7 >"$F/r2.d"
lines 6 12 >"$F/rs.d"
merge_steps "$F/r1.d" "$F/r2.d" "$F/m1.d"
expect_merge chain "$F/m1.d" "$F/rs.d"

# 5. a line printed before the kill and again after the restart differs
lines 1 8 >"$F/r1.e"
{ lines 7 7; echo "7 x=49 h=999"; lines 9 12; } >"$F/rs.e"
expect_refused duplicate_differs 'differs between the first run and the restart' \
    merge_steps "$F/r1.e" "$F/rs.e" "$F/e.merged"

# 6. steps missing between the runs
lines 1 5 >"$F/r1.f"
lines 8 12 >"$F/rs.f"
expect_refused gap 'steps 5..6 are missing' merge_steps "$F/r1.f" "$F/rs.f" "$F/f.merged"

# 7. the restart does not begin with a step number
lines 1 5 >"$F/r1.g"
{ echo "warning: something"; lines 6 12; } >"$F/rs.g"
expect_refused no_step 'does not begin with a step number' merge_steps "$F/r1.g" "$F/rs.g" "$F/g.merged"

# 8. the restart printed less than the first run printed past its first step
lines 1 9 >"$F/r1.h"
lines 6 7 >"$F/rs.h"
expect_refused short_restart 'printed only 2 lines' merge_steps "$F/r1.h" "$F/rs.h" "$F/h.merged"

# 9. an empty restart output
lines 1 5 >"$F/r1.i"
: >"$F/rs.i"
expect_refused empty_restart 'is empty' merge_steps "$F/r1.i" "$F/rs.i" "$F/i.merged"

# 10. a stray line in the first run is kept: the merge no longer equals the reference
{ lines 1 3; echo "stray message"; lines 4 6; } >"$F/r1.j"
lines 6 12 >"$F/rs.j"
merge_steps "$F/r1.j" "$F/rs.j" "$F/j.merged"
! cmp -s "$F/ref" "$F/j.merged" || fail "stray_line: a stray line of the first run vanished in the merge"
grep -qx 'stray message' "$F/j.merged" || fail "stray_line: the stray line is not in the merge"
log "ok: stray_line kept"

# 11. a restart that started over (step 0) merges cleanly but is refused
#     by the resume check (step 3 was out before the request); so is one
#     that skipped a step
lines 1 6 >"$F/r1.k"
lines 1 12 >"$F/rs.k"
expect_merge started_over_merges "$F/r1.k" "$F/rs.k"
expect_refused started_over 'did it start over' _mpi_check_resume "$F/rs.k" 3 5
# the restart of fixture 1 resumes at step 6: fine if step 5 was the last
# one out at the commit, not if step 4 was (step 5 skipped)
_mpi_check_resume "$F/rs.a" 3 5
expect_refused skipped 'steps skipped' _mpi_check_resume "$F/rs.a" 3 4
log "ok: resume check"

# 12. ls_ranks reads the rank count of "ckptmpi ls"
cat >"$F/ls" <<'LS'
generation created              reason        file bytes   memory saved   process size  ranks program
3          2026-01-02 10:11:12  signal           1234567        2345678        3456789      8 /x/mpi_p2p_linked_mpich 40 50
12         2026-01-02 10:11:19  sigterm          1234567        2345678        3456789     16 /x/prog
LS
[ "$(ls_ranks 3 "$F/ls")" = 8 ] || fail "ls_ranks: generation 3 read as '$(ls_ranks 3 "$F/ls")', expected 8"
[ "$(ls_ranks 12 "$F/ls")" = 16 ] || fail "ls_ranks: generation 12 read as '$(ls_ranks 12 "$F/ls")', expected 16"
[ -z "$(ls_ranks 4 "$F/ls")" ] || fail "ls_ranks: found a generation 4 that is not there"
log "ok: ls_ranks"
