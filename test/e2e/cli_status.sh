#!/usr/bin/env bash
# cli_status: what a person sees of a job.
#  - `ckptmpi status DIR` of a running job: running, its pid, the program,
#    no generation yet; --json the same for scripts; after a checkpoint the
#    last generation; once killed: exit 4, "no job running", the last
#    generation still shown;
#  - `ckptmpi ls --json`: the generation, `created` an ISO 8601 time that
#    parses and agrees with created_unix, the reason, the process's pid;
#    h5dump shows the file's time and command line as text;
#  - a restart says one line at the default verbosity: the generation it
#    resumed, from when (as ls shows it) and why; its status says it was
#    restarted from that generation;
#  - CKPTMPI_RESTART=latest with a program: another program, or the same
#    with other arguments, is refused (exit 2, named); the same program
#    resumes (the command of a requeued batch job) and ends as the
#    uninterrupted run; with no generation it starts fresh, saying so;
#  - `ckptmpi checkpoint --progress` of a large process shows the write's
#    progress (bytes of the total, rate) before "generation N";
#  - the process is named after the program (comm, pgrep), restarted too.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap threads bigheap
command -v python3 >/dev/null || skip "python3 not installed (JSON checks)"

NSTEPS=40
dir=$WORK/ckpt
mkdirs "$WORK/ref" "$WORK/ck" "$dir"
plain_bg "$WORK/ref" "$WORK/ref.out" -- "$PROGS/heap_mmap" "$NSTEPS" 60 heap.log
hold_arm
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "$PROGS/heap_mmap" "$NSTEPS" 60 heap.log
job=$JOB_PID
wait_step "$WORK/run1.out" 3 "$job"

# named after the program in ps and pgrep (the runtime's own threads keep its name)
[ "$(cat "/proc/$job/comm")" = heap_mmap ] || fail "the job's process is named '$(cat "/proc/$job/comm")', not heap_mmap"
pgrep -x heap_mmap | grep -qx "$job" || fail "pgrep -x heap_mmap does not find the job ($job)"
ck status "$dir"
[ "$RC" -eq 0 ] || fail "status of a running job exited $RC: $(snip "$WORK/ck.err")"
log "status: $(snip "$WORK/ck.out" 600)"
grep -q "^$dir: running" "$WORK/ck.out" || fail "status does not say running"
grep -q "pid $job " "$WORK/ck.out" || fail "status does not give the job's pid $job"
grep -q "program: *$PROGS/heap_mmap\$" "$WORK/ck.out" || fail "status does not name the program"
grep -q "last generation: none" "$WORK/ck.out" || fail "status shows a generation before any"
grep -q "checkpoint: *none under way" "$WORK/ck.out" || fail "status shows a checkpoint under way"
ck status --json "$dir"
python3 - "$WORK/ck.out" "$job" <<'PY' || fail "status --json: $(snip "$WORK/ck.out" 600)"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["running"] is True and s["pid"] == int(sys.argv[2]), s
assert s["ranks"] == 1 and s["mpi"] == "none" and s["checkpoint"] == "idle", s
assert s["program"].endswith("/heap_mmap") and s["last_generation"] is None, s
PY

ckpt "$dir"
g1=$GEN
ck status "$dir"
grep -q "last generation: $g1 (.*, command)" "$WORK/ck.out" || fail "status does not show generation $g1: $(snip "$WORK/ck.out")"
ck ls --json "$dir"
[ "$RC" -eq 0 ] || fail "ls --json exited $RC: $(snip "$WORK/ck.err")"
python3 - "$WORK/ck.out" "$g1" "$job" "$(date +%s)" <<'PY' || fail "ls --json: $(snip "$WORK/ck.out" 800)"
import json, sys, datetime
gens = json.load(open(sys.argv[1]))
assert len(gens) == 1, gens
g = gens[0]
assert g["generation"] == int(sys.argv[2]) and g["ok"] and g["reason"] == "command", g
created = datetime.datetime.fromisoformat(g["created"])
assert created.tzinfo is not None, g["created"]
assert int(created.timestamp()) == g["created_unix"], (created, g["created_unix"])
assert abs(g["created_unix"] - int(sys.argv[4])) < 300, g
assert g["ranks"] == 1 and g["processes"][0]["pid"] == int(sys.argv[3]), g
assert g["file_bytes"] > 0 and g["memory_saved"] > 0 and g["program"].endswith("/heap_mmap"), g
PY
created=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["created_unix"])' "$WORK/ck.out")
when=$(date -d "@$created" '+%Y-%m-%d %H:%M:%S')
# the file's attributes, as h5dump shows them: the time and command line as text
f=$(gen_file "$dir" "$g1")
"${AS_USER[@]}" h5dump -a /created_utc "$f" >"$WORK/h5.out" 2>&1 || fail "h5dump -a /created_utc: $(snip "$WORK/h5.out")"
grep -q "\"$(date -u -d "@$created" '+%Y-%m-%dT%H:%M:%SZ')\"" "$WORK/h5.out" || fail "created_utc: $(snip "$WORK/h5.out")"
"${AS_USER[@]}" h5dump -a /command_line "$f" >"$WORK/h5.out" 2>&1 || fail "h5dump -a /command_line: $(snip "$WORK/h5.out")"
grep -qF "heap_mmap $NSTEPS 60 heap.log\"" "$WORK/h5.out" || fail "command_line: $(snip "$WORK/h5.out")"
AFTER=$(last_step_of "$WORK/run1.out")
wait_step "$WORK/run1.out" $((AFTER + 2)) "$job"
kill_job "$job"

ck status "$dir"
[ "$RC" -eq 4 ] || fail "status of a killed job exited $RC, expected 4"
grep -q "no job running" "$WORK/ck.out" && grep -q "last generation: $g1 ($when, command)" "$WORK/ck.out" ||
    fail "status of a killed job: $(snip "$WORK/ck.out")"

