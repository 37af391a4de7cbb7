#!/usr/bin/env bash
# basic_compute: an unmodified python3 interpreter running compute.py
# survives checkpoint -> SIGKILL -> restart; output equals an uninterrupted run's.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog compute.py
find_python
basic_case 40 10 15 - -- "$PYTHON" "$PROGS/compute.py" 40 60
