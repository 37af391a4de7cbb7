#!/usr/bin/env bash
# debug_mpi_openmpi: debug_mpi.sh on OpenMPI.
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/debug_mpi.sh"
