#!/usr/bin/env bash
# mpi_replay_pending with OpenMPI (see mpi_replay_pending.sh)
FLAVOUR=openmpi exec bash "$(dirname "${BASH_SOURCE[0]}")/mpi_replay_pending.sh"
