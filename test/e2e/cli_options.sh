#!/usr/bin/env bash
# cli_options: the command line. --version; --help of the tool and of
# every subcommand (exit 0, its options and the environment variables that
# matter, the exit statuses); unknown commands and options, a missing
# value, a missing DIR: exit 2 and one line with a hint. Bad settings
# (CKPTMPI_KEEP, CKPTMPI_INTERVAL, CKPTMPI_COMPRESS, CKPTMPI_VERBOSE,
# CKPTMPI_TERM, a directory too long for the control socket) are refused
# before the program runs: exit 2, one line naming the variable, no
# output of the program. The documented statuses: 3 no generation, 4 no job.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
need_prog heap_mmap
CMD_TIMEOUT=20

# expect_status STATUS NEEDLE ARGS...: "ckptmpi ARGS" exits STATUS with one
# line on stderr containing NEEDLE, and the program printed nothing
expect_status() {
    local want=$1 needle=$2
    shift 2
    expect_error "$needle" "$@"
    [ "$RC" -eq "$want" ] || fail "ckptmpi $* exited $RC, expected $want: $(snip "$WORK/ck.err")"
    [ ! -s "$WORK/ck.out" ] || fail "ckptmpi $* printed on stdout: $(snip "$WORK/ck.out")"
}

ck --version
[ "$RC" -eq 0 ] || fail "--version exited $RC"
grep -Eq '^ckptmpi [0-9]+\.[0-9]+\.[0-9]+' "$WORK/ck.out" || fail "--version printed: $(snip "$WORK/ck.out")"

ck --help
[ "$RC" -eq 0 ] || fail "--help exited $RC"
for c in run checkpoint status restart ls verify debug bisect; do
    grep -q "^  $c " "$WORK/ck.out" || fail "--help does not list $c: $(snip "$WORK/ck.out" 1500)"
done
grep -q '^  3 ' "$WORK/ck.out" || fail "--help does not give the exit statuses"

# every subcommand's help: exit 0, on stdout, its options, what matters
check_help() {
    local cmd=$1 n
    shift
    ck "$cmd" --help
    [ "$RC" -eq 0 ] || fail "ckptmpi $cmd --help exited $RC: $(snip "$WORK/ck.err")"
    grep -q "^usage: ckptmpi $cmd" "$WORK/ck.out" || fail "ckptmpi $cmd --help: no usage line"
    for n in "$@"; do
        grep -qF -- "$n" "$WORK/ck.out" || fail "ckptmpi $cmd --help does not mention $n: $(snip "$WORK/ck.out" 2000)"
    done
    cp "$WORK/ck.out" "$WORK/help.$cmd"
    ck help "$cmd"
    cmp -s "$WORK/ck.out" "$WORK/help.$cmd" || fail "ckptmpi help $cmd differs from ckptmpi $cmd --help"
}
check_help run --dir --interval --job-size --member --no-checkpoint CKPTMPI_KEEP CKPTMPI_TERM \
    CKPTMPI_COMPRESS CKPTMPI_VERBOSE CKPTMPI_SIGNAL CKPTMPI_RESTART 'Exit statuses'
check_help restart --generation --interval --member --no-verify CKPTMPI_MPIRUN CKPTMPI_KEEP 'Exit statuses'
check_help checkpoint --progress CKPTMPI_TERM 'Exit status'
check_help status --json 'Exit status'
check_help ls --json 'Exit status'
check_help verify --generation 'Exit status'

# usage errors: 2, one line, a hint
expect_status 2 "unknown command 'frobnicate'" frobnicate
expect_status 2 "unknown option --frob" --frob
expect_status 2 "run: unknown option --frob (ckptmpi run --help" run --frob --dir "$WORK/d" -- "$PROGS/heap_mmap" 3 10 x.log
expect_status 2 "restart: unknown option -q" restart -q "$WORK"
expect_status 2 "ls: unknown option --long" ls --long "$WORK"
expect_status 2 "option --dir needs a value" run --dir
expect_status 2 "option --generation needs a value" verify "$WORK" --generation
expect_status 2 "--interval 1m: expected a whole number" run --dir "$WORK/d" --interval 1m -- "$PROGS/heap_mmap" 3 10 x.log
expect_status 2 "no PROGRAM given" run --dir "$WORK/d"
expect_status 2 "expected one DIR" status
expect_status 2 "expected one DIR" checkpoint "$WORK" "$WORK"
expect_status 2 "$WORK/nothing" ls "$WORK/nothing"

# no generation: 3; no job: 4 (status still answers, on stdout)
mkdirs "$WORK/empty"
expect_status 3 "no checkpoint generations" restart "$WORK/empty"
expect_status 3 "no checkpoint generations" verify "$WORK/empty"
expect_status 3 "no generation 7" restart "$WORK/empty" --generation 7
expect_status 4 "no job of yours is running" checkpoint "$WORK/empty"
ck status "$WORK/empty"
[ "$RC" -eq 4 ] || fail "status of a directory without a job exited $RC, expected 4"
grep -q "no job running" "$WORK/ck.out" || fail "status does not say no job runs: $(snip "$WORK/ck.out")"
grep -q "last generation: none" "$WORK/ck.out" || fail "status does not say there is no generation: $(snip "$WORK/ck.out")"
ck ls --json "$WORK/empty"
[ "$RC" -eq 0 ] && [ "$(tr -d ' \n' <"$WORK/ck.out")" = "[]" ] || fail "ls --json of an empty directory: $RC $(snip "$WORK/ck.out")"

