#!/bin/bash
# Configure and build into ./build (warnings are errors).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCKPTMPI_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
