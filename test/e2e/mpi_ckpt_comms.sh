#!/usr/bin/env bash
# mpi_ckpt_comms: mpi_comms (communicators, groups, attributes with
# counting callbacks, error handlers; one communicator and a Comm_idup live
# across the sleep) checkpointed, killed and restarted; merged output =
# plain run.  mpich (default): 2 ranks, ckptmpi checkpoint DIR, linked;
# openmpi: 4 ranks, SIGUSR1 to mpirun, unmodified through the runtime.
# Registered only with -DCKPTMPI_MPI_CKPT_TESTS=ON.  NP=, TRIGGER= (mpirun,
# rank, command) override the choices below; see "MPI jobs" in lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
case $FL in
	mpich) np=2 trigger=command mode=() ;;
	openmpi) np=4 trigger=mpirun mode=(--runtime) ;;
	*) fail "FLAVOUR=$FL: mpich or openmpi" ;;
esac
mpi_ckpt_case --trigger "${TRIGGER:-$trigger}" "${mode[@]}" "$FL" "${NP:-$np}" mpi_comms 20 100
