#!/usr/bin/env bash
# mpi_ckpt_types_ops_openmpi: mpi_ckpt_types_ops.sh on OpenMPI.
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_ckpt_types_ops.sh"
