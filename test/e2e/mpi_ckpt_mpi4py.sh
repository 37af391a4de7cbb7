#!/usr/bin/env bash
# mpi_ckpt_mpi4py: test/mpi/mpi4py_ring.py, an unmodified python3 with
# mpi4py (Debian's, built against OpenMPI), as
# "mpirun -np 4 ckptmpi-runtime-openmpi /usr/bin/python3 mpi4py_ring.py":
# checkpointed (SIGUSR1 to mpirun), killed, restarted; merged output =
# plain run.  Registered only with -DCKPTMPI_MPI_CKPT_TESTS=ON; NP=,
# TRIGGER= override.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
[ -f "$PROGS/mpi4py_ring.py" ] || fail "test program not built: $PROGS/mpi4py_ring.py"
mpi_ckpt_case --trigger "${TRIGGER:-mpirun}" openmpi "${NP:-4}" mpi4py_ring.py 20 100
