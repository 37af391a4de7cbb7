#!/usr/bin/env bash
# mpich_testsuite: MPICH's own test suite (test/mpi of Debian's mpich source
# package, 4.0.2 on Debian 12) run natively and under ckptmpi, per MPI
# flavour; fails when a case that passes natively fails under ckptmpi.
#
#   test/peer/mpich_testsuite.sh           the default selection (ctest, label peer)
#   CKPTMPI_PEER_FULL=1 test/peer/...      every case of the directories in
#                                          test/peer/mpich_selection.txt
#
# Steps: get the source (apt-get source --download-only mpich, into the
# cache; only test/mpi is unpacked), configure test/mpi once per flavour
# (CC=mpicc.mpich / mpicc.openmpi, C only), make the programs of the
# selected cases, then test/peer/mpich_run.py runs each case twice in the
# same run -- `mpirun -np N ./prog ARGS` and `mpirun -np N
# BUILD/bin/ckptmpi-runtime-FLAVOUR ./prog ARGS` -- and judges the output as
# MPICH's runtests does (exit 0, a " No Errors" line, nothing else).
# Native results are never cached; built programs are (in the cache).
#
# Environment:
#   CKPTMPI_BUILD           build directory (set by ctest); default <src>/build
#   CKPTMPI_PEER_CACHE      where the source and the configured trees live
#                           (default /var/cache/ckptmpi-peer if writable, else
#                           ${XDG_CACHE_HOME:-~/.cache}/ckptmpi-peer)
#   CKPTMPI_PEER_FULL=1     the full selection (manual runs; tens of minutes)
#   CKPTMPI_PEER_FLAVOURS   flavours to test (default: "mpich openmpi", those built)
#   CKPTMPI_PEER_FILTER     regular expression on "dir/prog np args"
#   CKPTMPI_PEER_TIMEOUT    cap on a run's time limit in s (default 60; the
#                           full run: the testlist's timeLimit, else 180)
#   CKPTMPI_PEER_JOBS       make -j (default 2)
# Open MPI: every file of the suite is compiled with -include
# test/peer/ompi_mpi1_compat.h (MPI-1 functions Open MPI 4.1 removed).
# Exit: 0 no regression, 1 a regression, 77 the source cannot be had (apt).
# A ckptmpi run that ends with "ckptmpi: MPI_X is not supported" (a
# function the shim refuses by design, README) is reported as refused, not
# as a regression.
#
# Time (2 cores shared with other jobs, Debian 12): the default selection,
# both flavours, about 4 minutes with the programs built (cache warm), 6
# to 7 from nothing (download 22 MB, configure 40 s and build about a
# minute per flavour). The full selection (about 400 cases per flavour,
# many with 10 ranks on 2 cores) takes over an hour.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=${CKPTMPI_BUILD:-$SRC/build}
FULL=${CKPTMPI_PEER_FULL:-0}
JOBS=${CKPTMPI_PEER_JOBS:-2}
log() { printf 'mpich_testsuite: %s\n' "$*" >&2; }
skip() { log "SKIP: $*"; exit 77; }

source "$HERE/peer_cache.sh"

# ---------------------------------------------------------------- source
# The test suite must match the MPICH the machine runs: the source package
# of the installed libmpich (Debian 12: 4.0.2).
ver=$(dpkg-query -W -f='${source:Upstream-Version}' libmpich12 2>/dev/null || true)
[ -n "$ver" ] || skip "libmpich12 is not installed"
TREE=$CACHE/mpich-$ver/test/mpi
if [ ! -f "$TREE/configure" ]; then
	tarball=$(ls "$CACHE"/mpich_"$ver".orig.tar.* 2>/dev/null | head -n1 || true)
	if [ -z "$tarball" ]; then
		log "getting Debian's source package of mpich $ver into $CACHE"
		(cd "$CACHE" && apt-get source --download-only "mpich=$(dpkg-query -W -f='${source:Version}' libmpich12)") \
			>"$CACHE/apt-source.log" 2>&1 ||
			skip "apt-get source mpich failed (no deb-src entry for Debian's archive? add \"Types: deb deb-src\" to /etc/apt/sources.list.d/debian.sources and apt-get update): $(tail -n 3 "$CACHE/apt-source.log")"
		tarball=$(ls "$CACHE"/mpich_"$ver".orig.tar.* 2>/dev/null | head -n1 || true)
		[ -n "$tarball" ] || skip "apt-get source mpich gave no mpich_$ver.orig tarball"
	fi
	log "unpacking test/mpi of $tarball"
	tar -C "$CACHE" -xf "$tarball" "mpich-$ver/test/mpi"
fi

# ---------------------------------------------------------------- flavours
flavours=${CKPTMPI_PEER_FLAVOURS:-mpich openmpi}
results=$CACHE/results-$$.tsv
: >"$results"
rc=0
ran=0
t_all=$SECONDS
for fl in $flavours; do
	rt=$BUILD/bin/ckptmpi-runtime-$fl
	cc=mpicc.$fl
	if [ ! -x "$rt" ]; then log "$fl: $rt not built, skipped"; continue; fi
	if ! command -v "$cc" >/dev/null; then log "$fl: no $cc, skipped"; continue; fi
	root=$CACHE/build-$fl
	cflags="-g -O2"
	# Open MPI 4.1 makes the functions MPI-3.0 removed compile errors
	[ "$fl" != openmpi ] || cflags+=" -include $HERE/ompi_mpi1_compat.h"
	stamp="$ver $(command -v "$cc") $(sha1sum "$TREE/configure" | cut -c1-12) $cflags"
	if [ ! -f "$root/Makefile" ] || [ "$(cat "$root/.peer-stamp" 2>/dev/null)" != "$stamp" ]; then
		log "$fl: configuring test/mpi with $cc (log: $root/configure.log)"
		rm -rf "$root"
		mkdir -p "$root"
		t=$SECONDS
		if ! (cd "$root" && "$TREE/configure" CC="$cc" MPICC="$cc" CFLAGS="$cflags" \
			--disable-fortran --disable-cxx \
			--disable-romio --disable-spawn --disable-rma --disable-part --disable-ft-tests \
			--disable-perftest --enable-threads=multiple) >"$root/configure.log" 2>&1; then
			log "$fl: configure failed: $(tail -n 5 "$root/configure.log")"
			rc=1
			continue
		fi
		echo "$stamp" >"$root/.peer-stamp"
		log "$fl: configured in $((SECONDS - t)) s"
	fi
	args=(--flavour "$fl" --root "$root" --src "$TREE" --runtime "$rt" --selection "$HERE/mpich_selection.txt"
		--jobs "$JOBS" --results "$results")
	if [ "$FULL" = 1 ]; then
		args+=(--full)
		[ -z "${CKPTMPI_PEER_TIMEOUT:-}" ] || args+=(--timeout "$CKPTMPI_PEER_TIMEOUT")
	else
		args+=(--timeout "${CKPTMPI_PEER_TIMEOUT:-60}")
	fi
	[ -z "${CKPTMPI_PEER_FILTER:-}" ] || args+=(--filter "$CKPTMPI_PEER_FILTER")
	t=$SECONDS
	python3 "$HERE/mpich_run.py" "${args[@]}" || { r=$?; [ "$r" -eq 1 ] || log "$fl: runner failed ($r)"; rc=1; }
	log "$fl: $((SECONDS - t)) s"
	ran=$((ran + 1))
done
[ "$ran" -gt 0 ] || skip "no MPI flavour of ckptmpi is built in $BUILD"
log "results: $results; total $((SECONDS - t_all)) s"
exit "$rc"
