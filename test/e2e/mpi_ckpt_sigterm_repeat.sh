#!/usr/bin/env bash
# mpi_ckpt_sigterm_repeat: mpi_ckpt_sigterm with SIGTERM sent again 50 ms
# later to mpirun and to every process of the job (what a Slurm time
# limit delivers: the batch shell and every task): the checkpoint the first one
# asked for must complete on every rank, and the restart must end as a
# plain run.  FLAVOUR=mpich (default) or openmpi.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init
FL=${FLAVOUR:-mpich}
case $FL in
	mpich) np=4 prog=mpi_colls args=(24 100) ;;
	openmpi) np=2 prog=mpi_p2p args=(60 150) ;;
	*) fail "FLAVOUR=$FL: mpich or openmpi" ;;
esac
MPI_TERM_REPEAT=1 mpi_sigterm_case "$FL" "${NP:-$np}" "$prog" "${args[@]}"
