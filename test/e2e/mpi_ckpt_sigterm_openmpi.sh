#!/usr/bin/env bash
# mpi_ckpt_sigterm_openmpi: mpi_ckpt_sigterm.sh on OpenMPI.
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_ckpt_sigterm.sh"
