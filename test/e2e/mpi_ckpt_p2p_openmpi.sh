#!/usr/bin/env bash
# mpi_ckpt_p2p_openmpi: mpi_ckpt_p2p.sh on OpenMPI.
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_ckpt_p2p.sh"
