#!/usr/bin/env bash
# rdma_core_tests: rdma-core's own test suite (tests/ of Debian's rdma-core
# 44 source, run with Debian's python3-pyverbs) on ckptmpi's software verbs
# device (ibshadow), as uid 65534 when run as root, case by case
# (test/peer/rdma_core_run.py: a case that crashes or hangs its
# interpreter is reported as such and the run goes on after it). Prints
# per-module pass/fail/error/crash/timeout/skip counts, the main reasons
# of failures and skips, and checks test/peer/rdma_core_expected_pass.txt:
# every case listed there must pass; cases that pass and are not listed
# are named, so the list can grow.
#
#   test/peer/rdma_core_tests.sh               (ctest: peer_rdma_core)
#
# Environment:
#   CKPTMPI_BUILD          build directory (set by ctest); default <src>/build
#   CKPTMPI_PEER_CACHE     where the source lives (default /var/cache/ckptmpi-peer
#                          if writable, else ${XDG_CACHE_HOME:-~/.cache}/ckptmpi-peer)
#   RDMA_CORE_MODE         nockpt (default: ckptmpi run --no-checkpoint; the
#                          library preloaded while that is not there), preload
#                          (LD_PRELOAD=BUILD/lib/libckptmpi-verbs.so), runtime
#                          (ckptmpi run, CKPTMPI_DIR a temporary directory)
#   RDMA_CORE_FILTER       regular expression on case ids (tests.test_qp.QPTest.test_...)
#   RDMA_CORE_CASE_TIMEOUT s per case (default 60)
#   RDMA_CORE_KEEP=1       keep the work directory (results.tsv, worker logs)
# Exit: 0 every listed case passed, 1 one did not, 77 the device or the
# suite cannot be had.
#
# The source: `apt-get source rdma-core` of the installed version, unpacked
# into the cache; when the archive cannot serve the source tarball, the
# copy of tests/ that Debian's rdma-core package installs in
# /usr/share/doc/rdma-core/tests (the same files, some gzipped) is used.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${CKPTMPI_BUILD:-$SRC/build}" && pwd)
MODE=${RDMA_CORE_MODE:-nockpt}
log() { printf 'rdma_core_tests: %s\n' "$*" >&2; }
skip() { log "SKIP: $*"; exit 77; }

LIB=$BUILD/lib/libckptmpi-verbs.so
[ -f "$LIB" ] || skip "the software verbs device is not built ($LIB missing)"
PY=/usr/bin/python3
"$PY" -c 'import pyverbs' 2>/dev/null || skip "python3-pyverbs is not installed (Debian's pyverbs for $PY)"
ver=$(dpkg-query -W -f='${Version}' python3-pyverbs 2>/dev/null || true)
uver=${ver%-*}
[ -n "$ver" ] || skip "python3-pyverbs is not installed"

source "$HERE/peer_cache.sh"

# ---------------------------------------------------------------- source
# (one run at a time prepares the cache: ctest runs two modes at once)
exec 9>"$CACHE/.rdma-core.lock"
flock -w 300 9 || skip "the cache $CACHE stays locked"
TESTS=$CACHE/rdma-core-$uver/tests
if [ ! -f "$TESTS/run_tests.py" ]; then
	tarball=$(ls "$CACHE"/rdma-core_"$uver".orig.tar.* 2>/dev/null | head -n1 || true)
	# (a failed download is tried again a day later, not at every run)
	failed=$CACHE/apt-source-rdma-core-$ver.failed
	if [ -z "$tarball" ] && [ -z "$(find "$failed" -mmin -1440 2>/dev/null)" ]; then
		log "getting Debian's source package of rdma-core $ver into $CACHE"
		if (cd "$CACHE" && apt-get source --download-only "rdma-core=$ver") >"$CACHE/apt-source-rdma-core.log" 2>&1; then
			rm -f "$failed"
		else
			touch "$failed"
		fi
		tarball=$(ls "$CACHE"/rdma-core_"$uver".orig.tar.* 2>/dev/null | head -n1 || true)
	fi
	if [ -n "$tarball" ]; then
		log "unpacking tests/ of $tarball"
		tar -C "$CACHE" -xf "$tarball" "rdma-core-$uver/tests"
	fi
