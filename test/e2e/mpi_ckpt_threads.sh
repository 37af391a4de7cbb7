#!/usr/bin/env bash
# mpi_ckpt_threads: mpi_threads_ckpt (MPI_THREAD_MULTIPLE, 3 threads per
# rank on communicators of their own, requests pending across each thread's
# sleep) checkpointed, killed and restarted; merged output = plain run.
# mpich (default): 2 ranks, SIGUSR1 to mpirun, linked; openmpi: 4 ranks,
# SIGUSR1 to one rank, unmodified through the runtime.
# Registered only with -DCKPTMPI_MPI_CKPT_TESTS=ON.  NP=, TRIGGER= (mpirun,
# rank, command) override the choices below; see "MPI jobs" in lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
case $FL in
	mpich) np=2 trigger=mpirun mode=() ;;
	openmpi) np=4 trigger=rank mode=(--runtime) ;;
	*) fail "FLAVOUR=$FL: mpich or openmpi" ;;
esac
mpi_ckpt_case --trigger "${TRIGGER:-$trigger}" "${mode[@]}" "$FL" "${NP:-$np}" mpi_threads_ckpt 20 100
