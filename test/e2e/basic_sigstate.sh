#!/usr/bin/env bash
# basic_sigstate: signal handlers, blocked mask, an ITIMER_REAL interval
# timer, umask and cwd survive checkpoint -> SIGKILL -> restart (the
# program prints what it finds each step); output equals an uninterrupted run's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog sigstate
basic_case 40 10 15 - -- "$PROGS/sigstate" 40 60 sub
# The program checks its own state; make the failure message point at it.
if grep -Eq 'LOST|BAD' "$WORK/merged.out"; then
    fail "sigstate reported lost state: $(grep -Em1 'LOST|BAD' "$WORK/merged.out")"
fi
