#!/usr/bin/env bash
# job_bad_input: what goes wrong with jobs without MPI is said, names the
# member, and changes nothing:
#  - run --member without --job-size, --member beyond the job;
#  - a checkpoint while a member is gone (SIGKILLed): refused, naming the
#    members that are there; the others run on;
#  - a member that hangs (SIGSTOP) in a checkpoint: the checkpoint fails
#    within CKPTMPI_JOB_TIMEOUT naming it, the job runs on, and checkpoints
#    work again once it runs;
#  - restart --member K of a member the generation does not have, and
#    --member on a generation of a plain run;
#  - restart of one member alone whose peers never come (CKPTMPI_JOB_TIMEOUT):
#    a message naming member 0, exit 127, the generation intact;
#  - a member's slice damaged: verify names it, the restart fails at once
#    on every member naming it, nothing changed;
#  - the program's listening port taken at restart: named, 127, nothing changed;
#  - SIGTERM to one member: the whole job checkpoints and every member
#    exits 143; the generation restarts to the uninterrupted run's output.
# (threads rather than heap_mmap for the members restarted: heap_mmap has
# /proc/self/maps open for a moment each step, and a cut that finds it open
# cannot be restarted — a limit of core/, not of jobs)
source "$(dirname "${BASH_SOURCE[0]}")/job_lib.sh"
e2e_init
need_prog heap_mmap threads

dir=$WORK/ckpt
mkdirs "$dir" "$WORK/plain" "$WORK/pd"
expect_error "--member needs --job-size" run --dir "$dir" --member 1 -- "$PROGS/heap_mmap" 3 10 x.log
expect_error "a job of 2 has members 0 to 1" run --dir "$dir" --job-size 2 --member 2 -- "$PROGS/heap_mmap" 3 10 x.log

# a member gone: no checkpoint, the others run on
for k in 0 1 2; do mkdirs "$WORK/g$k"; done
for k in 0 1 2; do
    member_bg $k "$WORK/g$k" "$WORK/g$k.out" "$WORK/gone" 3 -- "$PROGS/threads" 60 40
done
for k in 0 1 2; do wait_step "$WORK/g$k.out" 3 "${MEMBER_PID[$k]}"; done
ckpt_joined "$WORK/gone"
g1=$GEN
kill_job "${MEMBER_PID[1]}"
sleep 0.3
ck checkpoint "$WORK/gone"
[ "$RC" -eq 1 ] || fail "a checkpoint with member 1 gone exited $RC: $(snip "$WORK/ck.err")"
grep -q "job $WORK/gone of 3: members 0, 2 joined" "$WORK/ck.err" ||
    fail "the refusal does not name the members there: $(snip "$WORK/ck.err")"
[ "$(gens_in "$WORK/gone")" = "$g1" ] || fail "generations changed: $(gens_in "$WORK/gone" | tr '\n' ' ')"
wait_step "$WORK/g0.out" "$(( $(last_step_of "$WORK/g0.out") + 2 ))" "${MEMBER_PID[0]}"
kill_members "${MEMBER_PID[0]}" "${MEMBER_PID[2]}"
verify_ok "$WORK/gone" --generation "$g1"

# a member that hangs (SIGSTOP) during a checkpoint: the others give up
# within CKPTMPI_JOB_TIMEOUT, naming it, and run on; once it runs again it
# joins again and the next checkpoint works
export CKPTMPI_JOB_TIMEOUT=2
for k in 0 1 2; do
    mkdirs "$WORK/h$k"
    member_bg $k "$WORK/h$k" "$WORK/h$k.out" "$WORK/hang" 3 -- "$PROGS/threads" 400 40
done
unset CKPTMPI_JOB_TIMEOUT
for k in 0 1 2; do wait_step "$WORK/h$k.out" 3 "${MEMBER_PID[$k]}"; done
kill -STOP "${MEMBER_PID[1]}"
t0=$SECONDS
ck checkpoint "$WORK/hang"
[ "$RC" -eq 1 ] || fail "a checkpoint with member 1 stopped exited $RC: $(snip "$WORK/ck.err")"
[ $((SECONDS - t0)) -le 10 ] || fail "the checkpoint with member 1 stopped took $((SECONDS - t0)) s"
grep -q "member 1 did not answer in time" "$WORK/ck.err" ||
    fail "the failure does not name member 1: $(snip "$WORK/ck.err")"
