#!/usr/bin/env bash
# mpi_ckpt_p2p: mpi_p2p (every kind of point-to-point, wildcard receives
# and a rendezvous-sized message pending across the sleep) checkpointed
# mid-run, every process of the job SIGKILLed, restarted with
# CKPTMPI_RESTART=latest: the output merged with the killed run's must
# equal a plain run's.  FLAVOUR=mpich (default): 4 ranks, SIGUSR1 to mpirun,
# the program linked with -lckptmpi; openmpi: 8 ranks, SIGUSR1 to one rank.
# Registered only with -DCKPTMPI_MPI_CKPT_TESTS=ON.  NP=, TRIGGER= (mpirun,
# rank, command) override the choices below; see "MPI jobs" in lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
case $FL in
	mpich) np=4 trigger=mpirun ;;
	openmpi) np=8 trigger=rank ;;
	*) fail "FLAVOUR=$FL: mpich or openmpi" ;;
esac
mpi_ckpt_case --trigger "${TRIGGER:-$trigger}" "$FL" "${NP:-$np}" mpi_p2p 20 100
