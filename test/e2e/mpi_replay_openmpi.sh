#!/usr/bin/env bash
# mpi_replay with OpenMPI (see mpi_replay.sh)
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_replay.sh"
