#!/usr/bin/env bash
# mpi_ckpt_cut_progress: a checkpoint asked for while rank 0 is inside an
# Allreduce that rank 2 reaches only once the settled rank 1 has done its
# part (test/mpi/mpi_cut_progress.c): at an odd line (AT=3, the default)
# rank 1's MPI must match rank 2's MPI_Ssend while rank 1 computes (MPI
# progress on a parked rank); at an even line (AT=4:
# mpi_ckpt_cut_wait.sh) rank 1 must run on to send the message rank 2
# waits for. It must commit (the cut gives up after CKPTMPI_CUT_TIMEOUT=30
# s here, within the case's wait), and the job, killed and restarted, must
# print what the plain run prints. FLAVOUR=mpich (default) or openmpi.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
MPI_ENV=(CKPTMPI_CUT_TIMEOUT=30)
mpi_ckpt_case --at "${AT:-3}" --more 1 "${FLAVOUR:-mpich}" 3 mpi_cut_progress 5 1000
