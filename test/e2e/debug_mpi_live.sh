#!/usr/bin/env bash
# debug_mpi_live: `ckptmpi debug --rank 0 -np 3 --replay DIR -- PROGRAM`,
# GDB on rank 0 of a live MPI job with reverse commands (docs/debug.md,
# "A live MPI job"). FLAVOUR=mpich (default) or openmpi.
#
# mpi_debug_wild: ranks 1 and 2 nap a random while and send rank 0 a
# value; rank 0 takes them with MPI_ANY_SOURCE in arrival order (`order`,
# `acc`) and sends `acc` back. A run recorded with CKPTMPI_MPI_RECORD=1
# gives the truth (its output). The session replays it: at the breakpoint
# `src` and `order` must be those of the recorded output; at the second
# hit `reverse-continue` must show exactly the first hit, `continue` the
# second again; after three `next`, `reverse-next` must show exactly the
# line and values of the second (one statement earlier). The session takes
# a job-wide generation at every other stop (ckptmpi-checkpoint-stops 2):
# each reverse command relaunches the whole job from the newest one before
# its target, every rank replaying. The state includes a clock value rank 0
# read (`stamp`): the same after going back only if the clock is replayed.
# After the session runs on to the end, every rank's lines are the
# recorded run's (replay held on the ranks GDB does not see). Without
# replay, the senders' order is drawn anew (1 in 16 to be the same).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/debug_lib.sh"
debug_init
FL=${FLAVOUR:-mpich}
mpi_setup "$FL"
need_prog "mpi_debug_wild_$FL"
MPI_NP=3
ROUNDS=4
SRC=$SRC_DIR/test/programs/mpi_debug_wild.c
BLINE=$(grep -n "the breakpoint's line" "$SRC" | cut -d: -f1)
[ -n "$BLINE" ] || fail "cannot find the breakpoint's line in $SRC"

# ---- the recorded run: the truth
mkdirs "$WORK/rec" "$WORK/rec/ck"
mpi_run "$WORK/rec" "$WORK/rec.out" CKPTMPI_DIR="$WORK/rec/ck" CKPTMPI_MPI_RECORD=1 -- \
    "$BUILD/bin/ckptmpi-runtime-$FL" "$PROGS/mpi_debug_wild_$FL" "$ROUNDS"
[ -s "$WORK/rec/ck/replay/mpi.rank-0.log" ] || fail "the recorded run left no MPI log of rank 0"
order1=$(sed -n 's/^rank 0 round 1 order \([0-9]*\) .*/\1/p' "$WORK/rec.out")
[[ $order1 =~ ^[12][12]$ ]] || fail "the recorded run's round 1: order '$order1' $(snip "$WORK/rec.out" 400)"
log "recorded run: round 1 order $order1"

# ---- the session
cat >"$WORK/state.gdb" <<'EOF'
define state
python f = gdb.selected_frame(); print("STATE line %d k %s src %s order %s acc %s stamp %s" % ((f.find_sal().line,) + tuple(str(gdb.parse_and_eval(v)) for v in ("k", "src", "order", "acc", "stamp"))))
end
EOF
chmod a+r "$WORK/state.gdb"
mkdirs "$WORK/sess"
st() { printf '%s\n' -ex "echo @$1\\n" -ex state; }
mapfile -t cmds < <(
    # a job-wide generation at every other stop: each reverse command
    # restarts the job from the newest one before its target, not from
    # the start
    printf '%s\n' -x "$WORK/state.gdb" -ex 'set ckptmpi-checkpoint-stops 2' \
        -ex "break mpi_debug_wild.c:$BLINE" -ex continue
    st hit1
    printf '%s\n' -ex continue
    st hit2
    printf '%s\n' -ex reverse-continue
    st rc
    printf '%s\n' -ex continue
    st again
    for i in 1 2 3; do
        printf '%s\n' -ex next
        st "n$i"
    done
    printf '%s\n' -ex reverse-next
    st rn
    printf '%s\n' -ex run -ex 'info ckptmpi-reverse' -ex delete -ex continue)
