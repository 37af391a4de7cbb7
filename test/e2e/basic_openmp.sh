#!/usr/bin/env bash
# basic_openmp: an OpenMP program (4 threads, parallel for + reduction)
# survives checkpoint -> SIGKILL -> restart; output equals an uninterrupted run's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
[ -x "$PROGS/openmp" ] || skip "test program openmp not built (no OpenMP at configure time)"
need_prog openmp
export OMP_NUM_THREADS=4
basic_case 40 10 15 - -- "$PROGS/openmp" 40 60
