#!/usr/bin/env bash
# mpi_passthrough_openmpi: mpi_passthrough.sh on OpenMPI, whose handles are
# addresses of library objects (translated by the shim).
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_passthrough.sh"
