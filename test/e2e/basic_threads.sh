#!/usr/bin/env bash
# basic_threads: 4 pthreads (mutex + condition variable, __thread counters)
# survive checkpoint -> SIGKILL -> restart; output equals an uninterrupted run's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog threads
basic_case 40 10 15 - -- "$PROGS/threads" 40 60
