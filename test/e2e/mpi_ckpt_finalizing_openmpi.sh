#!/usr/bin/env bash
# mpi_ckpt_finalizing_openmpi: mpi_ckpt_finalizing.sh on OpenMPI.
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_ckpt_finalizing.sh"
