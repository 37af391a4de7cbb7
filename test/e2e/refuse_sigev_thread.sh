#!/usr/bin/env bash
# refuse_sigev_thread: see refuse_socket.sh; the unsupported thing is a
# SIGEV_THREAD timer, whose glibc helper thread blocks every signal.
MODE=sigev_thread exec bash "$(dirname "${BASH_SOURCE[0]}")/refuse_socket.sh"
