#!/usr/bin/env bash
# basic_posix_timers: timer_create timers (signal, thread-directed to a
# worker whose tid changes, and an armed one-shot) keep their ids and keep firing
# after checkpoint -> SIGKILL -> restart; output equals an uninterrupted run's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog posix_timers
basic_case 30 8 13 - -- "$PROGS/posix_timers" 30 40
