#!/usr/bin/env bash
# mpi_ckpt_sigterm_repeat on OpenMPI (see mpi_ckpt_sigterm_repeat.sh).
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_ckpt_sigterm_repeat.sh"
