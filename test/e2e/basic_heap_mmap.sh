#!/usr/bin/env bash
# basic_heap_mmap: heap (small and >1 MiB blocks), anonymous mmap with a
# read-only page, .data/.bss, a 10000-deep stack and an appended file
# survive checkpoint -> SIGKILL -> restart; stdout and the file equal an
# uninterrupted run's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap
basic_case 40 10 15 heap.log -- "$PROGS/heap_mmap" 40 60 heap.log