[ -z "$(gens_in "$WORK/hang")" ] || fail "a generation appeared although member 1 was stopped"
ls "$WORK/hang"/.ckpt-* >/dev/null 2>&1 && fail "a temporary was left: $(ls -a "$WORK/hang")"
for k in 0 2; do wait_step "$WORK/h$k.out" "$(( $(last_step_of "$WORK/h$k.out") + 2 ))" "${MEMBER_PID[$k]}"; done
kill -CONT "${MEMBER_PID[1]}"
wait_step "$WORK/h1.out" "$(( $(last_step_of "$WORK/h1.out") + 2 ))" "${MEMBER_PID[1]}"
ckpt_joined "$WORK/hang"
verify_ok "$WORK/hang" --generation "$GEN"
kill_members "${MEMBER_PID[@]}"

# --member beyond the generation's job, --member of a plain run
expect_error "the job of this generation has 3 members (0 to 2)" restart "$WORK/gone" --member 3
hold_arm
run_bg "$WORK/plain" "$WORK/plain.out" "$WORK/pd" -- "$PROGS/heap_mmap" 40 40 heap.log
wait_step "$WORK/plain.out" 3 "$JOB_PID"
ckpt_joined "$WORK/pd"
kill_job "$JOB_PID"
expect_error "not a generation of a job started with --job-size" restart "$WORK/pd" --member 0

# one member restarted alone, its peers never come: named, nothing changed
sum=$(sha256sum "$(gen_file "$WORK/gone" "$g1")")
RC=0
(cd "$WORK" && exec timeout -s KILL 30 "${AS_USER[@]}" env CKPTMPI_JOB_TIMEOUT=2 "$CKPTMPI" restart "$WORK/gone" --member 1) \
    >"$WORK/alone.out" 2>"$WORK/alone.err" </dev/null || RC=$?
[ "$RC" -eq 127 ] || fail "member 1 restarted alone exited $RC, expected 127: $(snip "$WORK/alone.err")"
grep -q "member 0 cannot be reached within 2 s" "$WORK/alone.err" ||
    fail "member 1 alone does not say member 0 is missing: $(snip "$WORK/alone.err" 800)"
[ "$(sha256sum "$(gen_file "$WORK/gone" "$g1")")" = "$sum" ] || fail "the generation changed"
[ "$(gens_in "$WORK/gone")" = "$g1" ] || fail "generations changed: $(gens_in "$WORK/gone" | tr '\n' ' ')"
verify_ok "$WORK/gone" --generation "$g1"

# a member's slice damaged (512 bytes xor 0x5a in the middle of the file:
# member 1's page data, the members' slices lying in turn; not an inversion,
# which fletcher32 cannot see on zero pages): verify names
# member 1; the restart of the job fails at once on every member, each
# saying member 1 could not restart and why; the file is not touched
cp "$(gen_file "$WORK/gone" "$g1")" "$WORK/pristine.h5"
damage_middle "$(gen_file "$WORK/gone" "$g1")"
ck verify "$WORK/gone"
[ "$RC" -eq 1 ] || fail "verify of the damaged generation exited $RC"
grep -q "(member 1)" "$WORK/ck.err" || fail "verify does not name member 1: $(snip "$WORK/ck.err")"
grep -q "member 1:" "$WORK/ck.out" && fail "verify says member 1 is fine: $(snip "$WORK/ck.out")"
sum=$(sha256sum <"$(gen_file "$WORK/gone" "$g1")")
RC=0
t0=$SECONDS
(cd "$WORK" && exec timeout -s KILL 60 "${AS_USER[@]}" "$CKPTMPI" restart "$WORK/gone") \
    >"$WORK/damaged.log" 2>"$WORK/damaged.log.err" </dev/null || RC=$?
[ "$RC" -eq 127 ] || fail "the restart with member 1's slice damaged exited $RC, expected 127: $(snip "$WORK/damaged.log.err")"
[ $((SECONDS - t0)) -le 15 ] || fail "the members took $((SECONDS - t0)) s to give up"
out=$(sed -n 's/^  member 0: \(.*\)\/member-0\.out, .*/\1/p' "$WORK/damaged.log.err")
grep -q "checksum mismatch in /memory" "$out/member-1.err" || fail "member 1 does not say what is damaged: $(snip "$out/member-1.err")"
for k in 0 2; do
    grep -q "member 1: could not restart: .*checksum mismatch" "$out/member-$k.err" ||
        fail "member $k does not say member 1 could not restart: $(snip "$out/member-$k.err")"
    grep -Eq '^[0-9]+ ' "$out/member-$k.out" && fail "member $k's program ran on"
done
[ "$(sha256sum <"$(gen_file "$WORK/gone" "$g1")")" = "$sum" ] || fail "the restart changed the generation"
cp "$WORK/pristine.h5" "$(gen_file "$WORK/gone" "$g1")"

