#!/usr/bin/env bash
# compress: CKPTMPI_COMPRESS=zstd, lz4, blosc (HDF5's registered filters
# 32015, 32004 and 32001) and deflate. For each: checkpoint -> SIGKILL ->
# restart prints what an uninterrupted run prints, and `ckptmpi verify`
# passes. The files are read without ckptmpi: zstd chunks by h5py +
# python3-zstandard, lz4 and blosc (shuffled by 8-byte elements, which the
# plugin must take from the file, not from the dataset's byte type) by
# h5dump and h5py through Debian's filter plugins, each finding the
# program's heap byte for byte. A generation whose filter is not to be had here (bzip2, put in
# by h5repack) is refused by restart and verify with the filter's name, and
# reads once the plugin is there.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap
PLUGINS=/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins
for p in "$PLUGINS/libh5lz4.so" "$PLUGINS/libh5bz2.so" "$PLUGINS/libH5Zblosc.so"; do
    [ -f "$p" ] || fail "$p missing (scripts/install-deps.sh installs hdf5-filter-plugin and hdf5-filter-plugin-blosc-serial)"
done
/usr/bin/python3 -c 'import h5py, zstandard' 2>/dev/null ||
    fail "python3-h5py and python3-zstandard missing (scripts/install-deps.sh installs them)"

for codec in zstd lz4 blosc deflate:3; do
    log "---- CKPTMPI_COMPRESS=$codec"
    "${AS_USER[@]}" rm -rf "$WORK/ref" "$WORK/ck" "$WORK/ckpt"
    export CKPTMPI_COMPRESS=$codec
    basic_case 40 10 15 heap.log -- "$PROGS/heap_mmap" 40 60 heap.log
    verify_ok "$CKPT_DIR"
    unset CKPTMPI_COMPRESS
done

# the program's heap, written by ckptmpi, read by others
heap_prog=$BUILD/bench/touch_heap
if ! "${AS_USER[@]}" test -x "$heap_prog"; then
    cp "${CKPTMPI_BUILD:-$SRC_DIR/build}/bench/touch_heap" "$WORK/touch_heap"
    chmod a+rx "$WORK/touch_heap"
    heap_prog=$WORK/touch_heap
fi
for codec in zstd lz4 blosc; do
    d=$WORK/interop-$codec
    mkdirs "$d/ck"
    export CKPTMPI_COMPRESS=$codec
    run_bg "$d" "$d/run.out" "$d/ck" -- "$heap_prog" 4 "$d/go" field "$d/heap.bin"
    unset CKPTMPI_COMPRESS
    job=$JOB_PID
    for _ in $(seq 600); do grep -q ready "$d/run.out" && break; sleep 0.05; done
    grep -q ready "$d/run.out" || fail "touch_heap did not start: $(snip "$d/run.out.err")"
    ckpt "$d/ck"
    kill_job "$job"
    f=$(gen_file "$d/ck" "$GEN")
    HDF5_PLUGIN_PATH=$PLUGINS /usr/bin/python3 "$E2E_DIR/compress_interop.py" "$f" "$codec" \
        "$d/heap.bin" > "$d/interop.out" 2>&1 ||
        fail "$codec: another reader does not find the heap: $(snip "$d/interop.out")"
    log "$codec, read without ckptmpi: $(snip "$d/interop.out" 300)"
    [ "$codec" = zstd ] && continue
    HDF5_PLUGIN_PATH=$PLUGINS h5dump -d /memory -s 0 -c 64 "$f" > "$d/h5dump.out" 2>&1 ||
        fail "h5dump with Debian's $codec plugin cannot read /memory: $(snip "$d/h5dump.out")"
done

# a filter this ckptmpi lacks: bzip2 (307) from Debian's plugin, not on the
# plugin path at restart
bad=$WORK/bz2
mkdirs "$bad"
src=$(gen_file "$WORK/ckpt" "$(gens_in "$WORK/ckpt" | tail -n 1)")
"${AS_USER[@]}" env HDF5_PLUGIN_PATH=$PLUGINS h5repack -f /memory:UD=307,0,1,9 -f /memory:FLET \
    "$src" "$bad/ckpt-000001.h5" > "$WORK/repack.out" 2>&1 ||
    fail "h5repack could not apply bzip2: $(snip "$WORK/repack.out")"
export HDF5_PLUGIN_PATH=$WORK/no-plugins
expect_error "HDF5 filter 307" restart "$bad"
expect_error "HDF5 filter 307" verify "$bad"
export HDF5_PLUGIN_PATH=$PLUGINS
verify_ok "$bad"
unset HDF5_PLUGIN_PATH
log "ok"
