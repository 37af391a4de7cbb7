# shellcheck shell=bash
# Helpers of the debug_*.sh cases (ckptmpi debug / bisect), on top of lib.sh.

# debug_init: lib.sh's e2e_init, then skip without gdb; make sure the test
# user reaches the GDB extension (a copied build tree lacks share/).
debug_init() {
    e2e_init
    command -v gdb >/dev/null || skip "gdb is not installed (apt-get install gdb)"
    gdb -q -nx -batch -ex 'python print("py-ok")' 2>/dev/null | grep -q py-ok ||
        skip "this gdb has no Python"
    local script=$BUILD/share/ckptmpi/gdb/ckptmpi.py
    if ! "${AS_USER[@]}" test -r "$script"; then
        local orig=${CKPTMPI_BUILD:-$SRC_DIR/build}/share/ckptmpi/gdb/ckptmpi.py
        [ -f "$orig" ] || orig=$SRC_DIR/tools/gdb/ckptmpi.py
        mkdir -p "$BUILD/share/ckptmpi/gdb"
        cp "$orig" "$script"
        chmod -R a+rX "$BUILD/share"
    fi
    need_prog planted_stray
    hw_watch_init
    STRAY_LINE=$(grep -n 'the stray write when' "$SRC_DIR/test/programs/planted_stray.c" | cut -d: -f1)
    [ -n "$STRAY_LINE" ] || fail "cannot find the stray write's line in planted_stray.c"
}

# hw_watch_init: HW_WATCH=no when this machine's hardware watchpoints do
# not fire (a virtual CPU that ignores the debug registers; the check
# ckptmpi's GDB extension makes), else yes. Without them GDB's watchpoints
# are software ones, and `ckptmpi bisect` does not search the moment a
# condition became true: it says so and exits 3 (BISECT_RC).
hw_watch_init() {
    local rc=0
    python3 "$SRC_DIR/tools/gdb/ckptmpi_hwwatch.py" >/dev/null 2>&1 || rc=$?
    HW_WATCH=yes BISECT_RC=0
    if [ "$rc" -eq 1 ]; then
        HW_WATCH=no BISECT_RC=3
        log "hardware watchpoints do not fire on this machine: software ones, and no re-execution of bisect"
    fi
}

# reexec_refused OUT ERR: without hardware watchpoints, bisect (OUT, ERR)
# must say why it did not re-execute, and not have re-executed: true then;
# false with them (the caller checks the re-execution's report).
reexec_refused() {
    [ "$HW_WATCH" = no ] || return 1
    grep -q "is not searched: that needs hardware watchpoints, and this machine's do not fire" "$2" ||
        fail "bisect did not say why it did not re-execute: $(snip "$2" 600)"
    ! grep -q '^became true' "$1" || fail "bisect re-executed without hardware watchpoints"
    log "bisect said it does not re-execute without hardware watchpoints"
}

# dck CMD...: like ck (lib.sh), with a longer timeout (GDB sessions).
dck() {
    local save=$CMD_TIMEOUT
    CMD_TIMEOUT=${DEBUG_TIMEOUT:-150}
    # an MPI job the debugger launches carries the test's tag: whatever
    # is left of it when the test ends is killed (lib.sh)
    if [ -n "${MPI_TAG_BASE:-}" ]; then
        CKPTMPI_E2E_JOB="$MPI_TAG_BASE-dck" ck "$@"
    else
        ck "$@"
    fi
    CMD_TIMEOUT=$save
    show_on_failure "$WORK/ck.err" "$WORK/ck.out"
}

# out_has REGEX WHAT: $WORK/ck.out must have a line matching REGEX (grep -E).
out_has() {
    grep -Eq -- "$1" "$WORK/ck.out" ||
        fail "$2: no line matching /$1/ in the output: $(snip "$WORK/ck.out" 1500)"
}

# out_value NAME: the value GDB printed for `print NAME` marked by an echo
# line "@NAME" just before it (the line after the marker, "$N = VALUE").
out_value() {
    awk -v m="@$1" '$0 == m { getline; sub(/^\$[0-9]+ = /, ""); print; exit }' "$WORK/ck.out"
}

# dck_pipe TEXT CMD...: like dck, with TEXT on the program's standard
# input through a pipe (which a restart cannot read again: the replay
# library must give it back). RC: ckptmpi's exit status.
dck_pipe() {
    local text=$1 save=$CMD_TIMEOUT
    shift
    CMD_TIMEOUT=${DEBUG_TIMEOUT:-150}
    RC=0
    # standard output and error are pipes too, as a terminal would be:
    # regular files open for writing are the program's own, rolled back
    # to the checkpoint by every restart of a reverse command
    printf '%s\n' "$text" | timeout -s KILL "$CMD_TIMEOUT" "${AS_USER[@]}" "$CKPTMPI" "$@" \
        2> >(cat >"$WORK/ck.err") | cat >"$WORK/ck.out" || RC=$?
    wait
    CMD_TIMEOUT=$save
    [ "$RC" -ne 137 ] || fail "ckptmpi $* did not finish within ${DEBUG_TIMEOUT:-150}s"
    show_on_failure "$WORK/ck.err" "$WORK/ck.out"
}

# out_block MARK: the lines after the echo line "@MARK" up to the next "@".
out_block() {
    awk -v m="@$1" '$0 == m { f = 1; next } /^@/ { f = 0 } f' "$WORK/ck.out"
}

# demo_line TEXT: the line number of TEXT in reverse_demo.c.
demo_line() {
    local n
    n=$(grep -nF -- "$1" "$SRC_DIR/test/programs/reverse_demo.c" | head -1 | cut -d: -f1)
    [ -n "$n" ] || fail "cannot find '$1' in reverse_demo.c"
    echo "$n"
}