# the restart says which generation, from when; its status says so too
hold_arm
restart_bg "$WORK/ck" "$WORK/restart.out" "$dir"
job=$JOB_PID
wait_step "$WORK/restart.out" $((AFTER + 2)) "$job"
[ "$(grep -c . "$WORK/restart.out.err")" -eq 1 ] || fail "the restart said more than one line: $(snip "$WORK/restart.out.err" 800)"
grep -qF "ckptmpi[0]: resumed generation $g1 of $when (command) from $(gen_file "$dir" "$g1")" "$WORK/restart.out.err" ||
    fail "the restart does not say what it resumed: $(snip "$WORK/restart.out.err")"
[ "$(cat "/proc/$job/comm")" = heap_mmap ] || fail "the restarted process is named '$(cat "/proc/$job/comm")', not heap_mmap"
ck status "$dir"
grep -q "restarted from generation $g1" "$WORK/ck.out" || fail "status of the restarted job: $(snip "$WORK/ck.out")"
grep -q "pid $job " "$WORK/ck.out" || fail "status does not give the restarted job's pid $job: $(snip "$WORK/ck.out")"
kill_job "$job"

# CKPTMPI_RESTART=latest with a program: refused for another one, resumed
# for the same (and to the end), started fresh without a generation
requeue() { # OUT [VAR=VALUE...] -- PROGRAM ARGS: ckptmpi run --dir $dir with CKPTMPI_RESTART=latest
    local out=$1
    shift
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    RC=0
    (cd "$WORK/ck" && exec timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" env CKPTMPI_RESTART=latest \
        "${envs[@]}" "$CKPTMPI" run --dir "$dir" -- "$@") >"$out" 2>"$out.err" </dev/null || RC=$?
}
requeue "$WORK/other.out" -- "$PROGS/threads" 10 10
[ "$RC" -eq 2 ] || fail "a restart of another program exited $RC, expected 2: $(snip "$WORK/other.out.err")"
grep -q "a checkpoint of $PROGS/heap_mmap, not of the program given ($PROGS/threads)" "$WORK/other.out.err" ||
    fail "the refusal of another program does not name both: $(snip "$WORK/other.out.err")"
[ ! -s "$WORK/other.out" ] || fail "the other program ran: $(snip "$WORK/other.out")"
requeue "$WORK/args.out" -- "$PROGS/heap_mmap" "$NSTEPS" 99 heap.log
[ "$RC" -eq 2 ] && grep -q "with other arguments" "$WORK/args.out.err" ||
    fail "a restart with other arguments: exit $RC, $(snip "$WORK/args.out.err")"
requeue "$WORK/requeue.out" -- "$PROGS/heap_mmap" "$NSTEPS" 60 heap.log
[ "$RC" -eq 0 ] || fail "CKPTMPI_RESTART=latest ckptmpi run exited $RC: $(snip "$WORK/requeue.out.err")"
grep -q "resumed generation $g1 " "$WORK/requeue.out.err" || fail "the requeued run does not say it resumed: $(snip "$WORK/requeue.out.err")"
wait_exit "$REF_PID" "reference run"
merge_outputs "$WORK/run1.out" "$WORK/requeue.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + requeued run)"
same_file "$WORK/ref/heap.log" "$WORK/ck/heap.log" "file heap.log"

dir=$WORK/fresh
requeue "$WORK/fresh.out" -- "$PROGS/heap_mmap" 5 10 fresh.log
[ "$RC" -eq 0 ] || fail "CKPTMPI_RESTART=latest without a generation exited $RC: $(snip "$WORK/fresh.out.err")"
[ "$(grep -c . "$WORK/fresh.out.err")" -eq 1 ] && grep -q "no generation in $dir: $PROGS/heap_mmap starts fresh" "$WORK/fresh.out.err" ||
    fail "a fresh start does not say so (in one line): $(snip "$WORK/fresh.out.err")"
grep -q "^0 start" "$WORK/fresh.out" && grep -q "^6 final" "$WORK/fresh.out" || fail "the fresh run: $(snip "$WORK/fresh.out")"

# progress of a long checkpoint (made long: a pause of 400 ms at each 64 MiB
# step of the write, CKPTMPI_TEST_FAULT=slowwrite)
MIB=384
mkdirs "$WORK/big"
export CKPTMPI_TEST_FAULT=slowwrite:400
run_bg "$WORK/big" "$WORK/big.out" "$WORK/bigck" -- "$PROGS/bigheap" 400 50 "$MIB"
unset CKPTMPI_TEST_FAULT
job=$JOB_PID
wait_step "$WORK/big.out" 2 "$job" 60
RC=0
(exec timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" "$CKPTMPI" checkpoint --progress "$WORK/bigck") \
    >"$WORK/big.ck.out" 2>"$WORK/big.ck.err" </dev/null || RC=$?
[ "$RC" -eq 0 ] || fail "checkpoint --progress exited $RC: $(snip "$WORK/big.ck.err")"
grep -Eq '^generation [0-9]+$' "$WORK/big.ck.out" || fail "checkpoint --progress printed $(snip "$WORK/big.ck.out")"
log "progress: $(snip "$WORK/big.ck.err" 600)"
grep -Eq "^ckptmpi: $WORK/bigck: writing: [0-9]+ MiB of [0-9]+ MiB \([0-9]+%\)" "$WORK/big.ck.err" ||
    fail "no progress shown: $(snip "$WORK/big.ck.err" 600)"
grep -q "MiB/s, about [0-9]* s left" "$WORK/big.ck.err" || log "note: no rate shown (one sample before the end)"
kill_job "$job"