# the program's listening port is taken at restart: said, naming the fd and
# the port, both members exit 127 at once, the generation intact
need_prog sock_pair
mkdirs "$WORK/ls" "$WORK/lc" "$WORK/lsd"
export SOCK_PAIR_KEEP_LISTENER=1
member_bg 0 "$WORK/ls" "$WORK/ls.out" "$WORK/lsd" 2 -- "$PROGS/sock_pair" server tcp "$WORK/ls.port" 400 40
unset SOCK_PAIR_KEEP_LISTENER
member_bg 1 "$WORK/lc" "$WORK/lc.out" "$WORK/lsd" 2 -- "$PROGS/sock_pair" client tcp "$WORK/ls.port" 400 40
wait_step "$WORK/ls.out" 3 "${MEMBER_PID[0]}"
wait_step "$WORK/lc.out" 3 "${MEMBER_PID[1]}"
ckpt_joined "$WORK/lsd"
lg=$GEN
kill_members "${MEMBER_PID[0]}" "${MEMBER_PID[1]}"
port=$(cat "$WORK/ls.port")
command -v python3 >/dev/null || skip "python3 is needed to take the port"
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
open(sys.argv[2], "w").write("x"); time.sleep(60)' "$port" "$WORK/taken" &
_PIDS+=("$!")
taker=$!
for _ in $(seq 100); do [ -e "$WORK/taken" ] && break; sleep 0.05; done
[ -e "$WORK/taken" ] || fail "could not take port $port for the test"
sum=$(sha256sum "$(gen_file "$WORK/lsd" "$lg")")
RC=0
(cd "$WORK" && exec timeout -s KILL 30 "${AS_USER[@]}" "$CKPTMPI" restart "$WORK/lsd") \
    >"$WORK/taken.log" 2>"$WORK/taken.log.err" </dev/null || RC=$?
[ "$RC" -eq 127 ] || fail "a restart whose listening port is taken exited $RC, expected 127: $(snip "$WORK/taken.log.err")"
out=$(sed -n 's/^  member 0: \(.*\)\/member-0\.out, .*/\1/p' "$WORK/taken.log.err")
grep -q "fd [0-9]*: the program's listening socket cannot be re-created on 127.0.0.1:$port: Address already in use" "$out/member-0.err" ||
    fail "member 0 does not name the taken port: $(snip "$out/member-0.err")"
grep -q "member 0: fd [0-9]*: the program's listening socket cannot be re-created" "$out/member-1.err" ||
    fail "member 1 does not say why the restart failed: $(snip "$out/member-1.err")"
kill "$taker" 2>/dev/null || true
[ "$(sha256sum "$(gen_file "$WORK/lsd" "$lg")")" = "$sum" ] || fail "the generation changed"
verify_ok "$WORK/lsd" --generation "$lg"

# SIGTERM to member 2: all checkpoint, all exit 143, the restart ends as the run
NSTEPS=40
for k in 0 1 2; do
    mkdirs "$WORK/ref$k" "$WORK/t$k"
    plain_bg "$WORK/ref$k" "$WORK/ref$k.out" -- "$PROGS/threads" $((NSTEPS + k)) 50
    refs[$k]=$REF_PID
done
for k in 0 1 2; do
    member_bg $k "$WORK/t$k" "$WORK/t$k.out" "$dir" 3 -- "$PROGS/threads" $((NSTEPS + k)) 50
done
for k in 0 1 2; do wait_step "$WORK/t$k.out" 8 "${MEMBER_PID[$k]}"; done
log "kill -TERM member 2 (pid ${MEMBER_PID[2]})"
kill -TERM "${MEMBER_PID[2]}"
for k in 0 1 2; do
    deadline=$((SECONDS + 30))
    while _alive "${MEMBER_PID[$k]}"; do
        [ "$SECONDS" -lt "$deadline" ] || fail "member $k still runs 30 s after SIGTERM to member 2"
        sleep 0.05
    done
    RC=0
    wait "${MEMBER_PID[$k]}" 2>/dev/null || RC=$?
    [ "$RC" -eq 143 ] || fail "member $k exited $RC after SIGTERM to member 2, expected 143: $(snip "$WORK/t$k.out.err")"
done
[ "$(gens_in "$dir" | wc -l)" -eq 1 ] || fail "SIGTERM made $(gens_in "$dir" | wc -l) generations, expected 1"
job_restart_fg "$WORK" "$WORK/trestart.log" "$dir"
for k in 0 1 2; do
    wait_exit "${refs[$k]}" "reference run $k"
    merge_outputs "$WORK/t$k.out" "$RESTART_OUT/member-$k.out" "$WORK/tmerged$k.out"
    same_file "$WORK/ref$k.out" "$WORK/tmerged$k.out" "member $k's stdout (SIGTERM, restart)"
done