RC=0
t0=$(date +%s.%N)
(cd "$WORK/sess" && timeout -s KILL "${DEBUG_TIMEOUT:-150}" "${AS_USER[@]}" env \
    CKPTMPI_E2E_JOB="$MPI_TAG_BASE-dbg" TMPDIR="$WORK/tmp" "$CKPTMPI" debug --rank 0 -np 3 \
    --mpi "$FL" --replay "$WORK/rec/ck" --job-output "$WORK/job.out" -batch "${cmds[@]}" -- \
    "$PROGS/mpi_debug_wild_$FL" "$ROUNDS") >"$WORK/ck.out" 2>"$WORK/ck.err" </dev/null || RC=$?
t1=$(date +%s.%N)
show_on_failure "$WORK/ck.err" "$WORK/ck.out" "$WORK/job.out.err"
[ "$RC" -ne 137 ] || fail "the debug session did not finish within ${DEBUG_TIMEOUT:-150}s"
[ "$RC" -eq 0 ] || fail "ckptmpi debug exited $RC"
log "session: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; $(grep -E "last (command|restart)" "$WORK/ck.out" | tr -s ' ' | tr '\n' ';')"
grep -q "rank 0 of a 3-rank $FL job" "$WORK/ck.err" || fail "no word of the job's start"
grep -q "started by ckptmpi debug" "$WORK/ck.err" || fail "run was not refused in a job's session"
! grep -q "diverged" "$WORK/ck.err" "$WORK/job.out.err" || fail "the replay diverged: $(grep -h -m1 diverged "$WORK/ck.err" "$WORK/job.out.err")"

state_of() {
    local s
    s=$(awk -v m="@$1" '$0 == m { getline; print; exit }' "$WORK/ck.out")
    [[ $s == STATE* ]] || fail "@$1: no state printed: $(snip "$WORK/ck.err" 600)"
    echo "${s#STATE }"
}
hit1=$(state_of hit1)
hit2=$(state_of hit2)
rc=$(state_of rc)
again=$(state_of again)
n2=$(state_of n2)
n3=$(state_of n3)
rn=$(state_of rn)
log "hit1: $hit1 / hit2: $hit2 / reverse-continue: $rc / continue: $again / n2: $n2 / n3: $n3 / reverse-next: $rn"
# the wildcard receives got what the recorded run got
[[ $hit1 == "line $BLINE k 0 src ${order1:0:1} order 0 acc 1 stamp "* ]] ||
    fail "first hit: '$hit1', the recorded run's first message came from ${order1:0:1}"
[[ $hit2 == "line $BLINE k 1 src ${order1:1:1} order ${order1:0:1} acc "* ]] ||
    fail "second hit: '$hit2', the recorded run's second message came from ${order1:1:1}"
[ "$rc" = "$hit1" ] || fail "reverse-continue: '$rc', expected the previous hit: '$hit1'"
[ "$again" = "$hit2" ] || fail "continue after reverse-continue: '$again', expected the same second hit: '$hit2'"
[ "$n2" != "$n3" ] || fail "the third next did not move: '$n3'"
[ "$rn" = "$n2" ] || fail "reverse-next: '$rn', expected the state one statement earlier: '$n2'"
# the clock rank 0 read is the first launch's in every later one (the
# replay library on the ranks): stamps of nanoseconds, never 0 twice
[[ $hit1 =~ stamp\ [1-9][0-9]*$ ]] && [ "${hit1##* }" != "${hit2##* }" ] ||
    fail "the stamps read from the clock: '${hit1##* }' and '${hit2##* }'"
# the session took job-wide generations (rank 0 asked, the job cut) and
# went back through them: kept ones are listed by info ckptmpi-reverse
ngen=$(grep -Ec '^  [0-9]+: generation [1-9][0-9]* at ' "$WORK/ck.out" || true)
[ "$ngen" -ge 1 ] || fail "the session kept $ngen job-wide generation(s): $(grep -A8 '^checkpoints:' "$WORK/ck.out")"

# ---- the job ran on to its end, every rank as recorded
grep -q "^rank 0 round $ROUNDS " "$WORK/job.out" || fail "the job did not run to its end: $(snip "$WORK/job.out" 400)"
for r in 0 1 2; do
    grep "^rank $r " "$WORK/rec.out" >"$WORK/rec.$r"
    grep "^rank $r " "$WORK/job.out" >"$WORK/job.$r"
    same_file "$WORK/rec.$r" "$WORK/job.$r" "rank $r's lines of the session's last run" "the recorded run's"
done
log "PASS: reverse-next and reverse-continue on rank 0 of a live $FL job; every rank retraced the recorded run"
