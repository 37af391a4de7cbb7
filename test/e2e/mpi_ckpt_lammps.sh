#!/usr/bin/env bash
# mpi_ckpt_lammps: Debian's LAMMPS (molecular dynamics, C++, built against
# OpenMPI), unmodified, as "mpirun -np 2 ckptmpi-runtime-openmpi lmp",
# checkpointed mid-run (SIGUSR1 to mpirun), killed, restarted: its thermo
# rows (15 digits) must be exactly those of the uninterrupted native run
# (see mpi_lammps_case in lib.sh).  Registered only with
# -DCKPTMPI_MPI_CKPT_TESTS=ON; NP=, STEPS= (default 600), TRIGGER= override.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
mpi_lammps_case --trigger "${TRIGGER:-mpirun}" "${NP:-2}" "${STEPS:-600}"
