#!/bin/bash
# The test command: install what is missing, build, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
bash scripts/peer-sources.sh   # Debian's source packages, for test/peer
cd build
ctest --output-on-failure -j2 "$@"
