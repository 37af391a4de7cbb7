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
# Without FSGSBASE (AT_HWCAP2 bit 1: the CPU's, or a kernel that does not
# enable it) each MPI call switches the thread pointer with two arch_prctl
# system calls: 4.3 us each on a PVM guest seen, against 15 ns for
# wrfsbase. hpcc's MPIRandomAccess calls MPI_Test millions of times: at
# N=2500 the restarted run took more than 120 s there (native: 7 s), at
# N=1000 26 s (native: 1.3 s).
hwcap2=$(LD_SHOW_AUXV=1 /bin/true | sed -n 's/^AT_HWCAP2: *//p')
n_default=2500
if (( ${hwcap2:-0} & 2 )); then :; else
    n_default=1000
    log "no FSGSBASE on this machine: every MPI call costs two system calls, N=$n_default"
fi
mpi_hpcc_case --trigger "${TRIGGER:-mpirun}" "${NP:-2}" "${N:-$n_default}"
