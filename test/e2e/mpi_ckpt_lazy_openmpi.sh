#!/usr/bin/env bash
# mpi_ckpt_lazy_openmpi: mpi_ckpt_lazy.sh on OpenMPI.
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_ckpt_lazy.sh"
