#!/usr/bin/env bash
# basic_vecregs: a computation whose live state is only in ymm registers
# and MXCSR (busy, no sleeping: the checkpoint interrupts the asm loop)
# survives checkpoint -> SIGKILL -> restart; output equals an uninterrupted run's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog vecregs
grep -q avx2 /proc/cpuinfo || skip "no AVX2 on this CPU"
basic_case 40 10 15 - -- "$PROGS/vecregs" 40 40000000
