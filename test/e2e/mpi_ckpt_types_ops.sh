#!/usr/bin/env bash
# mpi_ckpt_types_ops: mpi_types_ops (derived datatypes made once and per
# iteration, user ops commutative and not, an Iallreduce with a user op
# pending across the sleep) checkpointed, killed and restarted; merged
# output = plain run.  mpich (default): 4 ranks, SIGUSR1 to one rank,
# unmodified through the runtime; openmpi: 2 ranks, SIGUSR1 to mpirun, linked.
# Registered only with -DCKPTMPI_MPI_CKPT_TESTS=ON.  NP=, TRIGGER= (mpirun,
# rank, command) override the choices below; see "MPI jobs" in lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
case $FL in
	mpich) np=4 trigger=rank mode=(--runtime) ;;
	openmpi) np=2 trigger=mpirun mode=() ;;
	*) fail "FLAVOUR=$FL: mpich or openmpi" ;;
esac
mpi_ckpt_case --trigger "${TRIGGER:-$trigger}" "${mode[@]}" "$FL" "${NP:-$np}" mpi_types_ops 20 100