# settings checked before the program runs: 2, one line naming the variable
bad_setting() {
    local needle=$1
    shift
    RC=0
    (cd "$WORK" && exec timeout -s KILL 20 "${AS_USER[@]}" env "$@" "$CKPTMPI" run --dir "$WORK/s" -- \
        "$PROGS/heap_mmap" 3 10 x.log) >"$WORK/ck.out" 2>"$WORK/ck.err" </dev/null || RC=$?
    [ "$RC" -eq 2 ] || fail "$* ckptmpi run exited $RC, expected 2: $(snip "$WORK/ck.err")"
    [ "$(grep -c . "$WORK/ck.err")" -eq 1 ] || fail "$*: expected one line on stderr: $(snip "$WORK/ck.err" 800)"
    grep -qF -- "$needle" "$WORK/ck.err" || fail "$*: the refusal does not name $needle: $(snip "$WORK/ck.err")"
    [ ! -s "$WORK/ck.out" ] || fail "$*: the program ran: $(snip "$WORK/ck.out")"
    log "refused: $* -> $(snip "$WORK/ck.err" 200)"
}
bad_setting "CKPTMPI_KEEP=0" CKPTMPI_KEEP=0
bad_setting "CKPTMPI_KEEP=two" CKPTMPI_KEEP=two
bad_setting "CKPTMPI_INTERVAL=10s" CKPTMPI_INTERVAL=10s
bad_setting "CKPTMPI_INTERVAL=-5" CKPTMPI_INTERVAL=-5
bad_setting "CKPTMPI_COMPRESS=gzip" CKPTMPI_COMPRESS=gzip
bad_setting "CKPTMPI_COMPRESS=deflate:12" CKPTMPI_COMPRESS=deflate:12
bad_setting "CKPTMPI_VERBOSE=loud" CKPTMPI_VERBOSE=loud
bad_setting "CKPTMPI_VERBOSE=7" CKPTMPI_VERBOSE=7
bad_setting "CKPTMPI_BACKGROUND=yes" CKPTMPI_BACKGROUND=yes
bad_setting "CKPTMPI_TERM=ignore" CKPTMPI_TERM=ignore
bad_setting "CKPTMPI_SIGNAL=HUP" CKPTMPI_SIGNAL=HUP
long=$WORK/$(printf 'x%.0s' $(seq 110))
RC=0
(cd "$WORK" && exec timeout -s KILL 20 "${AS_USER[@]}" "$CKPTMPI" run --dir "$long" -- "$PROGS/heap_mmap" 3 10 x.log) \
    >"$WORK/ck.out" 2>"$WORK/ck.err" </dev/null || RC=$?
[ "$RC" -eq 2 ] && grep -q "path too long" "$WORK/ck.err" || fail "--dir too long: exit $RC $(snip "$WORK/ck.err")"
[ -z "$(gens_in "$WORK/s")" ] || fail "a refused run left a generation"

# good settings run the program
RC=0
(cd "$WORK" && exec timeout -s KILL 20 "${AS_USER[@]}" env CKPTMPI_KEEP=3 CKPTMPI_INTERVAL=0 \
    CKPTMPI_COMPRESS=deflate:1 CKPTMPI_VERBOSE=0 CKPTMPI_TERM=exit "$CKPTMPI" run --dir "$WORK/s" -- \
    "$PROGS/heap_mmap" 3 10 x.log) >"$WORK/ck.out" 2>"$WORK/ck.err" </dev/null || RC=$?
[ "$RC" -eq 0 ] || fail "a run with good settings exited $RC: $(snip "$WORK/ck.err")"
grep -q "^4 final" "$WORK/ck.out" || fail "the program did not finish: $(snip "$WORK/ck.out")"

# the manual page: well-formed, installed, readable with man
page=$SRC_DIR/tools/ckptmpi.1
if command -v groff >/dev/null; then
    groff -man -Tutf8 -ww "$page" 2>"$WORK/groff.err" >/dev/null || fail "groff cannot format $page"
    [ ! -s "$WORK/groff.err" ] || fail "groff warns about $page: $(snip "$WORK/groff.err")"
fi
if command -v man >/dev/null && [ -f "$BUILD/cmake_install.cmake" ]; then
    cmake --install "$BUILD" --prefix "$WORK/inst" >"$WORK/install.log" 2>&1 ||
        fail "cmake --install failed: $(tail -c 600 "$WORK/install.log")"
    [ -f "$WORK/inst/share/man/man1/ckptmpi.1" ] || fail "ckptmpi.1 not installed in share/man/man1"
    MANWIDTH=80 MANPATH="$WORK/inst/share/man" man ckptmpi >"$WORK/man.txt" 2>"$WORK/man.err" ||
        fail "man ckptmpi failed: $(snip "$WORK/man.err")"
    for s in SYNOPSIS ENVIRONMENT 'EXIT STATUS' CKPTMPI_MPIRUN CKPTMPI_TERM status restart; do
        grep -q "$s" "$WORK/man.txt" || fail "man ckptmpi does not show $s"
    done
    log "man ckptmpi: $(grep -c . "$WORK/man.txt") lines"
else
    log "note: man or the build's install script missing: the installed page is not checked"
fi
