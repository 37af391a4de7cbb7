#!/usr/bin/env bash
# mpi_ckpt_full_disk: an MPI job whose checkpoint directory fills up.
# The directory is a small tmpfs (mounted by the test, as root; the job
# runs as the test user). Generation 1 is taken, then a filler file leaves
# less room than a generation needs, and `ckptmpi checkpoint` is asked
# again: it must fail with one line naming the full disk, while the job
# runs on (its ranks forked their writers at the cut and lay the file out
# beside the running program: that layout is where the disk is found
# full, and no rank may then write its pages from its live memory); the
# directory must still hold generation 1, verified, and nothing else.
# With the filler gone, the next checkpoint is committed; the job is
# killed, restarted from it, and its output merged with the killed run's
# must equal a plain run's. MPICH, 4 ranks, mpi_p2p linked with -lckptmpi.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
[ "$(id -u)" = 0 ] || skip "mounting a small tmpfs for the full directory needs root"
_mpi_options --trigger command
mpi_setup mpich
MPI_NP=4
_mpi_program mpi_p2p 40 100
_mpi_reference

mkdirs "$WORK/run" "$WORK/ck"
mount -t tmpfs -o size=256m,mode=0700,uid="${TEST_UID:-0}",gid="${TEST_GID:-0}" \
	ckptmpi-full "$WORK/ck" || skip "cannot mount a tmpfs here"
# the job's processes first (_mpi_on_exit), the mount before the work
# directory goes (_cleanup, which _mpi_on_exit ends with)
_unmount_then_cleanup() {
	local rc=$?
	[ -z "$MPI_TAG_BASE" ] || _mpi_kill_tagged "$MPI_TAG_BASE-" || true
	umount -l "$WORK/ck" 2>/dev/null || true
	# _mpi_on_exit reads the status from $? and exits (through _cleanup)
	_mpi_rc "$rc" || _mpi_on_exit
	_mpi_on_exit
}
trap _unmount_then_cleanup EXIT
log "checkpoint directory: a 256 MiB tmpfs at $WORK/ck"

hold_arm
mpi_start "$WORK/run" "$WORK/run1.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_VERBOSE=2 \
	-- "${MPI_CKPTCMD[@]}"
mpi_wait_step "$WORK/run1.out" 3
mpi_request_ckpt "$WORK/ck" "$WORK/run1.out"
g1=$GEN
size=$(stat -c %s "$(gen_file "$WORK/ck" "$g1")")
free_kb=$(df -k --output=avail "$WORK/ck" | tail -n 1)
# leave a quarter of a generation free
fill_kb=$((free_kb - size / 4096))
[ "$fill_kb" -gt 0 ] || fail "generation $g1 ($size bytes) leaves no room to fill ($free_kb KiB free)"
"${AS_USER[@]}" fallocate -l "${fill_kb}KiB" "$WORK/ck/filler" ||
	fail "cannot fill the checkpoint directory"
log "generation $g1 takes $size bytes; the directory now has $(df -k --output=avail "$WORK/ck" | tail -n 1) KiB free"

step=$(last_step_of "$WORK/run1.out")
ck checkpoint "$WORK/ck"
[ "$RC" -ne 0 ] || fail "a checkpoint into a full directory succeeded: $(snip "$WORK/ck.out")"
[ "$RC" -lt 128 ] || fail "ckptmpi checkpoint died of signal $((RC - 128))"
[ "$(grep -c . "$WORK/ck.err")" -eq 1 ] || fail "expected one line of error: $(snip "$WORK/ck.err" 800)"
grep -q "No space left on device" "$WORK/ck.err" ||
	fail "the error does not name the full disk: $(snip "$WORK/ck.err" 600)"
log "refused, as it must be: $(snip "$WORK/ck.err" 300)"
# found beside the running program: every rank's writer, forked at the
# cut, was told there was nothing to write
n=$(grep -c "told there is nothing to write" "$WORK/run1.out.err" || true)
[ "$n" -eq "$MPI_NP" ] ||
	fail "$n writers of $MPI_NP were told the generation failed: was the disk found full in the pause? $(grep -m 3 -E 'writer|space' "$WORK/run1.out.err" | tr '\n' ' ')"
mpi_wait_step "$WORK/run1.out" $((step + 2))
log "the job ran on (step $(last_step_of "$WORK/run1.out"), was $step)"
[ "$(gens_in "$WORK/ck" | tr '\n' ' ')" = "$g1 " ] ||
	fail "the directory holds generations '$(gens_in "$WORK/ck" | tr '\n' ' ')', expected $g1 only"
extra=$(cd "$WORK/ck" && ls -A | grep -Ev "^(ckpt-[0-9]+\.h5|filler|control\.sock|\.shm\..*)$" || true)
[ -z "$extra" ] || fail "the failed checkpoint left in the directory: $extra"
mpi_check_generation "$WORK/ck" "$g1" "$MPI_NP"

rm -f "$WORK/ck/filler"
mpi_request_ckpt "$WORK/ck" "$WORK/run1.out"
[ "$GEN" -gt "$g1" ] || fail "the checkpoint after the disk was freed is generation $GEN"
lo=$REQ_STEP hi=$(last_step_of "$WORK/run1.out")
mpi_wait_step "$WORK/run1.out" $((hi + 2))
grep -Eq '^[0-9]+ final' "$WORK/run1.out" && fail "the job finished before it could be killed"
mpi_kill_job
mpi_check_generation "$WORK/ck" "$GEN" "$MPI_NP"
mpi_run "$WORK/run" "$WORK/restart.out" CKPTMPI_DIR="$WORK/ck" CKPTMPI_RESTART=latest \
	-- "${MPI_CKPTCMD[@]}"
_mpi_check_resume "$WORK/restart.out" "$lo" "$hi"
merge_steps "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run + restart)" "the plain run"
