#!/usr/bin/env bash
# mpi_ckpt_sigterm: SIGTERM to mpirun mid-run: the job checkpoints, then
# exits (nothing of it left), and a restart from that generation completes
# the run; merged output = plain run.  mpich (default): mpi_colls on 4
# ranks; openmpi: mpi_p2p on 2 ranks (see mpi_sigterm_case in lib.sh for
# how OpenMPI's mpirun passes SIGTERM on).
# Registered only with -DCKPTMPI_MPI_CKPT_TESTS=ON.  NP=, TRIGGER= (mpirun,
# rank, command) override the choices below; see "MPI jobs" in lib.sh.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
case $FL in
	mpich) np=4 prog=mpi_colls args=(20 100) ;;
	# OpenMPI's mpirun passes SIGTERM on MPI_TERM_GRACE s late: a longer run
	openmpi) np=2 prog=mpi_p2p args=(60 150) ;;
	*) fail "FLAVOUR=$FL: mpich or openmpi" ;;
esac
mpi_sigterm_case "$FL" "${NP:-$np}" "$prog" "${args[@]}"
