#!/usr/bin/env bash
# bad_input: a missing directory, a nonexistent generation, and truncated,
# corrupted, foreign (HDF5 but not ckptmpi), non-HDF5 and empty generation
# files are each refused: non-zero exit, one line on stderr naming the
# file (or directory, or generation), the program not started, nothing
# deleted or changed; afterwards the good generation still restores.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap
CMD_TIMEOUT=30

NSTEPS=30
first_run "$NSTEPS" 5 0 2 -- "$PROGS/heap_mmap" "$NSTEPS" 50 heap.log
dir=$CKPT_DIR
ref_pid=$REF_PID
gen=$GEN
after=$AFTER

good=$(gen_file "$dir" "$gen")
base=${good##*/}
size=$(stat -c %s "$good")
[ "$size" -gt 4096 ] || fail "generation file $good is only $size bytes"

# --- missing directory, no job, nonexistent generation
missing=$WORK/no-such-dir
expect_error "$missing" restart "$missing"
expect_error "$missing" verify "$missing"
expect_error "$missing" ls "$missing"
expect_error "" checkpoint "$missing"
expect_error "" checkpoint "$dir"                # the job is gone
expect_error 999 restart "$dir" --generation 999
expect_error 999 verify "$dir" --generation 999

# --- bad copies of the good generation, each alone in its own directory
# (made by the test user, so that only the damage is wrong with them)
bad_dirs=()
new_bad_dir() {
    local d=$WORK/$1
    mkdirs "$d"
    bad_dirs+=("$d")
    BAD=$d/$base
}

new_bad_dir truncated
"${AS_USER[@]}" cp "$good" "$BAD"
"${AS_USER[@]}" truncate -s $((size / 2)) "$BAD"

new_bad_dir corrupted
"${AS_USER[@]}" cp "$good" "$BAD"
# invert 512 bytes at 1/3, 1/2 and 2/3 of the file
"${AS_USER[@]}" perl -e '
    my $f = shift; my $size = -s $f;
    open(my $h, "+<", $f) or die "$f: $!"; binmode $h;
    for my $frac (1/3, 1/2, 2/3) {
        my $off = int($size * $frac); my $buf;
        seek($h, $off, 0); read($h, $buf, 512) == 512 or die "short read";
        $buf ^= ("\xff" x 512);
        seek($h, $off, 0); print $h $buf or die;
    }
    close($h) or die;' "$BAD"
cmp -s "$good" "$BAD" && fail "corrupting the copy did not change it"

new_bad_dir not_hdf5
"${AS_USER[@]}" sh -c 'printf "this is not an HDF5 file\n" > "$1"' sh "$BAD"

new_bad_dir empty
"${AS_USER[@]}" touch "$BAD"

if command -v h5import >/dev/null && command -v h5mkgrp >/dev/null; then
    new_bad_dir foreign
    # a valid HDF5 file with ckptmpi-like names, made by the HDF5 tools
    "${AS_USER[@]}" sh -c '
        cd "$1" && printf "1 2 3 4\n" > data.txt &&
        printf "PATH /memory\nINPUT-CLASS TEXTIN\nINPUT-SIZE 32\nRANK 1\nDIMENSION-SIZES 4\nOUTPUT-CLASS IN\nOUTPUT-SIZE 32\n" > data.cfg &&
        h5import data.txt -c data.cfg -o "$2" >/dev/null && h5mkgrp "$2" /regions /threads &&
        rm -f data.txt data.cfg' sh "$WORK/foreign" "$BAD"
    h5ls "$BAD" >/dev/null || fail "could not make a foreign HDF5 file"
else
    log "note: h5import/h5mkgrp not found, no foreign-HDF5 case"
fi

snapshot() {
    find "$dir" "${bad_dirs[@]}" -name '*.h5' -type f -print0 | sort -z | xargs -0 sha256sum
}
snapshot >"$WORK/before.sha"

for d in "${bad_dirs[@]}"; do
    log "--- ${d##*/}"
    expect_error "$base" restart "$d"
    expect_error "$base" restart "$d" --generation "$gen"
    expect_error "$base" verify "$d"
    expect_error "$base" verify "$d" --generation "$gen"
done

snapshot >"$WORK/after.sha"
if ! cmp -s "$WORK/before.sha" "$WORK/after.sha"; then
    diff "$WORK/before.sha" "$WORK/after.sha" >&2 || true
    fail "generation files were deleted or changed by the failed commands"
fi
log "no generation file deleted or changed"

# The good generation still verifies and restores.
verify_ok "$dir"
restart_fg "$WORK/ck" "$WORK/restart.out" "$dir"
check_resume "$WORK/restart.out" 6 "$((after + 1))"
wait_exit "$ref_pid" "reference run"
merge_outputs "$WORK/run1.out" "$WORK/restart.out" "$WORK/merged.out"
same_file "$WORK/ref.out" "$WORK/merged.out" "stdout (run 1 + restart)"
same_file "$WORK/ref/heap.log" "$WORK/ck/heap.log" "file heap.log"
