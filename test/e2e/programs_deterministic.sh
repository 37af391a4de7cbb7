#!/usr/bin/env bash
# programs_deterministic: the test programs themselves (no ckptmpi) print
# the same output on every run, also when malloc hands out recycled memory
# filled with junk and without address randomisation (as under ckptmpi).
# When this fails, the e2e cases' diffs say nothing about ckptmpi.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init --no-ckptmpi
need_prog heap_mmap threads sigstate bigheap compute.py
find_python
export OMP_NUM_THREADS=4

progs=(heap_mmap threads sigstate bigheap compute)
[ -f "$PROGS/openmp" ] && progs+=(openmp)

cmd_of() {      # the argv of program $1, short and fast
    case $1 in
    heap_mmap) CMD=("$PROGS/heap_mmap" 12 5 heap.log) ;;
    threads)   CMD=("$PROGS/threads" 12 5) ;;
    sigstate)  CMD=("$PROGS/sigstate" 12 25 sub) ;;
    bigheap)   CMD=("$PROGS/bigheap" 12 5 64) ;;
    compute)   CMD=("$PYTHON" "$PROGS/compute.py" 12 5) ;;
    openmp)    CMD=("$PROGS/openmp" 12 5) ;;
    esac
}

for p in "${progs[@]}"; do
    cmd_of "$p"
    mkdirs "$WORK/$p.a" "$WORK/$p.b"
    plain_bg "$WORK/$p.a" "$WORK/$p.a.out" -- "${CMD[@]}"
    wait_exit "$REF_PID" "$p (plain)"
    plain_bg "$WORK/$p.b" "$WORK/$p.b.out" -- env \
        GLIBC_TUNABLES=glibc.malloc.perturb=165:glibc.malloc.mmap_threshold=65536 \
        setarch "$(uname -m)" -R "${CMD[@]}"
    wait_exit "$REF_PID" "$p (junk-filled malloc, no ASLR)"
    finished "$WORK/$p.a.out" 12 || fail "$p did not print its final line: $(snip "$WORK/$p.a.out")"
    same_file "$WORK/$p.a.out" "$WORK/$p.b.out" "$p stdout (junk-filled malloc, no ASLR)" "a plain run's"
    if [ -f "$WORK/$p.a/heap.log" ]; then
        same_file "$WORK/$p.a/heap.log" "$WORK/$p.b/heap.log" "$p heap.log" "a plain run's"
    fi
    if grep -Eq 'LOST|BAD|err=[1-9]' "$WORK/$p.a.out"; then
        fail "$p reports lost state in a plain run: $(grep -Em1 'LOST|BAD|err=[1-9]' "$WORK/$p.a.out")"
    fi
done
