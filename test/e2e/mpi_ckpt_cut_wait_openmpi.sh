#!/usr/bin/env bash
# mpi_ckpt_cut_wait_openmpi: mpi_ckpt_cut_wait.sh on OpenMPI.
FLAVOUR=openmpi AT=4 exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_ckpt_cut_progress.sh"
