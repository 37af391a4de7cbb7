#!/usr/bin/env bash
# mpi_ckpt_hpcc: Debian's hpcc (HPC Challenge, built against OpenMPI),
# unmodified, as "mpirun -np 2 ckptmpi-runtime-openmpi hpcc", checkpointed
# mid-run (SIGUSR1 to mpirun), killed, restarted: it must still succeed
# with every check passed and the same sections as natively (see
# mpi_hpcc_case in lib.sh).  Registered only with
# -DCKPTMPI_MPI_CKPT_TESTS=ON; NP= (a grid P x Q is made of it), N= (HPL
# size, default 2500), TRIGGER= override.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
mpi_hpcc_case --trigger "${TRIGGER:-mpirun}" "${NP:-2}" "${N:-2500}"
