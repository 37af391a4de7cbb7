#!/usr/bin/env bash
# mpi_ckpt_comms_openmpi: mpi_ckpt_comms.sh on OpenMPI.
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_ckpt_comms.sh"
