#!/usr/bin/env bash
# verify_ls: "ckptmpi verify" passes on good generations (all, and each by
# --generation), "ckptmpi ls" shows every generation number, generation
# files are mode 0600 and owned by the job's user even though the job ran
# with umask 000, and the standard HDF5 tools (h5ls -r, h5dump -H) read them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap

dir=$WORK/ckpt
mkdirs "$WORK/ck" "$dir"
old_umask=$(umask)
umask 000               # the images must be 0600 whatever the umask
hold_arm
run_bg "$WORK/ck" "$WORK/run1.out" "$dir" -- "$PROGS/heap_mmap" 40 50 heap.log
job=$JOB_PID
umask "$old_umask"

wait_step "$WORK/run1.out" 4 "$job"
ckpt "$dir"
g1=$GEN
wait_step "$WORK/run1.out" "$(($(last_step_of "$WORK/run1.out") + 2))" "$job"
ckpt "$dir"
g2=$GEN
[ "$g2" -gt "$g1" ] || fail "second checkpoint made generation $g2 after generation $g1"
kill_job "$job"

verify_ok "$dir"
for g in "$g1" "$g2"; do
    verify_ok "$dir" --generation "$g"
done

ck ls "$dir"
[ "$RC" -eq 0 ] || fail "ckptmpi ls $dir exited $RC: $(snip "$WORK/ck.err")"
log "ckptmpi ls: $(snip "$WORK/ck.out" 400)"
for g in "$g1" "$g2"; do
    ls_shows "$g" "$WORK/ck.out" || fail "ckptmpi ls does not show generation $g: $(snip "$WORK/ck.out")"
done

command -v h5ls >/dev/null || fail "h5ls not found (install hdf5-tools)"
command -v h5dump >/dev/null || fail "h5dump not found (install hdf5-tools)"
for g in "$g1" "$g2"; do
    f=$(gen_file "$dir" "$g")
    mode=$(stat -c %a "$f")
    [ "$mode" = 600 ] || fail "$f has mode $mode, expected 600 (the job's umask was 000)"
    owner=$(stat -c %u "$f")
    [ "$owner" = "$TEST_UID" ] || fail "$f is owned by uid $owner, expected $TEST_UID"
    "${AS_USER[@]}" h5ls -r "$f" >"$WORK/h5ls.out" 2>&1 || fail "h5ls -r $f failed: $(snip "$WORK/h5ls.out")"
    [ "$(grep -c . "$WORK/h5ls.out")" -ge 2 ] || fail "h5ls -r $f lists nothing: $(snip "$WORK/h5ls.out")"
    "${AS_USER[@]}" h5dump -H "$f" >"$WORK/h5dump.out" 2>&1 || fail "h5dump -H $f failed: $(snip "$WORK/h5dump.out")"
    grep -q 'HDF5' "$WORK/h5dump.out" || fail "h5dump -H $f printed no HDF5 header: $(snip "$WORK/h5dump.out")"
    log "$f: mode $mode, $(grep -c . "$WORK/h5ls.out") objects listed by h5ls -r, h5dump -H ok"
done
# Objects the design puts in every generation (informational).
for obj in /memory /regions /threads; do
    grep -q "^$obj " "$WORK/h5ls.out" || log "note: h5ls -r shows no $obj (see docs)"
done
