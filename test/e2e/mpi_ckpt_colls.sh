#!/usr/bin/env bash
# mpi_ckpt_colls: mpi_colls (every blocking and non-blocking collective,
# the non-blocking ones pending across the sleep, ranks skewed into
# different collectives) checkpointed, killed and restarted; merged output =
# plain run.  mpich (default): 8 ranks (fewer, shorter iterations: MPICH
# polls), SIGUSR1 to mpirun, linked; openmpi: 4 ranks, ckptmpi checkpoint DIR.
# Registered only with -DCKPTMPI_MPI_CKPT_TESTS=ON.  NP=, TRIGGER= (mpirun,
# rank, command) override the choices below; see "MPI jobs" in lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
case $FL in
	mpich) np=8 trigger=mpirun args=(12 60) ;;
	openmpi) np=4 trigger=command args=(20 100) ;;
	*) fail "FLAVOUR=$FL: mpich or openmpi" ;;
esac
mpi_ckpt_case --trigger "${TRIGGER:-$trigger}" "$FL" "${NP:-$np}" mpi_colls "${args[@]}"
