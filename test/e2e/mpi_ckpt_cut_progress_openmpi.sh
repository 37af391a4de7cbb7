#!/usr/bin/env bash
# mpi_ckpt_cut_progress_openmpi: mpi_ckpt_cut_progress.sh on OpenMPI.
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_ckpt_cut_progress.sh"