fi
if [ ! -f "$TESTS/run_tests.py" ]; then
	doc=/usr/share/doc/rdma-core/tests
	pkgver=$(dpkg-query -W -f='${Version}' rdma-core 2>/dev/null || true)
	[ -f "$doc/run_tests.py" ] && [ "$pkgver" = "$ver" ] ||
		skip "no rdma-core test suite: apt-get source rdma-core=$ver failed ($(tail -n 1 "$CACHE/apt-source-rdma-core.log" 2>/dev/null)) and the rdma-core package ($pkgver) has no tests/ of version $ver"
	TESTS=$CACHE/rdma-core-doc-$ver/tests
	if [ ! -f "$TESTS/run_tests.py" ]; then
		log "the source tarball cannot be had: using the tests/ Debian's rdma-core $pkgver package installs ($doc)"
		rm -rf "$TESTS"
		mkdir -p "$(dirname "$TESTS")"
		cp -r "$doc" "$TESTS"
		find "$TESTS" -name '*.gz' -exec gunzip -f {} +
	fi
fi
exec 9>&-
log "suite: $TESTS ($(ls "$TESTS"/test_*.py | wc -l) test modules)"

# ---------------------------------------------------------------- work dir, user
WORK=$(mktemp -d /tmp/ckptmpi-rdma-core.XXXXXX)
cleanup() {
	if [ "${RDMA_CORE_KEEP:-0}" = 1 ]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
chmod 755 "$WORK"
cp -r "$TESTS" "$WORK/tests"
cp "$HERE/rdma_core_run.py" "$WORK/"
chmod -R a+rX "$WORK"
AS_USER=()
if [ "$(id -u)" = 0 ]; then
	command -v setpriv >/dev/null || skip "setpriv (util-linux) is needed to run as uid 65534"
	chown 65534:65534 "$WORK"
	AS_USER=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
	if ! "${AS_USER[@]}" test -r "$LIB"; then
		mkdir -p "$WORK/build/lib" "$WORK/build/bin"
		cp -a "$BUILD/lib/." "$WORK/build/lib/"
		cp -a "$BUILD/bin/." "$WORK/build/bin/"
		chmod -R a+rX "$WORK/build"
		BUILD=$WORK/build
		LIB=$BUILD/lib/libckptmpi-verbs.so
	fi
fi
CKPTMPI=$BUILD/bin/ckptmpi
case $MODE in
	nockpt)
		if "${AS_USER[@]}" "$CKPTMPI" run --no-checkpoint -- /bin/true >/dev/null 2>&1; then
			PREFIX=("$CKPTMPI" run --no-checkpoint --)
		else
			log "ckptmpi run --no-checkpoint does not work yet: the device library is preloaded instead"
			MODE=preload
			PREFIX=(env LD_PRELOAD="$LIB")
		fi ;;
	preload) PREFIX=(env LD_PRELOAD="$LIB") ;;
	runtime)
		"${AS_USER[@]}" mkdir -p "$WORK/ck"
		PREFIX=(env CKPTMPI_DIR="$WORK/ck" "$CKPTMPI" run --) ;;
	*) log "RDMA_CORE_MODE must be nockpt, preload or runtime"; exit 2 ;;
esac
log "mode $MODE: ${PREFIX[*]} python3 ..."

# ---------------------------------------------------------------- run
args=(--driver --tests "$WORK/tests" --work "$WORK/run" --results "$WORK/results.tsv"
	--case-timeout "${RDMA_CORE_CASE_TIMEOUT:-60}")
[ -z "${RDMA_CORE_FILTER:-}" ] || args+=(--filter "$RDMA_CORE_FILTER")
"${AS_USER[@]}" mkdir -p "$WORK/run"
t=$SECONDS
"$PY" "$WORK/rdma_core_run.py" "${args[@]}" -- "${AS_USER[@]}" env HOME="$WORK" "${PREFIX[@]}" ||
	{ log "the runner failed"; exit 1; }
log "ran in $((SECONDS - t)) s"
rc=0
"$PY" "$WORK/rdma_core_run.py" --summary --results "$WORK/results.tsv" --expected "$HERE/rdma_core_expected_pass.txt" || rc=$?
[ "${RDMA_CORE_KEEP:-0}" = 1 ] || cp "$WORK/results.tsv" "$CACHE/rdma-core-results-last.tsv" 2>/dev/null || true
exit "$rc"
