#!/bin/bash
# Make Debian's source packages reachable for the peer test suites
# (test/peer: MPICH's own test suite comes from `apt-get source mpich`):
# a deb-src entry for every archive the machine already uses, then an
# index update. Needs root (or sudo); without, the peer tests skip and say
# why.
set -euo pipefail
if apt-get source --print-uris mpich >/dev/null 2>&1; then
	exit 0
fi
SUDO=
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null && sudo -n true 2>/dev/null || {
		echo "ckptmpi: no deb-src entry and no root: the peer test suites will be skipped" >&2
		exit 0
	}
	SUDO=sudo
fi
changed=0
# deb822 files: "Types: deb" gains deb-src
for f in /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] || continue
	if grep -qE '^Types:.*\bdeb\b' "$f" && ! grep -qE '^Types:.*deb-src' "$f"; then
		$SUDO sed -i -E 's/^(Types:.*\bdeb\b)(.*)$/\1 deb-src\2/' "$f"
		changed=1
	fi
done
# one-line format: each "deb URI SUITE..." gets its "deb-src" twin
if [ -f /etc/apt/sources.list ] && grep -qE '^deb\s' /etc/apt/sources.list; then
	while read -r line; do
		src="deb-src${line#deb}"
		grep -qxF "$src" /etc/apt/sources.list || { echo "$src" | $SUDO tee -a /etc/apt/sources.list >/dev/null; changed=1; }
	done < <(grep -E '^deb\s' /etc/apt/sources.list)
fi
if [ "$changed" = 1 ]; then
	echo "ckptmpi: added deb-src entries for the peer test suites; apt-get update" >&2
	$SUDO apt-get update -qq
fi
