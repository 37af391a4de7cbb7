#!/usr/bin/env bash
# mpi_ckpt_cut_progress: a checkpoint whose cut must drive MPI on a parked
# rank (test/mpi/mpi_cut_progress.c): asked for while rank 0 is inside an
# Allreduce that rank 2 can reach only once the parked rank 1's MPI has
# matched rank 2's MPI_Ssend. It must commit (the cut gives up after
# CKPTMPI_CUT_TIMEOUT=30 s here, within the case's wait), and the job,
# killed and restarted, must print what the plain run prints.
# FLAVOUR=mpich (default) or openmpi.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
MPI_ENV=(CKPTMPI_CUT_TIMEOUT=30)
mpi_ckpt_case --at 2 --more 1 "${FLAVOUR:-mpich}" 3 mpi_cut_progress 5 1500
