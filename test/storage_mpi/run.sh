#!/usr/bin/env bash
# storage_mpi FLAVOUR TEST_BINARY CKPTMPI: the collective container writer
# under mpirun -np 3, then the tools on the files it wrote: `ckptmpi
# verify` passes on the good generations and refuses, naming the rank, a
# generation with a region in the runtime's memory window and one with a
# flipped byte of page data; `ckptmpi ls` shows the ranks. As root,
# everything runs as uid 65534 (ckptmpi must work unprivileged).
set -euo pipefail
FL=$1 TEST=$2 CKPTMPI=$3
NP=3

fail() {
	printf 'FAIL [storage_mpi_%s]: %s\n' "$FL" "$*" >&2
	for f in "$WORK"/*.out "$WORK"/*.err; do
		[ -s "$f" ] && { printf -- '----- %s -----\n' "$f" >&2; tail -n 30 "$f" >&2; }
	done
	exit 1
}

case $FL in
	mpich) MPIRUN=(mpirun.mpich -np "$NP") ;;
	openmpi) MPIRUN=(mpirun.openmpi --oversubscribe -np "$NP") ;;
	*) echo "unknown flavour $FL" >&2; exit 2 ;;
esac
command -v "${MPIRUN[0]}" >/dev/null || { echo "SKIP: ${MPIRUN[0]} not installed" >&2; exit 77; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ckptmpi-storage-mpi-$FL.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
AS_USER=(env)
if [ "$(id -u)" = 0 ]; then
	chown 65534:65534 "$WORK"
	AS_USER=(setpriv --reuid=65534 --regid=65534 --clear-groups -- env HOME="$WORK")
fi
for b in TEST CKPTMPI; do
	# a private build tree (e.g. under /root): the user gets copies
	if ! "${AS_USER[@]}" test -x "${!b}"; then
		cp "${!b}" "$WORK/" && chmod a+rx "$WORK/$(basename "${!b}")"
		printf -v "$b" '%s' "$WORK/$(basename "${!b}")"
	fi
done

DIR=$WORK/ck
(cd "$WORK" && exec timeout -s KILL 240 "${AS_USER[@]}" "${MPIRUN[@]}" "$TEST" "$DIR") \
	>"$WORK/test.out" 2>"$WORK/test.err" </dev/null || fail "storage_mpi_test exited $?"
grep -q "^storage_mpi: ok ($NP ranks)" "$WORK/test.out" || fail "storage_mpi_test did not report ok"
cat "$WORK/test.out"

"${AS_USER[@]}" "$CKPTMPI" verify "$DIR" >"$WORK/verify.out" 2>"$WORK/verify.err" ||
	fail "ckptmpi verify failed on the good generations"
for g in 1 2 3 4 5 6; do
	grep -q "^generation $g: ok, $NP rank(s)" "$WORK/verify.out" ||
		fail "ckptmpi verify does not pass generation $g with $NP ranks"
done

"${AS_USER[@]}" "$CKPTMPI" ls "$DIR" >"$WORK/ls.out" 2>"$WORK/ls.err" || fail "ckptmpi ls failed"
cat "$WORK/ls.out"
for g in 1 2 3 4 5 6; do
	awk -v g="$g" -v n="$NP" '$1 == g && $8 == n { f = 1 } END { exit !f }' "$WORK/ls.out" ||
		fail "ckptmpi ls shows no generation $g of $NP ranks"
done
for r in $(seq 0 $((NP - 1))); do
	[ "$(grep -c "^  rank $r " "$WORK/ls.out")" -eq 6 ] ||
		fail "ckptmpi ls does not show rank $r of each generation"
done

if "${AS_USER[@]}" "$CKPTMPI" verify "$DIR/window" >"$WORK/window.out" 2>"$WORK/window.err"; then
	fail "ckptmpi verify passed a generation with a region in the runtime's window"
fi
grep -q "rank $((NP - 1)) region 0x100000000000 lies in the runtime's memory window" "$WORK/window.err" ||
	fail "ckptmpi verify does not name rank $((NP - 1))'s region in the window"

if "${AS_USER[@]}" "$CKPTMPI" verify "$DIR/corrupt" >"$WORK/corrupt.out" 2>"$WORK/corrupt.err"; then
	fail "ckptmpi verify passed a generation with a flipped byte"
fi
grep -q "checksum mismatch in /memory.*rank $((NP - 1))" "$WORK/corrupt.err" ||
	fail "ckptmpi verify does not name rank $((NP - 1)) for the flipped byte"
# the other ranks are still checked, and pass
grep -q "rank 0: ok" "$WORK/corrupt.out" || fail "ckptmpi verify stopped before checking rank 0"
echo "PASS [storage_mpi_$FL]"
