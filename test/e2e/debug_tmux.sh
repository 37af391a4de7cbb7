#!/usr/bin/env bash
# debug_tmux: `ckptmpi debug` typed into like a user, in a terminal (tmux:
# send-keys, capture-pane). reverse_demo reads its seed from the terminal
# (typed in after `continue`); the session goes forward to iteration 3,
# then reverse-next, reverse-continue (iteration 2, and the seed typed
# before, given back by the replay: the terminal is not read again), undo
# (iteration 3 again), and quits. Each answer is awaited on the screen.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/debug_lib.sh"
debug_init
need_prog reverse_demo
command -v tmux >/dev/null || skip "tmux is not installed (scripts/install-deps.sh)"

L_CALL=$(demo_line 'long v = combine(i, seed);')
L_SUM=$(demo_line 'acc.sum += v;')
SOCK=$WORK/tmux.sock
SESSION=ckdebug
tm() { "${AS_USER[@]}" tmux -S "$SOCK" "$@"; }
screen() { tm capture-pane -p -J -S -200 -t "$SESSION" 2>/dev/null || true; }
stop_tmux() { tm kill-server 2>/dev/null || true; }
trap 'rc=$?; stop_tmux; (exit $rc); _cleanup' EXIT

# type LINE: send it as keys, then Enter
type_line() { tm send-keys -t "$SESSION" -l -- "$1"; tm send-keys -t "$SESSION" Enter; }

# await REGEX WHAT [SECONDS]: until the screen has a line matching REGEX
await() {
    local deadline=$((SECONDS + ${3:-60}))
    while [ $SECONDS -lt $deadline ]; do
        screen >"$WORK/screen.txt"
        grep -Eq -- "$1" "$WORK/screen.txt" && return 0
        sleep 0.2
    done
    fail "$2: nothing matching /$1/ on the screen after ${3:-60}s: $(tail -25 "$WORK/screen.txt")"
}

# await the Nth occurrence: count lines matching REGEX
await_n() {
    local n=$1 re=$2 what=$3 deadline=$((SECONDS + 60)) c
    while [ $SECONDS -lt $deadline ]; do
        screen >"$WORK/screen.txt"
        c=$(grep -Ec -- "$re" "$WORK/screen.txt" || true)
        [ "$c" -ge "$n" ] && return 0
        sleep 0.2
    done
    fail "$what: /$re/ seen $c times, expected $n: $(tail -25 "$WORK/screen.txt")"
}

# the pane's shell is tmux's default-shell: $SHELL, else the account's, and
# nobody's is nologin (CI's environment has no SHELL); a pane whose command
# ended stays, so that the screen says why
printf 'set -g default-shell /bin/sh\nset -g remain-on-exit on\n' >"$WORK/tmux.conf"
chmod a+r "$WORK/tmux.conf"
tm -f "$WORK/tmux.conf" new-session -d -s "$SESSION" -x 160 -y 50 \
    "cd '$WORK' && exec '$CKPTMPI' debug --dir '$WORK/ck' -- '$PROGS/reverse_demo' 8 5"
await '^\(gdb\) ' "the GDB prompt"
type_line "break main"
type_line "break reverse_demo.c:$L_SUM"
type_line "run"
await 'hit Breakpoint 1(\.[0-9]+)?, main \(' "run stops at the program's main"
type_line "continue"
# typed before GDB hands the terminal to the program, 42 would be read
# by GDB as a command: the program's prompt says it reads now
await '^seed\? ' "the program's prompt for its seed"
type_line "42"                       # the program reads its seed from the terminal
await_n 1 "hit Breakpoint 2, main \\(.*reverse_demo\\.c:$L_SUM" "iteration 1 at line $L_SUM"
type_line "continue"
await_n 2 "hit Breakpoint 2, main \\(.*reverse_demo\\.c:$L_SUM" "iteration 2"
type_line "continue"
await_n 3 "hit Breakpoint 2, main \\(.*reverse_demo\\.c:$L_SUM" "iteration 3"
type_line "print i * 1000 + 7"
await '= 3007$' "iteration 3: i"
type_line "reverse-next"
await "^$L_CALL[[:space:]]+long v = combine\\(i, seed\\)" "reverse-next from line $L_SUM to $L_CALL"
type_line "print i * 1000 + 8"
await '= 3008$' "reverse-next stays in iteration 3"
type_line "reverse-continue"
await "^Breakpoint 2, main \\(.*reverse_demo\\.c:$L_SUM" "reverse-continue to the previous hit"
type_line "print i * 1000 + 9"
await '= 2009$' "reverse-continue: iteration 2"
type_line "print seed * 10 + 1"
await '= 421$' "the seed typed in the terminal, given back by the replay"
type_line "undo"
type_line "print i * 1000 + 5"
await '= 3005$' "undo: back in iteration 3"
type_line "set confirm off"
type_line "quit"
pane_dead() { tm display-message -p -t "$SESSION" '#{pane_dead}' 2>/dev/null; }
deadline=$((SECONDS + 30))
while [ "$(pane_dead)" = 0 ] && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
[ "$(pane_dead)" = 1 ] || fail "ckptmpi debug did not quit: $(screen | tail -10)"
log "typed into a terminal: break, run, input, continue, reverse-next, reverse-continue, undo, quit"
