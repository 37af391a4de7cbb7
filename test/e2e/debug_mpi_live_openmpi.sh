#!/usr/bin/env bash
# debug_mpi_live_openmpi: debug_mpi_live.sh on OpenMPI.
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/debug_mpi_live.sh"
