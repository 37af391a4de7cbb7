#!/usr/bin/env bash
# mpi_ckpt_chain: checkpoint, kill, restart, checkpoint (of the restarted
# job, into the same directory: a newer generation), kill, restart to the
# end; the three outputs merged = plain run.  mpich (default): mpi_p2p on 3
# ranks; openmpi: mpi_comms on 4 ranks, ckptmpi checkpoint DIR.
# Registered only with -DCKPTMPI_MPI_CKPT_TESTS=ON.  NP=, TRIGGER= (mpirun,
# rank, command) override the choices below; see "MPI jobs" in lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
case $FL in
	mpich) np=3 trigger=mpirun prog=mpi_p2p ;;
	openmpi) np=4 trigger=command prog=mpi_comms ;;
	*) fail "FLAVOUR=$FL: mpich or openmpi" ;;
esac
mpi_chain_case --trigger "${TRIGGER:-$trigger}" "$FL" "${NP:-$np}" "$prog" 25 100
