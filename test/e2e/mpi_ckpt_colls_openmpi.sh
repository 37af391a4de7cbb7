#!/usr/bin/env bash
# mpi_ckpt_colls_openmpi: mpi_ckpt_colls.sh on OpenMPI.
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_ckpt_colls.sh"
