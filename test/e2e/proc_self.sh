#!/usr/bin/env bash
# proc_self: a program that keeps its own /proc/self/status open (recorded
# by the kernel as /proc/PID/status) is checkpointed, killed and restarted:
# the restart reopens the new process's own file (the old PID is gone) and
# the output equals an uninterrupted run's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog proc_self
basic_case 30 8 12 - -- "$PROGS/proc_self" 30 50
